"""Outbound messages and their statuses: sending (one, bulk), cancelling, and applying a status.
The API, the dashboard, automation, the pipeline's reports and tasks all call these functions;
storing inbound SMS is messaging.inbox, handing messages to phones messaging.dispatch.

Each function owns its transaction and schedules side effects (broker tasks, live inbox
updates) with transaction.on_commit, so nothing is announced that was not committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from messaging import live
from messaging.conversations import DEVICE_AT, contact, contact_and_device
from messaging.encoding import segment_info
from messaging.models import (
    Conversation,
    Direction,
    Message,
    MessageEvent,
    OptOut,
    Status,
)
from messaging.queued import save_queued, writes_alone
from messaging.quiet import QuietHoursCheck
from messaging.rerouting import reroute_failed
from messaging.routing import (
    Route,
    choose_route,
    explicit_device_route,
    explicit_route_from_rows,
    note_line_result,
    pool_route,
)
from messaging.signals import message_queued, message_status_changed
from messaging.status import can_transition
from smsgate.errors import Conflict, DomainError, InvalidInput, NotFound, Refused
from smsgate.phones import to_e164

MAX_BODY_CHARS = 1600
MAX_BULK_RECIPIENTS = 1000


# --- outbound -------------------------------------------------------------------------------


def validate_body(body: Any) -> str:
    if not isinstance(body, str) or not body:
        raise InvalidInput("body", "The message body must be a non-empty string.")
    if len(body) > MAX_BODY_CHARS:
        raise InvalidInput("body", f"The message body is longer than {MAX_BODY_CHARS} characters.")
    return body


def _validate_times(send_at: datetime | None, expires_at: datetime | None) -> None:
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at", "expires_at must be in the future.")
    if send_at is not None and expires_at is not None and expires_at <= send_at:
        raise InvalidInput("expires_at", "expires_at must be after send_at.")


def _record_event(message: Message, status: str, detail: str = "", applied: bool = True) -> None:
    MessageEvent.objects.create(
        message=message, status=status, at=timezone.now(), detail=detail, applied=applied
    )


@dataclass
class _SendLookups:
    """What routing a send needs to read, loaded once per request (one contact, or a whole
    bulk list): conversations by phone, opted-out phones, and the pool route when needed."""

    conversations: dict[str, Conversation]
    opted_out: set[str]
    # Reads the policy at the first send that respects quiet hours, never otherwise.
    quiet: QuietHoursCheck = field(default_factory=QuietHoursCheck)
    _pool: Route | None = None
    # The device (or the refusal) a bulk send names, read once for the whole list.
    _explicit: dict[tuple[str, int | None], Route | DomainError] = field(default_factory=dict)

    def pool_route(self) -> Route:
        if self._pool is None:
            self._pool = pool_route()
        return self._pool

    def explicit_route(self, device_id: str, sim_slot: int | None) -> Route:
        key = (device_id, sim_slot)
        if key not in self._explicit:
            try:
                self._explicit[key] = explicit_device_route(device_id, sim_slot)
            except DomainError as exc:
                self._explicit[key] = exc
        found = self._explicit[key]
        if isinstance(found, DomainError):
            raise found
        return found


def send_message(
    *,
    to: str,
    body: str,
    device_id: str | None = None,
    sim_slot: int | None = None,
    app_id: str | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    source: str = "api",
    allow_opted_out: bool = False,
    failover: bool = False,
    respect_quiet_hours: bool = False,
) -> Message:
    """Validate, route and queue one outbound message (or schedule it for `send_at`).

    `allow_opted_out` is for automation's opt-out confirmation only: the one message a number
    that just texted STOP still receives. A message whose device or app the caller named is
    pinned there unless `failover` (docs/routing.md#pinned-messages).
    """
    phone = to_e164(to, field="to")
    validate_body(body)
    _validate_times(send_at, expires_at)
    # The contact's conversation and opt-out in one statement, known contact or not, and the
    # device the send names (routing reads nothing else when it names one).
    explicit: dict[tuple[str, int | None], Route | DomainError] = {}
    if device_id and not app_id:
        conversation, opted_out, rows = contact_and_device(phone, device_id)
        try:
            explicit[device_id, sim_slot] = explicit_route_from_rows(
                device_id, sim_slot, rows, DEVICE_AT
            )
        except DomainError as exc:
            explicit[device_id, sim_slot] = exc
    else:
        conversation, opted_out = contact(phone)
    lookups = _SendLookups(
        conversations={phone: conversation} if conversation is not None else {},
        opted_out={phone} if opted_out else set(),
        quiet=QuietHoursCheck(recipients=(phone,), send_at=send_at),
        _explicit=explicit,
    )
    return _queue_message(
        phone=phone,
        body=body,
        device_id=device_id,
        sim_slot=sim_slot,
        app_id=app_id,
        send_at=send_at,
        expires_at=expires_at,
        metadata=metadata,
        source=source,
        allow_opted_out=allow_opted_out,
        failover=failover,
        respect_quiet_hours=respect_quiet_hours,
        lookups=lookups,
    )


def _queue_message(
    *,
    phone: str,
    body: str,
    device_id: str | None,
    sim_slot: int | None,
    app_id: str | None,
    send_at: datetime | None,
    expires_at: datetime | None,
    metadata: dict[str, Any] | None,
    source: str,
    allow_opted_out: bool,
    lookups: _SendLookups,
    failover: bool = False,
    respect_quiet_hours: bool = False,
    announce: bool = True,
) -> Message:
    """Refuse or route, then write. Refusals come before any write, so the transaction below
    needs no savepoint of its own inside a caller's transaction (an Idempotency-Key, a bulk
    send whose other recipients go on). Outside one, on PostgreSQL, the write is a single
    statement that needs no transaction (queued.writes_alone)."""
    if phone in lookups.opted_out and not allow_opted_out:
        raise Refused(f"{phone} has opted out of messages.", code="recipient_opted_out")
    conversation = lookups.conversations.get(phone)
    route = choose_route(
        device_id=device_id,
        sim_slot=sim_slot,
        app_id=app_id,
        conversation=conversation,
        pool=lookups.pool_route,
        explicit=lookups.explicit_route,
    )
    hold = lookups.quiet.hold(phone) if respect_quiet_hours else None
    send_at = hold.until if hold is not None else send_at
    info = segment_info(body)
    now = timezone.now()
    with contextlib.nullcontext() if writes_alone() else transaction.atomic(savepoint=False):
        status = Status.SCHEDULED if send_at is not None and send_at > now else Status.QUEUED
        message = Message(
            direction=Direction.OUTBOUND,
            status=status,
            to_number=phone,
            from_number=route.from_number,
            body=body,
            encoding=info.encoding,
            segments=info.segments,
            device=route.device,
            sim_slot=route.sim_slot if route.device else None,
            app=route.app,
            source=source,
            metadata=metadata or {},
            send_at=send_at,
            expires_at=expires_at,
            conversation_id=conversation.pk if conversation else _new_conversation_id(),
            pinned=bool(device_id or app_id) and not failover,
            routed_at=now,
        )
        detail = _route_detail(route) if hold is None else f"{hold.detail}; {_route_detail(route)}"
        lookups.conversations[phone] = save_queued(message, status, detail, conversation)
        message_queued.send(sender=Message, message=message)
        if announce:
            live.announce(message, "message.created")
    return message


def _new_conversation_id() -> str:
    # The id a new Conversation() would get, without building one.
    return str(Conversation._meta.get_field("id").get_default())


def _route_detail(route: Route) -> str:
    if route.app is not None:
        return f"routed to provider app {route.app.pk}"
    if route.device is not None:
        slot = f" SIM {route.sim_slot}" if route.sim_slot else ""
        return f"routed to device {route.device.pk}{slot}"
    return "waiting in the shared queue for the first device that polls"


@dataclass
class BulkResult:
    to: str
    message: Message | None = None
    error: DomainError | None = None


def send_bulk(
    *,
    recipients: Sequence[str],
    body: str,
    device_id: str | None = None,
    sim_slot: int | None = None,
    app_id: str | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    source: str = "api",
    allow_opted_out: bool = False,
    failover: bool = False,
    respect_quiet_hours: bool = False,
) -> list[BulkResult]:
    """One message per recipient, in order; a refused recipient does not stop the others.

    Opt-outs, conversations and the pool route are read once for the whole list and everything
    is written in one transaction: 1000 recipients cost about 3 writes each (plus a read of the
    SIM for a contact with a sticky line), not 8 queries and a commit each (which made a full
    bulk outlast an HTTP worker's timeout).
    """
    if not recipients:
        raise InvalidInput("to", "At least one recipient is required.")
    if len(recipients) > MAX_BULK_RECIPIENTS:
        raise InvalidInput("to", f"At most {MAX_BULK_RECIPIENTS} recipients per request.")
    validate_body(body)
    _validate_times(send_at, expires_at)
    parsed: list[tuple[str, str | DomainError]] = []
    for raw in recipients:
        try:
            parsed.append((str(raw), to_e164(str(raw), field="to")))
        except DomainError as exc:
            parsed.append((str(raw), exc))
    phones = {phone for _, phone in parsed if isinstance(phone, str)}
    lookups = _SendLookups(
        conversations={
            c.phone: c
            for c in Conversation.objects.select_related("device", "app").filter(phone__in=phones)
        },
        opted_out=set(OptOut.objects.filter(phone__in=phones).values_list("phone", flat=True)),
        quiet=QuietHoursCheck(recipients=phones, send_at=send_at),
    )
    results: list[BulkResult] = []
    with transaction.atomic():
        for raw, phone in parsed:
            if not isinstance(phone, str):
                results.append(BulkResult(to=raw, error=phone))
                continue
            try:
                message = _queue_message(
                    phone=phone,
                    body=body,
                    device_id=device_id,
                    sim_slot=sim_slot,
                    app_id=app_id,
                    send_at=send_at,
                    expires_at=expires_at,
                    metadata=metadata,
                    source=source,
                    allow_opted_out=allow_opted_out,
                    lookups=lookups,
                    failover=failover,
                    respect_quiet_hours=respect_quiet_hours,
                    announce=False,
                )
            except DomainError as exc:
                results.append(BulkResult(to=phone, error=exc))
            else:
                results.append(BulkResult(to=phone, message=message))
        live.announce_created([r.message for r in results if r.message is not None])
    return results


def cancel_message(*, message_id: str) -> Message:
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.direction != Direction.OUTBOUND:
            raise NotFound(f"There is no outbound message {message_id!r}.")
        if not can_transition(message.status, Status.CANCELLED):
            raise Conflict(
                f"Message {message_id} is {message.status} and can no longer be cancelled.",
                code="not_cancellable",
            )
        _apply(message, Status.CANCELLED, detail="cancelled by request", reason="cancelled")
    return message


# --- status reports ---------------------------------------------------------------------------

_TIMESTAMP_FIELD = {
    Status.DISPATCHED: "dispatched_at",
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
}


def _apply(
    message: Message,
    status: str,
    *,
    detail: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> bool:
    """Apply a status to a locked message row; returns whether it moved.

    A report that would move the status backwards is still recorded as an event (applied=False).
    """
    previous = message.status
    if not can_transition(previous, status):
        _record_event(
            message, status, detail=detail or f"not applied: message is {previous}", applied=False
        )
        return False
    message.status = status
    fields = ["status", "updated_at"]
    if reason or status in (Status.FAILED, Status.CANCELLED, Status.EXPIRED):
        message.reason = reason or detail or status
        fields.append("reason")
    stamp = _TIMESTAMP_FIELD.get(Status(status))
    if stamp:
        setattr(message, stamp, at or timezone.now())
        fields.append(stamp)
    if status == Status.SENT and message.dispatched_at is None:
        message.dispatched_at = message.sent_at
        fields.append("dispatched_at")
    message.save(update_fields=fields)
    _record_event(message, status, detail=detail or reason)
    message_status_changed.send(
        sender=Message, message=message, previous=previous, status=status, detail=detail
    )
    live.announce(message, "message.status")
    return True


_LINE_OUTCOMES = (Status.SENT, Status.DELIVERED, Status.FAILED)


def record_status(
    *,
    message_id: str,
    status: str,
    detail: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> bool:
    """Apply a report (phone, provider callback, task) to a message; never moves backwards.
    A failure its line is to blame for moves an unpinned message to another line instead
    (messaging.rerouting); that counts as applied."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise NotFound(f"There is no message {message_id!r}.")
        if message.status in (Status.QUEUED, Status.DISPATCHED) and status in _LINE_OUTCOMES:
            # The line's first word on this message: it sent it, or could not.
            note_line_result(message, failed=status == Status.FAILED)
        if status == Status.FAILED and reroute_failed(message, reason or detail):
            return True
        return _apply(message, status, detail=detail, reason=reason, at=at)
