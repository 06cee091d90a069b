"""Hybrid routing: a message no phone took in time goes out through the policy's fallback app
(the re-route sweep, docs/routing.md#re-routing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message, Status
from messaging.services import send_message
from messaging.tasks import reroute_waiting_messages
from tests.factories import DeviceFactory, SimFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fallback(settings, twilio_app):
    settings.SMSGATE_FALLBACK_APP_ID = twilio_app.pk
    settings.SMSGATE_REROUTE_AFTER = 600
    return twilio_app


def queued_for(seconds: int, **fields) -> Message:
    message = send_message(to="+254722000333", body="Hi", **fields)
    Message.objects.filter(pk=message.pk).update(
        routed_at=timezone.now() - timedelta(seconds=seconds)
    )
    return message


def test_a_message_waiting_longer_than_the_wait_moves_to_the_app(
    fallback, admin_client, django_capture_on_commit_callbacks
):
    message = queued_for(601)  # no device online: it waits in the shared queue
    with django_capture_on_commit_callbacks() as callbacks:
        assert reroute_waiting_messages() == {"rerouted": 1}
    message.refresh_from_db()
    assert (message.status, message.app_id, message.device_id) == (Status.QUEUED, fallback.pk, None)
    assert message.from_number == "+254709000111"
    assert any("schedule_provider_send" in getattr(cb, "__qualname__", "") for cb in callbacks)
    events = admin_client.get(f"/api/v1/messages/{message.pk}").json()["events"]
    assert events[-1]["status"] == "rerouted"
    assert events[-1]["detail"] == (
        f"the shared phone queue → provider app {fallback.pk}: "
        "no phone took it from the shared queue for 600 s or more"
    )
    assert reroute_waiting_messages() == {"rerouted": 0}  # a second sweep finds nothing


def test_a_message_for_an_offline_device_moves_too(fallback):
    device = DeviceFactory(online=False)
    SimFactory(device=device, slot=1)
    message = queued_for(700, device_id=device.pk, failover=True)
    assert reroute_waiting_messages() == {"rerouted": 1}
    message.refresh_from_db()
    assert message.app_id == fallback.pk and message.sim_slot is None
    assert message.events.last().detail.startswith(f"device {device.pk} SIM 1 → provider app")
    assert message.lines_tried == [f"{device.pk}:1"]


def test_a_message_pinned_to_its_device_waits_there(fallback):
    device = DeviceFactory(online=False)
    SimFactory(device=device, slot=1)
    message = queued_for(700, device_id=device.pk)
    assert reroute_waiting_messages() == {"rerouted": 0}
    message.refresh_from_db()
    assert (message.device_id, message.app_id) == (device.pk, None)


def test_young_claimed_or_scheduled_messages_stay(fallback):
    young = queued_for(30)
    claimed = queued_for(900)
    Message.objects.filter(pk=claimed.pk).update(status=Status.DISPATCHED)
    later = send_message(
        to="+254722000333", body="x", send_at=timezone.now() + timedelta(minutes=5)
    )
    assert reroute_waiting_messages() == {"rerouted": 0}
    for message in (young, claimed, later):
        message.refresh_from_db()
        assert message.app_id is None


def test_the_wait_counts_from_send_at(fallback):
    message = queued_for(3600)
    Message.objects.filter(pk=message.pk).update(send_at=timezone.now() - timedelta(seconds=60))
    assert reroute_waiting_messages() == {"rerouted": 0}


def test_nothing_moves_without_an_enabled_fallback_app(settings, twilio_app):
    queued_for(3600)
    settings.SMSGATE_FALLBACK_APP_ID = ""
    assert reroute_waiting_messages() == {"rerouted": 0}
    settings.SMSGATE_FALLBACK_APP_ID = twilio_app.pk
    twilio_app.enabled = False
    twilio_app.save()
    assert reroute_waiting_messages() == {"rerouted": 0}
