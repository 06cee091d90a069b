"""Single sends through POST /api/v1/messages (docs/api.md#sending)."""

from __future__ import annotations

import re

import pytest

from messaging.models import Conversation, Message, MessageEvent
from tests.factories import OptOutFactory

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CONTRACT_FIELDS = {
    "id",
    "direction",
    "status",
    "to",
    "from",
    "body",
    "device_id",
    "sim_slot",
    "segments",
    "encoding",
    "created_at",
    "send_at",
    "expires_at",
    "metadata",
}


def test_a_send_answers_202_with_every_contract_field(admin_client, phone):
    response = admin_client.post(
        "/api/v1/messages",
        {"to": "+15551234567", "body": "Your appointment is tomorrow", "metadata": {"b": "8812"}},
        format="json",
    )

    assert response.status_code == 202
    body = response.json()
    assert CONTRACT_FIELDS <= set(body)
    assert body["id"].startswith("msg_")
    assert body["direction"] == "outbound"
    assert body["status"] == "queued"
    assert body["to"] == "+15551234567"
    assert body["from"] == phone.device.sims.get(slot=1).number
    assert body["body"] == "Your appointment is tomorrow"
    assert body["device_id"] == phone.device.pk
    assert body["sim_slot"] == 1
    assert body["segments"] == 1
    assert body["encoding"] == "GSM-7"
    assert ISO_Z.match(body["created_at"])
    assert body["send_at"] is None
    assert body["expires_at"] is None
    assert body["metadata"] == {"b": "8812"}


def test_a_send_stores_the_message_its_first_event_and_the_conversation(admin_client, phone):
    body = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "hi"}, format="json"
    ).json()

    message = Message.objects.get(pk=body["id"])
    assert message.status == "queued"
    assert message.source == "api"
    assert list(MessageEvent.objects.filter(message=message).values_list("status", flat=True)) == [
        "queued"
    ]
    conversation = Conversation.objects.get(phone="+15551234567")
    assert conversation.last_message_id == message.pk
    assert message.conversation_id == conversation.pk


def test_the_answer_is_the_message_as_the_read_api_shows_it(admin_client, phone):
    sent = admin_client.post(
        "/api/v1/messages",
        {"to": "+15551234567", "body": "hi", "send_at": "2030-01-01T09:00:00Z"},
        format="json",
    ).json()
    read = admin_client.get(f"/api/v1/messages/{sent['id']}").json()

    read.pop("events")
    assert sent == read


def test_x_api_key_header_is_accepted_like_bearer(staff_client):
    response = staff_client.post("/api/v1/messages", {"to": "+15551234567", "body": "hi"})
    assert response.status_code == 202


