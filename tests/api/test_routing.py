"""Which line a message goes out on: explicit device/SIM, sticky SIM, online pool, shared queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from tests.factories import ConversationFactory, paired_device

pytestmark = pytest.mark.django_db


def send(client, **fields):
    return client.post("/api/v1/messages", {"to": "+15551234567", "body": "hi", **fields})


def test_an_explicit_device_and_sim_are_used(admin_client):
    phone = paired_device(sims=2)
    response = send(admin_client, device_id=phone.device.pk, sim_slot=2)

    assert response.status_code == 202
    body = response.json()
    assert (body["device_id"], body["sim_slot"]) == (phone.device.pk, 2)
    assert body["from"] == phone.device.sims.get(slot=2).number
    assert Message.objects.get().device_id == phone.device.pk


def test_an_explicit_offline_device_still_gets_the_message_queued(admin_client):
    phone = paired_device(online=False)
    response = send(admin_client, device_id=phone.device.pk)
    assert response.status_code == 202
    assert (response.json()["device_id"], response.json()["status"]) == (phone.device.pk, "queued")


def test_an_unknown_device_is_422_device_unavailable(admin_client):
    response = send(admin_client, device_id="dev_nothere")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "device_unavailable"
    assert not Message.objects.exists()


def test_a_disabled_device_is_422_device_unavailable(admin_client):
    phone = paired_device(enabled=False)
    response = send(admin_client, device_id=phone.device.pk)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "device_unavailable"
    assert not Message.objects.exists()


def test_a_sim_slot_the_device_does_not_have_is_a_400(admin_client):
    phone = paired_device(sims=1)
    response = send(admin_client, device_id=phone.device.pk, sim_slot=2)
    assert response.status_code == 400
    assert "sim_slot" in response.json()["error"]["fields"]


def test_the_sim_that_last_talked_with_the_contact_is_sticky(admin_client):
    busy = paired_device(sims=2)
    paired_device(sims=1, last_seen_at=timezone.now() - timedelta(minutes=1))
    ConversationFactory(phone="+15551234567", device=busy.device, sim_slot=2)

    body = send(admin_client).json()

    assert (body["device_id"], body["sim_slot"]) == (busy.device.pk, 2)


def test_a_disabled_sticky_device_falls_back_to_the_pool(admin_client):
    old = paired_device()
    other = paired_device()
    ConversationFactory(phone="+15551234567", device=old.device, sim_slot=1)
    old.device.enabled = False
    old.device.save(update_fields=["enabled"])

    body = send(admin_client).json()

    assert body["device_id"] == other.device.pk


def test_without_a_sticky_line_an_online_enabled_device_is_chosen(admin_client):
    paired_device(online=False)
    paired_device(enabled=False)
    online = paired_device()

    body = send(admin_client).json()

    assert body["device_id"] == online.device.pk
    assert body["sim_slot"] == 1


def test_without_any_device_the_message_waits_in_the_shared_queue(admin_client):
    paired_device(online=False)

    response = send(admin_client)

    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["device_id"], body["sim_slot"]) == ("queued", None, None)
    assert Message.objects.get().device_id is None


def test_a_reply_to_a_contact_updates_the_sticky_line_of_the_conversation(admin_client):
    phone = paired_device(sims=2)
    first = send(admin_client, device_id=phone.device.pk, sim_slot=2).json()

    later = send(admin_client).json()

    assert (later["device_id"], later["sim_slot"]) == (first["device_id"], 2)
