"""Deeply nested JSON at every door that parses JSON: a clear 4xx, never a 500.

Python's JSON parser recurses once per level, so a few thousand `[` exhaust the interpreter's
recursion limit; every door must refuse such a body in its usual shape and keep the raw log row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from messaging.models import InboundRequest
from providers.services import create_provider_app
from smsgate.services import create_api_key
from tests.factories import paired_device

DEPTH = 5000
ARRAYS = ("[" * DEPTH + "]" * DEPTH).encode()
IN_AN_OBJECT = b'{"message": "hi", "from": "+254722000333", "x": ' + ARRAYS + b"}"


APPS = {
    "vonage": {"api_key": "k", "api_secret": "s"},
    "africastalking": {"username": "u", "api_key": "k"},
    "agiletelecom": {"username": "u", "password": "p"},
}


Door = Callable[[Client, bytes], Any]


def _phone(path: str) -> Door:
    def call(client: Client, body: bytes) -> Any:
        paired = paired_device(sims=1)
        url = path.format(secret=paired.secret)
        auth = {"HTTP_AUTHORIZATION": f"Bearer {paired.token}"} if "msync" in path else {}
        return client.post(url, body, content_type="application/json", **auth)

    return call


def _provider(name: str) -> Door:
    def call(client: Client, body: bytes) -> Any:
        app = create_provider_app(
            provider=name, name=name, credentials=APPS[name], numbers=["+254709000111"]
        )
        return client.post(f"/api/sms/apps/{app.pk}/receive", body, content_type="application/json")

    return call


def _api(path: str) -> Door:
    def call(client: Client, body: bytes) -> Any:
        key = create_api_key(name="deep json", role="admin").plaintext
        return client.post(
            path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
        )

    return call


PHONE_DOORS = {
    "msync": _phone("/api/sms/msync"),
    "smssync incoming": _phone("/api/sms/smssync?secret={secret}"),
    "smssync task=sent": _phone("/api/sms/smssync?task=sent&secret={secret}"),
    "smssync task=result": _phone("/api/sms/smssync?task=result&secret={secret}"),
    "vonage": _provider("vonage"),
    "africastalking": _provider("africastalking"),
    "agiletelecom": _provider("agiletelecom"),
}
API_DOORS = {
    "send": _api("/api/v1/messages"),
    "send (SimGate alias)": _api("/v1/sms/send"),
    "send (MySMSGate alias)": _api("/api/v1/send"),
    "rules": _api("/api/v1/rules"),
    "webhooks": _api("/api/v1/webhooks"),
}


def _refusal_says_why(door: str, response: Any) -> None:
    text = response.content.decode()
    if door.startswith("smssync"):
        assert response.json()["payload"]["success"] is False
    elif door == "agiletelecom":
        assert text.startswith("-ERR")
    elif "MySMSGate" in door:
        assert response.json()["success"] is False
    else:
        assert response.json()["error"]["code"]
    assert "nested" in text or "JSON" in text


@pytest.mark.parametrize("body", [ARRAYS, IN_AN_OBJECT], ids=["arrays", "arrays in an object"])
@pytest.mark.parametrize("door", [*PHONE_DOORS, *API_DOORS])
def test_every_json_door_refuses_deeply_nested_json_with_a_4xx(
    db: None, door: str, body: bytes
) -> None:
    call = PHONE_DOORS.get(door) or API_DOORS[door]
    logged = InboundRequest.objects.count()

    response = call(Client(), body)

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    _refusal_says_why(door, response)
    if door in PHONE_DOORS:
        # The raw request is kept, whole, with the refusal it got.
        assert InboundRequest.objects.count() == logged + 1
        entry = InboundRequest.objects.order_by("-received_at", "-pk")[0]
        assert bytes(entry.body) == body
        assert entry.status_code == response.status_code
        assert entry.outcome == InboundRequest.Outcome.REJECTED
