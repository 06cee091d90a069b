"""Live inbox updates over the channel layer (consumed by the dashboard's websocket).

Services call `announce` / `announce_created` inside their transaction; the broadcast goes
out after commit, so nothing is shown that was not committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from messaging.models import Message
from smsgate.groups import send_to_groups

INBOX_GROUP = "inbox"


def broadcast_inbox(event: str, payload: dict[str, Any]) -> None:
    """Tell every open inbox page; a broken channel layer must never fail the request."""
    broadcast_inbox_many(event, [payload])


def broadcast_inbox_many(event: str, payloads: list[dict[str, Any]]) -> None:
    """One update per payload, as `broadcast_inbox` sends them, in one layer message.

    Several payloads travel as one `inbox.updates` group message that the consumer unpacks into
    the same frames, in order: one group send instead of one per payload (a poll handing out 50
    messages spent more time in its 50 sends than in its SQL), and one slot of each socket's
    channel capacity instead of 50.
    """
    if not payloads:
        return
    message: dict[str, Any]
    if len(payloads) == 1:
        message = {"type": "inbox.update", "event": event, "payload": payloads[0]}
    else:
        message = {"type": "inbox.updates", "event": event, "payloads": payloads}

    send_to_groups([(INBOX_GROUP, message)])


def live_payload(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "status": message.status,
        "direction": message.direction,
    }


def announce(message: Message, event: str) -> None:
    payload = live_payload(message)
    transaction.on_commit(lambda: broadcast_inbox(event, payload))


def announce_created(messages: Sequence[Message]) -> None:
    """One live event per transaction: a bulk send or an MSync batch of hundreds is one
    `messages.created` broadcast (the pages treat it as one burst), not hundreds of them."""
    if len(messages) == 1:
        announce(messages[0], "message.created")
    elif messages:
        payload = {"messages": [live_payload(m) for m in messages]}
        transaction.on_commit(lambda: broadcast_inbox("messages.created", payload))
