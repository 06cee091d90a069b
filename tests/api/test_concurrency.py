"""Two requests at the same moment, on the real PostgreSQL (each thread has its connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from messaging.models import Conversation, IdempotencyRecord, Message

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def twice_at_once(call: Callable[[], object]) -> list:
    barrier = threading.Barrier(2)
    results: list = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(call())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_two_requests_with_one_idempotency_key_send_once(admin_key):
    body = {"to": "+15551234567", "body": "Your code is 1234"}

    responses = twice_at_once(
        lambda: client_for(admin_key).post(
            "/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="race"
        )
    )

    assert sorted(r.status_code for r in responses) == [200, 202]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert Message.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_two_first_messages_to_one_contact_share_one_conversation(admin_key):
    responses = twice_at_once(
        lambda: client_for(admin_key).post(
            "/api/v1/messages", {"to": "+15551234567", "body": "hi"}, format="json"
        )
    )

    assert [r.status_code for r in responses] == [202, 202]
    conversation = Conversation.objects.get()
    assert set(Message.objects.values_list("conversation_id", flat=True)) == {conversation.pk}
    assert conversation.last_message_id in {r.json()["id"] for r in responses}


def test_a_first_message_that_meets_a_conversation_created_meanwhile_joins_it(
    admin_key, monkeypatch
):
    """The race above, made certain: the contact had no conversation when the send read it,
    and has one when the send writes (committed alone, outside a transaction)."""
    from messaging import services

    existing = Conversation.objects.create(phone="+15551234567")
    monkeypatch.setattr(services, "contact", lambda phone: (None, False))

    response = client_for(admin_key).post(
        "/api/v1/messages", {"to": "+15551234567", "body": "hi"}, format="json"
    )

    assert response.status_code == 202
    assert Conversation.objects.get() == existing
    message = Message.objects.get()
    assert message.conversation_id == existing.pk
    existing.refresh_from_db()
    assert existing.last_message_id == message.pk
    assert message.events.count() == 1
