"""One attempt at a delivery, and the sweep that makes a lost broker message harmless.

A worker claims the Delivery row with a conditional update (status pending, due, lease free)
that sets a lease a little longer than the request timeout; a duplicate broker message finds
the lease (or a row no longer due) and does nothing. The Attempt row is written before the
request, so an attempt cut short by a killed worker stays visible. The outcome is recorded
only while the lease is still ours.

On PostgreSQL a successful attempt costs two statements, hence two commits, the least that
keeps the attempt durable before the request: the claim (which also opens the attempt and
reads the endpoint and event) and the record of the success. Failures, chat replies and other
databases take the longer ORM path, whose rules are the same.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from messaging import loopguard
from messaging.models import Message
from messaging.routing import reply_app_id
from messaging.services import send_message
from smsgate.celery import app
from smsgate.errors import DomainError
from smsgate.phones import can_reply_to
from webhooks.formats import FORMATS, get_format
from webhooks.formats.base import FormatSpec, Outcome, Target
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, Event, EventType
from webhooks.publish import DELIVER_TASK, enqueue_later
from webhooks.secrets import endpoint_secrets
from webhooks.signals import reply_suppressed

log = logging.getLogger(__name__)

# The lease outlives the request timeout by this much (connection set-up, recording).
LEASE_MARGIN = timedelta(seconds=15)
# Retries due within this are handed to the broker with a countdown; later ones are left to
# the sweep, so no broker message waits for hours (Redis' visibility timeout is 12 h).
MAX_COUNTDOWN = 15 * 60
SWEEP_BATCH = 1000
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


INTERRUPTED = "interrupted: the worker stopped before this attempt finished"


def _leases(now: datetime) -> dict[str, datetime]:
    """The lease of an attempt starting now, by format: its timeout plus the margin."""
    return {
        name: now + timedelta(seconds=spec.timeout()) + LEASE_MARGIN
        for name, spec in FORMATS.items()
    }


@functools.cache
def _claim_sql() -> str:
    """Claim the delivery (its endpoint enabled unless forced), mark an attempt a dead worker
    left unfinished as interrupted, open this attempt, and read the endpoint and event the
    attempt needs: one statement (one round trip, one commit) on PostgreSQL.

    The Attempt row is in the same commit as the lease, so it is durable before the request.
    Data-modifying CTEs all run against the same snapshot: the UPDATE of older attempts cannot
    see the row inserted beside it. Only table and column names from the models are formatted
    in (S608 below); every value is a query parameter.
    """
    delivery = Delivery._meta.db_table
    attempt = Attempt._meta.db_table
    endpoint = Endpoint._meta.db_table
    event = Event._meta.db_table
    leases = " ".join(f"WHEN %(format_{i})s THEN %(lease_{i})s" for i in range(len(FORMATS)))
    columns = ", ".join(
        [f"e.{f.column}" for f in Endpoint._meta.concrete_fields]
        + [f"ev.{f.column}" for f in Event._meta.concrete_fields]
    )
    return (
        f"WITH claimed AS (UPDATE {delivery} AS d SET"  # noqa: S608
        f" lease_until = CASE e.format {leases} END, enqueued_at = NULL,"
        " attempts_made = d.attempts_made + 1, updated_at = %(now)s"
        f" FROM {endpoint} AS e WHERE d.id = %(id)s AND e.id = d.endpoint_id"
        " AND (e.enabled OR %(force)s) AND d.status = %(pending)s"
        " AND d.next_attempt_at <= %(now)s"
        " AND (d.lease_until IS NULL OR d.lease_until < %(now)s)"
        " RETURNING d.id, d.event_id, d.endpoint_id),"
        f" interrupted AS (UPDATE {attempt} SET error = %(interrupted)s"
        " WHERE delivery_id IN (SELECT id FROM claimed) AND duration_ms IS NULL AND error = ''),"
        f" opened AS (INSERT INTO {attempt} (delivery_id, at, succeeded, error, response_excerpt)"
        " SELECT id, %(now)s, false, '', '' FROM claimed RETURNING id, delivery_id)"
        f" SELECT opened.id, {columns} FROM opened"
        " JOIN claimed ON claimed.id = opened.delivery_id"
        f" JOIN {endpoint} AS e ON e.id = claimed.endpoint_id"
        f" JOIN {event} AS ev ON ev.id = claimed.event_id"
    )


_ModelT = TypeVar("_ModelT", Endpoint, Event)


def _from_row(model: type[_ModelT], values: Sequence[Any]) -> _ModelT:
    """A model instance from raw column values, converted as the ORM would (JSON, dates)."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        expression = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(expression) + field.get_db_converters(
            connection
        ):
            value = converter(value, expression, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


@dataclass(frozen=True)
class Claim:
    delivery: Delivery  # with its endpoint and event loaded
    attempt: Attempt
    lease: datetime


def _claim_postgresql(delivery_id: str, *, force: bool, now: datetime) -> Claim | None:
    leases = _leases(now)
    params: dict[str, Any] = {
        "id": delivery_id,
        "now": now,
        "force": force,
        "pending": DeliveryStatus.PENDING.value,
        "interrupted": INTERRUPTED,
    }
    for i, (name, lease) in enumerate(leases.items()):
        params[f"format_{i}"] = name
        params[f"lease_{i}"] = lease
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        found = cursor.fetchone()
    if found is None:
        return None
    n_endpoint = len(Endpoint._meta.concrete_fields)
    endpoint = _from_row(Endpoint, found[1 : 1 + n_endpoint])
    event = _from_row(Event, found[1 + n_endpoint :])
    row = Delivery(id=delivery_id, event=event, endpoint=endpoint)
    attempt = Attempt(id=found[0], delivery_id=delivery_id, at=now)
    for instance in (row, attempt):
        instance._state.adding = False
        instance._state.db = connection.alias
    return Claim(row, attempt, leases[endpoint.format])


def _claim_portable(delivery_id: str, *, force: bool, now: datetime) -> Claim | None:
    """The same in several statements, for databases without data-modifying CTEs (SQLite)."""
    row = Delivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    if row is None or (not row.endpoint.enabled and not force):
        return None
    lease = _leases(now)[row.endpoint.format]
    with transaction.atomic():
        claimed = (
            Delivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
            )
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(
                lease_until=lease,
                enqueued_at=None,
                attempts_made=F("attempts_made") + 1,
                updated_at=now,
            )
        )
        if claimed != 1:
            return None
        Attempt.objects.filter(delivery_id=delivery_id, duration_ms__isnull=True, error="").update(
            error=INTERRUPTED
        )
        attempt = Attempt.objects.create(delivery_id=delivery_id, at=now)
    return Claim(row, attempt, lease)


