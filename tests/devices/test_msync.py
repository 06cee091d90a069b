"""MSync (docs/phones/msync.md): every action, device authentication, and what bad input gets."""

from __future__ import annotations

import json

import pytest

from devices.models import Device
from messaging.models import InboundRequest, Message, Status
from tests.budgets import budget
from tests.devices.conftest import TRANSACTION_STATEMENTS, MSync, health_events
from tests.factories import OutboundMessageFactory, paired_device

pytestmark = pytest.mark.django_db


def incoming(n: int, *, start: int = 0, with_id: bool = True) -> list[dict]:
    return [
        {
            "from": "+15551230000",
            "message": f"reading {i}",
            "timestamp": 1744029005123 + i,
            "sim_slot": 1,
            **({"id": f"sms-{i}"} if with_id else {}),
        }
        for i in range(start, start + n)
    ]


def test_incoming_batch_counts_received_and_duplicates(msync):
    first = msync.post("incoming", messages=incoming(3))
    second = msync.post("incoming", messages=incoming(4))

    assert first.status_code == 200
    assert first.json() == {"success": True, "received": 3, "duplicates": 0}
    assert second.json() == {"success": True, "received": 1, "duplicates": 3}
    assert Message.objects.filter(direction="inbound").count() == 4
    message = Message.objects.get(provider_message_id="sms-0")
    assert message.device_id == msync.paired.device.pk
    assert message.sim_slot == 1
    assert message.received_at.isoformat() == "2025-04-07T12:30:05.123000+00:00"


def test_salamis_example_body_with_sim_slot_0_is_stored_on_the_first_slot(msync):
    # Salami's documented MSync example, word for word but for the device id.
    body = {
        "action": "incoming",
        "device_id": msync.paired.device.pk,
        "messages": [
            {
                "from": "254712345678",
                "message": "Hello",
                "timestamp": "2026-03-15T15:00:00Z",
                "sim_slot": 0,
            }
        ],
    }
    response = msync.raw(json.dumps(body))

    assert response.status_code == 200
    assert response.json() == {"success": True, "received": 1, "duplicates": 0}
    message = Message.objects.get()
    first_sim = msync.paired.device.sims.get(slot=1)
    assert (message.sim_slot, message.to_number) == (1, first_sim.number)
    assert message.from_number == "+254712345678"


@pytest.mark.parametrize("slot", [-1, 9, "0", True])
def test_a_sim_slot_outside_0_to_8_is_refused(msync, slot):
    messages = [dict(incoming(1)[0], sim_slot=slot)]
    response = msync.post("incoming", messages=messages)

    assert response.status_code == 400
    assert "sim_slot" in response.json()["error"]["message"]


def test_duplicates_without_an_id_are_recognised_by_sender_time_and_text(msync):
    msync.post("incoming", messages=incoming(2, with_id=False))
    again = msync.post("incoming", messages=incoming(2, with_id=False))

    assert again.json() == {"success": True, "received": 0, "duplicates": 2}


def test_incoming_accepts_iso_timestamps(msync):
    response = msync.post(
        "incoming",
        messages=[{"from": "+15551230000", "message": "hi", "timestamp": "2026-01-02T03:04:05Z"}],
    )

    assert response.json()["received"] == 1
    assert Message.objects.get().received_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_a_batch_of_500_is_stored_in_one_request(msync):
    response = msync.post("incoming", messages=incoming(500))

    assert response.json() == {"success": True, "received": 500, "duplicates": 0}
    assert Message.objects.count() == 500


def test_a_full_batch_of_long_unicode_messages_fits_under_the_body_limit(msync):
    # 500 messages of 1600 characters outside ASCII: close to the largest batch a phone sends.
    batch = [dict(m, message="Ж" * 1600) for m in incoming(500)]
    response = msync.post("incoming", messages=batch)

    assert response.status_code == 200
    assert response.json()["received"] == 500
    assert Message.objects.filter(encoding="UCS-2").count() == 500


def test_a_batch_over_500_is_refused(msync):
    response = msync.post("incoming", messages=incoming(501))

    assert response.status_code == 400
    assert Message.objects.count() == 0


