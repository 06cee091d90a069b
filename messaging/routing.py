"""Which line an outbound message goes out on: the app or device the sender named, the line
that last talked with the contact (sticky sender), or the pool of online phones
(docs/routing.md). A line is a phone's SIM or a provider app that can send; messaging.rerouting
moves a message to another line when its own cannot send it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    F,
    OuterRef,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from devices.models import Device, Sim
from messaging.models import Conversation, Message, ProviderApp, Status
from messaging.policy import fallback_app
from smsgate.errors import InvalidInput, Refused
from smsgate.rows import ModelColumns


@dataclass(frozen=True)
class Route:
    device: Device | None = None
    sim: Sim | None = None
    app: ProviderApp | None = None
    # The pool's best SIM has used a budget (day, hour or minute): the message waits for it.
    paced_out: bool = False

    @property
    def key(self) -> str:
        return line_key(
            self.device.pk if self.device else None,
            self.sim_slot,
            self.app.pk if self.app else None,
        )

    @property
    def sim_slot(self) -> int | None:
        return self.sim.slot if self.sim else None

    @property
    def from_number(self) -> str:
        if self.sim is not None:
            return self.sim.number
        if self.app is not None and self.app.numbers:
            return str(self.app.numbers[0])
        return ""


def line_key(device_id: str | None, sim_slot: int | None, app_id: str | None) -> str:
    """How a line is named in `Message.lines_tried`: "dev_…:1", "dev_…" (slot unknown), "app_…";
    "" for the shared phone queue (no line yet)."""
    if app_id:
        return app_id
    if device_id:
        return f"{device_id}:{sim_slot}" if sim_slot is not None else device_id
    return ""


def describe_line(device_id: str | None, sim_slot: int | None, app_id: str | None) -> str:
    """A line in words, for events and the dashboard."""
    if app_id:
        return f"provider app {app_id}"
    if device_id:
        return (
            f"device {device_id} SIM {sim_slot}" if sim_slot is not None else f"device {device_id}"
        )
    return "the shared phone queue"


def _device_unavailable(message: str) -> Refused:
    return Refused(message, code="device_unavailable")


_DEVICE = ModelColumns(Device)
_DEVICE_SIMS_SQL = (
    f"SELECT {_DEVICE.select('d')}, s.id, s.slot, s.number, s.failures_in_a_row"  # noqa: S608
    f' FROM "{Device._meta.db_table}" d LEFT JOIN "{Sim._meta.db_table}" s ON s.device_id = d.id'
    " WHERE d.id = %s ORDER BY s.slot"
)


def _sim(device: Device, sim_id: int, slot: int, number: str, failures: int) -> Sim:
    sim = Sim(id=sim_id, device=device, slot=slot, number=number, failures_in_a_row=failures)
    sim._state.adding = False
    sim._state.db = device._state.db
    return sim


def _sim_on(device: Device) -> Sim | None:
    """The SIM whose columns ride on a device row of a written-out query (sim_* aliases)."""
    row: Any = device
    if row.sim_id is None:
        return None
    return _sim(device, row.sim_id, row.sim_slot, row.sim_number, row.sim_failures)


def explicit_device_route(device_id: str, sim_slot: int | None) -> Route:
    # One written-out statement (the device with its SIMs), read with a plain cursor: the
    # ORM's select_related, then Device.objects.raw, compiled for longer than the query ran,
    # on every send that names a device.
    with connection.cursor() as cursor:
        cursor.execute(_DEVICE_SIMS_SQL, [device_id])
        rows = cursor.fetchall()
    return explicit_route_from_rows(device_id, sim_slot, rows)


# The same device and SIMs as columns and joins that another statement can carry, under the
# aliases xd and xs (messaging.conversations.contact reads them with the contact of a send:
# one statement fewer per send that names a device). The joins take the device id.
EXPLICIT_DEVICE_COLUMNS = f"{_DEVICE.select('xd')}, xs.id, xs.slot, xs.number, xs.failures_in_a_row"
EXPLICIT_DEVICE_JOINS = (
    f' LEFT JOIN "{Device._meta.db_table}" xd ON xd.id = %s'
    f' LEFT JOIN "{Sim._meta.db_table}" xs ON xs.device_id = xd.id'
)
EXPLICIT_DEVICE_ORDER = " ORDER BY xs.slot"


def explicit_route_from_rows(
    device_id: str, sim_slot: int | None, rows: Sequence[Sequence[Any]], start: int = 0
) -> Route:
    """The route to the named device from its rows (one per SIM, ordered by slot; the
    device's columns from `start`, then its SIM's), or the refusal."""
    device = _DEVICE.load(rows[0], start) if rows else None
    if device is None:
        raise _device_unavailable(f"There is no device {device_id!r}.")
    if not device.enabled:
        raise _device_unavailable(f"Device {device_id!r} is disabled.")
    at = start + _DEVICE.width
    sims = [_sim(device, *row[at : at + 4]) for row in rows if row[at] is not None]
    if sim_slot is None:
        return Route(device=device, sim=sims[0] if sims else None)
    for sim in sims:
        if sim.slot == sim_slot:
            return Route(device=device, sim=sim)
    if not sims:
        return Route(device=device, sim=Sim(device=device, slot=sim_slot))
    raise InvalidInput("sim_slot", f"Device {device_id!r} has no SIM in slot {sim_slot}.")


def sticky_route(conversation: Conversation | None) -> Route | None:
    """The line that last talked with this contact, while it can send: an enabled phone that
    is online (an offline one would strand the message until it returns), or an app."""
    if conversation is None:
        return None
    device = conversation.device if conversation.device_id else None
    if device is not None and device.enabled and device.online:
        sims = Sim.objects.filter(device_id=conversation.device_id)
        if conversation.sim_slot is not None:
            sims = sims.filter(slot=conversation.sim_slot)
        sim = sims.order_by("slot").first()
        if sim is None and conversation.sim_slot is not None:
            # The SIM row was removed since; the phone still knows its slot.
            sim = Sim(device=conversation.device, slot=conversation.sim_slot)
        return Route(device=conversation.device, sim=sim)
    app = conversation.app if conversation.app_id else None
    # An app that only receives is no line to reply on: the pool carries the reply instead.
    if app is not None and app.enabled and app.can_send:
        return Route(app=app)
    return None


# What "no limit" counts as when SIMs are ordered by the budget they have left.
_UNLIMITED = 2**31 - 1
# A SIM whose last this many sends all failed (no credit, barred, no signal) is tried last.
FAILING_AFTER = 3


def segments_since(start: datetime, *, refund_failed: bool) -> Coalesce:
    """The segments the SIM of the outer row was handed since `start`, as a subquery."""
    handed = Message.objects.filter(
        device_id=OuterRef("device_id"), sim_slot=OuterRef("slot"), dispatched_at__gte=start
    )
    if refund_failed:
        # A failed send is refunded, as the phone's own pacing does.
        handed = handed.exclude(status=Status.FAILED)
    total = handed.order_by().values("device_id").annotate(n=Sum("segments")).values("n")
    return Coalesce(Subquery(total), 0)


@dataclass(frozen=True)
class SimLine:
    """An online phone's SIM with the budget it has left in each window (None: no limit)."""

    sim: Sim
    day_left: int | None
    hour_left: int | None
    minute_left: int | None
    backlog: int = 0  # segments queued on this SIM, not handed to the phone yet

    @property
    def paced_out(self) -> bool:
        return 0 in (self.day_left, self.hour_left, self.minute_left)

    @property
    def failing(self) -> bool:
        return self.sim.failures_in_a_row >= FAILING_AFTER

    def rank(self) -> tuple[Any, ...]:
        """Best first: budget in every window, healthy, most left today, this hour, this
        minute once its backlog is served, the smaller backlog; the least recently seen phone,
        then device id and slot on ties. The backlog (segments queued on the SIM, not yet
        handed out) counts because a phone that went silent uses no budget: without it, the
        pool would pour everything onto it until it is marked offline."""
        most = [_UNLIMITED if left is None else left - self.backlog for left in self._windows()]
        seen = self.sim.device.last_seen_at
        return (
            self.paced_out,
            self.failing,
            *(-left for left in most),
            self.backlog,
            seen is not None,
            seen or 0,
            self.sim.device_id,
            self.sim.slot,
        )

    def _windows(self) -> tuple[int | None, int | None, int | None]:
        return (self.day_left, self.hour_left, self.minute_left)


