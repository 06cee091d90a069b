"""`standard`: the SimGate-shaped event, signed per Standard Webhooks (docs/webhooks.md#standard-format-signed-json).

The body is `{"id", "type", "createdAt", "data"}`. Headers: `webhook-id` (the event id, the
same on every retry, so receivers can deduplicate), `webhook-timestamp` (this attempt, in
seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`, once per
valid secret (two during the 24 h after a rotation), space-separated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.conf import settings
from standardwebhooks import Webhook

from webhooks.formats.base import FormatSpec, Outcome, Target, iso, post
from webhooks.models import SUBSCRIBABLE_EVENTS, Event


def render(event: Event) -> bytes:
    payload = {
        "id": event.id,
        "type": event.type,
        "createdAt": iso(event.created_at),
        "data": event.data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signature_header(webhook_id: str, timestamp: datetime, body: bytes, secrets: list[str]) -> str:
    text = body.decode()
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, text) for secret in secrets)


def deliver(target: Target) -> Outcome:
    body = render(target.event)
    now = datetime.now(UTC).replace(microsecond=0)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": target.event.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(target.event.id, now, body, target.secrets),
    }
    outcome, _ = post(target, body=body, headers=headers)
    return outcome


SPEC = FormatSpec(
    name="standard",
    deliver=deliver,
    events=frozenset(SUBSCRIBABLE_EVENTS),
    max_attempts=8,
    timeout=lambda: float(settings.SMSGATE_WEBHOOKS_TIMEOUT),
    schedule=lambda: list(settings.SMSGATE_WEBHOOKS_RETRY_SCHEDULE),
    secret_kind="whsec",
)
