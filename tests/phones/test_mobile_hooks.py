"""The app's signed webhooks back to smsgate (docs/phones/sms-gateway-app.md#webhooks)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devices.models import Device, Sim
from messaging.models import Direction, InboundRequest, Message, Status
from messaging.services import send_message
from phones.smsgateway.hooks import signature_for
from phones.smsgateway.services import signing_key
from tests.phones.conftest import BASE, AppPhone

pytestmark = pytest.mark.django_db

SENDER = "+14155550199"


def received(message_id: str = "a1b2c3d4", text: str = "Hi there", **extra: Any) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "message": text,
        "sender": SENDER,
        "phoneNumber": SENDER,
        "recipient": None,
        "simNumber": 1,
        "receivedAt": "2026-12-03T08:00:00.123+00:00",
        **extra,
    }


def inbound() -> list[Message]:
    return list(Message.objects.filter(direction=Direction.INBOUND))


def test_a_received_sms_enters_the_inbound_pipeline(registered: AppPhone) -> None:
    Sim.objects.filter(device=registered.device, slot=1).update(number="+14155550100")
    response = registered.hook("sms:received", received())
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    [message] = inbound()
    assert message.from_number == SENDER
    assert message.body == "Hi there"
    assert message.device_id == registered.device.pk
    assert message.sim_slot == 1
    assert message.to_number == "+14155550100"
    assert message.source == "smsgateway"
    assert message.metadata["app_message_id"] == "a1b2c3d4"
    assert message.received_at is not None and message.received_at.minute == 0


def test_a_retry_with_the_same_id_is_stored_once(registered: AppPhone) -> None:
    registered.hook("sms:received", received())
    again = registered.hook("sms:received", received())
    assert again.status_code == 200
    assert len(inbound()) == 1
    assert InboundRequest.objects.filter(outcome=InboundRequest.Outcome.DUPLICATE).count() == 1


def test_the_same_sms_under_another_id_is_stored_once(registered: AppPhone) -> None:
    registered.hook("sms:received", received("a1b2c3d4"))
    registered.hook("sms:received", received("ffff0000", receivedAt="2026-12-03T08:00:00Z"))
    assert len(inbound()) == 1


def test_two_sms_sharing_an_id_are_both_stored(registered: AppPhone) -> None:
    """The app's id is a 32-bit hash: two different SMS can share one."""
    registered.hook("sms:received", received("a1b2c3d4", "first"))
    registered.hook("sms:received", received("a1b2c3d4", "second"))
    assert sorted(m.body for m in inbound()) == ["first", "second"]


def test_a_data_sms_keeps_its_data(registered: AppPhone) -> None:
    payload = {**received(), "data": "SGVsbG8="}
    del payload["message"]
    assert registered.hook("sms:data-received", payload).status_code == 200
    [message] = inbound()
    assert message.body == "SGVsbG8="
    assert message.metadata["data_message"] is True


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({}, 401),  # unsigned
        ({"key": "not-the-key"}, 403),
        ({"timestamp": int(time.time()) - 7200}, 403),
    ],
)
def test_a_webhook_not_signed_with_the_devices_key_stores_nothing_but_the_raw_log(
    registered: AppPhone, change: dict[str, Any], status: int
) -> None:
    response = registered.hook("sms:received", received(), sign=bool(change), **change)
    assert response.status_code == status
    assert inbound() == []
    logged = InboundRequest.objects.get(path=f"{BASE}/webhooks/sms:received")
    assert logged.outcome == InboundRequest.Outcome.REJECTED
    assert b"Hi there" in bytes(logged.body)


def test_a_body_changed_after_signing_is_refused(registered: AppPhone) -> None:
    registered.device.refresh_from_db()
    good = registered.hook("sms:received", received("1"))
    assert good.status_code == 200
    stamp = str(int(time.time()))
    signed = b'{"event":"sms:received","deviceId":"x","payload":{}}'
    forged = signed.replace(b'"x"', f'"{registered.device.pk}"'.encode())
    response = registered.http().post(
        f"{BASE}/webhooks/sms:received",
        forged,
        content_type="application/json",
        HTTP_X_TIMESTAMP=stamp,
        HTTP_X_SIGNATURE=signature_for(signing_key(registered.device), signed, stamp),
    )
    assert response.status_code == 403


