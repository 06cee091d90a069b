"""Provider apps that only receive: created without sending credentials, never sent through."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from messaging.models import Conversation, Message, ProviderApp
from messaging.tasks import reroute_waiting_messages
from tests.factories import OutboundMessageFactory, paired_device
from tests.providers.conftest import post_form

pytestmark = pytest.mark.django_db

CUSTOMER = "+393351234567"


def create(client: Any, provider: str, credentials: dict[str, str]) -> Any:
    return client.post(
        "/api/v1/apps",
        {
            "provider": provider,
            "name": "Inbound only",
            "credentials": credentials,
            "numbers": ["+393331234333"],
        },
        format="json",
    )


def agile_text(app_id: str) -> Any:
    params = {
        "originator": CUSTOMER,
        "destination": "+393331234333",
        "date_time": "20260514102301",
        "text": "hello",
    }
    return post_form(Client(), f"/api/sms/apps/{app_id}/receive", params)


def test_an_agile_app_is_created_without_credentials_and_receives(admin_client):
    response = create(admin_client, "agiletelecom", {})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["can_send"], body["credential_keys"]) == (False, [])
    assert agile_text(body["id"]).content == b"+OK"
    assert Message.objects.get(direction="inbound").app_id == body["id"]


@pytest.mark.parametrize(
    ("provider", "credentials", "can_send"),
    [
        ("vonage", {}, False),
        ("vonage", {"signature_secret": "s3cr3t"}, False),
        ("vonage", {"api_key": "k", "api_secret": "s"}, True),
        ("africastalking", {"token": "t"}, False),
        ("africastalking", {"username": "u", "api_key": "k"}, True),
        ("twilio", {"auth_token": "t"}, False),
        ("twilio", {"auth_token": "t", "account_sid": "AC" + "1" * 32}, True),
        ("agiletelecom", {"username": "u", "password": "p"}, False),
    ],
)
def test_an_app_without_sending_credentials_only_receives(
    admin_client, provider, credentials, can_send
):
    response = create(admin_client, provider, credentials)

    assert response.status_code == 201, response.json()
    assert response.json()["can_send"] is can_send
    listed = admin_client.get("/api/v1/apps").json()
    assert [app["can_send"] for app in listed["results"]] == [can_send]


@pytest.mark.parametrize(
    ("provider", "credentials", "bad_key"),
    [
        # Twilio's auth token verifies every inbound request, so it is always required.
        ("twilio", {}, "auth_token"),
        ("twilio", {"account_sid": "AC" + "1" * 32}, "auth_token"),
        # Sending credentials are all or none.
        ("vonage", {"api_secret": "s"}, "api_key"),
        ("africastalking", {"username": "u"}, "api_key"),
    ],
)
def test_half_the_sending_credentials_is_400(admin_client, provider, credentials, bad_key):
    response = create(admin_client, provider, credentials)

    assert response.status_code == 400, response.json()
    assert bad_key in response.json()["error"]["fields"]["credentials"]
    assert not ProviderApp.objects.exists()


def test_removing_the_sending_credentials_makes_an_app_receive_only(admin_client):
    app_id = create(admin_client, "vonage", {"api_key": "k", "api_secret": "s"}).json()["id"]

    response = admin_client.patch(
        f"/api/v1/apps/{app_id}",
        {"credentials": {"api_key": None, "api_secret": None}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["can_send"] is False


def test_an_explicit_send_through_it_is_422(admin_client):
    app_id = create(admin_client, "agiletelecom", {}).json()["id"]

    response = admin_client.post(
        "/api/v1/messages", {"to": CUSTOMER, "body": "hi", "app_id": app_id}, format="json"
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "app_cannot_send"
    assert "only receives" in error["message"]
    assert not Message.objects.filter(direction="outbound").exists()


def test_routing_never_picks_it_as_the_sticky_line(admin_client):
    app_id = create(admin_client, "agiletelecom", {}).json()["id"]
    agile_text(app_id)
    assert Conversation.objects.get(phone=CUSTOMER).app_id == app_id
    phone = paired_device()

    response = admin_client.post("/api/v1/messages", {"to": CUSTOMER, "body": "hi"}, format="json")

    assert response.status_code == 202, response.json()
    assert (response.json()["app_id"], response.json()["device_id"]) == (None, phone.device.pk)


def test_it_is_never_the_fallback_app(admin_client, settings):
    app_id = create(admin_client, "vonage", {}).json()["id"]
    settings.SMSGATE_FALLBACK_APP_ID = app_id
    settings.SMSGATE_REROUTE_AFTER = 0
    waiting = OutboundMessageFactory(to_number=CUSTOMER)

    assert reroute_waiting_messages() == {"rerouted": 0}
    waiting.refresh_from_db()
    assert waiting.app_id is None
