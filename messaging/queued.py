"""Writing a new outbound message: the message, its first event and its conversation's upsert,
in one statement on PostgreSQL (messaging.services decides what to write; this writes it)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from messaging.conversations import point_conversation_at
from messaging.models import Conversation, Message, MessageEvent
from smsgate.statements import insert_sql, update_sql


def _conversation_line(message: Message) -> dict[str, Any]:
    if not message.device_id and not message.app_id:
        return {}
    return {"device_id": message.device_id, "sim_slot": message.sim_slot, "app_id": message.app_id}


def writes_alone() -> bool:
    """Whether save_queued's writes need no transaction around them: on PostgreSQL, outside
    any transaction, they are one statement, which commits by itself (its foreign keys are
    checked at its end); BEGIN and COMMIT were two round trips more per send. The caller's
    after-commit side effects then run as soon as they are registered, after the write."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def save_queued(
    message: Message, status: str, detail: str, conversation: Conversation | None
) -> Conversation:
    """Write a new outbound message, its first event and its conversation's upsert.

    On PostgreSQL the three writes are one statement (the message and the event as
    data-modifying WITH parts of the conversation's INSERT or UPDATE): a send is a third of the
    round trips it was, and a bulk send one statement per recipient instead of three. The
    foreign keys between them are checked at commit, so the order within the statement does not
    matter. Other databases take the three statements, in the caller's transaction.
    """
    event = MessageEvent(message=message, status=status, at=timezone.now(), detail=detail)
    if connection.vendor != "postgresql":
        message.save(force_insert=True)
        event.save(force_insert=True)
        return point_conversation_at(message, conversation)
    message_sql, message_params = insert_sql(Message, [message])
    event_sql, event_params = insert_sql(MessageEvent, [event])
    created: Conversation | None = None
    if conversation is not None:
        final_sql, final_params = update_sql(
            Conversation,
            conversation.pk,
            {
                "last_message_id": message.pk,
                "updated_at": timezone.now(),
                **_conversation_line(message),
            },
        )
    else:
        assert message.conversation_id
        created = Conversation(
            id=message.conversation_id,
            phone=message.contact,
            last_message_id=message.pk,
            unread=0,
            **_conversation_line(message),
        )
        final_sql, final_params = insert_sql(Conversation, [created], ignore_conflicts=True)
    sql = f"WITH m AS ({message_sql}), e AS ({event_sql}) {final_sql}"
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, (*message_params, *event_params, *final_params))
            inserted = bool(cursor.fetchall()) if created is not None else True
    except IntegrityError:
        if created is None or connection.in_atomic_block:
            raise
        # Committed alone (writes_alone), the statement that met a conversation another
        # request created first left the message pointing at one that does not exist: its
        # foreign key failed and nothing was written. In a transaction, the repair below runs
        # before that check.
        with transaction.atomic():
            return save_queued(message, status, detail, None)
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
    return point_conversation_at(message, existing)
