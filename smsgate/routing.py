"""Websocket routes and the long-lived HTTP routes (served by the ASGI application in
smsgate.asgi)."""

from __future__ import annotations

from django.urls import URLPattern, path

from messaging.consumers import InboxConsumer
from phones.smsgateway.stream import EventStream

websocket_urlpatterns: list[URLPattern] = [
    path("ws/inbox/", InboxConsumer.as_asgi(), name="ws-inbox"),
]

# Ahead of Django's own HTTP handling: SSE streams of the app phones
# (docs/phones/sms-gateway-app.md#events).
http_urlpatterns: list[URLPattern] = [
    path("api/mobile/v1/events", EventStream.as_asgi(), name="mobile-events"),
]
