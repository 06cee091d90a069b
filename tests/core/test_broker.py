"""The Redis broker transport keeps a worker alive when its connection is torn down mid-restore.

kombu's stock Redis channel raises AttributeError when it restores unacknowledged messages after
the transport was detached from its connection (what happens when Redis restarts under a busy
worker); Celery then exits the worker as "unrecoverable". smsgate.broker's transport logs it and
goes on, leaving those messages to the visibility timeout and the database sweeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from smsgate.broker import Transport

pytestmark = pytest.mark.redis


OPENED: list[Any] = []


@pytest.fixture(autouse=True)
def _forget_channels() -> Iterator[None]:
    """kombu restores unacked messages again at interpreter exit; these channels are broken on
    purpose, so mark their state restored to keep that exit-time attempt quiet."""
    yield
    for channel in OPENED:
        channel.qos._delivered.clear()
        channel.qos._delivered.restored = True
    OPENED.clear()


def channel_holding_an_unacked_message(transport: type) -> tuple[Any, Any]:
    connection = Connection(settings.REDIS_URL, transport=transport)
    channel = connection.default_channel
    OPENED.append(channel)
    queue = Queue("smsgate-test-broker", Exchange("smsgate-test-broker"), "k", channel=channel)
    queue.declare()
    queue.purge()
    connection.Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key="k")
    message = queue.get(no_ack=False)
    assert message is not None
    assert channel.qos._delivered  # unacknowledged: the channel will try to restore it
    # What a lost connection leaves behind: the pool dropped and the transport detached.
    channel._pool = None
    connection.transport.client = None
    return message, channel


def test_stock_kombu_raises_when_restoring_through_a_detached_transport() -> None:
    """The race itself, so this file notices if a kombu release fixes (or changes) it."""
    _, channel = channel_holding_an_unacked_message(kombu_redis.Transport)
    with pytest.raises(AttributeError):
        channel.close()


def test_closing_a_channel_whose_transport_is_detached_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, channel = channel_holding_an_unacked_message(Transport)
    channel.close()
    assert channel.closed
    assert not channel.qos._delivered
    assert "1 unacknowledged message(s) left to the visibility timeout" in caplog.text


def test_a_late_ack_through_a_closed_connection_is_a_connection_error() -> None:
    """A task that ran across a reconnect acks through its old channel: Celery logs a connection
    error and carries on, where the stock AttributeError stopped the worker."""
    message, channel = channel_holding_an_unacked_message(kombu_redis.Transport)
    channel.connection = None
    with pytest.raises(AttributeError):
        message.ack()

    message, channel = channel_holding_an_unacked_message(Transport)
    channel.connection = None
    with pytest.raises(RedisConnectionError):
        message.ack()
    # What kombu and Celery treat as a lost connection (logged, then reconnect):
    assert issubclass(RedisConnectionError, Transport.connection_errors)


def test_redis_broker_urls_use_the_hardened_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import smsgate.settings as production_settings

    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    try:
        reloaded = importlib.reload(production_settings)
        assert reloaded.CELERY_BROKER_TRANSPORT == "smsgate.broker:Transport"
    finally:
        monkeypatch.undo()
        importlib.reload(production_settings)


def test_publishing_reuses_one_redis_client_per_connection_pool() -> None:
    connection = Connection(settings.REDIS_URL, transport=Transport)
    channel = connection.default_channel
    made: list[Any] = []
    create = channel._create_client

    def counting_create(*args: Any, **kwargs: Any) -> Any:
        client = create(*args, **kwargs)
        made.append(client)
        return client

    channel._create_client = counting_create
    queue = Queue("smsgate-test-reuse", Exchange("smsgate-test-reuse"), "k", channel=channel)
    producer = connection.Producer(channel)
    try:
        queue.declare()
        queue.purge()
        for n in range(5):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="k")
        assert len(made) == 1
        received = [queue.get(no_ack=True) for _ in range(5)]
        assert [m.payload["n"] for m in received if m is not None] == [0, 1, 2, 3, 4]
        # A new pool (what a reconnect makes) gets a new client around it.
        channel._pool = None
        producer.publish({"n": 5}, exchange=queue.exchange, routing_key="k")
        assert len(made) == 2
        assert made[1].connection_pool is channel.pool
    finally:
        queue.purge()
        connection.release()
