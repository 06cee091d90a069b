"""The formats other than `standard`: chat (with replies), form (+OK), slack and email."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.utils import timezone
from freezegun import freeze_time
from pytest_httpserver import HTTPServer

from messaging.models import Direction, Message, Status
from messaging.services import record_status, send_message
from tests.factories import PairedDevice
from webhooks.models import Delivery
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db

SENDER = "+15551230001"


def _delivery_for(webhook: dict[str, Any], event: str = "sms.received") -> Delivery:
    return Delivery.objects.get(endpoint_id=webhook["id"], event__type=event)


# --- chat -----------------------------------------------------------------------------------


def test_chat_sends_the_gateway_master_shape_with_history_and_the_api_key(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    phone: PairedDevice,
) -> None:
    webhook = create_webhook(receiver.url_for("/chat"), format="chat", history=5)
    assert webhook["history"] == 5
    receiver.expect_request("/chat").respond_with_data("")
    for n in range(3):
        receive(body=f"in {n}", sender=SENDER, sim_slot=2)
        send_message(to=SENDER, body=f"out {n}", device_id=phone.device.pk, sim_slot=2)
    current = receive(body="Hi, I need help with my order", sender=SENDER, sim_slot=2)
    receive(body="a later message", sender=SENDER, sim_slot=2)

    deliver_webhook(Delivery.objects.get(endpoint_id=webhook["id"], event__message=current).pk)
    request = next(
        r for r, _ in receiver.log if r.get_json()["message"] == "Hi, I need help with my order"
    )
    assert request.headers["X-API-Key"] == webhook["secret"]
    body = request.get_json()
    assert body["type"] == "incoming_sms"
    assert body["sender"] == SENDER
    assert body["device_id"] == phone.device.pk
    assert body["sim_slot"] == 2
    assert body["timestamp"] == int(current.received_at.timestamp() * 1000)
    history = body["conversation_history"]
    # The last 5 messages, oldest first, the current one last; the later one is not there.
    assert [(h["role"], h["message"]) for h in history] == [
        ("in", "in 1"),
        ("out", "out 1"),
        ("in", "in 2"),
        ("out", "out 2"),
        ("in", "Hi, I need help with my order"),
    ]
    assert all(isinstance(h["timestamp"], int) for h in history)


def test_a_chat_answer_is_texted_back_through_the_same_device_and_sim(
    admin_client: Any,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    phone: PairedDevice,
) -> None:
    webhook = create_webhook(receiver.url_for("/chat"), format="chat")
    receiver.expect_request("/chat").respond_with_json(
        {"sms_text": "Thanks! Our support team will contact you shortly."}
    )
    message = receive(body="Hi, I need help with my order", sender=SENDER, sim_slot=2)
    delivery = _delivery_for(webhook)
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert deliver_webhook(delivery.pk) == "skipped"

    reply = Message.objects.get(direction=Direction.OUTBOUND)
    assert reply.to_number == SENDER
    assert reply.body == "Thanks! Our support team will contact you shortly."
    assert reply.status == Status.QUEUED
    assert reply.device_id == phone.device.pk
    assert reply.sim_slot == 2
    assert reply.source == "chat"
    assert reply.conversation_id == message.conversation_id

    # A replay makes the receiver answer again; the sender still gets one reply.
    response = admin_client.post(
        f"/api/v1/webhooks/{webhook['id']}/replay",
        {"since": (delivery.created_at - timedelta(seconds=1)).isoformat()},
        format="json",
    )
    assert response.json() == {"replayed": 1}
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1
    assert delivery.attempts.count() == 2


def test_an_empty_chat_answer_sends_nothing(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/chat"), format="chat")
    receiver.expect_request("/chat").respond_with_data("", status=200)
    receive()
    assert deliver_webhook(_delivery_for(webhook).pk) == "succeeded"
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_a_deeply_nested_chat_answer_sends_nothing(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/chat"), format="chat")
    deep = '{"sms_text": "hi", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    receiver.expect_request("/chat").respond_with_data(deep, content_type="application/json")
    receive()
    assert deliver_webhook(_delivery_for(webhook).pk) == "succeeded"
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_a_chat_answer_to_a_sender_name_sends_nothing(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/chat"), format="chat")
    receiver.expect_request("/chat").respond_with_json({"sms_text": "Thanks!"})
    receive(sender="MPESA")
    assert deliver_webhook(_delivery_for(webhook).pk) == "succeeded"
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    attempt = _delivery_for(webhook).attempts.get()
    assert attempt.error == "reply not sent: the sender is not a phone number"


def test_a_chat_reply_to_an_opted_out_sender_is_noted_not_sent(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    from messaging.models import OptOut

    webhook = create_webhook(receiver.url_for("/chat"), format="chat")
    receiver.expect_request("/chat").respond_with_json({"sms_text": "Hello again"})
    receive()
    OptOut.objects.create(phone=SENDER)
    delivery = _delivery_for(webhook)
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert "reply not sent" in delivery.attempts.get().error
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_chat_status_events_are_sms_status(
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
    phone: PairedDevice,
) -> None:
    webhook = create_webhook(receiver.url_for("/chat"), format="chat", events=["sms.delivered"])
    receiver.expect_request("/chat").respond_with_json({"sms_text": "ignored for status events"})
    message = send_message(to=SENDER, body="Your order shipped", device_id=phone.device.pk)
    for status in (Status.DISPATCHED, Status.SENT, Status.DELIVERED):
        record_status(message_id=message.pk, status=status)
    deliver_webhook(_delivery_for(webhook, "sms.delivered").pk)
    request, _ = receiver.log[-1]
    assert request.get_json() == {"type": "sms_status", "smsId": message.pk, "status": "delivered"}
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


# --- form -----------------------------------------------------------------------------------


def test_form_posts_the_agile_fields_and_succeeds_on_plus_ok(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    phone: PairedDevice,
) -> None:
    webhook = create_webhook(receiver.url_for("/agile"), format="form")
    assert webhook["events"] == ["sms.received"]
    assert webhook["max_attempts"] == 3
    receiver.expect_request("/agile", method="POST").respond_with_data("+OK")
    with freeze_time("2026-05-14 10:23:01"):
        receive(body="News ON", sender="+393351234567")
    assert deliver_webhook(_delivery_for(webhook).pk) == "succeeded"
    request, _ = receiver.log[-1]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.get_data(as_text=True)) == {
        "originator": ["+393351234567"],
        "destination": [phone.device.sims.get(slot=1).number],
        "date_time": ["20260514102301"],
        "text": ["News ON"],
    }


@pytest.mark.parametrize("answer", ["OK", "", "+ERR", '{"ok": true}', "+OK more"])
def test_form_fails_on_anything_but_plus_ok(
    answer: str,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/agile"), format="form")
    receiver.expect_request("/agile").respond_with_data(answer, status=200)
    receive()
    delivery = _delivery_for(webhook)
    with freeze_time(timezone.now()):
        assert deliver_webhook(delivery.pk) == "retry scheduled"
        delivery.refresh_from_db()
        # Agile's policy: every 15 minutes.
        delay = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 15 * 60 * 0.8 <= delay <= 15 * 60 * 1.2
    assert delivery.attempts.get().status_code == 200


def test_form_gives_up_after_three_attempts(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/agile"), format="form")
    receiver.expect_request("/agile").respond_with_data("-ERR", status=500)
    receive()
    delivery = _delivery_for(webhook)
    with freeze_time(timezone.now()) as clock:
        for _ in range(3):
            result = deliver_webhook(delivery.pk)
            delivery.refresh_from_db()
            if delivery.next_attempt_at:
                clock.move_to(delivery.next_attempt_at)
    assert result == "failed"
    assert delivery.attempts.count() == 3


def test_form_cannot_subscribe_to_status_events(admin_client: Any, allow_private: None) -> None:
    response = admin_client.post(
        "/api/v1/webhooks",
        {"url": "http://127.0.0.1:9/a", "format": "form", "events": ["sms.sent"]},
        format="json",
    )
    assert response.status_code == 400
    assert "events" in response.json()["error"]["fields"]


# --- slack and email ----------------------------------------------------------------------


def test_slack_gets_a_text(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/slack"), format="slack")
    assert "secret" not in webhook or webhook["secret"] is None
    receiver.expect_request("/slack").respond_with_data("ok")
    receive(body="Meter 4471 reading 0032")
    assert deliver_webhook(_delivery_for(webhook).pk) == "succeeded"
    request, _ = receiver.log[-1]
    body = request.get_json()
    assert list(body) == ["text"]
    assert SENDER in body["text"]
    assert "Meter 4471 reading 0032" in body["text"]


def test_email_sends_one_mail_per_event(
    create_webhook: Callable[..., dict[str, Any]], receive: Callable[..., Message]
) -> None:
    webhook = create_webhook("mailto:ops@example.org,oncall@example.org", format="email")
    receive(body="Meter 4471 reading 0032")
    delivery = _delivery_for(webhook)
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert deliver_webhook(delivery.pk) == "skipped"
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ops@example.org", "oncall@example.org"]
    assert SENDER in sent.subject
    assert "Meter 4471 reading 0032" in sent.body


@pytest.mark.parametrize("url", ["mailto:", "mailto:not-an-address", "https://example.org/x"])
def test_email_needs_a_valid_mailto(url: str, admin_client: Any) -> None:
    response = admin_client.post("/api/v1/webhooks", {"url": url, "format": "email"}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]
