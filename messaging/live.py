"""Live inbox updates over the channel layer (consumed by the dashboard's websocket)."""

from __future__ import annotations

from typing import Any

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
