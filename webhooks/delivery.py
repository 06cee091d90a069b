"""Attempts at deliveries, a batch at a time, and the sweep that makes a lost broker message
harmless.

A broker message carries up to SMSGATE_WEBHOOKS_BATCH_SIZE delivery ids (webhooks/publish.py).
The worker claims those that are due and free with a conditional update (status pending, due,
lease free) that sets a lease a little longer than the request timeout; a duplicate broker
message finds the lease (or a row no longer due) and does nothing. The Attempt rows are
written before the requests, so an attempt cut short by a killed worker stays visible. The
requests of a batch run side by side on the HTTP client's pool (smsgate/http.py
`side_by_side`), each with its own timeout, so a slow receiver holds up no other delivery's
request. Outcomes are recorded only while the lease is still ours (webhooks/recording.py).

On PostgreSQL a batch whose attempts all succeed costs two statements, hence two commits,
whatever its size: the claim (which also opens the attempts and reads the endpoints and
events; `SKIP LOCKED` so two workers handed the same ids never wait for each other) and the
record of the successes. Failures, chat replies and other databases take the longer ORM path,
whose rules are the same.
"""

from __future__ import annotations

import functools
import logging
import queue
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from smsgate import http
from smsgate.rows import ModelColumns
from webhooks.formats import FORMATS, get_format
from webhooks.formats.base import FormatSpec, Outcome, Target
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, Event
from webhooks.publish import publish
from webhooks.recording import Success, record, record_successes
from webhooks.secrets import endpoint_secrets

log = logging.getLogger(__name__)

# The lease outlives the request timeout by this much (connection set-up, recording).
LEASE_MARGIN = timedelta(seconds=15)
SWEEP_BATCH = 1000

INTERRUPTED = "interrupted: the worker stopped before this attempt finished"

# The claim reads each endpoint and event whole, in their models' column order.
_ENDPOINT = ModelColumns(Endpoint)
_EVENT = ModelColumns(Event)


def _leases(now: datetime) -> dict[str, datetime]:
    """The lease of an attempt starting now, by format: its timeout plus the margin."""
    return {
        name: now + timedelta(seconds=spec.timeout()) + LEASE_MARGIN
        for name, spec in FORMATS.items()
    }


@functools.cache
def _claim_sql() -> str:
    """Claim the due and free deliveries among the ids (their endpoint enabled unless forced),
    mark attempts a dead worker left unfinished as interrupted, open these attempts, and read
    the endpoints and events the attempts need: one statement (one round trip, one commit)
    on PostgreSQL, whatever the number of ids.

    `FOR UPDATE SKIP LOCKED`: a row another worker is claiming right now is left to it rather
    than waited for (it would find the row leased anyway). The Attempt rows are in the same
    commit as the leases, so they are durable before the requests. Data-modifying CTEs all run
    against the same snapshot: the UPDATE of older attempts cannot see the rows inserted
    beside it. Only table and column names from the models are formatted in (S608 below);
    every value is a query parameter.
    """
    delivery = Delivery._meta.db_table
    attempt = Attempt._meta.db_table
    endpoint = Endpoint._meta.db_table
    event = Event._meta.db_table
    leases = " ".join(f"WHEN %(format_{i})s THEN %(lease_{i})s" for i in range(len(FORMATS)))
    columns = f"{_ENDPOINT.select('e')}, {_EVENT.select('ev')}"
    due = (
        "d.status = %(pending)s AND d.next_attempt_at <= %(now)s"
        " AND (d.lease_until IS NULL OR d.lease_until < %(now)s)"
    )
    return (
        f"WITH due AS (SELECT d.id FROM {delivery} AS d"  # noqa: S608
        f" JOIN {endpoint} AS e ON e.id = d.endpoint_id"
        f" WHERE d.id = ANY(%(ids)s) AND (e.enabled OR %(force)s) AND {due}"
        " FOR UPDATE OF d SKIP LOCKED),"
        f" claimed AS (UPDATE {delivery} AS d SET"
        f" lease_until = CASE e.format {leases} END, enqueued_at = NULL,"
        " attempts_made = d.attempts_made + 1, updated_at = %(now)s"
        f" FROM {endpoint} AS e WHERE d.id IN (SELECT id FROM due) AND e.id = d.endpoint_id"
        f" AND {due} RETURNING d.id, d.event_id, d.endpoint_id),"
        f" interrupted AS (UPDATE {attempt} SET error = %(interrupted)s"
        " WHERE delivery_id IN (SELECT id FROM claimed) AND duration_ms IS NULL AND error = ''),"
        f" opened AS (INSERT INTO {attempt} (delivery_id, at, succeeded, error, response_excerpt)"
        " SELECT id, %(now)s, false, '', '' FROM claimed RETURNING id, delivery_id)"
        f" SELECT opened.id, claimed.id, {columns} FROM opened"
        " JOIN claimed ON claimed.id = opened.delivery_id"
        f" JOIN {endpoint} AS e ON e.id = claimed.endpoint_id"
        f" JOIN {event} AS ev ON ev.id = claimed.event_id"
    )


