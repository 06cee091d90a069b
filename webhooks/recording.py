"""Recording an attempt's outcome: the delivery's next state (succeeded, a retry on the
schedule, failed), its Attempt row, the endpoint's health, and a chat format's reply.

Every write is conditional on the lease the claim set (`lease_until`), so a worker whose lease
ran out leaves the delivery to whoever took it over. On PostgreSQL the plain successes of a
batch are recorded in one statement (`record_successes`); failures, chat replies and other
databases take `record`, one ORM transaction per delivery, whose rules are the same.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from messaging import loopguard
from messaging.models import Message
from messaging.routing import reply_app_id
from messaging.services import send_message
from smsgate.errors import DomainError
from smsgate.phones import can_reply_to
from webhooks.formats.base import FormatSpec, Outcome
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, EventType
from webhooks.publish import enqueue_later
from webhooks.signals import reply_suppressed

# Retries due within this are handed to the broker with a countdown; later ones are left to
# the sweep, so no broker message waits for hours (Redis' visibility timeout is 12 h).
MAX_COUNTDOWN = 15 * 60
JITTER = 0.2
# Svix: an endpoint whose attempts have all failed for 5 days is disabled.
DISABLE_AFTER = timedelta(days=5)


@dataclass(frozen=True)
class Schedule:
    next_attempt_at: datetime
    countdown: float


def next_delay(spec: FormatSpec, attempt_in_round: int, retry_after: float | None) -> float:
    """Seconds until the next attempt: the format's schedule with ±20 % jitter, or longer when
    the receiver asked for it with Retry-After."""
    schedule = spec.schedule() or [0]
    base = float(schedule[min(attempt_in_round - 1, len(schedule) - 1)])
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


@dataclass(frozen=True)
class Success:
    """A plain success (no chat reply) waiting to be recorded with the others of its batch."""

    delivery: Delivery  # with its event loaded
    attempt_id: int
    lease: datetime
    outcome: Outcome
    duration_ms: int


@functools.cache
def _successes_sql() -> str:
    """Record plain successes in one statement: each delivery (only while its lease is ours),
    its attempt, and its endpoint's failure clock (reset only when it runs, so a healthy
    endpoint's row is not rewritten on every delivery; test pings leave the clock alone).
    The outcomes travel as parallel arrays, unnested into rows."""
    delivery = Delivery._meta.db_table
    attempt = Attempt._meta.db_table
    endpoint = Endpoint._meta.db_table
    return (
        "WITH outcome AS (SELECT * FROM unnest(%(ids)s::text[], %(leases)s::timestamptz[],"  # noqa: S608
        " %(attempts)s::bigint[], %(codes)s::int[], %(durations)s::int[], %(excerpts)s::text[],"
        " %(endpoints)s::text[], %(track)s::boolean[])"
        " AS o(id, lease, attempt, status_code, duration_ms, excerpt, endpoint, track)),"
        f" finished AS (UPDATE {delivery} AS d SET status = %(succeeded)s,"
        " completed_at = %(now)s, lease_until = NULL, next_attempt_at = NULL,"
        " updated_at = %(now)s FROM outcome AS o WHERE d.id = o.id AND d.lease_until = o.lease"
        " RETURNING d.id),"
        f" recorded AS (UPDATE {attempt} AS a SET status_code = o.status_code,"
        " duration_ms = o.duration_ms, succeeded = true, error = '',"
        " response_excerpt = o.excerpt FROM outcome AS o JOIN finished AS f ON f.id = o.id"
        " WHERE a.id = o.attempt),"
        f" health AS (UPDATE {endpoint} SET failing_since = NULL WHERE id IN"
        " (SELECT o.endpoint FROM outcome AS o JOIN finished AS f ON f.id = o.id WHERE o.track)"
        " AND failing_since IS NOT NULL)"
        " SELECT id FROM finished"
    )


def record_successes(successes: Sequence[Success]) -> set[str]:
    """The common case of `record` for a whole batch in one round trip (PostgreSQL); returns
    the ids recorded. A delivery whose lease was lost is not written: `record` tells that story."""
    if not successes:
        return set()
    params: dict[str, Any] = {
        "ids": [s.delivery.pk for s in successes],
        "leases": [s.lease for s in successes],
        "attempts": [s.attempt_id for s in successes],
        "codes": [s.outcome.status_code for s in successes],
        "durations": [s.duration_ms for s in successes],
        "excerpts": [s.outcome.excerpt for s in successes],
        "endpoints": [s.delivery.endpoint_id for s in successes],
        "track": [s.delivery.event.type != EventType.PING for s in successes],
        "now": timezone.now(),
        "succeeded": DeliveryStatus.SUCCEEDED.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_successes_sql(), params)
        return {str(found[0]) for found in cursor.fetchall()}


def record(
    row: Delivery,
    spec: FormatSpec,
    attempt_id: int,
    outcome: Outcome,
    *,
    duration_ms: int,
    lease: datetime,
) -> str:
    """Record one attempt's outcome and decide what comes next; returns what happened."""
    now = timezone.now()
    error = outcome.error
    with transaction.atomic():
        current = Delivery.objects.filter(pk=row.pk, lease_until=lease)
        state = current.values("attempts_made", "round_base", "round_attempts").first()
        if state is None:
            # The lease ran out and another worker took the delivery over; it decides.
            Attempt.objects.filter(pk=attempt_id).update(
                status_code=outcome.status_code,
                duration_ms=duration_ms,
                error=error or "finished after its lease expired",
                response_excerpt=outcome.excerpt,
            )
            return "lease lost"
        in_round = state["attempts_made"] - state["round_base"]
        schedule: Schedule | None = None
        if outcome.succeeded or outcome.gone or in_round >= state["round_attempts"]:
            # Done with: delivered, or refused for good (410 Gone, or the round is spent).
            current.update(
                status=DeliveryStatus.SUCCEEDED if outcome.succeeded else DeliveryStatus.FAILED,
                completed_at=now,
                lease_until=None,
                next_attempt_at=None,
                updated_at=now,
            )
            result = "succeeded" if outcome.succeeded else "failed"
            if outcome.succeeded and outcome.reply_text:
                error = _send_chat_reply(row, outcome.reply_text)
        else:
            delay = next_delay(spec, in_round, outcome.retry_after)
            at = now + timedelta(seconds=delay)
            queued = delay <= MAX_COUNTDOWN
            current.update(
                next_attempt_at=at,
                lease_until=None,
                enqueued_at=at if queued else None,
                updated_at=now,
            )
            schedule = Schedule(at, delay) if queued else None
            result = "retry scheduled"
        Attempt.objects.filter(pk=attempt_id).update(
            status_code=outcome.status_code,
            duration_ms=duration_ms,
            succeeded=outcome.succeeded,
            error=error,
            response_excerpt=outcome.excerpt,
        )
        if row.event.type != EventType.PING:
            _update_endpoint_health(row.endpoint, outcome, now=now)
        if schedule is not None:
            enqueue_later(row.pk, schedule.countdown)
    return result


