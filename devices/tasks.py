"""Beat task for phones: online/offline from heartbeats."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from devices import services
from smsgate.celery import register_periodic_task


@shared_task(name="devices.check_device_heartbeats")
def check_device_heartbeats() -> dict[str, int]:
    """Devices silent for SMSGATE_DEVICE_OFFLINE_AFTER go offline (device.offline events)."""
    return {"offline": services.mark_offline_devices()}


register_periodic_task(
    "check-device-heartbeats", "devices.check_device_heartbeats", timedelta(seconds=30)
)
