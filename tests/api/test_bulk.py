"""Bulk sends: `to` as a list of up to 1000 recipients, one result per recipient in order."""

from __future__ import annotations

import pytest

from messaging.models import Conversation, Message
from tests.factories import ConversationFactory, OptOutFactory, paired_device

pytestmark = pytest.mark.django_db


def test_a_list_of_recipients_gives_one_result_per_recipient_in_order(admin_client):
    OptOutFactory(phone="+15550000002")
    recipients = ["+15550000001", "+15550000002", "not a number", "+1 555 000 0004"]

    response = admin_client.post(
        "/api/v1/messages", {"to": recipients, "body": "Shop closes at 6"}, format="json"
    )

    assert response.status_code == 202
    results = response.json()["results"]
    assert len(results) == 4
    assert results[0]["to"] == "+15550000001"
    assert results[0]["status"] == "queued"
    assert results[0]["id"].startswith("msg_")
    assert results[1] == {
        "to": "+15550000002",
        "error": {"code": "recipient_opted_out", "message": results[1]["error"]["message"]},
    }
    assert results[2]["to"] == "not a number"
    assert results[2]["error"]["code"] == "invalid"
    assert results[2]["error"]["message"]
    assert results[3]["to"] == "+15550000004"
    assert "error" not in results[3]
    assert set(Message.objects.values_list("to_number", flat=True)) == {
        "+15550000001",
        "+15550000004",
    }


def test_a_bulk_send_shares_body_and_metadata(admin_client):
    response = admin_client.post(
        "/api/v1/messages",
        {"to": ["+15550000001", "+15550000003"], "body": "hi", "metadata": {"campaign": "x"}},
        format="json",
    )
    assert response.status_code == 202
    assert [r["metadata"] for r in response.json()["results"]] == [{"campaign": "x"}] * 2


def test_a_thousand_recipients_are_accepted(admin_client):
    recipients = [f"+1555{n:07d}" for n in range(1000)]
    response = admin_client.post("/api/v1/messages", {"to": recipients, "body": "x"}, format="json")
    assert response.status_code == 202
    assert len(response.json()["results"]) == 1000
    assert Message.objects.count() == 1000


def test_1001_recipients_are_a_400_and_nothing_is_sent(admin_client):
    recipients = [f"+1555{n:07d}" for n in range(1001)]
    response = admin_client.post("/api/v1/messages", {"to": recipients, "body": "x"}, format="json")

    assert response.status_code == 400
    assert "to" in response.json()["error"]["fields"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("to", [[], [5], [None], ["+15550000001", ["+15550000002"]]])
def test_a_malformed_recipient_list_is_a_400(admin_client, to):
    response = admin_client.post("/api/v1/messages", {"to": to, "body": "x"}, format="json")
    assert response.status_code == 400
    assert "to" in response.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_a_bulk_send_with_a_bad_body_refuses_everything(admin_client):
    response = admin_client.post(
        "/api/v1/messages", {"to": ["+15550000001"], "body": "a" * 1601}, format="json"
    )
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_a_number_listed_twice_gets_two_messages_in_one_conversation(admin_client):
    response = admin_client.post(
        "/api/v1/messages",
        {"to": ["+15550000001", "+1 555 000 0001"], "body": "x"},
        format="json",
    )

    results = response.json()["results"]
    assert [r["to"] for r in results] == ["+15550000001", "+15550000001"]
    assert results[0]["id"] != results[1]["id"]
    conversation = Conversation.objects.get()
    assert conversation.last_message_id == results[1]["id"]
    assert set(Message.objects.values_list("conversation_id", flat=True)) == {conversation.pk}


def test_a_bulk_send_follows_each_contacts_sticky_line(admin_client):
    first, second = paired_device(sims=2), paired_device(sims=2)
    ConversationFactory(phone="+15550000001", device=first.device, sim_slot=2)
    ConversationFactory(phone="+15550000002", device=second.device, sim_slot=1)

    results = admin_client.post(
        "/api/v1/messages", {"to": ["+15550000001", "+15550000002"], "body": "x"}, format="json"
    ).json()["results"]

    assert [(r["device_id"], r["sim_slot"]) for r in results] == [
        (first.device.pk, 2),
        (second.device.pk, 1),
    ]


def test_a_bulk_send_to_an_unknown_device_refuses_each_recipient(admin_client):
    response = admin_client.post(
        "/api/v1/messages",
        {"to": ["+15550000001", "+15550000002"], "body": "x", "device_id": "dev_nothere"},
        format="json",
    )
    assert response.status_code == 202
    assert [r["error"]["code"] for r in response.json()["results"]] == ["device_unavailable"] * 2
    assert not Message.objects.exists()
