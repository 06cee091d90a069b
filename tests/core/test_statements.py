"""Statements built once per process (smsgate/statements.py, smsgate/rows.py) write and read
exactly what the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Conversation, InboundRequest
from smsgate.rows import ModelColumns, rows_where_in
from smsgate.statements import insert_sql, update_by_pk
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def _run(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def test_an_insert_stores_what_the_orm_reads_back() -> None:
    device = DeviceFactory()
    conversation = Conversation(
        phone="+254700000001", device=device, sim_slot=2, unread=3, tags=["vip", "ünïcode"]
    )
    _run(*insert_sql(Conversation, [conversation]))
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.phone, stored.device_id, stored.sim_slot, stored.unread, stored.tags) == (
        "+254700000001",
        device.pk,
        2,
        3,
        ["vip", "ünïcode"],
    )
    # auto_now_add filled in as the ORM fills it, and the object counts as saved.
    assert stored.created_at is not None
    assert conversation.created_at == stored.created_at
    assert conversation._state.adding is False


def test_many_rows_go_in_one_statement() -> None:
    rows = [Conversation(phone=f"+25470000001{i}") for i in range(3)]
    with CaptureQueriesContext(connection) as queries:
        _run(*insert_sql(Conversation, rows))
    assert len(queries) == 1
    assert Conversation.objects.count() == 3


def test_ignoring_conflicts_returns_only_the_rows_really_inserted() -> None:
    Conversation.objects.create(phone="+254700000001")
    fresh = Conversation(phone="+254700000002")
    taken = Conversation(phone="+254700000001")
    returned = _run(*insert_sql(Conversation, [taken, fresh], ignore_conflicts=True))
    assert [row[0] for row in returned] == [fresh.pk]
    assert Conversation.objects.count() == 2


def test_binary_and_json_columns_round_trip() -> None:
    entry = InboundRequest(
        source="smssync", method="POST", headers={"X-A": "1"}, body=b"\x00\xffraw"
    )
    _run(*insert_sql(InboundRequest, [entry]))
    stored = InboundRequest.objects.get(pk=entry.pk)
    assert bytes(stored.body) == b"\x00\xffraw"
    assert stored.headers == {"X-A": "1"}


def test_an_update_by_primary_key_changes_that_row_only() -> None:
    device = DeviceFactory()
    first = InboundRequest.objects.create(source="smssync")
    second = InboundRequest.objects.create(source="smssync")
    changed = update_by_pk(
        InboundRequest,
        first.pk,
        {"outcome": "accepted", "status_code": 200, "detail": "ok", "device_id": device.pk},
    )
    assert changed == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.outcome, first.status_code, first.detail, first.device_id) == (
        "accepted",
        200,
        "ok",
        device.pk,
    )
    assert second.outcome == "received"
    assert update_by_pk(InboundRequest, "req_missing", {"detail": "x"}) == 0


def test_rows_read_back_are_converted_as_the_orm_converts_them() -> None:
    made = Conversation.objects.create(phone="+254700000001", tags=["a"], unread=2)
    Conversation.objects.create(phone="+254700000002")
    [found] = rows_where_in(Conversation, "phone", ["+254700000001", "+254700000009"])
    assert found.pk == made.pk
    assert found.tags == ["a"]
    assert found.unread == 2
    assert isinstance(found.created_at, datetime)
    assert found.created_at.tzinfo is not None
    assert found._state.adding is False
    assert rows_where_in(Conversation, "phone", []) == []


def test_model_columns_load_the_concrete_columns_in_model_order() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    Conversation.objects.create(phone="+254700000001", tags=["x"], created_at=when)
    with connection.cursor() as cursor:
        names = ", ".join(str(f.column) for f in Conversation._meta.concrete_fields)
        cursor.execute(f"SELECT {names} FROM messaging_conversation")
        [row] = cursor.fetchall()
    conversation = ModelColumns(Conversation).load(row)
    assert conversation is not None
    assert conversation.tags == ["x"]
    assert conversation.phone == "+254700000001"


def test_empty_and_set_times_are_written_as_the_orm_writes_them() -> None:
    """None in a date or time field goes in as it is (the ORM's preparation of None); a set
    one, and the auto_now ones, are prepared as the ORM prepares them."""
    from django.utils import timezone

    from messaging.models import Direction, Message, Status

    sent = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    message = Message(
        direction=Direction.OUTBOUND,
        status=Status.SENT,
        to_number="+254700000001",
        body="x",
        sent_at=sent,
        send_at=None,
    )
    before = timezone.now()
    _run(*insert_sql(Message, [message]))
    stored = Message.objects.get(pk=message.pk)
    assert stored.sent_at == sent and stored.send_at is None and stored.delivered_at is None
    assert stored.created_at >= before and stored.created_at == message.created_at
    assert stored.updated_at == message.updated_at
