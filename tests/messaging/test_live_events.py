"""Open inbox pages hear about every change, in as few broadcasts as possible."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from messaging.inbox import InboundSMS
from messaging.live import INBOX_GROUP
from messaging.services import send_bulk, send_message
from pipeline.inbound import receive as receive_inbound_batch
from tests.factories import paired_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox_listener():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(INBOX_GROUP, channel)

    async def drain() -> list[dict]:
        events = []
        while True:
            try:
                events.append(await asyncio.wait_for(layer.receive(channel), timeout=0.5))
            except TimeoutError:
                return events

    yield async_to_sync(drain)
    async_to_sync(layer.group_discard)(INBOX_GROUP, channel)


def test_a_single_send_is_one_message_created_event(
    inbox_listener, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = send_message(to="+15551230001", body="hi")
    events = inbox_listener()
    assert [e["event"] for e in events] == ["message.created"]
    assert events[0]["payload"]["message_id"] == message.pk


def test_a_bulk_send_is_one_event_listing_every_message(
    inbox_listener, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        results = send_bulk(recipients=[f"+155512300{n:02d}" for n in range(25)], body="Sale")
    events = inbox_listener()
    assert [e["event"] for e in events] == ["messages.created"]
    listed = [m["message_id"] for m in events[0]["payload"]["messages"]]
    assert listed == [r.message.pk for r in results]


def test_a_batch_from_a_phone_is_one_event(inbox_listener, django_capture_on_commit_callbacks):
    phone = paired_device()
    batch = [
        InboundSMS(
            from_number=f"+155598700{n:02d}",
            body=f"m{n}",
            source="msync",
            device=phone.device,
            sim_slot=1,
            source_id=f"id-{n}",
        )
        for n in range(10)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        receive_inbound_batch(batch)
    events = inbox_listener()
    assert [e["event"] for e in events] == ["messages.created"]
    assert len(events[0]["payload"]["messages"]) == 10


def test_a_poll_handing_out_several_messages_is_one_layer_message(
    inbox_listener, django_capture_on_commit_callbacks
):
    from phones.checkin import CheckIn, SimUsage
    from phones.queue import claim

    phone = paired_device()
    sent = [
        send_message(to=f"+155512310{n:02d}", body="hi", device_id=phone.device.pk)
        for n in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        claimed = claim(
            CheckIn(device=phone.device, sims=[SimUsage(slot=1, number="")]), limit=10, detail="t"
        )
    events = [e for e in inbox_listener() if e["event"] != "message.created"]
    assert [e["type"] for e in events] == ["inbox.updates"]
    assert events[0]["event"] == "message.status"
    assert [p["message_id"] for p in events[0]["payloads"]] == [m.pk for m in claimed]
    assert {m.pk for m in claimed} == {m.pk for m in sent}