def _why_not_claimed(delivery_id: str, *, force: bool) -> str:
    enabled = (
        Delivery.objects.filter(pk=delivery_id).values_list("endpoint__enabled", flat=True).first()
    )
    if enabled is None:
        return "missing"
    if not enabled and not force:
        return "endpoint disabled"
    return "skipped"


def attempt_delivery(*, delivery_id: str, force: bool = False) -> str:
    """Make one attempt if the delivery is due and free; returns what happened.

    `force` also attempts a delivery whose endpoint is disabled (test pings, hand retries).
    """
    now = timezone.now()
    postgresql = connection.vendor == "postgresql"
    claim = (_claim_postgresql if postgresql else _claim_portable)(
        delivery_id, force=force, now=now
    )
    if claim is None:
        return _why_not_claimed(delivery_id, force=force)
    row, attempt, lease = claim.delivery, claim.attempt, claim.lease
    spec = get_format(row.endpoint.format)
    target = Target(
        event=row.event,
        endpoint=row.endpoint,
        secrets=endpoint_secrets(row.endpoint, now=now),
        timeout=spec.timeout(),
    )
    started = time.monotonic()
    try:
        outcome = spec.deliver(target)
    except Exception as exc:
        # A bug in a format must not leave the lease to expire and be retried in a loop.
        log.exception("webhook format %s failed on delivery %s", spec.name, delivery_id)
        outcome = Outcome(False, error=f"internal error: {type(exc).__name__}")
    duration_ms = int((time.monotonic() - started) * 1000)
    if outcome.succeeded and not outcome.reply_text and postgresql:
        recorded = _record_success(row, attempt, outcome, duration_ms=duration_ms, lease=lease)
        if recorded:
            return "succeeded"
    return _record(row, spec, attempt, outcome, duration_ms=duration_ms, lease=lease)


