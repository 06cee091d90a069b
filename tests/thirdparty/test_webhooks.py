"""Webhooks registered through the third-party API: delivered by smsgate's outbox in the app's
envelope, signed with the fleet's signing key, retried, and visible in the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from django.utils import timezone
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient

from devices.signals import device_health_changed
from messaging.inbox import InboundSMS
from messaging.models import Message, Status
from messaging.services import record_status
from pipeline.inbound import receive_one
from tests.factories import PairedDevice
from tests.thirdparty.conftest import BASE
from webhooks.models import Delivery
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db

KEY = "fleet-signing-key"


@pytest.fixture
def hook(admin_api: APIClient, allow_private: None, httpserver: HTTPServer) -> Any:
    admin_api.patch(BASE + "/settings", {"webhooks": {"signing_key": KEY}}, format="json")

    def register(event: str, **fields: Any) -> str:
        response = admin_api.post(
            BASE + "/webhooks",
            {"url": httpserver.url_for("/hook"), "event": event, **fields},
            format="json",
        )
        assert response.status_code == 201, response.json()
        return str(response.json()["id"])

    return register


def _verified(request: Any) -> dict[str, Any]:
    body = request.get_data()
    timestamp = request.headers["X-Timestamp"]
    expected = hmac.new(KEY.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    assert request.headers["X-Signature"] == expected
    assert abs(int(timestamp) - int(timezone.now().timestamp())) < 5
    return dict(json.loads(body))


def test_a_sent_report_arrives_in_the_app_envelope_signed_with_the_fleet_key(
    admin_api: APIClient, app_phone: PairedDevice, hook: Any, httpserver: HTTPServer
) -> None:
    webhook_id = hook("sms:sent")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    admin_api.post(
        BASE + "/messages",
        {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x"}, "id": "m-1"},
        format="json",
    )
    message = Message.objects.get()
    record_status(message_id=message.pk, status=Status.DISPATCHED)
    record_status(message_id=message.pk, status=Status.SENT)
    delivery = Delivery.objects.get(endpoint_id=webhook_id)
    assert deliver_webhook(delivery.pk) == "succeeded"

    request, _ = httpserver.log[-1]
    envelope = _verified(request)
    assert envelope["webhookId"] == webhook_id
    assert envelope["event"] == "sms:sent"
    assert envelope["deviceId"] == app_phone.device.pk
    assert envelope["id"] == delivery.event_id
    payload = envelope["payload"]
    # The integrator knows the message by the id it sent it with.
    assert payload["messageId"] == "m-1"
    assert payload["recipient"] == payload["phoneNumber"] == "+15551230001"
    assert payload["sender"] == message.from_number
    assert payload["simNumber"] == message.sim_slot
    assert payload["sentAt"].endswith("+00:00")


def test_a_received_sms_and_device_health_reach_their_webhooks(
    app_phone: PairedDevice, hook: Any, httpserver: HTTPServer
) -> None:
    received_id = hook("sms:received", deviceId=app_phone.device.pk)
    ping_id = hook("system:ping")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    receive_one(
        InboundSMS(
            from_number="+15551230007",
            body="Reading 0032",
            source="msync",
            to_number=app_phone.device.sims.get(slot=1).number,
            device=app_phone.device,
            sim_slot=1,
        )
    )
    device_health_changed.send(sender=type(app_phone.device), device=app_phone.device, online=False)
    for webhook_id in (received_id, ping_id):
        assert deliver_webhook(Delivery.objects.get(endpoint_id=webhook_id).pk) == "succeeded"
    received, ping = (_verified(request) for request, _ in httpserver.log)
    assert received["event"] == "sms:received"
    assert received["payload"]["message"] == "Reading 0032"
    assert received["payload"]["sender"] == "+15551230007"
    assert received["payload"]["receivedAt"].endswith("+00:00")
    assert ping["event"] == "system:ping"
    assert ping["payload"]["health"]["status"] == "fail"


def test_a_failing_receiver_is_retried_and_the_attempts_are_logged(
    admin_api: APIClient,
    admin_client: APIClient,
    app_phone: PairedDevice,
    hook: Any,
    httpserver: HTTPServer,
) -> None:
    webhook_id = hook("sms:cancelled")
    for status in (503, 200):
        httpserver.expect_ordered_request("/hook").respond_with_data("x", status=status)
    admin_api.post(
        BASE + "/messages",
        {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x"}, "id": "gone"},
        format="json",
    )
    admin_api.delete(BASE + "/messages/gone")
    delivery = Delivery.objects.get(endpoint_id=webhook_id)
    with freeze_time(timezone.now()) as clock:
        assert deliver_webhook(delivery.pk) == "retry scheduled"
        delivery.refresh_from_db()
        assert delivery.next_attempt_at is not None
        clock.move_to(delivery.next_attempt_at)
        assert deliver_webhook(delivery.pk) == "succeeded"
    delivery.refresh_from_db()
    assert [a.status_code for a in delivery.attempts.all()] == [503, 200]
    envelopes = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert {e["event"] for e in envelopes} == {"sms:cancelled"}
    assert envelopes[0]["payload"]["messageId"] == "gone"
    assert "cancelledAt" in envelopes[0]["payload"]
    # The same event id on every attempt, so the receiver can deduplicate.
    assert envelopes[0]["id"] == envelopes[1]["id"]
    # The delivery log of smsgate's own webhooks API shows them too.
    log = admin_client.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    (logged,) = log.json()["results"]
    assert logged["event"] == "sms.cancelled"
    assert [(a["status_code"], a["error"]) for a in logged["attempts"]] == [
        (503, "HTTP 503"),
        (200, ""),
    ]


def test_without_a_signing_key_nothing_is_signed(
    admin_api: APIClient, app_phone: PairedDevice, allow_private: None, httpserver: HTTPServer
) -> None:
    admin_api.post(
        BASE + "/webhooks",
        {"id": "plain", "url": httpserver.url_for("/hook"), "event": "sms:failed"},
        format="json",
    )
    httpserver.expect_request("/hook").respond_with_data("ok")
    admin_api.post(
        BASE + "/messages",
        {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x"}},
        format="json",
    )
    record_status(message_id=Message.objects.get().pk, status=Status.FAILED, reason="NO_SERVICE")
    assert deliver_webhook(Delivery.objects.get(endpoint_id="plain").pk) == "succeeded"
    request, _ = httpserver.log[-1]
    assert "X-Signature" not in request.headers
    assert json.loads(request.get_data())["payload"]["reason"] == "NO_SERVICE"
