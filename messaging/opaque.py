"""Messages only an SMS Gateway for Android phone can send: end-to-end encrypted ones (number and
text are ciphertext the app decrypts) and data SMS (docs/thirdparty.md#encrypted-messages).
They skip what needs a readable number or text: validation, opt-outs, conversations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from devices.models import Device
from messaging import live
from messaging.encoding import segment_info
from messaging.models import Direction, Message, Status
from messaging.routing import explicit_device_route
from messaging.services import _record_event, _route_detail, _validate_times
from messaging.signals import message_queued
from smsgate.errors import InvalidInput, Refused

MAX_OPAQUE_CHARS = 8000
MAX_OPAQUE_RECIPIENT_CHARS = 255


def _opaque_text(value: Any, *, field_name: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInput(field_name, f"{field_name} must be a string of 1 to {limit} characters.")
    if not value.isprintable():
        raise InvalidInput(field_name, f"{field_name} must not contain control characters.")
    return value


def app_phone_id(device_id: str | None, *, why: str) -> str:
    """The SMS Gateway for Android phone a message only such a phone can send goes to (an
    encrypted or a data SMS): the one named, else an enabled one (online first, the least
    recently seen first). `why` ends the refusal: "cannot decrypt this message"."""
    if device_id is not None:
        device = Device.objects.filter(pk=device_id).first()
        if device is None:
            raise Refused(f"There is no device {device_id!r}.", code="device_unavailable")
        if device.app_token_hash is None:
            raise Refused(
                f"Device {device_id!r} is not an SMS Gateway for Android phone and {why}.",
                code="device_unavailable",
            )
        return device.pk
    found = (
        Device.objects.filter(enabled=True, app_token_hash__isnull=False)
        .order_by("-online", "last_seen_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise Refused(
            f"No SMS Gateway for Android phone is paired, and any other line {why}.",
            code="device_unavailable",
        )
    return str(found)


def send_opaque_message(
    *,
    to: str,
    body: str,
    device_id: str | None = None,
    sim_slot: int | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    source: str = "api",
) -> Message:
    """Queue a message whose recipient and body are ciphertext: stored and handed to an app
    phone as given, with no number validation, no opt-out check, no conversation, and segments
    counted on the ciphertext (an over-estimate, so pacing stays on the safe side)."""
    phone = _opaque_text(to, field_name="to", limit=MAX_OPAQUE_RECIPIENT_CHARS)
    text = _opaque_text(body, field_name="body", limit=MAX_OPAQUE_CHARS)
    _validate_times(send_at, expires_at)
    route = explicit_device_route(
        app_phone_id(device_id, why="cannot decrypt this message"), sim_slot
    )
    info = segment_info(text)
    with transaction.atomic():
        status = (
            Status.SCHEDULED if send_at is not None and send_at > timezone.now() else Status.QUEUED
        )
        message = Message.objects.create(
            direction=Direction.OUTBOUND,
            status=status,
            to_number=phone,
            from_number=route.from_number,
            body=text,
            encoding=info.encoding,
            segments=info.segments,
            device=route.device,
            sim_slot=route.sim_slot,
            source=source,
            metadata=metadata or {},
            send_at=send_at,
            expires_at=expires_at,
        )
        _record_event(message, status, detail=_route_detail(route) + " (encrypted)")
        message_queued.send(sender=Message, message=message)
        live.announce(message, "message.created")
    return message
