"""Conversations: one per contact, pointing at its last message and the line it talks with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from devices.models import Device
from messaging.models import Conversation, Message, OptOut, ProviderApp
from messaging.routing import (
    EXPLICIT_DEVICE_COLUMNS,
    EXPLICIT_DEVICE_JOINS,
    EXPLICIT_DEVICE_ORDER,
)
from smsgate.rows import ModelColumns
from smsgate.statements import insert_sql

_CONVERSATION = ModelColumns(Conversation)
_DEVICE = ModelColumns(Device)
_APP = ModelColumns(ProviderApp)
_DEVICE_FK: Any = Conversation._meta.get_field("device")
_APP_FK: Any = Conversation._meta.get_field("app")
_CONTACT_COLUMNS = (
    f"{_CONVERSATION.select('c')}, {_DEVICE.select('d')}, {_APP.select('a')},"  # noqa: S608
    f' EXISTS (SELECT 1 FROM "{OptOut._meta.db_table}" o WHERE o.phone = %s)'
)
_CONTACT_FROM = (
    " FROM (SELECT 1 AS one) q"
    f' LEFT JOIN "{Conversation._meta.db_table}" c ON c.phone = %s'
    f' LEFT JOIN "{Device._meta.db_table}" d ON d.id = c.device_id'
    f' LEFT JOIN "{ProviderApp._meta.db_table}" a ON a.id = c.app_id'
)
_CONTACT_SQL = f"SELECT {_CONTACT_COLUMNS}{_CONTACT_FROM}"
# With the device a send names and its SIMs: one row per SIM, the contact's on each.
_CONTACT_AND_DEVICE_SQL = (
    f"SELECT {_CONTACT_COLUMNS}, {EXPLICIT_DEVICE_COLUMNS}"
    f"{_CONTACT_FROM}{EXPLICIT_DEVICE_JOINS}{EXPLICIT_DEVICE_ORDER}"
)
# Where the named device's columns start in a row of _CONTACT_AND_DEVICE_SQL.
DEVICE_AT = _CONVERSATION.width + _DEVICE.width + _APP.width + 1


def contact(phone: str) -> tuple[Conversation | None, bool]:
    """The contact's conversation (its device and app loaded, as select_related would) and
    whether the number has opted out: one written-out statement, whether or not there is a
    conversation yet. The ORM compiled this for longer than it ran, on every send."""
    with connection.cursor() as cursor:
        cursor.execute(_CONTACT_SQL, [phone, phone])
        row = cursor.fetchone()
    return _contact_from(row)


def contact_and_device(
    phone: str, device_id: str
) -> tuple[Conversation | None, bool, list[tuple[Any, ...]]]:
    """`contact` and, in the same statement, the device a send names with its SIMs: the rows
    for messaging.routing.explicit_route_from_rows (from DEVICE_AT). A send that names its
    device reads everything it routes by in one round trip instead of two."""
    with connection.cursor() as cursor:
        cursor.execute(_CONTACT_AND_DEVICE_SQL, [phone, phone, device_id])
        rows = cursor.fetchall()
    conversation, opted_out = _contact_from(rows[0])
    return conversation, opted_out, rows


def _contact_from(row: Sequence[Any]) -> tuple[Conversation | None, bool]:
    opted_out = bool(row[DEVICE_AT - 1])
    conversation = _CONVERSATION.load(row)
    if conversation is None:
        return None, opted_out
    device = _DEVICE.load(row, _CONVERSATION.width)
    app = _APP.load(row, _CONVERSATION.width + _DEVICE.width)
    _DEVICE_FK.set_cached_value(conversation, device)
    _APP_FK.set_cached_value(conversation, app)
    return conversation, opted_out


def point_conversation_at(
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
    if insert_new(Conversation, [created]):
        return created
    # Another request created this contact's conversation first.
    existing = Conversation.objects.get(phone=message.contact)
    Message.objects.filter(pk=message.pk).update(conversation=existing)
    message.conversation = existing
    return point_conversation_at(message, existing, unread_increment=unread_increment)


def mark_conversation_read(*, conversation_id: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(unread=0)


def insert_new(model: Any, objs: Sequence[Any]) -> set[str]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING pk: the pks of the rows really inserted.

    PostgreSQL and SQLite (≥ 3.35) return only the rows they inserted, so one statement per
    batch tells new rows from duplicates; bulk_create(ignore_conflicts=True) cannot.
    """
    size = max(1, connection.ops.bulk_batch_size(list(model._meta.concrete_fields), objs))
    inserted: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            sql, params = insert_sql(model, objs[start : start + size], ignore_conflicts=True)
            cursor.execute(sql, params)
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted
