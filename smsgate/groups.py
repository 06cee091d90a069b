"""Sending to channel-layer groups from sync code: the live inbox and the phones' event
streams (docs/operations.md#live-inbox-on-redis).

A group send is a convenience, the database is the truth: a broken or hanging channel layer
is logged and never fails the request or task that made the change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

# A group send must not hold a request for long.
SEND_TIMEOUT = 5.0

_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def _send_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop per process (a forked worker gets its own)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="group-send", daemon=True).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


def _keeps_connections_per_loop(layer: BaseChannelLayer) -> bool:
    # By its classes, not its own module: production runs a subclass that lives in smsgate
    # (smsgate/channel_layer.py), which a test of the module name alone sent down the
    # new-loop-per-send path.
    return any(cls.__module__.startswith("channels_redis") for cls in type(layer).__mro__)


def send_to_groups(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Send each (group, message) now; failures are logged, never raised."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        if _keeps_connections_per_loop(layer):
            # Most of the time no inbox page is open: a look from this thread (one round trip)
            # spares the hop to the loop and the group sends that would reach nobody.
            members = getattr(layer, "groups_with_members", None)
            live = members(group for group, _ in messages) if members is not None else None
            if live is not None:
                messages = [(group, message) for group, message in messages if group in live]
                if not messages:
                    return
            # channels-redis pools its connections per event loop, and async_to_sync runs each
            # call from sync code on a new loop: a new Redis connection per send (~6 ms, once
            # the largest single cost of an inbound SMS). One loop per process reuses them.
            future = asyncio.run_coroutine_threadsafe(send_all(), _send_loop())
            try:
                future.result(timeout=SEND_TIMEOUT)
            except TimeoutError:
                future.cancel()
                raise
        else:
            async_to_sync(send_all)()
    except Exception:
        log.warning("channel layer group send failed", exc_info=True)
