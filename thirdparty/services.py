"""What the app's third-party API changes, through smsgate's own services
(docs/thirdparty.md): messages are ordinary smsgate messages, webhooks are smsgate endpoints
in the `app` format, settings are the fleet's `PhoneSettings`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import opaque
from messaging import services as messaging
from messaging.models import Message, Status
from smsgate.errors import Conflict, DomainError, InvalidInput, NotFound
from smsgate.phones import to_e164
from thirdparty.models import AppMessage, AppRecipient

MAX_RECIPIENTS = 100
MAX_ID_CHARS = 36
# The id travels in URL paths (`/messages/{id}`), so it is kept to characters that need no
# escaping there.
ID_SHAPE = re.compile(r"[A-Za-z0-9._~:@!$&'()*+,;=-]{1,36}")
MIN_TTL = 5


# --- input ----------------------------------------------------------------------------------


def parse_time(value: Any, field_name: str) -> datetime | None:
    """RFC 3339 or Python's isoformat; a time without an offset is UTC (the client sends
    `datetime.isoformat()` of naive values)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput(field_name, f"{field_name} must be an ISO 8601 date and time.")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(field_name, f"{field_name} must be an ISO 8601 date and time.") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(name, f"{name} must be a whole number from {low} to {high}.")
    return value


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(name, f"{name} must be true or false.")
    return value


@dataclass(frozen=True)
class SendRequest:
    message_id: str
    phone_numbers: list[str]
    body: str
    data_port: int | None
    device_id: str | None
    sim_number: int | None
    expires_at: datetime | None
    send_at: datetime | None
    with_delivery_report: bool
    priority: int
    is_encrypted: bool


