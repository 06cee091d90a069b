"""The outbound queue as phones see it: pacing per SIM, sticky SIMs, the shared pool."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import Device
from messaging.models import Conversation, Message, Status
from tests.devices.conftest import MSync
from tests.factories import ConversationFactory, OutboundMessageFactory, paired_device

pytestmark = pytest.mark.django_db


def poll(client: MSync, **fields) -> list[dict]:
    response = client.post("outgoing", limit=500, **fields)
    assert response.status_code == 200
    return response.json()["messages"]


def test_a_sim_is_paced_at_29_segments_a_minute_by_default():
    phone = paired_device(sims=1)
    for _ in range(40):
        OutboundMessageFactory(device=phone.device, sim_slot=1)
    client = MSync(phone)

    first = poll(client)
    second = poll(client)

    assert len(first) == 29
    assert second == []
    assert Message.objects.filter(status=Status.QUEUED).count() == 11


def test_pacing_counts_segments_not_messages():
    phone = paired_device(sims=1)
    Device.objects.filter(pk=phone.device.pk).update(limit_per_minute=10)
    for _ in range(7):
        OutboundMessageFactory(device=phone.device, sim_slot=1, body="x" * 300, segments=2)

    assert len(poll(MSync(phone))) == 5


def test_each_sim_has_its_own_budget():
    phone = paired_device(sims=2)
    Device.objects.filter(pk=phone.device.pk).update(limit_per_minute=3)
    for slot in (1, 1, 1, 1, 2, 2, 2, 2):
        OutboundMessageFactory(device=phone.device, sim_slot=slot)

    handed = poll(MSync(phone))

    assert sorted(m["sim_slot"] for m in handed) == [1, 1, 1, 2, 2, 2]


def test_hour_and_day_limits_also_hold_messages():
    phone = paired_device(sims=1)
    Device.objects.filter(pk=phone.device.pk).update(
        limit_per_minute=None, limit_per_hour=4, limit_per_day=100
    )
    earlier = timezone.now() - timedelta(minutes=30)
    for _ in range(3):
        OutboundMessageFactory(
            device=phone.device, sim_slot=1, status=Status.SENT, dispatched_at=earlier
        )
    for _ in range(5):
        OutboundMessageFactory(device=phone.device, sim_slot=1)

    assert len(poll(MSync(phone))) == 1


def test_failed_sends_do_not_use_the_days_budget():
    phone = paired_device(sims=1)
    Device.objects.filter(pk=phone.device.pk).update(
        limit_per_minute=None, limit_per_hour=None, limit_per_day=4
    )
    earlier = timezone.now() - timedelta(hours=2)
    for status in (Status.FAILED, Status.FAILED, Status.FAILED, Status.SENT):
        OutboundMessageFactory(
            device=phone.device, sim_slot=1, status=status, dispatched_at=earlier
        )
    for _ in range(5):
        OutboundMessageFactory(device=phone.device, sim_slot=1)

    # Three failed sends are refunded: 4 a day minus the one sent leaves 3.
    assert len(poll(MSync(phone))) == 3


def test_a_message_longer_than_the_limit_goes_alone_when_the_sim_is_idle():
    phone = paired_device(sims=1)
    Device.objects.filter(pk=phone.device.pk).update(limit_per_minute=2)
    long = OutboundMessageFactory(device=phone.device, sim_slot=1, segments=5)
    OutboundMessageFactory(device=phone.device, sim_slot=1)

    assert [m["id"] for m in poll(MSync(phone))] == [long.pk]


def test_shared_pool_messages_go_to_the_first_device_that_polls_and_stick():
    phone = paired_device(sims=2)
    conversation = ConversationFactory(phone="+15557654321")
    pooled = OutboundMessageFactory(
        device=None, to_number="+15557654321", conversation=conversation
    )

    handed = poll(MSync(phone))

    assert [m["id"] for m in handed] == [pooled.pk]
    pooled.refresh_from_db()
    conversation.refresh_from_db()
    assert pooled.device_id == phone.device.pk and pooled.sim_slot == handed[0]["sim_slot"]
    assert pooled.from_number == phone.device.sims.get(slot=pooled.sim_slot).number
    assert (conversation.device_id, conversation.sim_slot) == (phone.device.pk, pooled.sim_slot)


def test_another_devices_messages_and_provider_messages_are_not_offered(other_phone):
    from tests.factories import ProviderAppFactory

    phone = paired_device(sims=1)
    OutboundMessageFactory(device=other_phone.device)
    OutboundMessageFactory(device=None, app=ProviderAppFactory())

    assert poll(MSync(phone)) == []


def test_scheduled_expired_and_cancelled_messages_are_not_offered():
    phone = paired_device(sims=1)
    now = timezone.now()
    OutboundMessageFactory(
        device=phone.device, status=Status.SCHEDULED, send_at=now + timedelta(hours=1)
    )
    OutboundMessageFactory(device=phone.device, expires_at=now - timedelta(seconds=1))
    OutboundMessageFactory(device=phone.device, status=Status.CANCELLED)

    assert poll(MSync(phone)) == []


def test_a_disabled_device_gets_nothing():
    phone = paired_device(sims=1, enabled=False)
    OutboundMessageFactory(device=phone.device)

    assert poll(MSync(phone)) == []


def test_api_send_then_poll_uses_the_conversations_sticky_sim(admin_client):
    phone = paired_device(sims=2)
    Conversation.objects.create(phone="+15551112222", device=phone.device, sim_slot=2)

    sent = admin_client.post("/api/v1/messages", {"to": "+15551112222", "body": "hi"}).json()
    handed = poll(MSync(phone))

    assert [(m["id"], m["sim_slot"]) for m in handed] == [(sent["id"], 2)]