@functools.cache
def _success_sql(*, track_health: bool) -> str:
    """Record a plain success in one statement: the delivery (only while the lease is ours),
    its attempt, and the endpoint's failure clock (reset only when it runs, so a healthy
    endpoint's row is not rewritten on every delivery). Test pings leave the clock alone."""
    delivery = Delivery._meta.db_table
    attempt = Attempt._meta.db_table
    endpoint = Endpoint._meta.db_table
    health = (
        f", health AS (UPDATE {endpoint} SET failing_since = NULL"  # noqa: S608
        " WHERE id = %(endpoint)s AND failing_since IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM finished))"
        if track_health
        else ""
    )
    return (
        f"WITH finished AS (UPDATE {delivery} SET status = %(succeeded)s,"  # noqa: S608
        " completed_at = %(now)s, lease_until = NULL, next_attempt_at = NULL,"
        " updated_at = %(now)s WHERE id = %(id)s AND lease_until = %(lease)s RETURNING id),"
        f" recorded AS (UPDATE {attempt} SET status_code = %(status_code)s,"
        " duration_ms = %(duration_ms)s, succeeded = true, error = '',"
        " response_excerpt = %(excerpt)s WHERE id = %(attempt)s"
        " AND EXISTS (SELECT 1 FROM finished))"
        f"{health} SELECT count(*) FROM finished"
    )


def _record_success(
    row: Delivery, attempt: Attempt, outcome: Outcome, *, duration_ms: int, lease: datetime
) -> bool:
    """The common case of `_record` in one round trip; False when the lease was lost (nothing
    written then: `_record` tells that story)."""
    params: dict[str, Any] = {
        "id": row.pk,
        "lease": lease,
        "now": timezone.now(),
        "succeeded": DeliveryStatus.SUCCEEDED.value,
        "status_code": outcome.status_code,
        "duration_ms": duration_ms,
        "excerpt": outcome.excerpt,
        "attempt": attempt.pk,
        "endpoint": row.endpoint_id,
    }
    sql = _success_sql(track_health=row.event.type != EventType.PING)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return bool(found and found[0])


def _record(
    row: Delivery,
    spec: FormatSpec,
    attempt: Attempt,
    outcome: Outcome,
    *,
    duration_ms: int,
    lease: datetime,
) -> str:
    now = timezone.now()
    error = outcome.error
    with transaction.atomic():
        current = Delivery.objects.filter(pk=row.pk, lease_until=lease)
        state = current.values("attempts_made", "round_base", "round_attempts").first()
        if state is None:
            # The lease ran out and another worker took the delivery over; it decides.
            Attempt.objects.filter(pk=attempt.pk).update(
                status_code=outcome.status_code,
                duration_ms=duration_ms,
                error=error or "finished after its lease expired",
                response_excerpt=outcome.excerpt,
            )
            return "lease lost"
        in_round = state["attempts_made"] - state["round_base"]
        schedule: Schedule | None = None
        if outcome.succeeded:
            current.update(
                status=DeliveryStatus.SUCCEEDED,
                completed_at=now,
                lease_until=None,
                next_attempt_at=None,
                updated_at=now,
            )
            result = "succeeded"
            if outcome.reply_text:
                error = _send_chat_reply(row, outcome.reply_text)
        elif outcome.gone or in_round >= state["round_attempts"]:
            current.update(
                status=DeliveryStatus.FAILED,
                completed_at=now,
                lease_until=None,
                next_attempt_at=None,
                updated_at=now,
            )
            result = "failed"
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
        Attempt.objects.filter(pk=attempt.pk).update(
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


def requeue_lost_deliveries() -> int:
    """Publish again every delivery that is due, not being attempted, and whose broker message
    is missing or overdue (a restarted or emptied broker, a worker killed mid-attempt)."""
    now = timezone.now()
    # A published message that has not started this long after it was due is treated as lost.
    grace = timedelta(seconds=settings.SMSGATE_WEBHOOKS_SWEEP_GRACE)
    with transaction.atomic():
        lost = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - grace))
            .order_by("next_attempt_at")
        )
        ids = list(lost.values_list("pk", flat=True)[:SWEEP_BATCH])
        Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)

        def publish() -> None:
            for pk in ids:
                app.send_task(DELIVER_TASK, args=(pk,))

        transaction.on_commit(publish, robust=True)
    return len(ids)
