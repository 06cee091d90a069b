"""Compatible aliases: SimGate's POST /v1/sms/send and MySMSGate's POST /api/v1/send."""

from __future__ import annotations

import pytest

from messaging.models import Message
from tests.factories import OptOutFactory, paired_device

pytestmark = pytest.mark.django_db


# --- SimGate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"phoneNumber": "+15551234567", "message": "hi"},
        {"to": "+15551234567", "body": "hi"},
        {"phoneNumber": "+15551234567", "body": "hi"},
    ],
)
def test_simgate_send_answers_202_with_id_and_status(admin_client, payload):
    response = admin_client.post("/v1/sms/send", payload, format="json")

    assert response.status_code == 202
    assert response.json() == {"id": Message.objects.get().pk, "status": "queued"}
    message = Message.objects.get()
    assert (message.to_number, message.body) == ("+15551234567", "hi")


def test_simgate_device_id_routes_the_message(staff_client):
    phone = paired_device()
    response = staff_client.post(
        "/v1/sms/send",
        {"deviceId": phone.device.pk, "phoneNumber": "+15551234567", "message": "hi"},
        format="json",
    )
    assert response.status_code == 202
    assert Message.objects.get().device_id == phone.device.pk


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"message": "hi"}, 400, "invalid"),
        ({"phoneNumber": "+15551234567"}, 400, "invalid"),
        ({"phoneNumber": "nope", "message": "hi"}, 400, "invalid"),
        (
            {"phoneNumber": "+15551234567", "message": "hi", "deviceId": "dev_x"},
            422,
            "device_unavailable",
        ),
    ],
)
def test_simgate_refusals_use_the_error_envelope(admin_client, payload, status, code):
    response = admin_client.post("/v1/sms/send", payload, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Message.objects.exists()


def test_simgate_needs_an_api_key(anon_client):
    response = anon_client.post("/v1/sms/send", {"to": "+15551234567", "body": "hi"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- MySMSGate ----------------------------------------------------------------------------


def test_mysmsgate_send_answers_200_success(admin_client):
    phone = paired_device(sims=2)
    response = admin_client.post(
        "/api/v1/send",
        {"to": "+15551234567", "message": "hi", "device_id": phone.device.pk, "sim_slot": 2},
        format="json",
    )

    assert response.status_code == 200
    message = Message.objects.get()
    assert response.json() == {"success": True, "message_id": message.pk, "status": "queued"}
    assert (message.device_id, message.sim_slot) == (phone.device.pk, 2)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"message": "hi"}, 400),
        ({"to": "+15551234567"}, 400),
        ({"to": "nope", "message": "hi"}, 400),
        ({"to": "+15551234567", "message": "hi", "sim_slot": "a"}, 400),
        ({"to": "+15551234567", "message": "a" * 1601}, 400),
        ({"to": "+15551234567", "message": "hi", "device_id": "dev_nothere"}, 422),
    ],
)
def test_mysmsgate_errors_are_success_false_with_the_4xx(admin_client, payload, status):
    response = admin_client.post("/api/v1/send", payload, format="json")

    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert not Message.objects.exists()


def test_mysmsgate_opted_out_recipient_is_success_false_422(admin_client):
    OptOutFactory(phone="+15551234567")
    response = admin_client.post(
        "/api/v1/send", {"to": "+15551234567", "message": "hi"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["success"] is False
    assert response.json()["code"] == "recipient_opted_out"


@pytest.mark.parametrize(
    ("client_fixture", "status"), [("anon_client", 401), ("bad_key_client", 401)]
)
def test_mysmsgate_auth_errors_keep_its_shape(request, client_fixture, status):
    client = request.getfixturevalue(client_fixture)
    response = client.post("/api/v1/send", {"to": "+15551234567", "message": "hi"}, format="json")
    assert response.status_code == status
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"to=x", "text/plain")],
)
def test_mysmsgate_malformed_bodies_keep_its_shape(admin_client, raw, content_type):
    response = admin_client.generic("POST", "/api/v1/send", raw, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert response.json()["success"] is False
