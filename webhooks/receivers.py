"""Signal receivers turning status changes and device health into outbox rows, inside the
transaction of the change (inbound messages are recorded by pipeline.inbound)."""

from __future__ import annotations

from typing import Any

from devices.models import Device
from messaging.models import Message
from webhooks.outbox import (
    STATUS_EVENTS,
    record_device_event,
    record_message_event,
    record_reroute,
)


def on_message_status_changed(sender: Any, message: Message, status: str, **_: Any) -> None:
    event_type = STATUS_EVENTS.get(str(status))
    if event_type is not None:
        record_message_event(message, event_type)


def on_message_rerouted(
    sender: Any, message: Message, from_line: str, to_line: str, why: str, **_: Any
) -> None:
    record_reroute(message, from_line=from_line, to_line=to_line, why=why)


def on_device_health_changed(sender: Any, device: Device, online: bool, **_: Any) -> None:
    record_device_event(device, bool(online))