_MESSAGES = Message._meta.db_table
_SIMS = Sim._meta.db_table
_DEVICES = Device._meta.db_table
_USED = (
    f'(SELECT COALESCE(SUM(m.segments), 0) FROM "{_MESSAGES}" m'  # noqa: S608
    " WHERE m.device_id = s.device_id AND m.sim_slot = s.slot AND {})"
)
_FAILED = Status.FAILED.value
# Written out rather than built with the ORM: compiling the four subqueries cost ~6 ms per
# send, five times the statement itself. Failed sends are refunded (the phones' pacing does
# the same) except in the minute window, which is about the radio's pace, not the allowance.
_LINES_SQL = (
    "SELECT d.*, s.id AS sim_id, s.slot AS sim_slot, s.number AS sim_number,"  # noqa: S608
    " s.failures_in_a_row AS sim_failures, "
    + _USED.format(f"m.dispatched_at >= %s AND m.status <> '{_FAILED}'")
    + " AS day_used, "
    + _USED.format(f"m.dispatched_at >= %s AND m.status <> '{_FAILED}'")
    + " AS hour_used, "
    + _USED.format("m.dispatched_at >= %s")
    + " AS minute_used, "
    + _USED.format(f"m.status = '{Status.QUEUED.value}'")
    + " AS backlog"
    + f' FROM "{_SIMS}" s JOIN "{_DEVICES}" d ON d.id = s.device_id'
    " WHERE d.enabled AND d.online"
)


