"""The Redis channel layer, made to outlive Redis hiccups and restarts.

channels' consumer loop awaits `channel_layer.receive()` and lets any exception end the ASGI
application: daphne then closes the websocket. channels-redis reads with a blocking pop of
`brpop_timeout` (5 s) and raises whatever redis-py raises, so one slow reply (a busy machine) or
a Redis restart used to drop every live inbox socket. This layer keeps the socket: a failed read
is retried with backoff, and once Redis answers again the group memberships of this process are
written back, since a restarted Redis without persistence has forgotten them (and a socket that
is in no group would stay open but never hear a broadcast).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis
from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# Redis errors that say "the server is slow or away", not "the request is wrong".
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_FIRST_DELAY = 0.1
RETRY_MAX_DELAY = 2.0
# How stale a membership lost to a Redis restart may get before this process writes it back.
GROUP_REFRESH = 10.0
# How long the request thread's look at a group may wait for Redis (smsgate/groups.py gives
# a whole group send as long); the layer's own sockets wait longer, for the blocking pop.
MEMBERS_TIMEOUT = 5.0


def redis_channel_layer_hosts(url: str) -> list[dict[str, Any]]:
    """The `hosts` of CHANNEL_LAYERS for one Redis URL, with timeouts that suit a blocking pop.

    redis-py 8 gives every connection a 5 s socket timeout by default, exactly as long as the
    layer's 5 s BZPOPMIN: on a busy machine the empty answer of the pop arrives a moment after
    the socket gave up, and the read fails with "Timeout reading from …" (worse, a message the
    server popped just then would be lost with the connection). The socket timeout must be well
    above the pop; a dead server is still noticed by the connect timeout, by keepalive and by a
    health-check PING on connections that sat idle. A failed command is retried once on a fresh
    connection: pooled connections are stale after a Redis restart.
    """
    return [
        {
            "address": url,
            "socket_timeout": RedisChannelLayer.brpop_timeout + 25,
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "health_check_interval": 30,
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        }
    ]


class ResilientRedisChannelLayer(RedisChannelLayer):
    """RedisChannelLayer whose receive survives timeouts and restarts of Redis."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # group -> channels of this process in it, to re-join after Redis lost them.
        self._memberships: dict[str, set[str]] = {}
        self._rejoined_at = time.monotonic()
        # Blocking clients per host, for groups_with_members (made on first use).
        self._sync_clients: dict[int, redis.Redis] = {}
        self._sync_lock = threading.Lock()

    def _sync_client(self, index: int) -> redis.Redis | None:
        """A blocking client of host `index`, with the host's settings; None for a host given
        other than by address (sentinels), which only the layer's own pools know how to reach."""
        with self._sync_lock:
            client = self._sync_clients.get(index)
            if client is None:
                host = dict(self.hosts[index])
                address = host.pop("address", None)
                if not isinstance(address, str):
                    return None
                host["socket_timeout"] = MEMBERS_TIMEOUT
                client = redis.Redis.from_url(address, **host)
                self._sync_clients[index] = client
            return client

    def groups_with_members(self, groups: Iterable[str]) -> set[str] | None:
        """Which of `groups` have a member, from sync code: one read per host (ZCARD).

        A group this finds empty is one `group_send` would send nothing to; one whose members
        have all expired counts as having members, and `group_send` drops them and sends to
        nobody, as it always did. None when a group's host is out of this method's reach (the
        caller then sends to every group). The live inbox is mostly not open: the look spares a
        hop to the sending loop and the layer's two commands there
        (docs/operations.md#live-inbox-on-redis).
        """
        by_host: dict[int, list[str]] = {}
        for group in dict.fromkeys(groups):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host.setdefault(self.consistent_hash(group), []).append(group)
        found: set[str] = set()
        for index, names in by_host.items():
            client = self._sync_client(index)
            if client is None:
                return None
            if len(names) == 1:
                counts = [client.zcard(self._group_key(names[0]))]
            else:
                pipe = client.pipeline(transaction=False)
                for group in names:
                    pipe.zcard(self._group_key(group))
                counts = pipe.execute()
            found.update(group for group, count in zip(names, counts, strict=True) if count)
        return found

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self._memberships.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._memberships.get(group, set())
        members.discard(channel)
        if not members:
            self._memberships.pop(group, None)
        try:
            await super().group_discard(group, channel)
        except TRANSIENT_ERRORS:
            # A closing socket must not fail on Redis being away: the membership expires with
            # the group anyway, and a send to the dead channel only fills its expiring queue.
            log.warning("could not leave group %s while Redis is unreachable", group)

    async def receive_single(self, channel: str) -> Any:
        """One message off `channel`, waiting out Redis errors instead of raising them.

        Only Redis errors are retried; cancellation (the socket closing) still ends it at once.
        Memberships are written back after a failed read and every GROUP_REFRESH seconds: the
        connection's own retry can reconnect to a restarted, empty Redis without this layer
        ever seeing an error, so a failure alone would not tell us the groups are gone.
        """
        delay = RETRY_FIRST_DELAY
        failed = False
        while True:
            try:
                if failed or time.monotonic() - self._rejoined_at > GROUP_REFRESH:
                    await self._rejoin_groups()
                    if failed:
                        log.warning("channel layer reachable again; receiving on %s", channel)
                return await super().receive_single(channel)
            except TRANSIENT_ERRORS as error:
                if not failed:
                    log.warning("channel layer receive failed (%r); retrying", error)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)

    async def _rejoin_groups(self) -> None:
        """Re-add this process's memberships, as group_add does, one round trip per group.

        Idempotent: a ZADD of a present member only renews its timestamp, which also keeps a
        socket open longer than `group_expiry` in its group.
        """
        for group, channels in list(self._memberships.items()):
            key = self._group_key(group)
            connection = self.connection(self.consistent_hash(group))
            async with connection.pipeline(transaction=False) as pipe:
                pipe.zadd(key, dict.fromkeys(channels, time.time()))
                pipe.expire(key, self.group_expiry)
                await pipe.execute()
        self._rejoined_at = time.monotonic()
