"""A send reads its contact in one written-out statement (messaging.conversations.contact):
the conversation as the ORM would load it, its device and app with it, and the opt-out."""

from __future__ import annotations

from typing import Any

import pytest

from devices.models import Device
from messaging.conversations import DEVICE_AT, contact, contact_and_device
from messaging.models import Conversation
from messaging.routing import explicit_device_route, explicit_route_from_rows
from smsgate.errors import DomainError
from tests.factories import (
    ConversationFactory,
    DeviceFactory,
    OptOutFactory,
    ProviderAppFactory,
    paired_device,
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


# --- a send that names its device reads the device in the same statement -------------------


def route_or_refusal(read: Any) -> Any:
    try:
        route = read()
    except DomainError as exc:
        return (type(exc), exc.code, str(exc))
    return (
        fields(route.device),
        route.sim and (route.sim.pk, route.sim.slot, route.sim.number),
        route.sim and route.sim._state.adding,
    )


@pytest.mark.parametrize("sims", [0, 1, 2])
@pytest.mark.parametrize("slot", [None, 1, 2, 3])
@pytest.mark.parametrize("known", [False, True])
def test_the_contact_and_its_named_device_in_one_statement(
    sims: int, slot: int | None, known: bool, django_assert_num_queries
):
    phone = paired_device(sims=sims)
    if known:
        ConversationFactory(phone="+15551234567", device=phone.device, sim_slot=1)
    OptOutFactory(phone="+15551234567")
    device_id = phone.device.pk

    with django_assert_num_queries(1):
        conversation, opted_out, rows = contact_and_device("+15551234567", device_id)
        found = route_or_refusal(lambda: explicit_route_from_rows(device_id, slot, rows, DEVICE_AT))

    assert (conversation, opted_out) == contact("+15551234567")
    assert found == route_or_refusal(lambda: explicit_device_route(device_id, slot))


@pytest.mark.parametrize("disabled", [False, True])
def test_a_named_device_that_is_missing_or_disabled_is_refused_as_before(disabled: bool):
    device_id = "dev_nonexistent"
    if disabled:
        device_id = paired_device().device.pk
        Device.objects.filter(pk=device_id).update(enabled=False)

    conversation, opted_out, rows = contact_and_device("+15551234567", device_id)
    found = route_or_refusal(lambda: explicit_route_from_rows(device_id, None, rows, DEVICE_AT))

    assert (conversation, opted_out) == (None, False)
    assert found == route_or_refusal(lambda: explicit_device_route(device_id, None))
    assert found[1] == "device_unavailable"
