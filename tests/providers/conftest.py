"""Provider apps as a provider's dashboard would know them, and helpers to call as they do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from messaging.models import Message, ProviderApp
from providers.services import create_provider_app

TWILIO_TOKEN = "f3c9a1d2e4b5a6978877665544332211"
TWILIO_SID = "AC7f1e2d3c4b5a69788796a5b4c3d2e1f0"
VONAGE_SECRET = "s1gn4tur3S3cr3tK3y"
AT_TOKEN = "at-shared-token-123"


@pytest.fixture
def twilio_app(db: None) -> ProviderApp:
    return create_provider_app(
        provider="twilio",
        name="Twilio KE",
        credentials={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
        numbers=["+254709000111"],
    )


@pytest.fixture
def vonage_app(db: None) -> ProviderApp:
    return create_provider_app(
        provider="vonage",
        name="Vonage signed",
        credentials={
            "api_key": "a1b2c3d4",
            "api_secret": "vonage-api-secret",
            "signature_secret": VONAGE_SECRET,
            "signature_method": "sha256",
        },
        numbers=["+254709000111"],
    )


@pytest.fixture
def unsigned_vonage_app(db: None) -> ProviderApp:
    return create_provider_app(
        provider="vonage",
        name="Vonage unsigned",
        credentials={"api_key": "a1b2c3d4", "api_secret": "vonage-api-secret"},
        numbers=["+254709000111"],
    )


@pytest.fixture
def at_app(db: None) -> ProviderApp:
    return create_provider_app(
        provider="africastalking",
        name="AT",
        credentials={"username": "acme", "api_key": "at-api-key", "token": AT_TOKEN},
        numbers=["35555"],
    )


@pytest.fixture
def agile_app(db: None) -> ProviderApp:
    return create_provider_app(
        provider="agiletelecom",
        name="Agile",
        credentials={"username": "agile", "password": "agile-pass"},
        numbers=["+393331234333"],
    )


def receive_path(app: ProviderApp) -> str:
    return f"/api/sms/apps/{app.pk}/receive"


def post_form(client: Client, path: str, params: Any, **headers: Any) -> Any:
    """A real form body, as providers send it (the test client would default to multipart)."""
    return client.post(
        path,
        urlencode(params, doseq=True),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def twilio_signature(url: str, params: Any = None, token: str = TWILIO_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params or {}))


@pytest.fixture
def auto_reply(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Stands in for automation (the pipeline's step 2a): answers every inbound message on a
    provider app with a reply through the same app, appended to `replies` as that step does."""
    from messaging.services import send_message

    def reply(*, message: Message, replies: list[Message]) -> None:
        if message.app_id:
            replies.append(
                send_message(
                    to=message.from_number,
                    body=f"Thanks, got: {message.body}",
                    app_id=message.app_id,
                    source="automation",
                )
            )

    monkeypatch.setattr("pipeline.inbound.run_automation", reply)
    return reply


RequestFactory = Callable[..., Any]
