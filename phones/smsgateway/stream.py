"""The app's event stream, `GET /api/mobile/v1/events` (docs/phones/sms-gateway-app.md#events).

Served by the ASGI process (daphne) as a channels consumer, routed ahead of Django: an open
stream is a coroutine waiting on the channel layer, not a worker. The consumer joins the
device's group and the all-phones group that `devices.wake.notify_phones` sends to, writes
each event as `event: <Name>\\ndata: <json>\\n\\n`, and a `:keepalive` comment every
KEEPALIVE_SECONDS so that proxies and the app's read timeout see traffic.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings

from devices.wake import ALL_PHONES_GROUP, phone_group
from phones.checkin import check_in_by_app_token
from phones.smsgateway import services

KEEPALIVE_SECONDS = 15.0
EVENT_NOTE_SECONDS = 5.0
_HEADERS = [
    (b"Content-Type", b"text/event-stream"),
    (b"Cache-Control", b"no-cache"),
    # nginx buffers proxied answers unless told not to (docs/operations.md#event-streams).
    (b"X-Accel-Buffering", b"no"),
]


def _token(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def _check_in(token: str) -> str | None:
    checkin = check_in_by_app_token(token)
    return checkin.device.pk if checkin else None


class EventStream(AsyncHttpConsumer):
    """One phone's open stream. It holds a device id, a token (for its heartbeats) and one
    keepalive task: a few kilobytes per idle phone."""

    device_id: str | None = None
    opened_at: datetime | None = None
    keepalive: asyncio.Task[None] | None = None
    streaming = False
    token = ""
    event_noted_at = float("-inf")  # time.monotonic() of the last stream_last_event_at write

    async def http_request(self, message: dict[str, Any]) -> None:
        # AsyncHttpConsumer ends the consumer once handle() returns; a stream must outlive it,
        # so the consumer stops here only when the answer was a refusal.
        if "body" in message:
            self.body.append(message["body"])
        if message.get("more_body"):
            return
        await self.handle(b"".join(self.body))
        if not self.streaming:
            await self.disconnect()
            raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        if self.scope.get("method") != "GET":
            await self._refuse(405, "The event stream takes GET requests only.")
            return
        self.token = _token(self.scope)
        device_id = await database_sync_to_async(_check_in)(self.token) if self.token else None
        if device_id is None:
            await self._refuse(401, "The device token is not valid.")
            return
        self.device_id = device_id
        for group in (phone_group(device_id), ALL_PHONES_GROUP):
            await self.channel_layer.group_add(group, self.channel_name)
        self.streaming = True
        await self.send_headers(status=200, headers=_HEADERS)
        # The headers leave with the first body part: an empty comment sends them now.
        await self.send_body(b":connected\n\n", more_body=True)
        self.opened_at = await database_sync_to_async(services.stream_opened)(device_id=device_id)
        self.keepalive = asyncio.create_task(self._keep_alive())

    async def _refuse(self, status: int, message: str) -> None:
        await self.send_response(
            status,
            json.dumps({"message": message}).encode(),
            headers=[(b"Content-Type", b"application/json")],
        )

    async def _keep_alive(self) -> None:
        # An open stream is the phone's heartbeat too, checked in well within the offline
        # threshold (a check-in within SEEN_RESOLUTION is a read, not a write).
        every = max(float(settings.SMSGATE_DEVICE_OFFLINE_AFTER) / 3, KEEPALIVE_SECONDS)
        last_check_in = time.monotonic()
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self.send_body(b":keepalive\n\n", more_body=True)
            if time.monotonic() - last_check_in >= every:
                last_check_in = time.monotonic()
                await database_sync_to_async(_check_in)(self.token)

    async def phone_event(self, message: dict[str, Any]) -> None:
        """A `devices.wake.notify_phones` event: `{"event", "data"}`."""
        if not self.streaming or self.device_id is None:
            return
        data = message.get("data")
        line = f"event: {message['event']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        await self.send_body(line.encode(), more_body=True)
        # A pool message wakes every open stream at once: each notes the time at most every
        # EVENT_NOTE_SECONDS, not one UPDATE per stream per event.
        if time.monotonic() - self.event_noted_at >= EVENT_NOTE_SECONDS:
            self.event_noted_at = time.monotonic()
            await database_sync_to_async(services.stream_event_sent)(device_id=self.device_id)

    async def disconnect(self) -> None:
        if self.keepalive is not None:
            self.keepalive.cancel()
            self.keepalive = None
        if self.device_id is None:
            return
        device_id, self.device_id = self.device_id, None
        for group in (phone_group(device_id), ALL_PHONES_GROUP):
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.opened_at is not None:
            await database_sync_to_async(services.stream_closed)(
                device_id=device_id, opened_at=self.opened_at
            )