def test_outgoing_hands_each_message_out_once(msync):
    device = msync.paired.device
    message = OutboundMessageFactory(device=device, sim_slot=1, to_number="+15559870000")

    first = msync.post("outgoing")
    second = msync.post("outgoing")

    assert first.json() == {
        "messages": [
            {
                "id": message.pk,
                "to": "+15559870000",
                "message": "Hello",
                "uuid": str(message.uuid),
                "sim_slot": 1,
            }
        ]
    }
    assert second.json() == {"messages": []}
    message.refresh_from_db()
    assert message.status == Status.DISPATCHED and message.dispatched_at is not None


def test_outgoing_honours_the_limit(msync):
    for _ in range(5):
        OutboundMessageFactory(device=msync.paired.device)

    assert len(msync.post("outgoing", limit=2).json()["messages"]) == 2


def test_status_and_location_update_the_device(msync, admin_client):
    status = msync.post(
        "status", battery_level=81, signal_strength=-70, network_type="LTE", sim_state="READY"
    )
    location = msync.post("location", latitude=-1.2921, longitude=36.8219, accuracy=12.5)

    assert status.json() == {"success": True}
    assert location.json() == {"success": True}
    detail = admin_client.get(f"/api/v1/devices/{msync.paired.device.pk}").json()
    assert detail["battery_level"] == 81
    assert detail["signal_strength"] == -70
    assert detail["network_type"] == "LTE"
    assert detail["sim_state"] == "READY"
    assert detail["location"]["latitude"] == -1.2921
    assert detail["location"]["accuracy"] == 12.5
    assert detail["location"]["at"]


def test_delivery_reports_move_forward_and_never_back(msync):
    message = OutboundMessageFactory(device=msync.paired.device, status=Status.DISPATCHED)
    uuid = str(message.uuid)

    sent = msync.post(
        "delivery", reports=[{"uuid": uuid, "status": "sent", "timestamp": 1744029005123}]
    )
    delivered = msync.post(
        "delivery",
        reports=[{"uuid": uuid, "status": "delivered", "timestamp": "2025-04-07T12:31:00Z"}],
    )
    late = msync.post(
        "delivery", reports=[{"uuid": uuid, "status": "sent", "timestamp": 1744029005123}]
    )

    assert sent.json() == {"success": True, "updated": 1}
    assert delivered.json() == {"success": True, "updated": 1}
    assert late.json() == {"success": True, "updated": 0}
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.delivered_at.isoformat() == "2025-04-07T12:31:00+00:00"
    assert message.events.filter(applied=False).count() == 1


def test_failed_report_keeps_the_error_as_reason(msync):
    message = OutboundMessageFactory(device=msync.paired.device, status=Status.DISPATCHED)

    msync.post(
        "delivery",
        reports=[
            {
                "uuid": str(message.uuid),
                "status": "failed",
                "timestamp": 1744029005123,
                "error": "RESULT_ERROR_NO_SERVICE",
            }
        ],
    )

    message.refresh_from_db()
    assert message.status == Status.FAILED and message.reason == "RESULT_ERROR_NO_SERVICE"


def test_unknown_action_is_a_400(msync):
    response = msync.post("dance")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_action"


@pytest.mark.parametrize("action", ["incoming", "outgoing", "status", "location", "delivery"])
def test_a_token_cannot_act_for_another_device(msync, other_phone, action):
    OutboundMessageFactory(device=other_phone.device)
    body = {"action": action, "device_id": other_phone.device.pk, "messages": incoming(1)}

    response = msync.raw(json.dumps(body))

    assert response.status_code == 403
    assert Message.objects.filter(direction="inbound").count() == 0
    assert Message.objects.get().status == Status.QUEUED


def test_a_token_cannot_report_on_another_devices_message(msync, other_phone):
    theirs = OutboundMessageFactory(device=other_phone.device, status=Status.DISPATCHED)

    response = msync.post("delivery", reports=[{"uuid": str(theirs.uuid), "status": "delivered"}])

    assert response.status_code == 403
    theirs.refresh_from_db()
    assert theirs.status == Status.DISPATCHED


def test_a_device_token_is_not_an_api_key(msync):
    response = msync.client.get(
        f"/api/v1/devices/{msync.paired.device.pk}",
        HTTP_AUTHORIZATION=f"Bearer {msync.paired.token}",
    )

    assert response.status_code in (401, 403)


