"""Sending through providers' REST APIs, against a real local HTTP server standing in for them."""

from __future__ import annotations

import json
from base64 import b64encode
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from messaging.models import Message, Status
from messaging.services import record_status, send_message
from providers.tasks import send_via_provider, sweep_provider_sends
from smsgate.errors import Refused
from tests.factories import OutboundMessageFactory
from tests.providers.conftest import TWILIO_SID, TWILIO_TOKEN

pytestmark = pytest.mark.django_db

TWILIO_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


@pytest.fixture(autouse=True)
def provider_apis(settings, httpserver: HTTPServer) -> HTTPServer:
    base = httpserver.url_for("").rstrip("/")
    settings.SMSGATE_TWILIO_API_URL = base
    settings.SMSGATE_VONAGE_API_URL = base
    settings.SMSGATE_AFRICASTALKING_API_URL = base
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    return httpserver


def form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}


def make_due(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_queued_app_message_schedules_its_send_on_commit(
    twilio_app, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    assert message.status == Status.QUEUED
    names = [getattr(cb, "__qualname__", "") for cb in callbacks]
    assert any("schedule_provider_send" in name for name in names)


def test_twilio_send_posts_the_message_and_stores_its_sid(twilio_app, provider_apis):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(
            json.dumps({"sid": "SM123", "status": "queued"}),
            status=201,
            content_type="application/json",
        )

    provider_apis.expect_request(TWILIO_PATH, method="POST").respond_with_handler(handler)
    message = send_message(to="+254722000333", body="Hello there", app_id=twilio_app.pk)
    assert send_via_provider(message.pk) == "sent"
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.SENT, "SM123")
    assert message.events.filter(status="sent", detail__contains="SM123").exists()
    sent = form(seen[0])
    assert sent == {
        "To": "+254722000333",
        "From": "+254709000111",
        "Body": "Hello there",
        "StatusCallback": f"https://sms.example.org/api/sms/apps/{twilio_app.pk}/receive"
        f"?message={message.pk}",
    }
    expected_auth = b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert seen[0].headers["Authorization"] == f"Basic {expected_auth}"
    # A second run (a duplicate task) changes nothing and calls nobody.
    assert send_via_provider(message.pk) == "not due"
    assert len(seen) == 1


def test_a_500_is_retried_later_and_then_succeeds(twilio_app, provider_apis):
    provider_apis.expect_ordered_request(TWILIO_PATH).respond_with_data("oops", status=500)
    provider_apis.expect_ordered_request(TWILIO_PATH).respond_with_json({"sid": "SM9"}, status=201)
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)

    assert send_via_provider(message.pk) == "retrying"
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert message.send_attempts == 1
    assert message.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert message.events.filter(detail__contains="attempt 1 failed").exists()
    assert send_via_provider(message.pk) == "not due"  # not before its time

    make_due(message)
    assert send_via_provider(message.pk) == "sent"
    message.refresh_from_db()
    assert (message.status, message.send_attempts, message.provider_message_id) == (
        Status.SENT,
        2,
        "SM9",
    )
    provider_apis.check_assertions()


def test_a_deeply_nested_api_answer_is_an_ordinary_failure(twilio_app, provider_apis):
    deep = "[" * 5000 + "]" * 5000
    provider_apis.expect_request(TWILIO_PATH).respond_with_data(
        deep, status=503, content_type="application/json"
    )
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    assert send_via_provider(message.pk) == "retrying"
    message.refresh_from_db()
    assert "HTTP 503" in message.events.latest("id").detail


def test_a_permanent_400_fails_the_message_with_twilios_reason(twilio_app, provider_apis):
    provider_apis.expect_request(TWILIO_PATH).respond_with_json(
        {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400},
        status=400,
    )
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    assert send_via_provider(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "21211" in message.reason and "not a valid phone number" in message.reason
    assert message.next_attempt_at is None
    assert send_via_provider(message.pk) == "not due"


def test_a_429_honours_retry_after(twilio_app, provider_apis):
    provider_apis.expect_request(TWILIO_PATH).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "900"}
    )
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    assert send_via_provider(message.pk) == "retrying"
    message.refresh_from_db()
    assert message.next_attempt_at >= timezone.now() + timedelta(seconds=890)


