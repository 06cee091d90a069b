"""Messages handed to phones: the claim a poll makes, and what happens when a phone never
reports on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, F, PositiveSmallIntegerField, Value, When
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from devices.models import Device
from messaging.live import broadcast_inbox_many
from messaging.models import Conversation, Message, MessageEvent, Status
from messaging.signals import message_status_changed


def flag_stale_dispatches() -> int:
    """Dispatched messages without any report after SMSGATE_DISPATCH_TIMEOUT are flagged.

    They are never re-sent automatically: the phone may have sent them and only lost the
    report, and a silent re-send would text the recipient twice.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.SMSGATE_DISPATCH_TIMEOUT)
    with transaction.atomic():
        return Message.objects.filter(
            status=Status.DISPATCHED, stale=False, dispatched_at__lt=cutoff
        ).update(stale=True)


def _update_with_events(
    messages: Any, changes: dict[str, Any], *, status: str, at: datetime, detail: str
) -> None:
    """UPDATE the messages and INSERT one event for each row updated, in one statement
    (`WITH u AS (UPDATE … RETURNING id) INSERT … SELECT FROM u`): a poll handing out 50
    messages is one round trip and no 50 event objects."""
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