def test_rotated_credentials_stop_working_at_once(msync, admin_client):
    device = msync.paired.device
    rotated = admin_client.post(f"/api/v1/devices/{device.pk}/rotate-credentials").json()

    old = msync.post("outgoing")
    new = msync.post("outgoing", token=rotated["token"])
    old_secret = msync.client.get(f"/api/sms/smssync?task=send&secret={msync.paired.secret}")
    new_secret = msync.client.get(f"/api/sms/smssync?task=send&secret={rotated['smssync_secret']}")

    assert old.status_code == 401
    assert new.status_code == 200
    assert old_secret.json()["payload"]["success"] is False
    assert new_secret.json()["payload"]["task"] == "send"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b"\x00\xff\xfebinary", 400),
        (json.dumps({"action": "incoming", "messages": "nope"}).encode(), 400),
        (
            json.dumps({"action": "incoming", "messages": [{"from": 5, "message": []}]}).encode(),
            400,
        ),
        (json.dumps({"action": "outgoing", "limit": "ten"}).encode(), 400),
        (json.dumps({"action": "status", "battery_level": "full"}).encode(), 400),
        (json.dumps({"action": "location", "latitude": 123, "longitude": 0}).encode(), 400),
        (
            json.dumps(
                {"action": "delivery", "reports": [{"uuid": "x", "status": "sent"}]}
            ).encode(),
            400,
        ),
        (
            json.dumps(
                {
                    "action": "delivery",
                    "reports": [{"uuid": "4b1c5d8e-0000-4000-8000-000000000000", "status": "lost"}],
                }
            ).encode(),
            400,
        ),
    ],
)
def test_malformed_bodies_are_4xx_and_logged(msync, body, status):
    data = body
    if body.startswith(b"{") and b"action" in body:
        payload = json.loads(body)
        payload["device_id"] = msync.paired.device.pk
        data = json.dumps(payload).encode()

    response = msync.raw(data)

    assert response.status_code == status
    assert "error" in response.json()
    assert InboundRequest.objects.get().outcome == "rejected"
    assert Message.objects.count() == 0


def test_a_body_over_the_limit_is_413_and_logged(msync, settings):
    settings.SMSGATE_MAX_BODY_BYTES = 64 * 1024
    body = json.dumps(
        {"action": "incoming", "device_id": msync.paired.device.pk, "pad": "x" * (64 * 1024)}
    )

    response = msync.raw(body)

    assert response.status_code == 413
    assert InboundRequest.objects.get().body_truncated is True


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer nope", "Basic abc"])
def test_missing_or_wrong_token_is_401(msync, header):
    response = msync.client.post(
        "/api/sms/msync",
        data=json.dumps({"action": "outgoing", "device_id": msync.paired.device.pk}),
        content_type="application/json",
        HTTP_AUTHORIZATION=header,
    )

    assert response.status_code == 401
    assert InboundRequest.objects.get().outcome == "rejected"


def test_get_is_405(msync):
    response = msync.client.get("/api/sms/msync")

    assert response.status_code == 405
    assert InboundRequest.objects.count() == 1


def test_every_call_records_last_seen_and_a_returning_device_comes_online(msync):
    Device.objects.filter(pk=msync.paired.device.pk).update(online=False, last_seen_at=None)
    with health_events() as seen:
        msync.post("outgoing")
        msync.post("outgoing")

    device = Device.objects.get()
    assert device.online is True and device.last_seen_at is not None
    assert seen == [(device.pk, True)]


@pytest.mark.django_db(transaction=True)
def test_outgoing_poll_stays_within_its_query_budget(django_assert_max_num_queries):
    phone = paired_device(sims=2)
    for slot in (1, 2, 1):
        OutboundMessageFactory(device=phone.device, sim_slot=slot)
    client = MSync(phone)

    # Raw log INSERT, check-in, claim, the messages' UPDATE with their events (one statement
    # on PostgreSQL, two on SQLite), raw log outcome.
    with django_assert_max_num_queries(budget(5, sqlite=6) + TRANSACTION_STATEMENTS):
        response = client.post("outgoing")

    assert len(response.json()["messages"]) == 3


@pytest.mark.django_db(transaction=True)
def test_an_empty_poll_is_cheap_too(django_assert_max_num_queries):
    client = MSync(paired_device(sims=1))

    with django_assert_max_num_queries(4 + TRANSACTION_STATEMENTS):
        response = client.post("outgoing")

    assert response.json() == {"messages": []}


def test_nul_characters_are_refused_not_crashed_on(msync):
    response = msync.post(
        "incoming",
        messages=[{"from": "+15551230000", "message": "a\u0000b", "timestamp": 1744029005123}],
    )

    assert response.status_code == 400
    assert Message.objects.count() == 0
