"""Inputs the fuzzers found that used to fail, kept as plain examples."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from messaging.models import Conversation, InboundRequest, Message, ProviderApp
from tests.factories import PairedDevice, paired_device
from tests.providers.conftest import receive_path

pytestmark = pytest.mark.django_db

LONG_SENDER = "ACME-" + "X" * 45  # phones may send up to 64 characters
LONG_NUMBER = "1" * 80


@pytest.fixture
def vonage(db: None) -> ProviderApp:
    from providers.services import create_provider_app

    return create_provider_app(
        provider="vonage",
        name="Vonage unsigned",
        credentials={"api_key": "a1b2c3d4", "api_secret": "vonage-api-secret"},
        numbers=["+254709000111"],
    )


@pytest.mark.parametrize(
    "params",
    [
        {"msisdn": LONG_SENDER + "X" * 20, "text": "hi"},
        {"msisdn": LONG_NUMBER, "text": "hi"},
        {"msisdn": "+254722000333", "to": LONG_NUMBER, "text": "hi"},
    ],
    ids=["long-sender-id", "long-digits", "long-recipient"],
)
def test_a_sender_longer_than_any_real_one_is_stored_cut_to_fit(vonage, params):
    # On PostgreSQL this was a 500: the conversation's 32-character phone column overflowed.
    response = Client().post(
        receive_path(vonage), urlencode(params), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    message = Message.objects.get()
    assert len(message.from_number) <= 32 and len(message.to_number) <= 32
    assert Conversation.objects.get().phone == message.from_number
    assert bytes(InboundRequest.objects.get().body) == urlencode(params).encode()


def test_a_long_sender_from_a_phone_is_stored_cut_to_fit(db):
    paired: PairedDevice = paired_device(sims=1)
    body = {
        "action": "incoming",
        "device_id": paired.device.pk,
        "messages": [{"from": LONG_SENDER, "message": "hi", "timestamp": 1744029005123}],
    }
    response = Client().post(
        "/api/sms/msync",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {paired.token}",
    )

    assert response.status_code == 200
    assert response.json()["received"] == 1
    assert Message.objects.get().from_number == LONG_SENDER[:32]


def _registered_app_phone() -> tuple[str, str]:
    from tests.phones.conftest import app_phone

    app = app_phone()
    response = app.register()
    assert response.status_code == 201
    return app.device.pk, response.json()["token"]


@pytest.mark.parametrize("path", ["/api/mobile/v1/message", "/api/mobile/v1/device"])
def test_deeply_nested_json_to_the_app_api_is_a_logged_400(db, path):
    # A RecursionError in the JSON parser was a 500 on the mobile API.
    _device, token = _registered_app_phone()
    before = InboundRequest.objects.count()

    response = Client().patch(
        path,
        "[" * 5000 + "]" * 5000,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 400 and "message" in response.json()
    assert InboundRequest.objects.count() == before + 1


def test_a_nul_in_the_app_api_query_or_an_oversized_body_is_logged_and_answered_in_its_shape(
    db, settings
):
    # The NUL and body-size middlewares answered these before the door could log them, in
    # smsgate's error envelope rather than the app's `{"message"}`.
    _device, token = _registered_app_phone()
    settings.SMSGATE_MAX_BODY_BYTES = 1000
    before = InboundRequest.objects.count()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    nul = Client().get("/api/mobile/v1/message", {"order": "fifo\x00"}, **auth)
    big = Client().patch(
        "/api/mobile/v1/message",
        json.dumps([{"x": "a" * 2000}]),
        content_type="application/json",
        **auth,
    )

    assert nul.status_code < 500 and "error" not in nul.json()
    assert big.status_code == 413 and "message" in big.json()
    assert InboundRequest.objects.count() == before + 2


@pytest.mark.parametrize("event", [[], {}, ["sms:received"], 7])
def test_a_third_party_webhook_whose_event_is_not_a_string_is_a_400(db, admin_key, event):
    """Found by tests/fuzz/test_thirdparty.py: `{"event": []}` was a 500 (unhashable list)."""
    from webhooks.models import Endpoint

    response = Client().post(
        "/api/3rdparty/v1/webhooks",
        data={"url": "https://example.com/hook", "event": event},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin_key}",
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"]
    assert not Endpoint.objects.exists()
