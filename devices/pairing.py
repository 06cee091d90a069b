"""What a phone needs to pair: server, device id, token and the endpoint URLs, as a QR code,
and what the SMS Gateway for Android app needs (docs/phones/sms-gateway-app.md)."""

from __future__ import annotations

import json
from typing import Any

import segno
from django.conf import settings
from django.http import HttpRequest

SMSSYNC_PATH = "/api/sms/smssync"
MSYNC_PATH = "/api/sms/msync"
# The app keeps one base URL and appends /device, /message, /events… to it.
APP_MOBILE_PATH = "/api/mobile/v1"


def server_url(request: HttpRequest | None) -> str:
    if settings.SMSGATE_PUBLIC_URL:
        return str(settings.SMSGATE_PUBLIC_URL)
    if request is None:
        return "http://127.0.0.1:8000"
    return request.build_absolute_uri("/").rstrip("/")


def pairing_for(
    *, device_id: str, token: str, app_private_token: str, request: HttpRequest | None
) -> dict[str, Any]:
    """The pairing payload and its QR code.

    The QR is returned as a `data:image/png;base64,…` URL rather than a link to an image
    endpoint: it encodes the device token, which is shown once and only stored hashed, so
    there is nothing the server could render it from later, and a URL that served it would
    be a second place for the credential to leak (logs, browser history, proxies).
    """
    server = server_url(request)
    payload = {
        "server": server,
        "device_id": device_id,
        "token": token,
        "smssync_url": server + SMSSYNC_PATH,
        "msync_url": server + MSYNC_PATH,
        "app": {"server_url": server + APP_MOBILE_PATH, "private_token": app_private_token},
    }
    qr = segno.make(json.dumps(payload, separators=(",", ":")), error="m")
    return {"qr_url": qr.png_data_uri(scale=4, border=2), "payload": payload}


def text_qr_url(text: str) -> str:
    """A QR code of plain text as a data URL (not a link, for the reason pairing_for gives)."""
    return str(segno.make(text, error="m").png_data_uri(scale=4, border=2))
