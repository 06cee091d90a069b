"""The inbox websocket (`/ws/inbox/`): forwards live inbox events to logged-in dashboard users.

Messaging services broadcast `inbox.update` to messaging.live.INBOX_GROUP after commit; this
consumer only relays them. Events carry ids and a status, never message text, so a page fetches
what it shows through its normal, permission-checked views. Several web processes share the
group through the Redis channel layer.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from messaging.live import INBOX_GROUP


class InboxConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            # Refused before the handshake completes: the browser sees the socket close (403).
            await self.close()
            return
        await self.channel_layer.group_add(INBOX_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(INBOX_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The socket is one-way: anything a client sends (even invalid JSON) is ignored."""

    async def inbox_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"event": event.get("event"), **(event.get("payload") or {})})

    async def inbox_updates(self, event: dict[str, Any]) -> None:
        """Several updates broadcast as one layer message: the same frames as one each."""
        for payload in event.get("payloads") or []:
            await self.send_json({"event": event.get("event"), **(payload or {})})
