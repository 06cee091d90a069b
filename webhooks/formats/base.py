"""What every format shares: the target of one attempt, its outcome, and the HTTP post."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from django.utils import timezone

from smsgate import http
from webhooks.models import Endpoint, Event

EXCERPT_CHARS = 500
# A receiver asking for more than a day between attempts is treated as asking for a day.
MAX_RETRY_AFTER = 24 * 3600


@dataclass(frozen=True)
class Target:
    """Everything one attempt needs. `secrets` holds the current secret first, then the
    previous one while its 24 h of grace after a rotation last. `context` holds what the
    format's `prepare` read from the database beforehand (see FormatSpec)."""

    event: Event
    endpoint: Endpoint
    secrets: list[str]
    timeout: float
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    retry_after: float | None = None
    gone: bool = False
    # chat: the text the receiver asked us to send back to the sender.
    reply_text: str | None = None


@dataclass(frozen=True)
class FormatSpec:
    """A format's common interface: which events it can carry, its retry policy, and
    `deliver`, which makes one attempt and never raises for a receiver's failure.

    `prepare` (optional) reads what `deliver` needs from the database into `Target.context`.
    It runs in the worker's own thread; `deliver` may run on a pool thread beside other
    attempts of the batch (smsgate/http.py `side_by_side`), where it must not query.
    """

    name: str
    deliver: Callable[[Target], Outcome]
    events: frozenset[str]
    max_attempts: int
    timeout: Callable[[], float]
    schedule: Callable[[], list[int]]
    secret_kind: str | None = None  # "whsec" (signing), "token" (sent as is) or None
    prepare: Callable[[Target], Target] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def iso(value: datetime | None) -> str | None:
    """`2026-06-24T12:34:56.000Z`, the shape of the seeds' timestamps."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def retry_after_seconds(header: str | None) -> float | None:
    """`Retry-After` as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return min(float(header), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - timezone.now()).total_seconds(), 0.0), MAX_RETRY_AFTER)


def excerpt(response: requests.Response) -> str:
    return response.content[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


def is_2xx(response: requests.Response) -> bool:
    return 200 <= response.status_code < 300


def post(
    target: Target,
    *,
    body: bytes,
    headers: Mapping[str, str],
    succeeded: Callable[[requests.Response], bool] = is_2xx,
) -> tuple[Outcome, requests.Response | None]:
    """POST through the one outbound client. A 3xx is a failure (redirects are never
    followed); 410 Gone asks us to stop; `Retry-After` is passed on to the scheduler."""
    try:
        response = http.send(
            "POST", target.endpoint.url, headers=headers, data=body, timeout=target.timeout
        )
    except http.UnsafeDestination as exc:
        return Outcome(False, error=f"refused: {exc}"), None
    except http.OutboundError as exc:
        return Outcome(False, error=str(exc)), None
    ok = is_2xx(response) and succeeded(response)
    error = ""
    if not ok:
        error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error += " (redirects are not followed)"
        elif is_2xx(response):
            error += " but the answer is not the expected acknowledgement"
    outcome = Outcome(
        ok,
        status_code=response.status_code,
        error=error,
        excerpt=excerpt(response),
        retry_after=None if ok else retry_after_seconds(response.headers.get("Retry-After")),
        gone=response.status_code == 410,
    )
    return outcome, response


def describe(event: Event) -> tuple[str, str]:
    """A subject and a human sentence for an event (slack, email)."""
    data = event.data
    line = data.get("deviceId") or data.get("appId") or "?"
    if event.type == "sms.received":
        subject = f"SMS from {data.get('from')}"
        text = f"SMS from {data.get('from')} to {data.get('to') or line}: {data.get('body')}"
    elif event.type == "sms.rerouted":
        moved = data.get("rerouted") or {}
        subject = f"SMS to {data.get('to')} re-routed"
        text = (
            f"SMS {data.get('messageId')} to {data.get('to')} moved from {moved.get('from')} "
            f"to {moved.get('to')}: {moved.get('reason')}"
        )
    elif event.type.startswith("sms."):
        status = data.get("status")
        subject = f"SMS to {data.get('to')} {status}"
        text = f"SMS {data.get('messageId')} to {data.get('to')} is {status}"
        if data.get("error"):
            text += f": {data['error']}"
    elif event.type.startswith("device."):
        state = "online" if data.get("online") else "offline"
        subject = f"Device {data.get('name') or data.get('deviceId')} is {state}"
        text = f"{subject} (last seen {data.get('lastSeenAt') or 'never'})"
    else:
        subject = "smsgate test event"
        text = str(data.get("message") or "This is a test event from smsgate.")
    return f"[smsgate] {subject}", text
