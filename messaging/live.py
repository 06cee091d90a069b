"""Live inbox updates over the channel layer (consumed by the dashboard's websocket)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

INBOX_GROUP = "inbox"
# A broadcast is a convenience: a channel layer that hangs must not hold a request for long.
BROADCAST_TIMEOUT = 5.0

_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def _broadcast_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop per process (a forked worker gets its own)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="inbox-broadcast", daemon=True).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


def _keeps_connections_per_loop(layer: BaseChannelLayer) -> bool:
    return type(layer).__module__.startswith("channels_redis")


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
    layer = get_channel_layer()
    if layer is None or not payloads:
        return
    message: dict[str, Any]
    if len(payloads) == 1:
        message = {"type": "inbox.update", "event": event, "payload": payloads[0]}
    else:
        message = {"type": "inbox.updates", "event": event, "payloads": payloads}

    async def send_all() -> None:
        await layer.group_send(INBOX_GROUP, message)

    try:
        if _keeps_connections_per_loop(layer):
            # channels-redis pools its connections per event loop, and async_to_sync runs each
            # call from sync code on a new loop: a new Redis connection per broadcast (~6 ms,
            # the largest single cost of an inbound SMS). One loop per process reuses them.
            future = asyncio.run_coroutine_threadsafe(send_all(), _broadcast_loop())
            try:
                future.result(timeout=BROADCAST_TIMEOUT)
            except TimeoutError:
                future.cancel()
                raise
        else:
            async_to_sync(send_all)()
    except Exception:  # the layer is a convenience, the database is the truth
        log.warning("inbox broadcast failed", exc_info=True)
