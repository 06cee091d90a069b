"""Twilio posting to /api/sms/apps/{id}/receive, signed by the official library."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from messaging.models import InboundRequest, Message, Status
from messaging.services import send_message
from providers.tasks import send_via_provider
from tests.providers.conftest import TWILIO_SID, post_form, receive_path, twilio_signature

pytestmark = pytest.mark.django_db

INBOUND = {
    "ToCountry": "KE",
    "ToState": "",
    "SmsMessageSid": "SM5e0c27a1d0b94f2a8c3e61b7f4d2a901",
    "NumMedia": "0",
    "ToCity": "",
    "FromZip": "",
    "SmsSid": "SM5e0c27a1d0b94f2a8c3e61b7f4d2a901",
    "FromState": "",
    "SmsStatus": "received",
    "FromCity": "",
    "Body": "Meter 4471 reading 0032",
    "FromCountry": "KE",
    "To": "+254709000111",
    "MessagingServiceSid": "MG0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
    "ToZip": "",
    "NumSegments": "1",
    "MessageSid": "SM5e0c27a1d0b94f2a8c3e61b7f4d2a901",
    "AccountSid": TWILIO_SID,
    "From": "+254722000333",
    "ApiVersion": "2010-04-01",
}


def signed_post(client, app, params, *, query="", host="testserver", scheme="http", **extra):
    path = receive_path(app) + (f"?{query}" if query else "")
    signature = twilio_signature(f"{scheme}://{host}{path}", params)
    return post_form(
        client, path, params, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST=host, **extra
    )


def test_a_signed_post_is_stored_and_answered_with_empty_twiml(twilio_app):
    response = signed_post(Client(), twilio_app, INBOUND)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    message = Message.objects.get(direction="inbound")
    assert (message.from_number, message.to_number) == ("+254722000333", "+254709000111")
    assert message.body == "Meter 4471 reading 0032"
    assert message.app_id == twilio_app.pk
    assert message.source == "twilio"
    assert message.provider_message_id == INBOUND["MessageSid"]
    log = InboundRequest.objects.get()
    assert (log.source, log.outcome, log.status_code) == ("twilio", "accepted", 200)


def test_the_signature_covers_the_query_string(twilio_app):
    response = signed_post(Client(), twilio_app, INBOUND, query="foo=1&bar=2")
    assert response.status_code == 200
    assert Message.objects.filter(direction="inbound").count() == 1


@pytest.mark.parametrize("host", ["testserver:8080", "testserver:80"])
def test_a_port_in_the_url_is_accepted(twilio_app, host, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = signed_post(Client(), twilio_app, INBOUND, host=host)
    assert response.status_code == 200


def test_twilio_signing_without_the_default_port_is_accepted(twilio_app, settings):
    """Twilio is not consistent about ports: a request to :443 signed without it passes."""
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org:443"
    path = receive_path(twilio_app)
    signature = twilio_signature(f"https://sms.example.org{path}", INBOUND)
    response = post_form(Client(), path, INBOUND, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["", "a=1&b=two%20words"])
@pytest.mark.parametrize("host", ["testserver", "testserver:8000"])
def test_a_signed_get_is_stored(twilio_app, query, host, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    params = urlencode(INBOUND)
    path = f"{receive_path(twilio_app)}?{params}" + (f"&{query}" if query else "")
    signature = twilio_signature(f"http://{host}{path}")
    response = Client().get(path, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST=host)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert Message.objects.get(direction="inbound").body == INBOUND["Body"]


def test_a_tampered_get_query_is_refused(twilio_app):
    path = f"{receive_path(twilio_app)}?{urlencode(INBOUND)}"
    signature = twilio_signature(f"http://testserver{path}")
    tampered = path.replace("reading+0032", "reading+9999")
    assert Client().get(tampered, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403
    assert not Message.objects.exists()


def test_the_public_url_setting_is_what_is_verified(twilio_app, settings):
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    path = receive_path(twilio_app) + "?x=1"
    good = twilio_signature(f"https://sms.example.org{path}", INBOUND)
    assert post_form(Client(), path, INBOUND, HTTP_X_TWILIO_SIGNATURE=good).status_code == 200
    local = twilio_signature(f"http://testserver{path}", INBOUND)
    assert post_form(Client(), path, INBOUND, HTTP_X_TWILIO_SIGNATURE=local).status_code == 403


def test_proxy_headers_are_honoured_when_trusted(twilio_app, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["testserver", "sms.example.org"]
    path = receive_path(twilio_app)
    signature = twilio_signature(f"https://sms.example.org{path}", INBOUND)
    response = post_form(
        Client(),
        path,
        INBOUND,
        HTTP_X_TWILIO_SIGNATURE=signature,
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="sms.example.org",
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        {"Body": "Meter 4471 reading 9999"},
        {"From": "+254722000334"},
        {"Extra": "1"},
    ],
)
def test_a_tampered_parameter_is_refused_and_logged(twilio_app, tamper):
    path = receive_path(twilio_app)
    signature = twilio_signature(f"http://testserver{path}", INBOUND)
    response = post_form(Client(), path, {**INBOUND, **tamper}, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    assert not Message.objects.exists()
    log = InboundRequest.objects.get()
    assert (log.outcome, log.status_code, log.app_id) == ("rejected", 403, twilio_app.pk)
    assert b"Meter" in bytes(log.body)


def test_a_missing_signature_or_other_token_is_refused(twilio_app):
    path = receive_path(twilio_app)
    assert post_form(Client(), path, INBOUND).status_code == 403
    other = twilio_signature(f"http://testserver{path}", INBOUND, token="another-token")
    assert post_form(Client(), path, INBOUND, HTTP_X_TWILIO_SIGNATURE=other).status_code == 403


def test_an_unknown_app_is_404_and_logged(db):
    response = post_form(Client(), "/api/sms/apps/app_nothere/receive", INBOUND)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert InboundRequest.objects.get().outcome == "rejected"


def test_a_retry_is_acknowledged_and_stored_once(twilio_app):
    first = signed_post(Client(), twilio_app, INBOUND)
    second = signed_post(Client(), twilio_app, INBOUND)
    assert first.status_code == second.status_code == 200
    assert Message.objects.filter(direction="inbound").count() == 1
    assert list(InboundRequest.objects.order_by("id").values_list("outcome", flat=True)) == [
        "accepted",
        "duplicate",
    ]


def test_automation_replies_come_back_as_twiml_and_are_not_sent_again(
    twilio_app, auto_reply, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_post(Client(), twilio_app, INBOUND)
    assert response.status_code == 200
    text = response.content.decode()
    assert "<Response><Message" in text
    assert ">Thanks, got: Meter 4471 reading 0032</Message></Response>" in text
    reply = Message.objects.get(direction="outbound")
    assert reply.status == Status.SENT
    assert reply.app_id == twilio_app.pk
    assert reply.events.filter(detail="sent as TwiML reply").exists()
    # The provider send scheduled when the reply was queued finds nothing left to do.
    assert send_via_provider(reply.pk) == "not due"


def test_a_status_callback_moves_the_message_forward_only(twilio_app):
    message = send_message(to="+254722000333", body="Hello", app_id=twilio_app.pk)
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENT, provider_message_id="SMb2a94c1e7d3f40a6b8e95c2d1f0a7e63"
    )
    callback = {
        "SmsSid": "SMb2a94c1e7d3f40a6b8e95c2d1f0a7e63",
        "SmsStatus": "delivered",
        "MessageStatus": "delivered",
        "To": "+254722000333",
        "MessageSid": "SMb2a94c1e7d3f40a6b8e95c2d1f0a7e63",
        "AccountSid": TWILIO_SID,
        "From": "+254709000111",
        "ApiVersion": "2010-04-01",
        "RawDlrDoneDate": "2504071530",
    }
    response = signed_post(Client(), twilio_app, callback, query=f"message={message.pk}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    late = {**callback, "MessageStatus": "sent", "SmsStatus": "sent"}
    assert signed_post(Client(), twilio_app, late).status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.events.filter(status="sent", applied=False).exists()
    assert not Message.objects.filter(direction="inbound").exists()


def test_a_failed_callback_fails_the_message_with_the_error_code(twilio_app):
    message = send_message(to="+254722000333", body="Hello", app_id=twilio_app.pk)
    Message.objects.filter(pk=message.pk).update(status=Status.SENT, provider_message_id="SM1")
    callback = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert signed_post(Client(), twilio_app, callback).status_code == 200
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "30003" in message.reason


def test_a_callback_for_a_twiml_reply_finds_it_by_our_id_and_keeps_twilios(twilio_app):
    reply = send_message(to="+254722000333", body="Thanks", app_id=twilio_app.pk)
    Message.objects.filter(pk=reply.pk).update(status=Status.SENT)
    callback = {"MessageSid": "SMreply1", "MessageStatus": "delivered"}
    response = signed_post(Client(), twilio_app, callback, query=f"message={reply.pk}")
    assert response.status_code == 200
    reply.refresh_from_db()
    assert (reply.status, reply.provider_message_id) == (Status.DELIVERED, "SMreply1")


def test_a_signed_request_without_from_is_a_400(twilio_app):
    response = signed_post(Client(), twilio_app, {"Body": "no sender"})
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_an_inbound_message_with_a_twiml_reply_takes_a_bounded_number_of_queries(
    twilio_app, auto_reply, django_assert_max_num_queries
):
    # Measured: 30 statements (savepoints included) with automation and webhooks installed.
    with django_assert_max_num_queries(36):
        assert signed_post(Client(), twilio_app, INBOUND).status_code == 200
    with django_assert_max_num_queries(15):
        assert signed_post(Client(), twilio_app, INBOUND).status_code == 200
