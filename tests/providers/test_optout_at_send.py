"""A provider send reads the opt-out list again right before it calls the provider."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_httpserver import HTTPServer

from messaging.models import Message, OptOut, ProviderApp, Status
from messaging.services import send_message
from providers.tasks import send_via_provider

pytestmark = pytest.mark.django_db

NUMBER = "+254722000333"
VONAGE_OK = {"message-count": "1", "messages": [{"status": "0", "message-id": "1R"}]}


@pytest.fixture(autouse=True)
def provider_apis(settings, httpserver: HTTPServer) -> HTTPServer:
    settings.SMSGATE_VONAGE_API_URL = httpserver.url_for("").rstrip("/")
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True  # the fake provider listens on loopback
    return httpserver


def test_a_message_whose_recipient_opted_out_after_queueing_is_cancelled_unsent(
    unsigned_vonage_app: ProviderApp, provider_apis: HTTPServer
) -> None:
    message = send_message(to=NUMBER, body="Hi", app_id=unsigned_vonage_app.pk)
    # The STOP committed while this message was being queued (its sweep did not see it).
    OptOut.objects.create(phone=NUMBER, source="keyword")

    assert send_via_provider(message.pk) == "recipient opted out"

    assert provider_apis.log == []
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.CANCELLED, "recipient_opted_out")
    assert message.next_attempt_at is None
    assert message.events.filter(status="cancelled", detail="recipient opted out").exists()
    assert send_via_provider(message.pk) == "not due"


def test_an_opt_out_through_the_api_before_the_task_runs_sends_nothing(
    admin_client, unsigned_vonage_app: ProviderApp, provider_apis: HTTPServer
) -> None:
    message = send_message(to=NUMBER, body="Hi", app_id=unsigned_vonage_app.pk)
    assert admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, "json").status_code == 201

    assert send_via_provider(message.pk) == "not due"

    assert provider_apis.log == []
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.CANCELLED, "recipient_opted_out")


def test_the_stop_confirmation_still_goes_out_through_the_provider(
    unsigned_vonage_app: ProviderApp, provider_apis: HTTPServer
) -> None:
    import json

    from tests.providers.conftest import receive_path

    provider_apis.expect_request("/sms/json").respond_with_json(VONAGE_OK)
    inbound = {"msisdn": NUMBER[1:], "to": "254709000111", "messageId": "1A", "text": "STOP"}
    response = Client().post(
        receive_path(unsigned_vonage_app), json.dumps(inbound), content_type="application/json"
    )
    assert response.status_code == 200
    confirmation = Message.objects.get(direction="outbound")
    assert OptOut.objects.filter(phone=NUMBER).exists()

    assert send_via_provider(confirmation.pk) == "sent"
    confirmation.refresh_from_db()
    assert confirmation.status == Status.SENT
