"""`app`: the envelope of the SMS Gateway for Android app's webhooks (docs/thirdparty.md#webhooks).

Integrators of the app (its Python client, its integrations) expect the webhooks the phone
itself would send: `{"id", "webhookId", "event", "deviceId", "payload"}` with the app's event
names and payload fields, signed with the fleet's `webhooks.signing_key` (set through the
third-party `/settings`): `X-Timestamp` is Unix seconds and `X-Signature` the lowercase hex
HMAC-SHA256 of the raw body followed by that timestamp. smsgate sends them from its outbox, so
they get its retries and its delivery log instead of the phone's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from devices.models import PhoneSettings
from webhooks.formats.base import FormatSpec, Outcome, Target, parse_iso, post
from webhooks.models import Event, EventType

# smsgate event → the app's event name. Device health is the app's `system:ping`.
APP_EVENTS: dict[str, str] = {
    EventType.SMS_RECEIVED: "sms:received",
    EventType.SMS_SENT: "sms:sent",
    EventType.SMS_DELIVERED: "sms:delivered",
    EventType.SMS_FAILED: "sms:failed",
    EventType.SMS_CANCELLED: "sms:cancelled",
    EventType.DEVICE_ONLINE: "system:ping",
    EventType.DEVICE_OFFLINE: "system:ping",
    EventType.PING: "system:ping",
}


def app_time(value: Any) -> str | None:
    """The app's timestamps carry an offset (`2026-12-03T08:00:00.123+00:00`), never `Z`."""
    parsed = value if isinstance(value, datetime) else parse_iso(value)
    if parsed is None:
        return None
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds")


def signing_key() -> str:
    group = PhoneSettings.current().values.get("webhooks")
    key = group.get("signing_key") if isinstance(group, dict) else None
    return key if isinstance(key, str) else ""


def sign(key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def _message_payload(event: Event) -> dict[str, Any]:
    data = event.data
    app = data.get("metadata", {}).get("app") if isinstance(data.get("metadata"), dict) else None
    # A message sent through the third-party API is known to its sender by the app-style id.
    message_id = app.get("messageId") if isinstance(app, dict) else None
    inbound = event.type == EventType.SMS_RECEIVED
    payload: dict[str, Any] = {
        "messageId": message_id or data.get("messageId"),
        "sender": data.get("from") or None,
        "recipient": data.get("to") or None,
        "simNumber": data.get("simSlot"),
        "phoneNumber": data.get("from") if inbound else data.get("to"),
    }
    at = app_time(event.created_at)
    if inbound:
        payload.update(message=data.get("body"), receivedAt=app_time(data.get("receivedAt")))
    elif event.type == EventType.SMS_SENT:
        payload.update(partsCount=data.get("segments") or 1, sentAt=app_time(data.get("sentAt")))
    elif event.type == EventType.SMS_DELIVERED:
        payload["deliveredAt"] = app_time(data.get("deliveredAt")) or at
    elif event.type == EventType.SMS_FAILED:
        payload.update(failedAt=at, reason=data.get("error") or "failed")
    elif event.type == EventType.SMS_CANCELLED:
        payload["cancelledAt"] = at
    return payload


def render(event: Event, webhook_id: str) -> bytes:
    data = event.data
    if event.type.startswith("sms."):
        payload = _message_payload(event)
    else:
        online = bool(data.get("online", True))
        payload = {
            "health": {
                "status": "pass" if online else "fail",
                "checks": {"online": {"status": "pass" if online else "fail"}},
            }
        }
    envelope = {
        "id": event.id,
        "webhookId": webhook_id,
        "event": APP_EVENTS.get(event.type, event.type),
        "deviceId": data.get("deviceId"),
        "payload": payload,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def prepare(target: Target) -> Target:
    """The fleet's signing key, read before `deliver` (which may run on a pool thread)."""
    return replace(target, context={**target.context, "signing_key": signing_key()})


def deliver(target: Target) -> Outcome:
    body = render(target.event, target.endpoint.pk)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Timestamp": timestamp}
    known = target.context.get("signing_key")
    key = known if isinstance(known, str) else signing_key()
    if key:
        headers["X-Signature"] = sign(key, body, timestamp)
    outcome, _ = post(target, body=body, headers=headers)
    return outcome


SPEC = FormatSpec(
    name="app",
    deliver=deliver,
    events=frozenset(e for e in APP_EVENTS if e != EventType.PING),
    max_attempts=8,
    timeout=lambda: float(settings.SMSGATE_WEBHOOKS_TIMEOUT),
    schedule=lambda: list(settings.SMSGATE_WEBHOOKS_RETRY_SCHEDULE),
    prepare=prepare,
)
