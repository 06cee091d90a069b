"""Africa's Talking incoming messages and delivery reports (docs/providers/africastalking.md)."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging.models import InboundRequest, Message, Status
from messaging.services import send_message
from providers.services import create_provider_app
from tests.providers.conftest import AT_TOKEN, post_form, receive_path

pytestmark = pytest.mark.django_db

INCOMING = {
    "from": "+2348030000555",
    "to": "35555",
    "text": "METER 4471 0032",
    "date": "2025-04-07 12:30:05",
    "id": "6a1f0c3e-2b4d-4c5e-9f70-81a2b3c4d5e6",
    "linkId": "SampleLinkId7788",
    "networkCode": "62130",
}


def url(app, token=AT_TOKEN):
    return f"{receive_path(app)}?token={token}"


def test_an_incoming_message_is_stored(at_app):
    response = post_form(Client(), url(at_app), INCOMING)
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.from_number, message.to_number) == ("+2348030000555", "35555")
    assert message.body == "METER 4471 0032"
    assert message.provider_message_id == INCOMING["id"]
    assert message.metadata == {"linkId": "SampleLinkId7788", "networkCode": "62130"}
    assert message.received_at.isoformat() == "2025-04-07T12:30:05+00:00"


@pytest.mark.parametrize("path_suffix", ["", "?token=wrong", "?token="])
def test_a_missing_or_wrong_token_is_403(at_app, path_suffix):
    response = post_form(Client(), receive_path(at_app) + path_suffix, INCOMING)
    assert response.status_code == 403
    assert not Message.objects.exists()
    log = InboundRequest.objects.get()
    assert log.outcome == "rejected"
    assert AT_TOKEN not in log.query


def test_an_app_without_a_token_accepts_any_request(db):
    app = create_provider_app(
        provider="africastalking", name="open", credentials={"username": "u", "api_key": "k"}
    )
    assert post_form(Client(), receive_path(app), INCOMING).status_code == 200


def test_a_retry_is_acknowledged_and_stored_once(at_app):
    assert post_form(Client(), url(at_app), INCOMING).status_code == 200
    assert post_form(Client(), url(at_app), INCOMING).status_code == 200
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Success", Status.DELIVERED),
        ("Failed", Status.FAILED),
        ("Rejected", Status.FAILED),
        ("Buffered", Status.SENT),
    ],
)
def test_delivery_reports_are_applied(at_app, status, expected):
    message = send_message(to="+2348030000555", body="Hi", app_id=at_app.pk)
    Message.objects.filter(pk=message.pk).update(
        status=Status.DISPATCHED, provider_message_id="ATXid_3c9e0d1f2a4b5c6d7e8f"
    )
    report = {
        "id": "ATXid_3c9e0d1f2a4b5c6d7e8f",
        "status": status,
        "phoneNumber": "+2348030000555",
        "networkCode": "62130",
        "retryCount": "0",
    }
    if expected == Status.FAILED:
        report["failureReason"] = "UserInBlackList"
    assert post_form(Client(), url(at_app), report).status_code == 200
    message.refresh_from_db()
    assert message.status == expected
    if expected == Status.FAILED:
        assert "UserInBlackList" in message.reason


def test_a_report_for_an_unknown_message_is_acknowledged(at_app):
    report = {"id": "ATXid_unknown", "status": "Success", "phoneNumber": "+2348030000555"}
    assert post_form(Client(), url(at_app), report).status_code == 200
    assert "no outbound message" in InboundRequest.objects.get().detail


@pytest.mark.parametrize(
    "sender", ["0712345672", "254712345672", "+254712345672"], ids=["national", "no-plus", "e164"]
)
def test_a_sender_is_stored_in_e164_in_the_country_of_the_receiving_number(db, sender):
    app = create_provider_app(
        provider="africastalking",
        name="AT KE",
        credentials={"username": "u", "api_key": "k"},
        numbers=["+254709000111"],
    )
    params = {**INCOMING, "from": sender, "to": "+254709000111"}
    assert post_form(Client(), receive_path(app), params).status_code == 200
    assert Message.objects.get().from_number == "+254712345672"