def test_a_webhook_of_an_unknown_device_is_401(registered: AppPhone) -> None:
    envelope = {"event": "sms:received", "deviceId": "dev_nothere", "payload": received()}
    assert registered.hook("sms:received", {}, envelope=envelope).status_code == 401


@pytest.mark.parametrize(
    "envelope",
    [
        {"event": "sms:received", "payload": {}},
        {"event": "sms:received", "deviceId": 5, "payload": {}},
        {"event": "sms:received", "deviceId": "x", "payload": []},
    ],
)
def test_a_malformed_envelope_is_400(registered: AppPhone, envelope: dict[str, Any]) -> None:
    assert registered.hook("sms:received", {}, envelope=envelope).status_code == 400


@pytest.mark.parametrize(
    "payload", [{"message": "x"}, {"sender": 5, "message": "x"}, {"sender": "x", "message": 5}]
)
def test_a_bad_received_payload_is_4xx_and_stores_nothing(
    registered: AppPhone, payload: dict[str, Any]
) -> None:
    response = registered.hook("sms:received", payload)
    assert 400 <= response.status_code < 500
    assert inbound() == []


def test_an_envelope_for_another_event_than_its_url_is_400(registered: AppPhone) -> None:
    envelope = {"event": "sms:sent", "deviceId": registered.device.pk, "payload": {}}
    assert registered.hook("sms:received", {}, envelope=envelope).status_code == 400


@pytest.mark.parametrize(
    ("event", "extra", "expected"),
    [
        ("sms:sent", {"sentAt": "2026-12-03T08:00:01.000+00:00", "partsCount": 1}, Status.SENT),
        ("sms:delivered", {"deliveredAt": "2026-12-03T08:00:02.000+00:00"}, Status.DELIVERED),
        (
            "sms:failed",
            {"failedAt": "2026-12-03T08:00:02.000+00:00", "reason": "no signal"},
            Status.FAILED,
        ),
        ("sms:cancelled", {"cancelledAt": "2026-12-03T08:00:02.000+00:00"}, Status.FAILED),
    ],
)
def test_status_webhooks_change_the_message(
    registered: AppPhone, event: str, extra: dict[str, Any], expected: str
) -> None:
    message = send_message(to="+14155550111", body="x", device_id=registered.device.pk)
    registered.get("/message")
    payload = {"messageId": message.pk, "sender": None, "recipient": "+14155550111", **extra}
    assert registered.hook(event, payload).status_code == 200
    stored = Message.objects.get(pk=message.pk)
    assert stored.status == expected
    if event == "sms:failed":
        assert stored.reason == "no signal"


def test_a_status_webhook_for_an_unknown_message_is_acknowledged(registered: AppPhone) -> None:
    response = registered.hook("sms:sent", {"messageId": "msg_nothere", "sentAt": None})
    assert response.status_code == 200


def test_a_ping_updates_health_and_is_a_heartbeat(registered: AppPhone) -> None:
    Device.objects.filter(pk=registered.device.pk).update(online=False, battery_level=None)
    health = {
        "status": "pass",
        "version": "1.68.0",
        "checks": {"battery:level": {"status": "pass", "observedValue": 87, "observedUnit": "%"}},
    }
    assert registered.hook("system:ping", {"health": health}).status_code == 200
    device = Device.objects.get(pk=registered.device.pk)
    assert device.battery_level == 87
    assert device.online


def test_app_started_refreshes_the_sims(registered: AppPhone) -> None:
    cards = [
        {"slotIndex": 0, "simNumber": 1, "phoneNumber": None},
        {"slotIndex": 1, "simNumber": 2, "phoneNumber": "+14155550177"},
    ]
    assert registered.hook("app:started", {"simCards": cards}).status_code == 200
    sims = dict(Sim.objects.filter(device=registered.device).values_list("slot", "number"))
    assert sims[2] == "+14155550177" and set(sims) == {1, 2}


def test_an_event_smsgate_does_not_use_is_acknowledged_so_the_app_stops_retrying(
    registered: AppPhone,
) -> None:
    response = registered.hook("mms:received", {"messageId": "1", "sender": SENDER})
    assert response.status_code == 202
    assert inbound() == []
