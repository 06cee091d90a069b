"""`form`: the Agile Telecom inbound shape (seeds: Agile Telecom Inbound SMS).

A form-encoded POST of `originator`, `destination`, `date_time` (YYYYMMDDHHMMSS, UTC) and
`text`; the receiver must answer exactly `+OK` (within 30 s), anything else is a failed
attempt. Agile retries every 15 minutes, 3 attempts in all, and so do we.
"""

from __future__ import annotations

from datetime import UTC
from urllib.parse import urlencode

import requests
from django.utils import timezone

from webhooks.formats.base import FormatSpec, Outcome, Target, parse_iso, post
from webhooks.models import Event

TIMEOUT = 30.0
EVERY = 15 * 60


def render(event: Event) -> dict[str, str]:
    data = event.data
    if event.type != "sms.received":
        return {
            "originator": "smsgate",
            "destination": "",
            "date_time": timezone.now().astimezone(UTC).strftime("%Y%m%d%H%M%S"),
            "text": str(data.get("message") or "smsgate webhook test"),
        }
    moment = parse_iso(data.get("receivedAt")) or event.created_at
    return {
        "originator": str(data.get("from") or ""),
        "destination": str(data.get("to") or ""),
        "date_time": moment.astimezone(UTC).strftime("%Y%m%d%H%M%S"),
        "text": str(data.get("body") or ""),
    }


def acknowledged(response: requests.Response) -> bool:
    return response.content.strip() == b"+OK"


def deliver(target: Target) -> Outcome:
    body = urlencode(render(target.event)).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    outcome, _ = post(target, body=body, headers=headers, succeeded=acknowledged)
    return outcome


SPEC = FormatSpec(
    name="form",
    deliver=deliver,
    events=frozenset({"sms.received"}),
    max_attempts=3,
    timeout=lambda: TIMEOUT,
    schedule=lambda: [EVERY, EVERY],
)
