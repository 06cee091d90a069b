"""A send reads its contact in one written-out statement (messaging.conversations.contact):
the conversation as the ORM would load it, its device and app with it, and the opt-out."""

from __future__ import annotations

import pytest

from messaging.conversations import contact
from messaging.models import Conversation
from tests.factories import (
    ConversationFactory,
    DeviceFactory,
    OptOutFactory,
    ProviderAppFactory,
)

pytestmark = pytest.mark.django_db


def fields(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_a_new_number_has_no_conversation():
    assert contact("+15551234567") == (None, False)


def test_a_new_number_that_opted_out_is_known_to_have():
    OptOutFactory(phone="+15551234567")
    assert contact("+15551234567") == (None, True)


def test_a_known_contact_comes_with_its_device_and_app(django_assert_num_queries):
    device = DeviceFactory(online=True)
    app = ProviderAppFactory(numbers=["+15550000000"])
    ConversationFactory(phone="+15551234567", device=device, sim_slot=2, app=app, tags=["vip"])
    OptOutFactory(phone="+15551234567")

    with django_assert_num_queries(1):
        conversation, opted_out = contact("+15551234567")
        assert conversation is not None
        assert fields(conversation.device) == fields(device)
        assert fields(conversation.app) == fields(app)

    assert opted_out is True
    assert fields(conversation) == fields(Conversation.objects.get(phone="+15551234567"))
    assert conversation.tags == ["vip"] and conversation.app.numbers == ["+15550000000"]


def test_a_contact_without_a_line_has_none_loaded(django_assert_num_queries):
    ConversationFactory(phone="+15551234567")

    with django_assert_num_queries(1):
        conversation, opted_out = contact("+15551234567")
        assert conversation is not None
        assert conversation.device is None and conversation.app is None
    assert opted_out is False
