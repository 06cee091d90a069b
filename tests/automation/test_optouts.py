"""The opt-out list API and what opting out means for every way of sending."""

from __future__ import annotations

import pytest

from messaging.models import Message, OptOut, Status

pytestmark = pytest.mark.django_db

NUMBER = "+15550001111"


def test_add_list_and_remove(admin_client):
    created = admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, format="json")
    assert created.status_code == 201
    assert created.json()["phone"] == NUMBER
    assert created.json()["source"] == "api"
    assert created.json()["at"].endswith("Z")

    again = admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, format="json")
    assert again.status_code == 200
    assert OptOut.objects.count() == 1

    listed = admin_client.get("/api/v1/opt-outs")
    assert listed.status_code == 200
    assert [o["phone"] for o in listed.json()["results"]] == [NUMBER]
    assert listed.json()["next"] is None

    one = admin_client.get("/api/v1/opt-outs/%2B15550001111")
    assert one.status_code == 200
    assert one.json() == created.json()

    assert admin_client.delete("/api/v1/opt-outs/%2B15550001111").status_code == 204
    assert admin_client.get("/api/v1/opt-outs/%2B15550001111").status_code == 404
    assert not OptOut.objects.exists()
    assert admin_client.delete("/api/v1/opt-outs/%2B15550001111").status_code == 404


def test_a_number_is_normalised_to_e164(admin_client, settings):
    settings.SMSGATE_DEFAULT_REGION = "US"
    response = admin_client.post("/api/v1/opt-outs", {"phone": "(555) 000-1111"}, format="json")
    assert response.status_code == 201
    assert response.json()["phone"] == NUMBER


@pytest.mark.parametrize(
    "payload", [{}, {"phone": ""}, {"phone": "not a number"}, {"phone": ["+15550001111"]}]
)
def test_bad_numbers_are_a_400_naming_phone(admin_client, payload):
    response = admin_client.post("/api/v1/opt-outs", payload, format="json")
    assert response.status_code == 400
    assert "phone" in response.json()["error"]["fields"]
    assert not OptOut.objects.exists()


def test_deleting_a_malformed_number_is_a_400(admin_client):
    assert admin_client.delete("/api/v1/opt-outs/banana").status_code == 400


def test_roles(staff_client, anon_client, admin_client):
    assert staff_client.get("/api/v1/opt-outs").status_code == 200
    assert (
        staff_client.post("/api/v1/opt-outs", {"phone": NUMBER}, format="json").status_code == 201
    )
    assert staff_client.get("/api/v1/opt-outs/%2B15550001111").status_code == 200
    assert staff_client.delete("/api/v1/opt-outs/%2B15550001111").status_code == 403
    assert anon_client.get("/api/v1/opt-outs").status_code == 401
    assert anon_client.post("/api/v1/opt-outs", {"phone": NUMBER}).status_code == 401
    assert anon_client.delete("/api/v1/opt-outs/%2B15550001111").status_code == 401
    assert OptOut.objects.filter(phone=NUMBER).exists()


def test_an_opted_out_number_is_refused_by_every_send_path(admin_client):
    admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, format="json")

    native = admin_client.post("/api/v1/messages", {"to": NUMBER, "body": "hi"}, format="json")
    assert native.status_code == 422
    assert native.json()["error"]["code"] == "recipient_opted_out"

    bulk = admin_client.post(
        "/api/v1/messages", {"to": [NUMBER, "+15550002222"], "body": "hi"}, format="json"
    )
    assert bulk.status_code == 202
    first, second = bulk.json()["results"]
    assert first["error"]["code"] == "recipient_opted_out"
    assert second["status"] == "queued"

    simgate = admin_client.post(
        "/v1/sms/send", {"phoneNumber": NUMBER, "message": "hi"}, format="json"
    )
    assert simgate.status_code == 422
    mysmsgate = admin_client.post("/api/v1/send", {"to": NUMBER, "message": "hi"}, format="json")
    assert mysmsgate.status_code == 422
    assert mysmsgate.json()["success"] is False

    assert not Message.objects.filter(to_number=NUMBER).exists()


def test_adding_an_opt_out_cancels_what_is_queued_for_the_number(admin_client):
    queued = admin_client.post("/api/v1/messages", {"to": NUMBER, "body": "hi"}, format="json")

    admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, format="json")

    message = Message.objects.get(pk=queued.json()["id"])
    assert message.status == Status.CANCELLED
    detail = admin_client.get(f"/api/v1/messages/{message.pk}").json()
    assert detail["events"][-1]["detail"] == "recipient opted out"


def test_stop_then_an_api_send_is_refused_and_start_allows_it_again(admin_client, receive):
    receive("STOP", sender=NUMBER)

    refused = admin_client.post("/api/v1/messages", {"to": NUMBER, "body": "hi"}, format="json")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "recipient_opted_out"
    listed = admin_client.get("/api/v1/opt-outs").json()["results"]
    assert listed == [{"phone": NUMBER, "at": listed[0]["at"], "source": "keyword"}]

    receive("START", sender=NUMBER)

    allowed = admin_client.post("/api/v1/messages", {"to": NUMBER, "body": "hi"}, format="json")
    assert allowed.status_code == 202
    assert admin_client.get("/api/v1/opt-outs").json()["results"] == []
