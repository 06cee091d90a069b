"""`slack`: `{"text": "…"}` to a Slack incoming-webhook URL (any 2xx is success)."""

from __future__ import annotations

import json

from django.conf import settings

from webhooks.formats.base import FormatSpec, Outcome, Target, describe, post
from webhooks.models import SUBSCRIBABLE_EVENTS


def deliver(target: Target) -> Outcome:
    _, text = describe(target.event)
    body = json.dumps({"text": text}, ensure_ascii=False).encode()
    outcome, _ = post(target, body=body, headers={"Content-Type": "application/json"})
    return outcome


SPEC = FormatSpec(
    name="slack",
    deliver=deliver,
    events=frozenset(SUBSCRIBABLE_EVENTS),
    max_attempts=8,
    timeout=lambda: float(settings.SMSGATE_WEBHOOKS_TIMEOUT),
    schedule=lambda: list(settings.SMSGATE_WEBHOOKS_RETRY_SCHEDULE),
)
