"""Live inbox updates over the channel layer (consumed by the dashboard's websocket).

Services call `announce` / `announce_created` inside their transaction; the broadcast goes
out after commit, so nothing is shown that was not committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from devices.wake import MESSAGE_CANCELLED, MESSAGE_ENQUEUED, notify_phones
from messaging.models import Direction, Message, Status
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
    _wake_app_phones([message])


def _wake_app_phones(messages: Sequence[Message]) -> None:
    """The one place app phones are woken (docs/phones/sms-gateway-app.md#events): new work
    (queued for a device, or for any phone from the shared pool) and cancelled work reach
    their event streams after commit. A phone without a stream finds both on its next pull."""
    queued = [
        m
        for m in messages
        if m.direction == Direction.OUTBOUND
        and m.status == Status.QUEUED
        and m.app_id is None
        and _may_be_app_phone(m)
    ]
    if any(m.device_id is None for m in queued):
        notify_phones(MESSAGE_ENQUEUED)
    elif queued:
        notify_phones(MESSAGE_ENQUEUED, device_ids={str(m.device_id) for m in queued})
    for m in messages:
        if m.status == Status.CANCELLED and m.device_id and _may_be_app_phone(m):
            notify_phones(MESSAGE_CANCELLED, {"messageId": m.pk}, device_ids=[m.device_id])


def _may_be_app_phone(message: Message) -> bool:
    """False only when the message's device is loaded already and is not an app phone: a
    group send costs a channel-layer round trip (~5 ms on Redis), which an SMSSync or MSync
    phone has no stream to receive. Never a query: an unloaded device is woken anyway."""
    if message.device_id is None or not Message.device.is_cached(message):
        return True
    device = message.device
    return device is None or device.app_token_hash is not None


def announce_created(messages: Sequence[Message]) -> None:
    """One live event per transaction: a bulk send or an MSync batch of hundreds is one
    `messages.created` broadcast (the pages treat it as one burst), not hundreds of them."""
    if len(messages) == 1:
        announce(messages[0], "message.created")
    elif messages:
        payload = {"messages": [live_payload(m) for m in messages]}
        transaction.on_commit(lambda: broadcast_inbox("messages.created", payload))
        _wake_app_phones(messages)