def _content(body: dict[str, Any]) -> tuple[str, int | None]:
    given = [k for k in ("textMessage", "dataMessage", "message") if body.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput(
            "textMessage", "Give exactly one of textMessage, dataMessage or message."
        )
    kind = given[0]
    value = body[kind]
    if kind == "message":
        if not isinstance(value, str) or not value:
            raise InvalidInput("message", "message must be a non-empty string.")
        return value, None
    if not isinstance(value, dict):
        raise InvalidInput(kind, f"{kind} must be an object.")
    if kind == "textMessage":
        text = value.get("text")
        if not isinstance(text, str) or not text:
            raise InvalidInput("textMessage", "textMessage.text must be a non-empty string.")
        return text, None
    data, port = value.get("data"), value.get("port")
    if not isinstance(data, str) or not data:
        raise InvalidInput("dataMessage", "dataMessage.data must be a base64 string.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInput("dataMessage", "dataMessage.port must be a port number (0-65535).")
    return data, port


def _expiry(body: dict[str, Any]) -> datetime | None:
    ttl = _int(body, "ttl", MIN_TTL, 10 * 365 * 24 * 3600)
    valid_until = parse_time(body.get("validUntil"), "validUntil")
    if ttl is not None and valid_until is not None:
        raise InvalidInput("ttl", "Give ttl or validUntil, not both.")
    return timezone.now() + timedelta(seconds=ttl) if ttl is not None else valid_until


def parse_send(body: Any) -> SendRequest:
    if not isinstance(body, dict):
        raise InvalidInput("phoneNumbers", "The body must be a JSON object.")
    numbers = body.get("phoneNumbers")
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_RECIPIENTS:
        raise InvalidInput("phoneNumbers", f"phoneNumbers must list 1 to {MAX_RECIPIENTS} numbers.")
    if not all(isinstance(n, str) and n for n in numbers) or len(set(numbers)) != len(numbers):
        raise InvalidInput("phoneNumbers", "phoneNumbers must be distinct non-empty strings.")
    message_id = body.get("id")
    if message_id is None or message_id == "":
        message_id = uuid.uuid4().hex
    elif not isinstance(message_id, str) or not ID_SHAPE.fullmatch(message_id):
        raise InvalidInput("id", f"id must be 1 to {MAX_ID_CHARS} URL-safe characters.")
    device_id = body.get("deviceId")
    if device_id is not None and (not isinstance(device_id, str) or not 0 < len(device_id) <= 40):
        raise InvalidInput("deviceId", "deviceId must be a device id.")
    text, port = _content(body)
    return SendRequest(
        message_id=message_id,
        phone_numbers=list(numbers),
        body=text,
        data_port=port,
        device_id=device_id,
        sim_number=_int(body, "simNumber", 1, 3),
        expires_at=_expiry(body),
        send_at=parse_time(body.get("scheduleAt"), "scheduleAt"),
        with_delivery_report=_bool(body, "withDeliveryReport", True),
        priority=_int(body, "priority", -128, 127) or 0,
        is_encrypted=_bool(body, "isEncrypted", False),
    )


# --- messages -------------------------------------------------------------------------------


def _metadata(request: SendRequest) -> dict[str, Any]:
    # What the app phone needs beyond an SMS (docs/thirdparty.md#messages): read by the
    # mobile API when it hands the message out, and by the `app` webhook format.
    app: dict[str, Any] = {
        "messageId": request.message_id,
        "isEncrypted": request.is_encrypted,
        "withDeliveryReport": request.with_delivery_report,
        "priority": request.priority,
    }
    if request.data_port is not None:
        app["dataPort"] = request.data_port
    return {"app": app}


def _send_one(request: SendRequest, number: str, device_id: str | None) -> Message:
    common: dict[str, Any] = {
        "body": request.body,
        "device_id": device_id,
        "sim_slot": request.sim_number,
        "send_at": request.send_at,
        "expires_at": request.expires_at,
        "metadata": _metadata(request),
        "source": "thirdparty",
    }
    if request.is_encrypted:
        return opaque.send_opaque_message(to=number, **common)
    return messaging.send_message(to=number, **common)


def send(request: SendRequest) -> AppMessage:
    """One smsgate message per recipient. A recipient smsgate refuses (opted out, no line)
    is kept with its error; when every recipient is refused, the first refusal is the answer
    and nothing is stored."""
    for number in request.phone_numbers:
        if not request.is_encrypted:
            to_e164(number, field="phoneNumbers")
        elif len(number) > opaque.MAX_OPAQUE_RECIPIENT_CHARS or not number.isprintable():
            raise InvalidInput(
                "phoneNumbers",
                f"An encrypted number is at most {opaque.MAX_OPAQUE_RECIPIENT_CHARS} "
                "printable characters.",
            )
    device_id = request.device_id
    if request.data_port is not None and not request.is_encrypted:
        # A data SMS is binary for a port: only the app can send one, so it never goes
        # through SMSSync, MSync or a cloud number (which would send the base64 as text).
        device_id = opaque.app_phone_id(device_id, why="cannot send a data SMS")
    with transaction.atomic():
        try:
            with transaction.atomic():
                app_message = AppMessage.objects.create(
                    id=request.message_id,
                    is_encrypted=request.is_encrypted,
                    with_delivery_report=request.with_delivery_report,
                    priority=request.priority,
                    device_id=request.device_id or "",
                    sim_number=request.sim_number,
                )
        except IntegrityError:
            raise Conflict(
                f"A message with id {request.message_id!r} already exists.", code="duplicate_id"
            ) from None
        refusals: list[DomainError] = []
        for position, number in enumerate(request.phone_numbers):
            message: Message | None = None
            error = ""
            try:
                with transaction.atomic():
                    message = _send_one(request, number, device_id)
            except DomainError as exc:
                refusals.append(exc)
                error = exc.message
            AppRecipient.objects.create(
                app_message=app_message,
                position=position,
                # Plain numbers as smsgate stored them (E.164); ciphertext as given.
                phone_number=message.to_number if message is not None else number,
                message=message,
                error=error,
            )
        if len(refusals) == len(request.phone_numbers):
            transaction.set_rollback(True)
            raise refusals[0]
    return app_message


def find_app_message(message_id: str) -> AppMessage | None:
    return (
        AppMessage.objects.prefetch_related("recipients__message__events")
        .filter(pk=message_id)
        .first()
    )


def find_app_messages(ids: Iterable[str]) -> dict[str, AppMessage]:
    return {
        found.pk: found
        for found in AppMessage.objects.prefetch_related("recipients__message__events").filter(
            pk__in=list(ids)
        )
    }


def _cancellable(message: Message | None) -> bool:
    return message is not None and message.status in (Status.QUEUED, Status.SCHEDULED)


def cancel(message_id: str) -> None:
    """Cancel every recipient still waiting; 409 when none is."""
    app_message = find_app_message(message_id)
    if app_message is not None:
        messages = [r.message for r in app_message.recipients.all() if r.message is not None]
    else:
        found = Message.objects.filter(pk=message_id, direction="outbound").first()
        if found is None:
            raise NotFound(f"There is no message {message_id!r}.")
        messages = [found]
    waiting = [m for m in messages if _cancellable(m)]
    if not waiting:
        raise Conflict(f"Message {message_id} is no longer pending.", code="not_cancellable")
    with transaction.atomic():
        for message in waiting:
            try:
                messaging.cancel_message(message_id=message.pk)
            except Conflict:
                continue  # dispatched meanwhile: a phone has it now
            # The phone holding it hears `MessageCancelled` from messaging, as for any cancel.