@dataclass(frozen=True)
class Claim:
    delivery: Delivery  # with its endpoint and event loaded
    attempt_id: int
    lease: datetime


def _claim_postgresql(ids: list[str], *, force: bool, now: datetime) -> list[Claim]:
    leases = _leases(now)
    params: dict[str, Any] = {
        "ids": ids,
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
        found = cursor.fetchall()
    claims = []
    # A batch usually goes to one or two endpoints: each endpoint row is converted once and
    # its instance shared by the batch's deliveries (nothing in an attempt changes it).
    endpoints: dict[str, Endpoint] = {}
    for values in found:
        endpoint_id = values[2]
        endpoint = endpoints.get(endpoint_id)
        if endpoint is None:
            loaded = _ENDPOINT.load(values, 2)
            assert loaded is not None  # an inner join: the row has its endpoint
            endpoint = endpoints[endpoint_id] = loaded
        event = _EVENT.load(values, 2 + _ENDPOINT.width)
        assert event is not None
        row = Delivery(id=values[1], event=event, endpoint=endpoint)
        row._state.adding = False
        row._state.db = connection.alias
        claims.append(Claim(row, int(values[0]), leases[endpoint.format]))
    return claims


def _claim_portable(ids: list[str], *, force: bool, now: datetime) -> list[Claim]:
    """The same in several statements per delivery, for databases without data-modifying
    CTEs (SQLite, which serialises writes anyway)."""
    leases = _leases(now)
    claims = []
    # Rows not due or leased are left out at once; the conditional update below checks again.
    due = (
        Delivery.objects.select_related("endpoint", "event")
        .filter(pk__in=ids, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    )
    for row in due:
        if not row.endpoint.enabled and not force:
            continue
        lease = leases[row.endpoint.format]
        with transaction.atomic():
            claimed = (
                Delivery.objects.filter(
                    pk=row.pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
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
                continue
            Attempt.objects.filter(delivery_id=row.pk, duration_ms__isnull=True, error="").update(
                error=INTERRUPTED
            )
            attempt = Attempt.objects.create(delivery_id=row.pk, at=now)
        claims.append(Claim(row, attempt.pk, lease))
    return claims


def _why_not_claimed(ids: list[str], *, force: bool) -> dict[str, str]:
    if not ids:  # the usual case: every id was claimed (the ORM would still build its query)
        return {}
    enabled = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "endpoint__enabled"))
    why = {}
    for pk in ids:
        if pk not in enabled:
            why[pk] = "missing"
        elif not enabled[pk] and not force:
            why[pk] = "endpoint disabled"
        else:
            why[pk] = "skipped"
    return why


@dataclass(frozen=True)
class _Attempt:
    """A claimed delivery ready to be sent: its format and everything `deliver` needs, read
    in this thread (`deliver` may run on a pool thread, which must not query)."""

    claim: Claim
    spec: FormatSpec
    target: Target


def _internal_error(spec: FormatSpec, delivery_id: str, exc: Exception) -> Outcome:
    # A bug in a format must not leave the lease to expire and be retried in a loop.
    log.error("webhook format %s failed on delivery %s", spec.name, delivery_id, exc_info=exc)
    return Outcome(False, error=f"internal error: {type(exc).__name__}")


@dataclass(frozen=True)
class _Finished:
    claim: Claim
    spec: FormatSpec
    outcome: Outcome
    duration_ms: int


def _prepare(claim: Claim, now: datetime) -> _Attempt | _Finished:
    row = claim.delivery
    spec = get_format(row.endpoint.format)
    target = Target(
        event=row.event,
        endpoint=row.endpoint,
        secrets=endpoint_secrets(row.endpoint, now=now),
        timeout=spec.timeout(),
    )
    if spec.prepare is not None:
        try:
            target = spec.prepare(target)
        except Exception as exc:
            return _Finished(claim, spec, _internal_error(spec, row.pk, exc), 0)
    return _Attempt(claim, spec, target)


def _send(attempt: _Attempt) -> _Finished:
    started = time.monotonic()
    try:
        outcome = attempt.spec.deliver(attempt.target)
    except Exception as exc:
        outcome = _internal_error(attempt.spec, attempt.claim.delivery.pk, exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _Finished(attempt.claim, attempt.spec, outcome, duration_ms)


def _record_all(finished: Sequence[_Finished]) -> dict[str, str]:
    """Record the outcomes: the plain successes together (one statement on PostgreSQL), then
    the rest one by one (their next state depends on the row; chat replies send a message)."""
    plain = []
    if connection.vendor == "postgresql":
        plain = [
            Success(
                delivery=f.claim.delivery,
                attempt_id=f.claim.attempt_id,
                lease=f.claim.lease,
                outcome=f.outcome,
                duration_ms=f.duration_ms,
            )
            for f in finished
            if f.outcome.succeeded and not f.outcome.reply_text
        ]
    recorded = record_successes(plain)
    results = {}
    for f in finished:
        claim = f.claim
        if claim.delivery.pk in recorded:
            results[claim.delivery.pk] = "succeeded"
            continue
        results[claim.delivery.pk] = record(
            claim.delivery,
            f.spec,
            claim.attempt_id,
            f.outcome,
            duration_ms=f.duration_ms,
            lease=claim.lease,
        )
    return results


def _send_side_by_side(attempts: list[_Attempt]) -> dict[str, str]:
    """Send on the pool and record when all are back: one record for the batch, unless a
    finished attempt's lease is running out while a slower one is still waiting for its
    receiver (a `form` request may take 30 s, a `standard` lease lasts 15 s + the margin).

    Finished attempts arrive on a queue: waiting on the pending futures again after each one
    finished re-armed a waiter on every future still out, a cost that grew with the square
    of the batch."""
    done: queue.SimpleQueue[Future[_Finished]] = queue.SimpleQueue()
    for attempt in attempts:
        http.side_by_side(functools.partial(_send, attempt)).add_done_callback(done.put)
    results: dict[str, str] = {}
    finished: list[_Finished] = []
    record_by: datetime | None = None  # the earliest lease among `finished`, less half the margin
    outstanding = len(attempts)
    while outstanding:
        timeout = None
        if record_by is not None:
            timeout = max(0.0, (record_by - timezone.now()).total_seconds())
        try:
            future = done.get(timeout=timeout)
        except queue.Empty:
            results.update(_record_all(finished))
            finished, record_by = [], None
            continue
        result = future.result()
        finished.append(result)
        outstanding -= 1
        due = result.claim.lease - LEASE_MARGIN / 2
        record_by = due if record_by is None else min(record_by, due)
    results.update(_record_all(finished))
    return results


def attempt_deliveries(*, delivery_ids: Sequence[str], force: bool = False) -> dict[str, str]:
    """One attempt at each delivery that is due and free; returns what happened, by id
    (`succeeded`, `retry scheduled`, `failed`, `lease lost`, or why none was made: `skipped`,
    `endpoint disabled`, `missing`).

    `force` also attempts deliveries whose endpoint is disabled (test pings, hand retries).
    """
    ids = list(dict.fromkeys(delivery_ids))
    if not ids:
        return {}
    now = timezone.now()
    claim = _claim_postgresql if connection.vendor == "postgresql" else _claim_portable
    claims = claim(ids, force=force, now=now)
    claimed = {c.delivery.pk for c in claims}
    results = _why_not_claimed([pk for pk in ids if pk not in claimed], force=force)
    attempts: list[_Attempt] = []
    failed: list[_Finished] = []
    for c in claims:
        prepared = _prepare(c, now)
        if isinstance(prepared, _Attempt):
            attempts.append(prepared)
        else:
            failed.append(prepared)
    if len(attempts) == 1:
        # One request: no hand-over to a pool thread.
        results.update(_record_all([*failed, _send(attempts[0])]))
    else:
        results.update(_record_all(failed))
        results.update(_send_side_by_side(attempts))
    return results


def attempt_delivery(*, delivery_id: str, force: bool = False) -> str:
    """Make one attempt if the delivery is due and free; returns what happened."""
    return attempt_deliveries(delivery_ids=[delivery_id], force=force)[delivery_id]


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

        def publish_lost() -> None:
            publish(ids)

        transaction.on_commit(publish_lost, robust=True)
    return len(ids)