def _send_chat_reply(row: Delivery, text: str) -> str:
    """The chat receiver's `sms_text`, texted back through the line the message came in on.
    Returns an error note for the attempt when it could not be queued (e.g. opted out)."""
    message = Message.objects.filter(pk=row.event.message_id).first()
    if message is None or not message.from_number:
        return "reply not sent: the message no longer exists"
    if not can_reply_to(message.from_number):
        return "reply not sent: the sender is not a phone number"
    # A replayed delivery is answered again by the receiver; the sender still gets one reply.
    if Message.objects.filter(
        source="chat", to_number=message.from_number, metadata__webhook_delivery=row.pk
    ).exists():
        return "reply already sent for this delivery"
    try:
        with transaction.atomic():
            if loopguard.replies_left(message.from_number, lock=True) <= 0:
                reply_suppressed.send(
                    sender=Message,
                    phone=message.from_number,
                    message=message,
                    name=f"Chat webhook {row.endpoint_id}",
                    text=text,
                    webhook_id=row.endpoint_id,
                    delivery_id=row.pk,
                )
                return f"reply suppressed: {loopguard.suppression_detail()}"
            send_message(
                to=message.from_number,
                body=text,
                device_id=message.device_id,
                sim_slot=message.sim_slot,
                app_id=reply_app_id(message.app_id),
                source="chat",
                metadata={"webhook_delivery": row.pk, "in_reply_to": message.pk},
            )
    except DomainError as exc:
        return f"reply not sent: {exc.message}"
    return ""


def _update_endpoint_health(endpoint: Endpoint, outcome: Outcome, *, now: datetime) -> None:
    endpoints = Endpoint.objects.filter(pk=endpoint.pk)
    if outcome.succeeded:
        endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        return
    if outcome.gone:
        endpoints.filter(enabled=True).update(
            enabled=False,
            disabled_reason="The receiver answered 410 Gone.",
            updated_at=now,
        )
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    disable_failing_endpoints(endpoints, now=now)


def disable_failing_endpoints(
    endpoints: QuerySet[Endpoint] | None = None, *, now: datetime | None = None
) -> int:
    """Disable every enabled endpoint whose attempts have all failed for DISABLE_AFTER.

    A new failed attempt checks its own endpoint; the periodic sweep checks them all, for an
    endpoint whose deliveries were all exhausted and so is never attempted again. A success
    clears `failing_since`, so a disabled one stays disabled and running this twice is harmless.
    """
    now = now or timezone.now()
    endpoints = Endpoint.objects.all() if endpoints is None else endpoints
    return endpoints.filter(enabled=True, failing_since__lte=now - DISABLE_AFTER).update(
        enabled=False,
        disabled_reason="Every delivery attempt failed for 5 days.",
        updated_at=now,
    )
