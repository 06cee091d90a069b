"""Every state change of a message goes through here: the API, the dashboard, automation,
phone and provider endpoints and tasks all call these functions.

Each function owns its transaction and schedules side effects (broker tasks, live inbox
updates) with transaction.on_commit, so nothing is announced that was not committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Value
from django.utils import timezone

from devices.models import Device
from devices.wake import MESSAGE_CANCELLED, MESSAGE_ENQUEUED, notify_phones
from messaging.encoding import segment_info
from messaging.live import broadcast_inbox, broadcast_inbox_many
from messaging.models import (
    Conversation,
    Direction,
    Message,
    MessageEvent,
    OptOut,
    ProviderApp,
    Status,
)
from messaging.routing import Route, choose_route, explicit_device_route, pool_route
from messaging.signals import message_queued, message_received, message_status_changed
from messaging.status import can_transition
from smsgate.batch import batch_scope
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


def is_opted_out(phone: str) -> bool:
    return OptOut.objects.filter(phone=phone).exists()


def _validate_times(send_at: datetime | None, expires_at: datetime | None) -> None:
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at", "expires_at must be in the future.")
    if send_at is not None and expires_at is not None and expires_at <= send_at:
        raise InvalidInput("expires_at", "expires_at must be after send_at.")


def _upsert_conversation_for(
    message: Message, conversation: Conversation | None, *, unread_increment: int = 0
) -> Conversation:
    """Point the contact's conversation at `message` (created on first contact).

    Message ids are generated in Python and foreign keys are checked at commit, so the message
    can reference a conversation inserted right after it: one write either way.
    """
    line = {"device_id": message.device_id, "sim_slot": message.sim_slot, "app_id": message.app_id}
    if not message.device_id and not message.app_id:
        line = {}
    if conversation is not None:
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_id=message.pk,
            updated_at=timezone.now(),
            unread=F("unread") + unread_increment,
            **line,
        )
        return conversation
    assert message.conversation_id
    created = Conversation(
        id=message.conversation_id,
        phone=message.contact,
        last_message_id=message.pk,
        unread=unread_increment,
        **line,
    )
    # INSERT … ON CONFLICT DO NOTHING instead of a savepoint around a plain INSERT: one
    # statement on the send path instead of three.
    if _insert_new(Conversation, [created]):
        return created
    # Another request created this contact's conversation first.
    existing = Conversation.objects.get(phone=message.contact)
    Message.objects.filter(pk=message.pk).update(conversation=existing)
    message.conversation = existing
    return _upsert_conversation_for(message, existing, unread_increment=unread_increment)


def _record_event(message: Message, status: str, detail: str = "", applied: bool = True) -> None:
    MessageEvent.objects.create(
        message=message, status=status, at=timezone.now(), detail=detail, applied=applied
    )


def _live_payload(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "status": message.status,
        "direction": message.direction,
    }


def _announce(message: Message, event: str) -> None:
    payload = _live_payload(message)
    transaction.on_commit(lambda: broadcast_inbox(event, payload))
    _wake_app_phones([message])


def _wake_app_phones(messages: Sequence[Message]) -> None:
    """The one place app phones are woken (docs/phones/sms-gateway-app.md#events): new work
    (queued for a device, or for any phone from the shared pool) and cancelled work reach
    their event streams after commit. A phone without a stream finds both on its next pull."""
    queued = [
        m
        for m in messages
        if m.direction == Direction.OUTBOUND and m.status == Status.QUEUED and m.app_id is None
    ]
    if any(m.device_id is None for m in queued):
        notify_phones(MESSAGE_ENQUEUED)
    elif queued:
        notify_phones(MESSAGE_ENQUEUED, device_ids={str(m.device_id) for m in queued})
    for m in messages:
        if m.status == Status.CANCELLED and m.device_id:
            notify_phones(MESSAGE_CANCELLED, {"messageId": m.pk}, device_ids=[m.device_id])


def _announce_created(messages: Sequence[Message]) -> None:
    """One live event per transaction: a bulk send or an MSync batch of hundreds is one
    `messages.created` broadcast (the pages treat it as one burst), not hundreds of them."""
    if len(messages) == 1:
        _announce(messages[0], "message.created")
    elif messages:
        payload = {"messages": [_live_payload(m) for m in messages]}
        transaction.on_commit(lambda: broadcast_inbox("messages.created", payload))
        _wake_app_phones(messages)


@dataclass
class _SendLookups:
    """What routing a send needs to read, loaded once per request (one contact, or a whole
    bulk list): conversations by phone, opted-out phones, and the pool route when needed."""

    conversations: dict[str, Conversation]
    opted_out: set[str]
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
) -> Message:
    """Validate, route and queue one outbound message (or schedule it for `send_at`).

    `allow_opted_out` is for automation's opt-out confirmation only: the one message a number
    that just texted STOP still receives.
    """
    phone = to_e164(to, field="to")
    validate_body(body)
    _validate_times(send_at, expires_at)
    # A known contact's opt-out is read with its conversation (one query on the hot path).
    conversation = (
        Conversation.objects.select_related("device", "app")
        .annotate(opted_out=Exists(OptOut.objects.filter(phone=OuterRef("phone"))))
        .filter(phone=phone)
        .first()
    )
    opted_out = conversation.opted_out if conversation is not None else is_opted_out(phone)
    lookups = _SendLookups(
        conversations={phone: conversation} if conversation is not None else {},
        opted_out={phone} if opted_out else set(),
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
    announce: bool = True,
) -> Message:
    """Refuse or route, then write. Refusals come before any write, so the transaction below
    needs no savepoint of its own inside a caller's transaction (an Idempotency-Key, a bulk
    send whose other recipients go on)."""
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
    info = segment_info(body)
    now = timezone.now()
    with transaction.atomic(savepoint=False):
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
            conversation_id=conversation.pk if conversation else Conversation().pk,
        )
        lookups.conversations[phone] = _save_queued(
            message, status, _route_detail(route), conversation
        )
        message_queued.send(sender=Message, message=message)
        if announce:
            _announce(message, "message.created")
    return message


_INSERT_SQL: dict[tuple[Any, bool], tuple[list[Any], str]] = {}


def _compiled_insert(
    model: Any, obj: Any, *, ignore_conflicts: bool = False
) -> tuple[str, tuple[Any, ...]]:
    """The INSERT of one new row as SQL and parameters (ON CONFLICT DO NOTHING RETURNING pk when
    `ignore_conflicts`). The SQL is built once per model: Django's insert compiler, run three
    times per recipient, cost more than the statement it built. The values are prepared as
    that compiler prepares them (pre_save, then get_db_prep_save)."""
    from django.db.models import AutoField

    key = (model, ignore_conflicts)
    if key not in _INSERT_SQL:
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoField)]
        sql = (
            f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608
            f" VALUES ({', '.join(['%s'] * len(fields))})"
        )
        if ignore_conflicts:
            sql += f" ON CONFLICT DO NOTHING RETURNING {table}.{quote(model._meta.pk.column)}"
        _INSERT_SQL[key] = (fields, sql)
    fields, sql = _INSERT_SQL[key]
    obj._prepare_related_fields_for_save(operation_name="save")
    params = tuple(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    return sql, params


def _conversation_line(message: Message) -> dict[str, Any]:
    if not message.device_id and not message.app_id:
        return {}
    return {"device_id": message.device_id, "sim_slot": message.sim_slot, "app_id": message.app_id}


def _save_queued(
    message: Message, status: str, detail: str, conversation: Conversation | None
) -> Conversation:
    """Write a new outbound message, its first event and its conversation's upsert.

    On PostgreSQL the three writes are one statement (the message and the event as
    data-modifying WITH parts of the conversation's INSERT or UPDATE): a send is a third of the
    round trips it was, and a bulk send one statement per recipient instead of three. The
    foreign keys between them are checked at commit, so the order within the statement does not
    matter. Other databases take the three statements.
    """
    event = MessageEvent(message=message, status=status, at=timezone.now(), detail=detail)
    if connection.vendor != "postgresql":
        message.save(force_insert=True)
        event.save(force_insert=True)
        return _upsert_conversation_for(message, conversation)
    from django.db.models.sql import UpdateQuery

    message_sql, message_params = _compiled_insert(Message, message)
    event_sql, event_params = _compiled_insert(MessageEvent, event)
    created: Conversation | None = None
    if conversation is not None:
        update = cast(
            UpdateQuery, Conversation.objects.filter(pk=conversation.pk).query.chain(UpdateQuery)
        )
        update.add_update_values(
            {
                "last_message_id": message.pk,
                "updated_at": timezone.now(),
                **_conversation_line(message),
            }
        )
        final_sql, final_params = update.get_compiler(connection=connection).as_sql()
    else:
        assert message.conversation_id
        created = Conversation(
            id=message.conversation_id,
            phone=message.contact,
            last_message_id=message.pk,
            unread=0,
            **_conversation_line(message),
        )
        final_sql, final_params = _compiled_insert(Conversation, created, ignore_conflicts=True)
    sql = f"WITH m AS ({message_sql}), e AS ({event_sql}) {final_sql}"
    with connection.cursor() as cursor:
        cursor.execute(sql, (*message_params, *event_params, *final_params))
        inserted = bool(cursor.fetchall()) if created is not None else True
    for obj in (message, event):
        obj._state.adding = False
        obj._state.db = connection.alias
    if conversation is not None:
        return conversation
    assert created is not None
    if inserted:
        created._state.adding = False
        created._state.db = connection.alias
        return created
    # Another request created this contact's conversation first.
    existing = Conversation.objects.get(phone=message.contact)
    Message.objects.filter(pk=message.pk).update(conversation=existing)
    message.conversation = existing
    return _upsert_conversation_for(message, existing)


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
                    announce=False,
                )
            except DomainError as exc:
                results.append(BulkResult(to=phone, error=exc))
            else:
                results.append(BulkResult(to=phone, message=message))
        _announce_created([r.message for r in results if r.message is not None])
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
    _announce(message, "message.status")
    return True


def record_status(
    *,
    message_id: str,
    status: str,
    detail: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> bool:
    """Apply a report (phone, provider callback, task) to a message; never moves backwards."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise NotFound(f"There is no message {message_id!r}.")
        return _apply(message, status, detail=detail, reason=reason, at=at)


# --- inbound ----------------------------------------------------------------------------------


@dataclass
class InboundSMS:
    """An SMS as any source reports it, already parsed from its wire format."""

    from_number: str
    body: str
    source: str  # "smssync", "msync", "twilio", ...
    to_number: str = ""
    received_at: datetime | None = None
    device: Device | None = None
    sim_slot: int | None = None
    app: ProviderApp | None = None
    source_id: str = ""  # the sender's own id for the message (SMSSync message_id, MessageSid…)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class InboundResult:
    message: Message
    created: bool
    replies: list[Message] = field(default_factory=list)


def dedup_key_for(sms: InboundSMS) -> str:
    """Same line + same source id, or same line + sender + timestamp + text, is one message."""
    owner = sms.device.pk if sms.device else (sms.app.pk if sms.app else sms.source)
    if sms.source_id:
        return f"{owner}:id:{sms.source_id}"[:200]
    stamp = sms.received_at.isoformat() if sms.received_at else ""
    digest = hashlib.sha256(f"{sms.from_number}\x00{stamp}\x00{sms.body}".encode()).hexdigest()
    return f"{owner}:h:{digest}"


def receive_inbound(sms: InboundSMS) -> InboundResult:
    """Store one inbound SMS exactly once and run what it triggers, in one transaction.

    A duplicate (a phone's or provider's retry) returns the original message with
    created=False and triggers nothing again.
    """
    return receive_inbound_batch([sms])[0]


def mark_conversation_read(*, conversation_id: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(unread=0)


# --- phones: batches and hand-outs (used by devices' SMSSync and MSync endpoints) --------------


def receive_inbound_batch(batch: Sequence[InboundSMS]) -> list[InboundResult]:
    """`receive_inbound` for many messages at once (an MSync batch of up to 500, or one).

    Same rules and hooks, fewer round trips: one INSERT … ON CONFLICT DO NOTHING for all
    messages, whose RETURNING tells the new rows from retries (no savepoint per message), and
    one write per touched conversation. Results are in input order.
    """
    from smsgate.ids import new_cnv_id

    if not batch:
        return []
    # No savepoint of its own: nothing in here catches an error, and a savepoint costs two
    # statements on a path phones hit for every message.
    with transaction.atomic(savepoint=False):
        phones = {sms.from_number for sms in batch}
        known = {c.phone: c for c in Conversation.objects.filter(phone__in=phones)}
        fresh_ids = {phone: new_cnv_id() for phone in phones if phone not in known}
        messages: list[Message] = []
        for sms in batch:
            info = segment_info(sms.body)
            conversation = known.get(sms.from_number)
            messages.append(
                Message(
                    direction=Direction.INBOUND,
                    status=Status.RECEIVED,
                    from_number=sms.from_number,
                    to_number=sms.to_number,
                    body=sms.body,
                    encoding=info.encoding,
                    segments=info.segments,
                    device=sms.device,
                    sim_slot=sms.sim_slot,
                    app=sms.app,
                    source=sms.source,
                    metadata=sms.metadata,
                    received_at=sms.received_at or timezone.now(),
                    dedup_key=dedup_key_for(sms),
                    provider_message_id=sms.source_id[:100],
                    conversation_id=conversation.pk if conversation else fresh_ids[sms.from_number],
                )
            )
        stored = _insert_new(Message, messages)
        created = [m for m in messages if m.pk in stored]
        originals: dict[str, Message] = {}
        if len(created) < len(messages):
            duplicate_keys = [m.dedup_key for m in messages if m.pk not in stored]
            originals = {
                m.dedup_key or "": m for m in Message.objects.filter(dedup_key__in=duplicate_keys)
            }

        by_phone: dict[str, list[Message]] = {}
        for message in created:
            by_phone.setdefault(message.from_number, []).append(message)
        new_conversations = []
        for phone, group in by_phone.items():
            last = group[-1]
            line = {"device_id": last.device_id, "sim_slot": last.sim_slot, "app_id": last.app_id}
            if phone in known:
                Conversation.objects.filter(pk=known[phone].pk).update(
                    last_message_id=last.pk,
                    updated_at=timezone.now(),
                    unread=F("unread") + len(group),
                    **line,
                )
            else:
                new_conversations.append(
                    Conversation(
                        id=fresh_ids[phone],
                        phone=phone,
                        last_message_id=last.pk,
                        unread=len(group),
                        **line,
                    )
                )
        if new_conversations:
            # Another request may have created one of these contacts since we looked: our
            # messages then join the conversation that won.
            inserted = _insert_new(Conversation, new_conversations)
            lost = [c for c in new_conversations if c.pk not in inserted]
            if lost:
                _adopt_lost_conversations(lost, by_phone)
            # The receivers get the conversations this transaction created, as they are (no
            # one else can see them yet): automation's tag action need not read them back.
            for conversation in new_conversations:
                if conversation.pk in inserted:
                    for message in by_phone[conversation.phone]:
                        message.conversation = conversation

        results: list[InboundResult] = []
        # One scope for the batch: receivers read what is the same for every message once.
        with batch_scope():
            for message in messages:
                if message.pk not in stored:
                    original = originals.get(message.dedup_key or "", message)
                    results.append(InboundResult(message=original, created=False))
                    continue
                replies: list[Message] = []
                message_received.send(sender=Message, message=message, replies=replies)
                results.append(InboundResult(message=message, created=True, replies=replies))
        _announce_created(created)
    return results


def _insert_new(model: Any, objs: Sequence[Any]) -> set[str]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING pk: the pks of the rows really inserted.

    PostgreSQL and SQLite (≥ 3.35) return only the rows they inserted, so one statement per
    batch tells new rows from duplicates; bulk_create(ignore_conflicts=True) cannot.
    """
    from django.db import connection
    from django.db.models.constants import OnConflict
    from django.db.models.sql import InsertQuery

    fields = list(model._meta.concrete_fields)
    size = max(1, connection.ops.bulk_batch_size(fields, objs))
    inserted: set[str] = set()
    for start in range(0, len(objs), size):
        chunk = list(objs[start : start + size])
        for obj in chunk:
            obj._prepare_related_fields_for_save(operation_name="bulk_create")
        query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
        query.insert_values(fields, chunk)
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = [model._meta.pk]
        with connection.cursor() as cursor:
            for sql, params in compiler.as_sql():
                cursor.execute(sql, params)
                inserted.update(row[0] for row in cursor.fetchall())
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return inserted


def _adopt_lost_conversations(
    attempted: list[Conversation], by_phone: dict[str, list[Message]]
) -> None:
    for conversation in attempted:
        winner = Conversation.objects.get(phone=conversation.phone)
        group = by_phone[conversation.phone]
        Message.objects.filter(pk__in=[m.pk for m in group]).update(conversation=winner)
        for message in group:
            message.conversation_id = winner.pk
        _upsert_conversation_for(group[-1], winner, unread_increment=len(group))


def _update_with_events(
    messages: Any, changes: dict[str, Any], *, status: str, at: datetime, detail: str
) -> None:
    """UPDATE the messages and INSERT one event for each row updated, in one statement
    (`WITH u AS (UPDATE … RETURNING id) INSERT … SELECT FROM u`): a poll handing out 50
    messages is one round trip and no 50 event objects."""
    from django.db.models.sql import UpdateQuery

    update = cast(UpdateQuery, messages.query.chain(UpdateQuery))
    update.add_update_values(changes)
    update_sql, update_params = update.get_compiler(connection=connection).as_sql()
    event_table = connection.ops.quote_name(MessageEvent._meta.db_table)
    message_pk = connection.ops.quote_name(str(Message._meta.pk.column))
    sql = (
        f"WITH u AS ({update_sql} RETURNING {message_pk}) "  # noqa: S608
        f'INSERT INTO {event_table} ("message_id", "status", "at", "detail", "applied")'
        f" SELECT u.{message_pk}, %s, %s, %s, true FROM u"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*update_params, status, at, detail))


def mark_dispatched(
    *,
    device: Device,
    claims: Sequence[tuple[Message, int | None, str]],
    detail: str,
) -> None:
    """Hand queued messages to a phone: `claims` are (message, SIM slot, SIM number).

    The caller holds the rows (claimed with SELECT … FOR UPDATE SKIP LOCKED, or created them in
    this transaction). One UPDATE and one INSERT of events for the lot, then the usual signal
    per message. Shared-pool messages (no device yet) take this device and SIM, and so does
    their conversation: the contact's next messages come from the same number.
    """
    from django.db.models import Case, CharField, PositiveSmallIntegerField, When

    if not claims:
        return
    now = timezone.now()
    slots: dict[int | None, list[str]] = {}
    numbers: dict[str, list[str]] = {}
    sticky: dict[int | None, list[str]] = {}
    for message, slot, number in claims:
        slots.setdefault(slot, []).append(message.pk)
        if number and not message.from_number:
            numbers.setdefault(number, []).append(message.pk)
        if message.device_id is None and message.conversation_id:
            sticky.setdefault(slot, []).append(message.conversation_id)
    changes: dict[str, Any] = {
        "status": Status.DISPATCHED,
        "dispatched_at": now,
        "updated_at": now,
        "device_id": device.pk,
        "sim_slot": Case(
            *[When(pk__in=ids, then=Value(slot)) for slot, ids in slots.items()],
            default=F("sim_slot"),
            output_field=PositiveSmallIntegerField(),
        ),
    }
    if numbers:
        changes["from_number"] = Case(
            *[When(pk__in=ids, then=Value(number)) for number, ids in numbers.items()],
            default=F("from_number"),
            output_field=CharField(),
        )
    claimed = Message.objects.filter(pk__in=[m.pk for m, _, _ in claims])
    if connection.vendor == "postgresql":
        _update_with_events(claimed, changes, status=Status.DISPATCHED, at=now, detail=detail)
    else:
        claimed.update(**changes)
        MessageEvent.objects.bulk_create(
            MessageEvent(message=m, status=Status.DISPATCHED, at=now, detail=detail)
            for m, _, _ in claims
        )
    for slot, conversation_ids in sticky.items():
        Conversation.objects.filter(pk__in=conversation_ids).update(
            device_id=device.pk, sim_slot=slot, app=None
        )
    for message, slot, number in claims:
        previous = message.status
        message.status = Status.DISPATCHED
        message.dispatched_at = now
        message.device = device
        message.sim_slot = slot
        if number and not message.from_number:
            message.from_number = number
        message_status_changed.send(
            sender=Message,
            message=message,
            previous=previous,
            status=Status.DISPATCHED,
            detail=detail,
        )
    payloads = [
        {
            "message_id": m.pk,
            "conversation_id": m.conversation_id,
            "status": Status.DISPATCHED,
            "direction": m.direction,
        }
        for m, _, _ in claims
    ]

    transaction.on_commit(lambda: broadcast_inbox_many("message.status", payloads))
