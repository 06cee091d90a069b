"""Fixtures for the SMS Gateway for Android app's door: a paired device with a private token,
and a client that calls the mobile API as the app does."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from devices.models import Device
from phones.smsgateway.hooks import signature_for
from phones.smsgateway.services import signing_key
from smsgate.crypto import hash_secret
from tests.factories import paired_device

BASE = "/api/mobile/v1"
APP_UA = "me.capcom.smsgateway/1.68.0"


@dataclass
class AppPhone:
    """A phone running the app: the private token it was paired with and, once registered,
    its device id and token."""

    device: Device
    private_token: str
    token: str = ""
    client: Client | None = None

    def http(self) -> Client:
        if self.client is None:
            self.client = Client(HTTP_USER_AGENT=APP_UA)
        return self.client

    def auth(self, token: str | None = None) -> dict[str, Any]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token if token is None else token}"}

    def register(self, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        payload = body if body is not None else {"name": "Google/sdk_gphone", "simCards": []}
        return self.http().post(
            f"{BASE}/device",
            json.dumps(payload),
            content_type="application/json",
            **self.auth(self.private_token if token is None else token),
        )

    def get(self, path: str, token: str | None = None) -> Any:
        return self.http().get(f"{BASE}{path}", **self.auth(token))

    def patch(self, path: str, body: Any, token: str | None = None) -> Any:
        return self.http().patch(
            f"{BASE}{path}", json.dumps(body), content_type="application/json", **self.auth(token)
        )

    def hook(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        sign: bool = True,
        key: str | None = None,
        timestamp: int | None = None,
        envelope: dict[str, Any] | None = None,
    ) -> Any:
        body = json.dumps(
            envelope
            if envelope is not None
            else {
                "id": os.urandom(8).hex(),
                "webhookId": "smsgate-" + event.replace(":", "-"),
                "event": event,
                "deviceId": self.device.pk,
                "payload": payload,
            }
        ).encode()
        headers: dict[str, Any] = {}
        if sign:
            stamp = str(int(time.time()) if timestamp is None else timestamp)
            self.device.refresh_from_db()
            secret = signing_key(self.device) if key is None else key
            headers = {
                "HTTP_X_TIMESTAMP": stamp,
                "HTTP_X_SIGNATURE": signature_for(secret, body, stamp),
            }
        return self.http().post(
            f"{BASE}/webhooks/{event}", body, content_type="application/json", **headers
        )


def app_phone(*, sims: int = 1, **fields: Any) -> AppPhone:
    private = f"private-{os.urandom(12).hex()}"
    paired = paired_device(sims=sims, app_private_token_hash=hash_secret(private), **fields)
    return AppPhone(device=paired.device, private_token=private)


@pytest.fixture
def app(db: None) -> AppPhone:
    """A paired app phone that has not registered yet."""
    return app_phone()


@pytest.fixture
def registered(app: AppPhone) -> AppPhone:
    response = app.register()
    assert response.status_code == 201, response.content
    app.token = response.json()["token"]
    app.device.refresh_from_db()
    return app
