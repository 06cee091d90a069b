"""smsgate's rows in the app's third-party wire shapes (docs/thirdparty.md#messages)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from devices.models import Device
from messaging.models import Message, MessageEvent, Status
from thirdparty.models import AppMessage, AppRecipient

STATE_OF_STATUS = {
    Status.SCHEDULED: "Pending",
    Status.QUEUED: "Pending",
    Status.DISPATCHED: "Processed",
    Status.SENT: "Sent",
    Status.DELIVERED: "Delivered",
    Status.FAILED: "Failed",
    Status.EXPIRED: "Failed",
    Status.CANCELLED: "Cancelled",
}
STATUSES_OF_STATE: dict[str, list[str]] = {}
for _status, _state in STATE_OF_STATUS.items():
    STATUSES_OF_STATE.setdefault(_state, []).append(_status)


def app_time(value: datetime | None) -> str | None:
    """Whole seconds or microseconds, always with an offset (the client parses either)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat()


def _recipient_state(message: Message | None) -> str:
    return STATE_OF_STATUS.get(Status(message.status), "Failed") if message else "Failed"


def overall_state(states: Sequence[str]) -> str:
    """One state for a message with several recipients: the least advanced still moving,
    else the best outcome reached."""
    for state in ("Pending", "Processed"):
        if state in states:
            return state
    for state in ("Delivered", "Sent"):
        if state in states:
            return state
    return "Cancelled" if states and all(s == "Cancelled" for s in states) else "Failed"


def _states(events: Iterable[MessageEvent]) -> dict[str, str]:
    """When each state was first reached, from the messages' applied events."""
    found: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e.at):
        if not event.applied:
            continue
        state = STATE_OF_STATUS.get(Status(event.status)) if event.status in Status else None
        if state and state not in found:
            found[state] = app_time(event.at) or ""
    return found


def _content(message: Message | None, app: dict[str, Any]) -> dict[str, Any]:
    if message is None:
        return {}
    if "dataPort" in app:
        return {"dataMessage": {"data": message.body, "port": app["dataPort"]}}
    return {"textMessage": {"text": message.body}}


def _app_meta(message: Message | None) -> dict[str, Any]:
    meta = message.metadata.get("app") if message is not None and message.metadata else None
    return meta if isinstance(meta, dict) else {}


def state_of(
    *,
    message_id: str,
    recipients: Sequence[tuple[str, Message | None, str]],
    is_encrypted: bool,
    device_id: str | None,
    include_content: bool = True,
) -> dict[str, Any]:
    """`recipients`: (number as given, its smsgate message or None, the refusal's text)."""
    rows = []
    states: list[str] = []
    events: list[MessageEvent] = []
    for number, message, error in recipients:
        state = _recipient_state(message)
        states.append(state)
        row: dict[str, Any] = {"phoneNumber": number, "state": state}
        reason = error or (message.reason if message and state == "Failed" else "")
        if reason:
            row["error"] = reason
        rows.append(row)
        if message is not None:
            events.extend(message.events.all())
    first = next((m for _, m, _ in recipients if m is not None), None)
    body: dict[str, Any] = {
        "id": message_id,
        "deviceId": (first.device_id if first else None) or device_id or None,
        "state": overall_state(states),
        "isHashed": False,
        "isEncrypted": is_encrypted,
        "recipients": rows,
        "states": _states(events),
    }
    if include_content:
        body.update(_content(first, _app_meta(first)))
    return body


def app_message_state(app_message: AppMessage, *, include_content: bool = True) -> dict[str, Any]:
    recipients: list[AppRecipient] = list(app_message.recipients.all())
    return state_of(
        message_id=app_message.pk,
        recipients=[(r.phone_number, r.message, r.error) for r in recipients],
        is_encrypted=app_message.is_encrypted,
        device_id=app_message.device_id,
        include_content=include_content,
    )


def message_state(message: Message, *, include_content: bool = True) -> dict[str, Any]:
    """Any smsgate message, by its own id (sent through any door)."""
    app = _app_meta(message)
    return state_of(
        message_id=message.pk,
        recipients=[(message.to_number, message, "")],
        is_encrypted=bool(app.get("isEncrypted")),
        device_id=message.device_id,
        include_content=include_content,
    )


def device_body(device: Device) -> dict[str, Any]:
    return {
        "id": device.pk,
        "name": device.name,
        "createdAt": app_time(device.created_at),
        "updatedAt": app_time(device.updated_at),
        "lastSeen": app_time(device.last_seen_at or device.created_at),
        "simCards": [
            {"slotIndex": sim.slot - 1, "simNumber": sim.slot, "phoneNumber": sim.number or None}
            for sim in device.sims.all()
        ],
    }
