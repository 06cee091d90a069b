"""`GET /message` hands out as an MSync poll does (claim, pacing, opt-outs) and offers a
message again until the phone reports a state; `PATCH /message` maps the app's states
(docs/phones/sms-gateway-app.md#hand-out)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from messaging.dispatch import mark_dispatched
from messaging.models import Message, MessageEvent, OptOut, Status
from messaging.services import send_message
from tests.devices.conftest import MSync
from tests.factories import paired_device
from tests.phones.conftest import AppPhone, app_phone

pytestmark = pytest.mark.django_db

NUMBER = "+14155550111"


def pull(phone: AppPhone, query: str = "") -> list[dict[str, Any]]:
    response = phone.get(f"/message{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return list(response.json())


def state(message_id: str, name: str, error: str | None = None) -> dict[str, Any]:
    recipient: dict[str, Any] = {"phoneNumber": NUMBER, "state": name}
    if error:
        recipient["error"] = error
    return {
        "id": message_id,
        "state": name,
        "recipients": [recipient],
        "states": {name: "2026-12-03T08:00:00.123+00:00"},
    }


def test_a_queued_message_is_handed_out_in_the_apps_shape(registered: AppPhone) -> None:
    message = send_message(to=NUMBER, body="Hello", device_id=registered.device.pk)
    [handed] = pull(registered)
    assert handed["id"] == message.pk
    assert handed["textMessage"] == {"text": "Hello"}
    assert handed["message"] == "Hello"
    assert handed["phoneNumbers"] == [NUMBER]
    assert handed["simNumber"] == 1
    assert handed["state"] == "Pending"
    assert handed["isEncrypted"] is False
    assert handed["createdAt"].endswith("+00:00")
    assert Message.objects.get(pk=message.pk).status == Status.DISPATCHED


def test_a_handed_out_message_is_offered_again_until_the_phone_reports_a_state(
    registered: AppPhone,
) -> None:
    message = send_message(to=NUMBER, body="Hello", device_id=registered.device.pk)
    assert [m["id"] for m in pull(registered)] == [message.pk]
    assert [m["id"] for m in pull(registered, "?order=fifo")] == [message.pk]
    assert registered.patch("/message", [state(message.pk, "Processed")]).status_code == 204
    assert pull(registered) == []
    assert Message.objects.get(pk=message.pk).status == Status.DISPATCHED


def test_a_claimed_message_is_for_this_device_only(registered: AppPhone) -> None:
    send_message(to=NUMBER, body="pool")  # the shared pool
    other = app_phone()
    other.token = other.register().json()["token"]
    first, second = pull(registered), pull(other)
    assert len(first) + len(second) == 1
    assert len(pull(registered)) == len(first)  # re-offered to its claimer, never to the other
    assert pull(other) == second


def test_a_message_another_door_handed_to_the_same_device_is_not_re_offered(
    registered: AppPhone,
) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)
    with transaction.atomic():
        mark_dispatched(
            device=registered.device, claims=[(message, 1, "")], detail="handed to MSync"
        )
    assert pull(registered) == []


def test_pull_order_lifo_by_default_and_fifo_on_request(registered: AppPhone) -> None:
    ids = [
        send_message(to=NUMBER, body=str(n), device_id=registered.device.pk).pk for n in range(3)
    ]
    assert [m["id"] for m in pull(registered)] == ids[::-1]
    assert [m["id"] for m in pull(registered, "?order=fifo")] == ids


def test_at_most_100_messages_per_pull(registered: AppPhone) -> None:
    registered.device.limit_per_minute = None
    registered.device.save(update_fields=["limit_per_minute"])
    for n in range(105):
        send_message(to=NUMBER, body=str(n), device_id=registered.device.pk)
    assert len(pull(registered)) == 100


def test_pacing_holds_messages_as_for_msync(registered: AppPhone) -> None:
    registered.device.limit_per_minute = 2
    registered.device.save(update_fields=["limit_per_minute"])
    for n in range(4):
        send_message(to=NUMBER, body=str(n), device_id=registered.device.pk)
    assert len(pull(registered)) == 2  # the two handed out, offered again; two still queued
    assert Message.objects.filter(status=Status.QUEUED).count() == 2


def test_a_number_opted_out_after_queueing_is_cancelled_not_handed_out(
    registered: AppPhone,
) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)
    OptOut.objects.create(phone=NUMBER)
    assert pull(registered) == []
    assert Message.objects.get(pk=message.pk).status == Status.CANCELLED


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("Sent", Status.SENT),
        ("Delivered", Status.DELIVERED),
        ("Failed", Status.FAILED),
        ("Cancelled", Status.FAILED),  # a dispatched message cannot become cancelled
        ("Processed", Status.DISPATCHED),
        ("Pending", Status.DISPATCHED),
    ],
)
def test_states_map_to_smsgate_statuses(registered: AppPhone, reported: str, expected: str) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)
    pull(registered)
    assert registered.patch("/message", [state(message.pk, reported)]).status_code == 204
    assert Message.objects.get(pk=message.pk).status == expected
    assert pull(registered) == []


def test_a_failure_keeps_the_recipients_error_as_the_reason(registered: AppPhone) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)
    pull(registered)
    registered.patch("/message", [state(message.pk, "Failed", error="RESULT_ERROR_NO_SERVICE")])
    stored = Message.objects.get(pk=message.pk)
    assert stored.status == Status.FAILED
    assert stored.reason == "RESULT_ERROR_NO_SERVICE"


def test_sent_then_delivered_keeps_the_phones_times(registered: AppPhone) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)
    pull(registered)
    registered.patch("/message", [state(message.pk, "Sent")])
    registered.patch("/message", [state(message.pk, "Delivered")])
    stored = Message.objects.get(pk=message.pk)
    assert stored.status == Status.DELIVERED
    assert stored.sent_at is not None and stored.sent_at.isoformat().startswith("2026-12-03T08:00")


def test_a_state_for_a_message_never_handed_out_is_ignored(registered: AppPhone) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)
    registered.patch("/message", [state(message.pk, "Cancelled")])
    assert Message.objects.get(pk=message.pk).status == Status.QUEUED  # never handed out


def test_unknown_ids_and_other_devices_messages_are_ignored(registered: AppPhone) -> None:
    other = paired_device()
    theirs = send_message(to=NUMBER, body="x", device_id=other.device.pk)
    MSync(other).post("outgoing", limit=5)
    response = registered.patch(
        "/message", [state("msg_nothere", "Sent"), state(theirs.pk, "Failed")]
    )
    assert response.status_code == 204
    assert Message.objects.get(pk=theirs.pk).status == Status.DISPATCHED
    assert not MessageEvent.objects.filter(message=theirs, status=Status.FAILED).exists()


def _third_party_send(phone: AppPhone, **fields: Any) -> None:
    from thirdparty.services import SendRequest, send

    request: dict[str, Any] = {
        "message_id": "it-1",
        "phone_numbers": [NUMBER],
        "body": "Hello",
        "data_port": None,
        "device_id": phone.device.pk,
        "sim_number": None,
        "expires_at": None,
        "send_at": None,
        "with_delivery_report": True,
        "priority": 0,
        "is_encrypted": False,
        **fields,
    }
    send(SendRequest(**request))


def test_a_data_sms_from_the_third_party_api_is_handed_out_as_a_data_message(
    registered: AppPhone,
) -> None:
    _third_party_send(registered, body="AAEC", data_port=5000, with_delivery_report=False)
    [handed] = pull(registered)
    assert handed["dataMessage"] == {"data": "AAEC", "port": 5000}
    assert "textMessage" not in handed
    assert handed["withDeliveryReport"] is False


def test_an_encrypted_message_is_handed_out_opaque_with_its_priority(
    registered: AppPhone,
) -> None:
    cipher = "$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdA==$Y2lwaGVy"
    _third_party_send(
        registered, body=cipher, phone_numbers=[cipher], is_encrypted=True, priority=100
    )
    [handed] = pull(registered)
    assert handed["isEncrypted"] is True
    assert handed["textMessage"] == {"text": cipher}
    assert handed["phoneNumbers"] == [cipher]
    assert handed["priority"] == 100


def test_an_idle_pull_is_answered_without_a_transaction_or_a_claim(
    registered: AppPhone, django_assert_max_num_queries: Any
) -> None:
    assert pull(registered) == []  # the first pull after registration may write the check-in
    # One read of the device, one of its unreported hand-outs, and the raw log's row and its
    # outcome: no BEGIN, no lock, no claim (docs/phones/sms-gateway-app.md#hand-out).
    with django_assert_max_num_queries(4) as queries:
        assert pull(registered) == []
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "FOR UPDATE" not in sql and "BEGIN" not in sql


def test_an_idle_pull_still_re_offers_an_unreported_hand_out(registered: AppPhone) -> None:
    message = send_message(to=NUMBER, body="Hello", device_id=registered.device.pk)
    assert [m["id"] for m in pull(registered)] == [message.pk]
    # Nothing is queued any more, but the phone has not reported: offered again.
    assert [m["id"] for m in pull(registered)] == [message.pk]
    patch = registered.patch("/message", [state(message.pk, "Sent")])
    assert patch.status_code == 204
    assert pull(registered) == []