def test_times_are_returned_in_utc_with_z(admin_client):
    response = admin_client.post(
        "/api/v1/messages",
        {
            "to": "+15551234567",
            "body": "later",
            "send_at": "2099-12-01T11:00:00+02:00",
            "expires_at": "2099-12-01T12:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["send_at"] == "2099-12-01T09:00:00Z"
    assert response.json()["expires_at"] == "2099-12-01T12:00:00Z"


# --- E.164 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["+1 (555) 123-4567", "+1-555-123-4567", " +15551234567 ", "+1.555.123.4567"]
)
def test_international_numbers_are_stored_in_e164(admin_client, raw):
    response = admin_client.post("/api/v1/messages", {"to": raw, "body": "hi"}, format="json")
    assert response.status_code == 202
    assert response.json()["to"] == "+15551234567"
    assert Message.objects.get().to_number == "+15551234567"


@pytest.mark.parametrize("raw", ["hello", "+1", "12", "", "   ", "+999 1234", "+1555123456789012"])
def test_an_unparseable_number_is_a_400_naming_to(admin_client, raw):
    response = admin_client.post("/api/v1/messages", {"to": raw, "body": "hi"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "to" in error["fields"]
    assert not Message.objects.exists()


def test_national_format_is_refused_without_a_default_region(admin_client, settings):
    settings.SMSGATE_DEFAULT_REGION = None
    response = admin_client.post(
        "/api/v1/messages", {"to": "0722000333", "body": "hi"}, format="json"
    )
    assert response.status_code == 400
    assert "to" in response.json()["error"]["fields"]


def test_national_format_is_accepted_with_a_default_region(admin_client, settings):
    settings.SMSGATE_DEFAULT_REGION = "KE"
    response = admin_client.post(
        "/api/v1/messages", {"to": "0722000333", "body": "hi"}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["to"] == "+254722000333"


# --- body, encoding and segments ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 159 + "€", "GSM-7", 2),
        ("Ж" * 70, "UCS-2", 1),
        ("Ж" * 71, "UCS-2", 2),
        ("😀" * 36, "UCS-2", 2),
        ("Meet at 10:00\u00a0tomorrow", "UCS-2", 1),
    ],
)
def test_segments_and_encoding_are_reported_on_the_message(admin_client, body, encoding, segments):
    response = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": body}, format="json"
    )
    assert response.status_code == 202
    assert (response.json()["encoding"], response.json()["segments"]) == (encoding, segments)
    message = Message.objects.get()
    assert (message.encoding, message.segments) == (encoding, segments)


def test_a_body_of_1600_characters_is_accepted_and_1601_refused(admin_client):
    ok = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "a" * 1600})
    too_long = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "a" * 1601})

    assert ok.status_code == 202
    assert ok.json()["segments"] == 11
    assert too_long.status_code == 400
    assert "body" in too_long.json()["error"]["fields"]
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"to": "+15551234567"},
        {"body": "hi"},
        {"to": "+15551234567", "body": ""},
        {"to": "+15551234567", "body": None},
    ],
)
def test_to_and_body_are_required(admin_client, payload):
    response = admin_client.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_an_opted_out_recipient_is_refused_with_422(admin_client):
    OptOutFactory(phone="+15551234567")

    response = admin_client.post(
        "/api/v1/messages", {"to": "+1 555 123 4567", "body": "hi"}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "recipient_opted_out"
    assert not Message.objects.exists()


def test_the_inbox_hears_of_a_send_only_after_commit(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "hi"})
    assert response.status_code == 202
    assert len(callbacks) >= 1

    OptOutFactory(phone="+15557654321")
    with django_capture_on_commit_callbacks() as callbacks:
        refused = admin_client.post("/api/v1/messages", {"to": "+15557654321", "body": "hi"})
    assert refused.status_code == 422
    assert callbacks == []


def test_a_send_that_loses_the_first_contact_race_joins_the_existing_conversation(phone):
    """The message, its event and the conversation are one statement: when another request
    created the contact's conversation after this one looked it up, the message moves to it."""
    from messaging.services import _queue_message, _SendLookups

    winner = Conversation.objects.create(phone="+15551234567")
    lookups = _SendLookups(conversations={}, opted_out=set())  # as read before the winner

    message = _queue_message(
        phone="+15551234567",
        body="hello",
        device_id=None,
        sim_slot=None,
        app_id=None,
        send_at=None,
        expires_at=None,
        metadata=None,
        source="api",
        allow_opted_out=False,
        lookups=lookups,
    )

    stored = Message.objects.get(pk=message.pk)
    assert stored.conversation_id == winner.pk
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().last_message_id == message.pk
    assert list(MessageEvent.objects.filter(message=stored).values_list("status", flat=True)) == [
        "queued"
    ]


def test_a_plain_send_builds_no_header_mapping(admin_client, phone, monkeypatch):
    """The negotiation (smsgate/negotiation.py) and the Idempotency-Key read META: building
    request.headers for them cost more than the rest of either."""
    from django.http import request as http_request

    built = []
    real = http_request.HttpHeaders.__init__

    def counting(self, environ):
        built.append(1)
        real(self, environ)

    monkeypatch.setattr(http_request.HttpHeaders, "__init__", counting)
    response = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "hi"})

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert built == []
