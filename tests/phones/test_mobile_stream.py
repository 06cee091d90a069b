"""The app's event stream, served by the ASGI application (docs/phones/sms-gateway-app.md#events):
driven through smsgate.asgi.application, as daphne would call it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import ApplicationCommunicator
from django.conf import settings
from django.test import override_settings

from devices.models import Device
from devices.wake import SETTINGS_UPDATED, notify_phones
from messaging.services import cancel_message, send_message
from phones.smsgateway import stream
from smsgate.asgi import application
from smsgate.channel_layer import redis_channel_layer_hosts
from tests.phones.conftest import BASE, AppPhone

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+14155550111"


def scope(token: str | None, method: str = "GET") -> dict[str, Any]:
    headers = [(b"host", b"testserver"), (b"user-agent", b"me.capcom.smsgateway/1.68.0")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": f"{BASE}/events",
        "raw_path": f"{BASE}/events".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Stream:
    def __init__(self, token: str | None, method: str = "GET") -> None:
        self.communicator = ApplicationCommunicator(application, scope(token, method))

    async def open(self) -> tuple[dict[str, Any], bytes]:
        await self.communicator.send_input({"type": "http.request", "body": b""})
        start = await self.communicator.receive_output(timeout=5)
        first = await self.communicator.receive_output(timeout=5)
        return start, first["body"]

    async def next_body(self, timeout: float = 2) -> bytes:
        message = await self.communicator.receive_output(timeout=timeout)
        assert message["type"] == "http.response.body"
        return bytes(message["body"])

    async def close(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(timeout=5)


@pytest.fixture(autouse=True)
def in_memory_layer() -> Any:
    """Each scenario runs on an event loop of its own, and a refused stream is not waited for:
    the in-memory layer has no connection tied to a loop. The Redis layer has a test of its
    own below, which closes its stream."""
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=memory):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


def headers_of(start: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in start["headers"]}


def test_a_queued_message_reaches_the_open_stream_within_2_seconds(registered: AppPhone) -> None:
    async def scenario() -> None:
        events = Stream(registered.token)
        start, first = await events.open()
        assert start["status"] == 200
        assert headers_of(start)[b"content-type"] == b"text/event-stream"
        assert headers_of(start)[b"cache-control"] == b"no-cache"
        assert first.startswith(b":")
        began = time.monotonic()
        await database_sync_to_async(send_message)(
            to=NUMBER, body="wake up", device_id=registered.device.pk
        )
        assert await events.next_body(timeout=2) == b"event: MessageEnqueued\ndata: null\n\n"
        assert time.monotonic() - began < 2
        await events.close()

    run(scenario)


def test_a_message_for_the_shared_pool_wakes_every_phone(registered: AppPhone) -> None:
    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        await database_sync_to_async(send_message)(to=NUMBER, body="anyone")
        assert (await events.next_body()).startswith(b"event: MessageEnqueued\n")
        await events.close()

    run(scenario)


def test_a_message_for_another_device_does_not_wake_this_one(registered: AppPhone) -> None:
    from tests.factories import paired_device

    other = paired_device()

    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        await database_sync_to_async(send_message)(
            to=NUMBER, body="not yours", device_id=other.device.pk
        )
        assert await events.communicator.receive_nothing(timeout=0.5)
        await events.close()

    run(scenario)


def test_cancelling_a_queued_message_sends_message_cancelled(registered: AppPhone) -> None:
    message = send_message(to=NUMBER, body="x", device_id=registered.device.pk)

    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        await database_sync_to_async(cancel_message)(message_id=message.pk)
        body = await events.next_body()
        name, data = body.decode().strip().split("\n")
        assert name == "event: MessageCancelled"
        assert json.loads(data.removeprefix("data: ")) == {"messageId": message.pk}
        await events.close()

    run(scenario)


def test_other_events_pass_through_with_their_data(registered: AppPhone) -> None:
    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        await database_sync_to_async(notify_phones)(SETTINGS_UPDATED)
        assert await events.next_body() == b"event: SettingsUpdated\ndata: null\n\n"
        await events.close()

    run(scenario)


def test_keepalive_comments_flow_while_idle(
    registered: AppPhone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "KEEPALIVE_SECONDS", 0.05)

    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        assert await events.next_body(timeout=1) == b":keepalive\n\n"
        assert await events.next_body(timeout=1) == b":keepalive\n\n"
        await events.close()

    run(scenario)


def test_the_stream_is_recorded_on_the_device_and_cleared_on_disconnect(
    registered: AppPhone,
) -> None:
    Device.objects.filter(pk=registered.device.pk).update(online=False, last_seen_at=None)

    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        device = await Device.objects.aget(pk=registered.device.pk)
        assert device.stream_connected_at is not None
        assert device.online  # opening the stream is a heartbeat
        await database_sync_to_async(notify_phones)(SETTINGS_UPDATED)
        await events.next_body()
        await events.close()

    run(scenario)
    device = Device.objects.get(pk=registered.device.pk)
    assert device.stream_connected_at is None
    assert device.stream_last_event_at is not None


@pytest.mark.parametrize("token", [None, "not-a-device-token"])
def test_a_stream_without_a_valid_device_token_is_401_json(
    registered: AppPhone, token: str | None
) -> None:
    async def scenario() -> None:
        refused = Stream(token)
        start, body = await refused.open()
        assert start["status"] == 401
        assert headers_of(start)[b"content-type"] == b"application/json"
        assert "message" in json.loads(body)
        await refused.communicator.wait(timeout=5)  # the consumer ends on a refusal

    run(scenario)


def test_a_post_to_the_stream_is_405(registered: AppPhone) -> None:
    async def scenario() -> None:
        refused = Stream(registered.token, method="POST")
        start, _ = await refused.open()
        assert start["status"] == 405
        await refused.communicator.wait(timeout=5)

    run(scenario)


def test_other_http_paths_still_reach_django(registered: AppPhone) -> None:
    async def scenario() -> None:
        communicator = ApplicationCommunicator(
            application, {**scope(registered.token), "path": f"{BASE}/webhooks"}
        )
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=5)
        assert start["status"] == 200

    run(scenario)


@pytest.mark.redis
def test_a_wake_up_crosses_the_redis_channel_layer(registered: AppPhone) -> None:
    layer = {
        "default": {
            "BACKEND": "smsgate.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": redis_channel_layer_hosts(settings.REDIS_URL),
                "prefix": f"t-{uuid.uuid4().hex[:8]}",
            },
        }
    }

    async def scenario() -> None:
        events = Stream(registered.token)
        await events.open()
        await database_sync_to_async(send_message)(
            to=NUMBER, body="via redis", device_id=registered.device.pk
        )
        assert await events.next_body(timeout=2) == b"event: MessageEnqueued\ndata: null\n\n"
        await events.close()

    with override_settings(CHANNEL_LAYERS=layer):
        channel_layers.backends.clear()
        try:
            run(scenario)
        finally:
            channel_layers.backends.clear()
