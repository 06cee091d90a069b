"""A thread whose line is a provider app that only receives offers no reply box that can only
fail."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging.inbox import InboundSMS
from messaging.models import Conversation, Message
from pipeline.inbound import receive_one
from providers.services import create_provider_app
from tests.dashboard.conftest import csrf_post
from tests.factories import paired_device

pytestmark = pytest.mark.django_db

CUSTOMER = "+393351234567"


def agile_conversation() -> Conversation:
    app = create_provider_app(
        provider="agiletelecom", name="Agile IT", credentials={}, numbers=["+393331234333"]
    )
    receive_one(
        InboundSMS(
            from_number=CUSTOMER, body="hello", source="agiletelecom", app=app, source_id="a1"
        )
    )
    return Conversation.objects.get(phone=CUSTOMER)


def test_without_a_phone_the_thread_says_the_app_only_receives_and_has_no_send_box(
    staff_web: Client,
) -> None:
    conversation = agile_conversation()

    page = staff_web.get(f"/inbox/{conversation.pk}/").content.decode()

    assert "Agile IT only receives messages, and no phone can send a reply." in page
    assert "Replies go from Agile IT" not in page
    assert 'class="sendbox"' not in page


def test_with_a_phone_the_thread_offers_a_reply_from_it(staff_web: Client) -> None:
    conversation = agile_conversation()
    phone = paired_device()

    page = staff_web.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "Agile IT only receives messages; replies go from the first available phone." in page
    assert 'class="sendbox"' in page

    response = csrf_post(staff_web, f"/inbox/{conversation.pk}/send/", {"body": "Hi back"})

    assert response.status_code == 302
    reply = Message.objects.get(direction="outbound")
    assert (reply.app_id, reply.device_id) == (None, phone.device.pk)


def test_a_reply_posted_anyway_is_refused_without_a_row(staff_web: Client) -> None:
    conversation = agile_conversation()

    response = csrf_post(staff_web, f"/inbox/{conversation.pk}/send/", {"body": "Hi back"})

    assert response.status_code == 422
    assert "only receives" in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()