def test_it_gives_up_after_the_last_attempt(twilio_app, provider_apis, settings):
    settings.SMSGATE_PROVIDER_MAX_ATTEMPTS = 2
    provider_apis.expect_request(TWILIO_PATH).respond_with_data("down", status=503)
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    assert send_via_provider(message.pk) == "retrying"
    make_due(message)
    assert send_via_provider(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "gave up after 2 attempts" in message.reason


def test_an_unreachable_api_is_a_temporary_failure(twilio_app, settings):
    settings.SMSGATE_TWILIO_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    assert send_via_provider(message.pk) == "retrying"


def test_a_cancelled_message_is_not_sent(twilio_app, provider_apis):
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    record_status(message_id=message.pk, status=Status.CANCELLED, reason="cancelled")
    assert send_via_provider(message.pk) == "not due"
    assert provider_apis.log == []


def test_the_sweep_re_enqueues_due_sends(twilio_app):
    message = send_message(to="+254722000333", body="Hi", app_id=twilio_app.pk)
    make_due(message)
    assert sweep_provider_sends() == {"enqueued": 1}


def test_vonage_send_posts_digits_and_client_ref(unsigned_vonage_app, provider_apis):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        body = {"message-count": "1", "messages": [{"status": "0", "message-id": "1B0"}]}
        return Response(json.dumps(body), content_type="application/json")

    provider_apis.expect_request("/sms/json", method="POST").respond_with_handler(handler)
    message = send_message(
        to="+254722000333", body="Caf\u00e9 \u2603", app_id=unsigned_vonage_app.pk
    )
    assert send_via_provider(message.pk) == "sent"
    message.refresh_from_db()
    assert message.provider_message_id == "1B0"
    sent = form(seen[0])
    assert (sent["to"], sent["from"], sent["client-ref"], sent["type"]) == (
        "254722000333",
        "254709000111",
        message.pk,
        "unicode",
    )
    assert sent["api_key"] == "a1b2c3d4" and sent["api_secret"] == "vonage-api-secret"


@pytest.mark.parametrize(("status", "outcome"), [("4", "failed"), ("1", "retrying")])
def test_vonage_refusals_are_told_apart(unsigned_vonage_app, provider_apis, status, outcome):
    provider_apis.expect_request("/sms/json").respond_with_json(
        {"message-count": "1", "messages": [{"status": status, "error-text": "Bad Credentials"}]}
    )
    message = send_message(to="+254722000333", body="Hi", app_id=unsigned_vonage_app.pk)
    assert send_via_provider(message.pk) == outcome


def test_africastalking_send_uses_the_api_key_header(at_app, provider_apis):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        body = {
            "SMSMessageData": {
                "Message": "Sent to 1/1",
                "Recipients": [
                    {
                        "statusCode": 101,
                        "number": "+2348030000555",
                        "status": "Success",
                        "messageId": "ATXid_1",
                    }
                ],
            }
        }
        return Response(json.dumps(body), status=201, content_type="application/json")

    provider_apis.expect_request("/version1/messaging", method="POST").respond_with_handler(handler)
    message = send_message(to="+2348030000555", body="Hi", app_id=at_app.pk)
    assert send_via_provider(message.pk) == "sent"
    message.refresh_from_db()
    assert message.provider_message_id == "ATXid_1"
    assert seen[0].headers["apiKey"] == "at-api-key"
    assert form(seen[0]) == {
        "username": "acme",
        "to": "+2348030000555",
        "message": "Hi",
        "from": "35555",
    }


def test_africastalking_blacklisted_recipient_is_permanent(at_app, provider_apis):
    provider_apis.expect_request("/version1/messaging").respond_with_json(
        {
            "SMSMessageData": {
                "Message": "Sent to 0/1",
                "Recipients": [
                    {"statusCode": 406, "number": "+2348030000555", "status": "UserInBlacklist"}
                ],
            }
        },
        status=201,
    )
    message = send_message(to="+2348030000555", body="Hi", app_id=at_app.pk)
    assert send_via_provider(message.pk) == "failed"
    message.refresh_from_db()
    assert "UserInBlacklist" in message.reason


def test_agiletelecom_outbound_fails_with_a_clear_reason(agile_app):
    # Sending through an Agile app is refused up front (it only receives); a message queued
    # on one before that rule still fails with a clear reason.
    with pytest.raises(Refused) as refused:
        send_message(to="+393351234567", body="Hi", app_id=agile_app.pk)
    assert refused.value.code == "app_cannot_send"
    message = OutboundMessageFactory(to_number="+393351234567", app=agile_app)
    assert send_via_provider(message.pk) == "failed"
    message.refresh_from_db()
    assert "not supported" in message.reason


def test_a_scheduled_app_message_is_sent_when_released(
    twilio_app, django_capture_on_commit_callbacks
):
    message = send_message(
        to="+254722000333",
        body="Later",
        app_id=twilio_app.pk,
        send_at=timezone.now() + timedelta(hours=1),
    )
    assert message.status == Status.SCHEDULED
    with django_capture_on_commit_callbacks() as callbacks:
        record_status(message_id=message.pk, status=Status.QUEUED, detail="send_at reached")
    assert any("schedule_provider_send" in getattr(cb, "__qualname__", "") for cb in callbacks)


def test_an_app_without_credentials_fails_the_message_permanently(db):
    from tests.factories import ProviderAppFactory

    app = ProviderAppFactory()
    with pytest.raises(Refused) as refused:
        send_message(to="+254722000333", body="Hi", app_id=app.pk)
    assert refused.value.code == "app_cannot_send"
    # One queued before its credentials were removed fails for good, saying why.
    message = OutboundMessageFactory(to_number="+254722000333", app=app)
    assert send_via_provider(message.pk) == "failed"
    message.refresh_from_db()
    assert "no account_sid, auth_token credential" in message.reason


def test_an_automation_reply_on_vonage_goes_out_through_the_sms_api(
    unsigned_vonage_app, provider_apis, auto_reply, django_capture_on_commit_callbacks
):
    from django.test import Client

    from tests.providers.conftest import receive_path

    provider_apis.expect_request("/sms/json").respond_with_json(
        {"message-count": "1", "messages": [{"status": "0", "message-id": "1R"}]}
    )
    inbound = {
        "msisdn": "254722000333",
        "to": "254709000111",
        "messageId": "1A",
        "text": "hi",
        "type": "text",
    }
    with django_capture_on_commit_callbacks() as callbacks:
        response = Client().post(
            receive_path(unsigned_vonage_app), json.dumps(inbound), content_type="application/json"
        )
    assert response.status_code == 200
    reply = Message.objects.get(direction="outbound")
    assert (reply.status, reply.app_id) == (Status.QUEUED, unsigned_vonage_app.pk)
    assert any("schedule_provider_send" in getattr(cb, "__qualname__", "") for cb in callbacks)
    assert send_via_provider(reply.pk) == "sent"
    reply.refresh_from_db()
    assert (reply.status, reply.provider_message_id) == (Status.SENT, "1R")
