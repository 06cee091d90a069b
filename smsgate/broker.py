"""The Redis broker transport, hardened against a kombu race seen when Redis restarts.

When a worker loses its broker connection, Celery closes the connection and kombu's Redis
channel tries to put the worker's unacknowledged messages back on the queue. If the transport
has already been detached from its connection by then, kombu 5.x raises
`AttributeError: 'NoneType' object has no attribute 'hostname'` from `_connparams` (and a late ack
of a task that ran across the reconnect does the same); Celery treats that as an unrecoverable
error and the worker process exits, so one Redis restart could stop
every worker (the chaos test "Redis restarted empty" caught it about half the time).

Nothing is lost by skipping that restore: a Redis that restarted empty has no messages to put
back, a surviving Redis redelivers unacknowledged messages after the visibility timeout, and the
database rows stay the truth either way (beat's sweeps re-enqueue due deliveries and queued
messages). So a channel whose connection is gone raises a connection error instead, which Celery logs
and survives, and the worker reconnects as it does for any other connection error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):  # type: ignore[misc]
    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)
        except RedisConnectionError:
            delivered: Any = self._delivered  # kombu's untyped dict of delivery tags
            # Forget the in-memory tags so the restore is not retried on a dead channel; the
            # messages themselves are still covered (see the module docstring).
            logger.warning(
                "broker connection lost: %d unacknowledged message(s) left to the visibility "
                "timeout and the database sweeps",
                len(delivered),
            )
            delivered.clear()


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = QoS

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        # kombu builds a new redis-py client around the channel's pool for every publish and
        # ack; building one (its ~170 response callbacks) cost a web request more CPU than
        # the push itself. A client only wraps the pool and is safe to share between
        # threads, so the channel keeps one per pool (a reconnect makes a new pool, and so a
        # new client).
        if client:
            yield client
            return
        pool = self.pool
        kept = self.__dict__.get("_smsgate_client")
        if kept is None or kept[0] is not pool:
            kept = (pool, self._create_client())
            self.__dict__["_smsgate_client"] = kept
        yield kept[1]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # A channel of a closed connection (a late ack of a task that ran across a reconnect,
        # or the restore on close) gets a connection error, which Celery logs and survives,
        # instead of the AttributeError that stops the worker.
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