def _left(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(limit - used, 0)


def sims_by_budget(*, exclude: Collection[str] = ()) -> list[SimLine]:
    """Online enabled devices' SIMs, best line first (SimLine.rank).
    `exclude`: line keys (messaging.rerouting leaves out the lines a message already tried; a
    key without a slot leaves out the whole device).

    One query: each SIM with its device and what it has used in each window, and its queue.
    The order is taken in Python, over a handful of rows."""
    now = timezone.now()
    windows = [now - timedelta(days=1), now - timedelta(hours=1), now - timedelta(minutes=1)]
    lines = []
    for device in Device.objects.raw(_LINES_SQL, windows):
        row: Any = device  # the SIM's columns and the usage sums ride on the device row
        if line_key(device.pk, row.sim_slot, None) in exclude or device.pk in exclude:
            continue
        sim = _sim_on(device)
        assert sim is not None  # an inner join: every row is a SIM
        lines.append(
            SimLine(
                sim=sim,
                day_left=_left(device.limit_per_day, row.day_used),
                hour_left=_left(device.limit_per_hour, row.hour_used),
                minute_left=_left(device.limit_per_minute, row.minute_used),
                backlog=int(row.backlog),
            )
        )
    lines.sort(key=SimLine.rank)
    return lines


def note_line_result(message: Message, *, failed: bool) -> None:
    """Keep the SIM's failure streak: a failed send adds one, one that went out clears it."""
    if message.device_id is None or message.sim_slot is None or message.app_id:
        return
    sim = Sim.objects.filter(device_id=message.device_id, slot=message.sim_slot)
    if failed:
        sim.update(failures_in_a_row=F("failures_in_a_row") + 1)
    else:
        sim.filter(failures_in_a_row__gt=0).update(failures_in_a_row=0)


def pool_route(*, exclude: Collection[str] = ()) -> Route:
    """The best online line (sims_by_budget). A SIM that has used its budget is chosen only when
    every SIM has (the route says so: `paced_out`); none online leaves the message in the
    shared queue, where the first device to poll claims it (limits hold messages in the queue
    rather than refusing them)."""
    # One query on the hot path however many devices there are; a device without SIMs only
    # when no online device has one.
    lines = sims_by_budget(exclude=exclude)
    if lines:
        best = lines[0]
        return Route(device=best.sim.device, sim=best.sim, paced_out=best.paced_out)
    devices = Device.objects.filter(enabled=True, online=True, sims__isnull=True)
    excluded = {key for key in exclude if key.startswith("dev_") and ":" not in key}
    device = devices.exclude(pk__in=excluded).order_by("last_seen_at").first()
    return Route(device=device) if device is not None else Route()


def choose_route(
    *,
    device_id: str | None,
    sim_slot: int | None,
    app_id: str | None,
    conversation: Conversation | None,
    pool: Callable[[], Route] = pool_route,
    explicit: Callable[[str, int | None], Route] = explicit_device_route,
) -> Route:
    if app_id:
        app = ProviderApp.objects.filter(pk=app_id).first()
        if app is None or not app.enabled:
            raise Refused(f"There is no enabled provider app {app_id!r}.", code="app_unavailable")
        if not app.can_send:
            raise _cannot_send(app)
        return Route(app=app)
    if device_id:
        return explicit(device_id, sim_slot)
    sticky = sticky_route(conversation)
    if sticky is not None and (sim_slot is None or sticky.sim_slot == sim_slot):
        return sticky
    return pool()


# --- apps that only receive -----------------------------------------------------------------


def _cannot_send(app: ProviderApp, more: str = "") -> Refused:
    return Refused(
        f"Provider app {app.pk} ({app.name}) only receives messages: it has no sending "
        f"credentials or its provider cannot send{more}.",
        code="app_cannot_send",
    )


def other_line_available() -> bool:
    """Whether a message no app is named for can go out: an enabled phone takes it from the
    pool (or the shared queue), or else the routing policy's fallback app if it can send."""
    if Device.objects.filter(enabled=True).exists():
        return True
    return fallback_app() is not None


def reply_app_id(app_id: str | None) -> str | None:
    """The app a reply to a message that came in on `app_id` is pinned to: that app when it
    can send; None when it only receives, so routing picks another line. Refused (nothing is
    written) when it only receives and no other line can carry the reply."""
    if not app_id:
        return None
    app = ProviderApp.objects.filter(pk=app_id).first()
    if app is None or app.can_send:
        return app_id
    if other_line_available():
        return None
    raise _cannot_send(app, ", and no phone can send the reply")
