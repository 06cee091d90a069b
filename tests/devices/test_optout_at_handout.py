"""The opt-out list is read again when a phone claims a message, not only when it is queued.

A STOP can commit while a send is being queued: the send read the list a moment before, and the
STOP's sweep of waiting messages ran before the new message was committed, so the message sits
in the queue for a number that is on the list. The tests build that state by putting the number
on the list without the sweep (what the interleaving leaves behind); the threaded version of the
same race runs in tests/devices/test_optout_race.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from messaging.models import Message, OptOut, Status
from tests.devices.conftest import MSync
from tests.factories import PairedDevice

pytestmark = pytest.mark.django_db

NUMBER = "+15550001111"
OTHER = "+15550002222"


def smssync_poll(phone: PairedDevice) -> list[str]:
    response = Client().get(f"/api/sms/smssync?task=send&secret={phone.secret}")
    assert response.status_code == 200
    return [m["to"] for m in response.json()["payload"]["messages"]]


def msync_poll(phone: PairedDevice) -> list[str]:
    response = MSync(phone).post("outgoing", limit=50)
    assert response.status_code == 200
    return [m["to"] for m in response.json()["messages"]]


POLLS: dict[str, Callable[[PairedDevice], list[str]]] = {
    "smssync": smssync_poll,
    "msync": msync_poll,
}


def queue(admin_client: Any, to: str, **fields: Any) -> Message:
    response = admin_client.post("/api/v1/messages", {"to": to, "body": "hi", **fields}, "json")
    assert response.status_code == 202, response.json()
    return Message.objects.get(pk=response.json()["id"])


def assert_cancelled_for_opt_out(admin_client: Any, message: Message) -> None:
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.CANCELLED, "recipient_opted_out")
    detail = admin_client.get(f"/api/v1/messages/{message.pk}").json()
    assert detail["status"] == "cancelled"
    assert detail["events"][-1]["status"] == "cancelled"


@pytest.mark.parametrize("poll", POLLS.values(), ids=POLLS.keys())
def test_a_message_queued_as_the_stop_committed_is_cancelled_not_handed_out(
    admin_client: Any, phone: PairedDevice, poll: Callable[[PairedDevice], list[str]]
) -> None:
    waiting = queue(admin_client, NUMBER)
    other = queue(admin_client, OTHER)
    OptOut.objects.create(phone=NUMBER, source="keyword")

    assert poll(phone) == [OTHER]
    assert poll(phone) == []

    assert_cancelled_for_opt_out(admin_client, waiting)
    other.refresh_from_db()
    assert other.status == Status.DISPATCHED


@pytest.mark.parametrize("poll", POLLS.values(), ids=POLLS.keys())
def test_a_message_pinned_to_the_phone_is_held_back_too(
    admin_client: Any, phone: PairedDevice, poll: Callable[[PairedDevice], list[str]]
) -> None:
    waiting = queue(admin_client, NUMBER, device_id=phone.device.pk)
    OptOut.objects.create(phone=NUMBER, source="api")

    assert poll(phone) == []
    assert_cancelled_for_opt_out(admin_client, waiting)


@pytest.mark.parametrize("poll", POLLS.values(), ids=POLLS.keys())
def test_an_opt_out_through_the_api_before_the_poll_hands_out_nothing(
    admin_client: Any, phone: PairedDevice, poll: Callable[[PairedDevice], list[str]]
) -> None:
    waiting = queue(admin_client, NUMBER)
    assert admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, "json").status_code == 201

    assert poll(phone) == []
    assert_cancelled_for_opt_out(admin_client, waiting)


def test_a_stop_by_sms_before_the_poll_hands_out_only_its_confirmation(
    admin_client: Any, phone: PairedDevice
) -> None:
    waiting = queue(admin_client, NUMBER)
    stop = MSync(phone).post(
        "incoming",
        messages=[{"from": NUMBER, "message": "STOP", "sim_slot": 1, "timestamp": 1744029005000}],
    )
    assert stop.status_code == 200, stop.json()

    handed = MSync(phone).post("outgoing", limit=50).json()["messages"]
    confirmations = Message.objects.filter(to_number=NUMBER, source="automation")
    assert {m["id"] for m in handed} <= {str(c.pk) for c in confirmations}
    assert_cancelled_for_opt_out(admin_client, waiting)


def test_the_opt_out_confirmation_waiting_in_the_queue_still_goes(
    phone: PairedDevice,
) -> None:
    from messaging.inbox import InboundSMS
    from pipeline.inbound import receive_one as receive_inbound
    from tests.factories import paired_device

    # The STOP came in on another phone that never polls again; the confirmation waits in the
    # queue for this one (it is pinned to the other phone, so move it to the pool).
    other = paired_device(sims=1)
    result = receive_inbound(
        InboundSMS(from_number=NUMBER, body="STOP", source="msync", device=other.device)
    )
    [confirmation] = result.replies
    Message.objects.filter(pk=confirmation.pk).update(device=None, sim_slot=None)

    assert msync_poll(phone) == [NUMBER]
    confirmation.refresh_from_db()
    assert confirmation.status == Status.DISPATCHED
