"""Websocket routes (served by the ASGI application in smsgate.asgi)."""

from __future__ import annotations

from django.urls import URLPattern, path

from messaging.consumers import InboxConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/inbox/", InboxConsumer.as_asgi(), name="ws-inbox"),
]
