"""Beat tasks for phones: online/offline from heartbeats, stale dispatches."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from devices import services
from smsgate.celery import register_periodic_task


@shared_task(name="devices.check_device_heartbeats")
def check_device_heartbeats() -> dict[str, int]:
    """Devices silent for SMSGATE_DEVICE_OFFLINE_AFTER go offline (device.offline events)."""
    return {"offline": services.mark_offline_devices()}


@shared_task(name="devices.flag_stale_dispatches")
def flag_stale_dispatches() -> dict[str, int]:
    """Dispatched messages with no report after SMSGATE_DISPATCH_TIMEOUT are flagged stale."""
    return {"stale": services.flag_stale_dispatches()}


register_periodic_task(
    "check-device-heartbeats", "devices.check_device_heartbeats", timedelta(seconds=30)
)
register_periodic_task(
    "flag-stale-dispatches", "devices.flag_stale_dispatches", timedelta(minutes=5)
)
