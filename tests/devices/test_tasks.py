"""Beat tasks: heartbeats turn silent devices offline; unreported dispatches are flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from devices.models import Device
from devices.signals import device_health_changed
from devices.tasks import check_device_heartbeats
from messaging.models import Status
from phones.tasks import flag_stale_dispatches
from tests.factories import DeviceFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def health_events():
    seen = []

    def receiver(sender, device, online, **kwargs):
        seen.append((device.pk, online))

    device_health_changed.connect(receiver)
    yield seen
    device_health_changed.disconnect(receiver)


@override_settings(SMSGATE_DEVICE_OFFLINE_AFTER=300)
def test_a_silent_device_goes_offline_once(health_events):
    silent = DeviceFactory(online=True, last_seen_at=timezone.now() - timedelta(seconds=301))
    DeviceFactory(online=True, last_seen_at=timezone.now() - timedelta(seconds=10))
    never = DeviceFactory(online=True, last_seen_at=None)

    assert check_device_heartbeats() == {"offline": 2}
    assert check_device_heartbeats() == {"offline": 0}

    assert sorted(health_events) == sorted([(silent.pk, False), (never.pk, False)])
    assert list(Device.objects.filter(online=True).values_list("pk", flat=True)) != []
    silent.refresh_from_db()
    assert silent.online is False and silent.online_changed_at is not None


@override_settings(SMSGATE_DISPATCH_TIMEOUT=3600)
def test_unreported_dispatches_are_flagged_stale_not_resent():
    device = DeviceFactory()
    old = OutboundMessageFactory(
        device=device,
        status=Status.DISPATCHED,
        dispatched_at=timezone.now() - timedelta(seconds=3601),
    )
    fresh = OutboundMessageFactory(
        device=device, status=Status.DISPATCHED, dispatched_at=timezone.now()
    )

    assert flag_stale_dispatches() == {"stale": 1}
    assert flag_stale_dispatches() == {"stale": 0}

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.stale is True and old.status == Status.DISPATCHED
    assert fresh.stale is False


def test_beat_entries_are_registered():
    from smsgate.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"devices.check_device_heartbeats", "devices.flag_stale_dispatches"} <= tasks
