"""Handing queued messages to a phone that polls (MSync `outgoing`, SMSSync `task=send`).

Claiming is `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL: two polls (of this device, or of
two devices sharing the pool) never see the same row, and a claimed message becomes
`dispatched` in the same transaction, so it is never offered again. SQLite has no row locks but
takes its write lock when the transaction begins, which serialises polls just as well.

Pacing is per SIM and counted in segments handed out in the last minute, hour and day
(`CheckIn.sims` carries those counts, read under the device's row lock). Limits hold messages
in the queue; they never refuse them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from devices.models import Device
from messaging.dispatch import mark_dispatched
from messaging.models import Direction, Message, OptOut, Status
from messaging.optouts import cancel_for_opt_out, held_back, recipient_is_opted_out
from phones.checkin import CheckIn, SimUsage, note_poll

MAX_POLL = 500


@dataclass
class Budget:
    """What one SIM may still be handed in this poll, in segments."""

    sim: SimUsage
    remaining: int | None  # None: no limit at all
    idle: bool  # nothing handed out in any window: a message longer than the limit may go alone

    def fits(self, segments: int) -> bool:
        if self.remaining is None:
            return True
        if self.remaining >= segments:
            return True
        return self.idle and self.remaining > 0


def _budgets(device: Device, sims: list[SimUsage]) -> dict[int, Budget]:
    budgets = {}
    for sim in sims:
        left = [
            limit - used
            for limit, used in (
                (device.limit_per_minute, sim.minute),
                (device.limit_per_hour, sim.hour),
                (device.limit_per_day, sim.day),
            )
            if limit is not None
        ]
        idle = sim.minute == 0 and sim.hour == 0 and sim.day == 0
        budgets[sim.slot] = Budget(sim=sim, remaining=min(left) if left else None, idle=idle)
    return budgets


def _spend(budget: Budget, segments: int) -> None:
    budget.idle = False
    if budget.remaining is not None:
        budget.remaining = max(budget.remaining - segments, 0)


def _best(budgets: dict[int, Budget]) -> Budget | None:
    """The SIM with the most room left (unlimited first, then lowest slot on ties)."""
    if not budgets:
        return None
    return max(
        budgets.values(),
        key=lambda b: (b.remaining is None, b.remaining or 0, -b.sim.slot),
    )


def _candidates(device: Device, *, scan: int) -> Iterable[Message]:
    """The first `scan` claimable messages of the device and of the shared pool, locked, in id
    order (up to `scan` of each; the caller stops at its limit). Each carries
    `recipient_opted_out`, read in the same statement, so the opt-out re-check costs no query."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return (
            Message.objects.select_for_update(skip_locked=True)
            .annotate(recipient_opted_out=recipient_is_opted_out())
            .filter(direction=Direction.OUTBOUND, status=Status.QUEUED)
            .filter(Q(device_id=device.pk) | Q(device__isnull=True, app__isnull=True))
            .filter(Q(send_at__isnull=True) | Q(send_at__lte=now))
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("id")[:scan]
        )
    # One `device = X OR pool` query cannot walk the (status, device, id) index in id order:
    # PostgreSQL fetched and sorted the whole queue on every poll (39 ms for 5,000 queued).
    # Each arm here is an index walk that stops after `scan` rows it could lock; ARRAY(...)
    # keeps their FOR UPDATE SKIP LOCKED, which a UNION would not allow. Written out rather
    # than built with the ORM: compiling two querysets per poll cost more than running them.
    return Message.objects.raw(_CLAIM_SQL, _claim_params(device, scan, now))


_CLAIMABLE = (
    "direction = %s AND status = %s AND (send_at IS NULL OR send_at <= %s)"
    " AND (expires_at IS NULL OR expires_at > %s)"
)
_TABLE = Message._meta.db_table
_OPTOUTS = OptOut._meta.db_table
_CLAIM_SQL = (
    f'SELECT *, EXISTS(SELECT 1 FROM "{_OPTOUTS}" o WHERE o.phone = "{_TABLE}".to_number)'  # noqa: S608
    f' AS recipient_opted_out FROM "{_TABLE}" WHERE id = ANY('
    f'ARRAY(SELECT id FROM "{_TABLE}" WHERE {_CLAIMABLE} AND device_id = %s'
    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
    f' || ARRAY(SELECT id FROM "{_TABLE}" WHERE {_CLAIMABLE}'
    " AND device_id IS NULL AND app_id IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
    ") ORDER BY id"
)


def _claim_params(device: Device, scan: int, now: datetime) -> list[Any]:
    claimable = [Direction.OUTBOUND.value, Status.QUEUED.value, now, now]
    return [*claimable, device.pk, scan, *claimable, scan]


def claim(checkin: CheckIn, *, limit: int, detail: str) -> list[Message]:
    """Claim up to `limit` queued messages for the device that checked in; must run in the same
    transaction as the check-in (its row lock is what makes the pacing counts exact)."""
    device = checkin.device
    budgets = _budgets(device, checkin.sims)
    if (
        not device.enabled
        or limit <= 0
        or not budgets
        or all(b.remaining is not None and b.remaining <= 0 for b in budgets.values())
    ):
        note_poll(checkin, handed_out=0)
        return []
    # Look a little past `limit`: messages for a SIM that is at its limit are skipped, and the
    # next ones may be for a SIM with room. Without any limit every message fits, so the first
    # `limit` are the claim: locking more would only hide them from other polls until commit.
    if all(b.remaining is None for b in budgets.values()):
        scan = limit
    else:
        scan = min(max(limit * 2, 50), 1000)
    claims: list[tuple[Message, int | None, str]] = []
    for message in _candidates(device, scan=scan):
        if held_back(message, opted_out=getattr(message, "recipient_opted_out", False)):
            # Opted out since it was queued: cancelled here, never handed to the phone.
            cancel_for_opt_out(message.pk)
            continue
        budget = None
        if message.device_id == device.pk and message.sim_slot is not None:
            budget = budgets.get(message.sim_slot)
        if budget is None:
            budget = _best(budgets)
        if budget is None or not budget.fits(message.segments):
            continue
        _spend(budget, message.segments)
        claims.append((message, budget.sim.slot, budget.sim.number))
        if len(claims) >= limit:
            break
    mark_dispatched(device=device, claims=claims, detail=detail)
    note_poll(checkin, handed_out=len(claims))
    return [message for message, _, _ in claims]


def dispatch_replies(checkin: CheckIn, replies: list[Message], *, detail: str) -> list[Message]:
    """Instant replies (created by automation in this transaction) go out in the response, so
    they are dispatched right here, before anything after commit could see them queued."""
    mine = [
        m for m in replies if m.status == Status.QUEUED and m.device_id in (None, checkin.device.pk)
    ]
    numbers = {sim.slot: sim.number for sim in checkin.sims}
    default_slot = checkin.sims[0].slot if checkin.sims else None
    claims: list[tuple[Message, int | None, str]] = []
    for message in mine:
        slot = message.sim_slot if message.sim_slot in numbers else default_slot
        claims.append((message, slot, numbers.get(slot, "") if slot is not None else ""))
    mark_dispatched(device=checkin.device, claims=claims, detail=detail)
    return mine
