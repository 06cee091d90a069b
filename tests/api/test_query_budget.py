"""Hot paths stay within their query budget.

These tests run outside a test transaction (transaction=True) so that transactions cost what
they cost in production (BEGIN/COMMIT are not counted) instead of two SAVEPOINT statements.
"""

from __future__ import annotations

import pytest

from tests.budgets import budget
from tests.factories import ConversationFactory, paired_device

pytestmark = pytest.mark.django_db(transaction=True)

SEND = {"to": "+15551234567", "body": "Your code is 1234"}


def test_a_first_send_to_a_new_contact(admin_client, django_assert_max_num_queries):
    paired_device(sims=2)
    admin_client.get("/api/v1/messages")  # the key's last_used_at is written once a minute

    # Key, conversation with the opt-out, pool route, the message + event + conversation
    # statement (committed alone: no BEGIN or COMMIT on PostgreSQL).
    with django_assert_max_num_queries(budget(4, sqlite=8)):
        response = admin_client.post("/api/v1/messages", SEND, format="json")
    assert response.status_code == 202


def test_a_send_to_a_known_contact_on_its_sticky_line(admin_client, django_assert_max_num_queries):
    phone = paired_device(sims=2)
    ConversationFactory(phone=SEND["to"], device=phone.device, sim_slot=2)
    admin_client.get("/api/v1/messages")

    # Key, conversation with the opt-out, the sticky SIM, the write.
    with django_assert_max_num_queries(budget(4, sqlite=8)):
        response = admin_client.post("/api/v1/messages", SEND, format="json")
    assert response.status_code == 202
    assert response.json()["sim_slot"] == 2


def test_a_send_to_an_explicit_device(admin_client, django_assert_max_num_queries):
    phone = paired_device(sims=2)
    admin_client.get("/api/v1/messages")

    # Key, conversation with the opt-out and the device with its SIMs, the write.
    with django_assert_max_num_queries(budget(3, sqlite=7)):
        response = admin_client.post(
            "/api/v1/messages", {**SEND, "device_id": phone.device.pk, "sim_slot": 2}
        )
    assert response.status_code == 202


def test_a_send_with_an_idempotency_key(admin_client, django_assert_max_num_queries):
    paired_device()
    ConversationFactory(phone=SEND["to"])
    admin_client.get("/api/v1/messages")

    with django_assert_max_num_queries(budget(8, sqlite=10)):
        response = admin_client.post(
            "/api/v1/messages", SEND, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
    assert response.status_code == 202


def test_a_send_with_an_idempotency_key_to_a_new_contact(
    admin_client, django_assert_max_num_queries
):
    """As many as a known contact: the opt-out is read in the conversation's statement
    whether or not the conversation exists (measured: 8 with BEGIN and COMMIT)."""
    paired_device()
    admin_client.get("/api/v1/messages")

    with django_assert_max_num_queries(budget(8, sqlite=10)):
        response = admin_client.post(
            "/api/v1/messages", SEND, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
    assert response.status_code == 202


def test_a_replayed_idempotent_send(admin_client, django_assert_max_num_queries):
    paired_device()
    admin_client.post("/api/v1/messages", SEND, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    with django_assert_max_num_queries(2):
        response = admin_client.post(
            "/api/v1/messages", SEND, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
    assert response.status_code == 200


def test_a_first_call_with_a_key_that_records_last_use(admin_client, django_assert_max_num_queries):
    paired_device()
    with django_assert_max_num_queries(budget(5, sqlite=9)):
        response = admin_client.post("/api/v1/messages", SEND, format="json")
    assert response.status_code == 202


def test_a_list_page_does_not_grow_with_its_size(admin_client, django_assert_max_num_queries):
    for n in range(30):
        admin_client.post("/api/v1/messages", {"to": f"+1555123{n:04d}", "body": "x"})
    with django_assert_max_num_queries(4):
        assert admin_client.get("/api/v1/messages?limit=30").status_code == 200
    with django_assert_max_num_queries(4):
        assert admin_client.get("/api/v1/conversations?limit=30").status_code == 200


def test_a_bulk_send_costs_one_write_per_recipient(admin_client, django_assert_max_num_queries):
    """Measured: 1 per new contact (message, event and conversation in one statement) plus 6
    for the request (key, opt-outs, conversations, pool route, BEGIN, COMMIT)."""
    paired_device()
    admin_client.get("/api/v1/messages")
    recipients = [f"+1555123{n:04d}" for n in range(50)]

    with django_assert_max_num_queries(budget(50 + 6, sqlite=3 * 50 + 6)):
        response = admin_client.post(
            "/api/v1/messages", {"to": recipients, "body": "x"}, format="json"
        )
    assert response.status_code == 202
    assert len(response.json()["results"]) == 50


def test_a_bulk_send_to_an_explicit_device_reads_the_device_once(
    admin_client, django_assert_max_num_queries
):
    """Key, opt-outs, conversations, the device's SIMs, BEGIN, COMMIT, and one write each."""
    phone = paired_device(sims=2)
    admin_client.get("/api/v1/messages")
    recipients = [f"+1555123{n:04d}" for n in range(50)]

    with django_assert_max_num_queries(budget(50 + 6, sqlite=3 * 50 + 6)):
        response = admin_client.post(
            "/api/v1/messages",
            {"to": recipients, "body": "x", "device_id": phone.device.pk, "sim_slot": 2},
            format="json",
        )
    assert response.status_code == 202
    assert {r["sim_slot"] for r in response.json()["results"]} == {2}
