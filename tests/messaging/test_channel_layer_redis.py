"""The Redis channel layer outlives a slow or restarted Redis; a broadcast never fails a request.

The end-to-end proof (a real daphne socket across idleness and a Redis restart) is
tests/chaos/test_live_inbox.py; these pin the causes at the layer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import Client, override_settings
from redis.exceptions import TimeoutError as RedisTimeoutError

from messaging.live import broadcast_inbox
from messaging.models import Message
from smsgate.channel_layer import ResilientRedisChannelLayer, redis_channel_layer_hosts
from tests.factories import paired_device

pytestmark = pytest.mark.redis


def fresh_layer() -> ResilientRedisChannelLayer:
    return ResilientRedisChannelLayer(
        hosts=redis_channel_layer_hosts(settings.REDIS_URL), prefix=f"t-{uuid.uuid4().hex[:8]}"
    )


def test_the_layers_sockets_wait_longer_than_its_blocking_pop() -> None:
    """redis-py 8's 5 s default read timeout equals the 5 s BZPOPMIN: a busy machine loses."""
    layer = settings.CHANNEL_LAYERS["default"]
    assert layer["BACKEND"] == "smsgate.channel_layer.ResilientRedisChannelLayer"
    pool = ResilientRedisChannelLayer(**layer["CONFIG"]).create_pool(0)
    assert pool.connection_kwargs["socket_timeout"] > RedisChannelLayer.brpop_timeout + 5


def test_a_receive_waits_out_a_redis_timeout_and_rejoins_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = fresh_layer()
    real = RedisChannelLayer.receive_single
    failures = [RedisTimeoutError("Timeout reading from 127.0.0.1:6379")]

    async def flaky(self: RedisChannelLayer, channel: str) -> Any:
        if failures:
            # A restarted Redis without persistence has forgotten every group.
            await self.connection(0).delete(self._group_key("inbox"))
            raise failures.pop()
        return await real(self, channel)

    monkeypatch.setattr(RedisChannelLayer, "receive_single", flaky)

    async def scenario() -> dict[str, Any]:
        channel = await layer.new_channel()
        await layer.group_add("inbox", channel)
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.5)  # the failed read, its backoff and the re-join
        await layer.group_send("inbox", {"type": "inbox.update", "n": 1})
        try:
            return await asyncio.wait_for(receiving, timeout=10)
        finally:
            await layer.flush()

    assert asyncio.run(scenario()) == {"type": "inbox.update", "n": 1}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_down() -> Any:
    hosts = redis_channel_layer_hosts(f"redis://127.0.0.1:{closed_port()}/0")
    backend = "smsgate.channel_layer.ResilientRedisChannelLayer"
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": backend, "CONFIG": {"hosts": hosts}}}
    ):
        yield


def test_a_broadcast_with_redis_down_is_logged_not_raised(
    redis_down: None, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="smsgate.groups"):
        broadcast_inbox("message.created", {"message_id": 1})
    assert time.monotonic() - started < 10
    assert "channel layer group send failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_inbound_sms_is_accepted_while_the_channel_layer_is_down(redis_down: None) -> None:
    phone = paired_device()
    response = Client().post(
        "/api/sms/smssync",
        urlencode(
            {
                "secret": phone.secret,
                "from": "+15557654321",
                "message": "hello while Redis is away",
                "sent_timestamp": str(int(time.time() * 1000)),
                "message_id": str(uuid.uuid4()),
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    assert response.json()["payload"]["success"] is True
    assert Message.objects.filter(body="hello while Redis is away").exists()


def test_groups_with_members_tells_the_groups_a_group_send_could_reach() -> None:
    layer = fresh_layer()

    async def join(group: str) -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    async def setup() -> str:
        await join("inbox")
        return await join("phones")

    phones_channel = asyncio.run(setup())
    try:
        assert layer.groups_with_members(["inbox"]) == {"inbox"}
        assert layer.groups_with_members(["nobody"]) == set()
        assert layer.groups_with_members(["inbox", "nobody", "phones"]) == {"inbox", "phones"}

        async def leave() -> None:
            await layer.group_discard("phones", phones_channel)

        asyncio.run(leave())
        assert layer.groups_with_members(["inbox", "phones"]) == {"inbox"}
    finally:
        asyncio.run(layer.flush())


def test_a_broadcast_reaches_a_member_through_the_look_at_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = fresh_layer()
    monkeypatch.setattr("smsgate.groups.get_channel_layer", lambda: layer)

    async def scenario() -> Any:
        channel = await layer.new_channel()
        await layer.group_add("inbox", channel)
        try:
            # From sync code, as a request sends it (its loop is not this one).
            await asyncio.to_thread(broadcast_inbox, "message.created", {"message_id": "msg_1"})
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard("inbox", channel)

    assert asyncio.run(scenario()) == {
        "type": "inbox.update",
        "event": "message.created",
        "payload": {"message_id": "msg_1"},
    }
