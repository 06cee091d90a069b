"""Reading messages and conversations: detail with events, filters, cursor pagination."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.services import record_status
from tests.factories import (
    ConversationFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
    paired_device,
)

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [m["id"] for m in response.json()["results"]]


def follow_all(client, url: str) -> list[dict]:
    """Every page of a list, following `next` until it is null."""
    seen: list[dict] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"results", "next"}
        seen.extend(body["results"])
        url = body["next"]
        pages += 1
        assert pages < 100
    return seen


def test_message_detail_has_the_events(admin_client):
    sent = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "x"}).json()
    record_status(message_id=sent["id"], status="dispatched")
    record_status(message_id=sent["id"], status="delivered", detail="handset ack")
    record_status(message_id=sent["id"], status="sent", detail="late report")

    response = admin_client.get(f"/api/v1/messages/{sent['id']}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == sent["id"]
    assert body["status"] == "delivered"
    assert [e["status"] for e in body["events"]] == [
        "queued",
        "dispatched",
        "delivered",
        "sent",
    ]
    assert body["events"][2]["detail"] == "handset ack"
    assert all(e["at"].endswith("Z") for e in body["events"])


def test_an_unknown_message_is_a_404_envelope(admin_client):
    response = admin_client.get("/api/v1/messages/msg_nothere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_inbound_message_reads_with_received_fields(admin_client):
    phone = paired_device()
    inbound = InboundMessageFactory(device=phone.device, sim_slot=1, to_number="+15552220000")

    body = admin_client.get(f"/api/v1/messages/{inbound.pk}").json()

    assert body["direction"] == "inbound"
    assert body["status"] == "received"
    assert body["from"] == inbound.from_number
    assert body["to"] == "+15552220000"
    assert body["device_id"] == phone.device.pk
    assert body["received_at"].endswith("Z")
    assert body["created_at"].endswith("Z")


def test_numbers_not_known_yet_read_as_null(admin_client):
    inbound = InboundMessageFactory(to_number="")
    queued = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "x"}).json()

    assert admin_client.get(f"/api/v1/messages/{inbound.pk}").json()["to"] is None
    assert queued["device_id"] is None
    assert queued["from"] is None


def test_the_list_is_newest_first(admin_client):
    made = [OutboundMessageFactory().pk for _ in range(3)]
    assert ids(admin_client.get("/api/v1/messages")) == list(reversed(made))


@pytest.mark.parametrize("limit", [1, 2, 7])
def test_following_next_walks_every_message_once(admin_client, limit):
    made = [OutboundMessageFactory().pk for _ in range(7)]

    seen = follow_all(admin_client, f"/api/v1/messages?limit={limit}")

    assert [m["id"] for m in seen] == list(reversed(made))


def test_pagination_keeps_the_filters(admin_client):
    for _ in range(5):
        OutboundMessageFactory()
        InboundMessageFactory()

    seen = follow_all(admin_client, "/api/v1/messages?direction=inbound&limit=2")

    assert len(seen) == 5
    assert {m["direction"] for m in seen} == {"inbound"}


def test_a_new_message_during_paging_is_not_a_duplicate(admin_client):
    for _ in range(4):
        OutboundMessageFactory()
    first = admin_client.get("/api/v1/messages?limit=2").json()
    OutboundMessageFactory()

    rest = follow_all(admin_client, first["next"])

    page_ids = [m["id"] for m in first["results"]] + [m["id"] for m in rest]
    assert len(page_ids) == len(set(page_ids)) == 4


def test_next_is_an_absolute_url_on_this_server(admin_client):
    for _ in range(3):
        OutboundMessageFactory()
    nxt = admin_client.get("/api/v1/messages?limit=2").json()["next"]
    assert urlsplit(nxt).path == "/api/v1/messages"
    assert "cursor=" in nxt


def test_a_garbled_cursor_is_a_400(admin_client):
    response = admin_client.get("/api/v1/messages?cursor=not-a-cursor")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_filter_by_direction(admin_client):
    out = OutboundMessageFactory()
    inbound = InboundMessageFactory()
    assert ids(admin_client.get("/api/v1/messages?direction=outbound")) == [out.pk]
    assert ids(admin_client.get("/api/v1/messages?direction=inbound")) == [inbound.pk]


def test_filter_by_status(admin_client):
    queued = OutboundMessageFactory()
    failed = OutboundMessageFactory(status="failed")
    assert ids(admin_client.get("/api/v1/messages?status=queued")) == [queued.pk]
    assert ids(admin_client.get("/api/v1/messages?status=failed")) == [failed.pk]


def test_filter_by_device(admin_client):
    phone = paired_device()
    mine = OutboundMessageFactory(device=phone.device)
    OutboundMessageFactory()
    assert ids(admin_client.get(f"/api/v1/messages?device_id={phone.device.pk}")) == [mine.pk]


def test_filter_by_phone_matches_either_side(admin_client):
    to_them = OutboundMessageFactory(to_number="+15551234567")
    from_them = InboundMessageFactory(from_number="+15551234567")
    OutboundMessageFactory(to_number="+15559999999")

    expected = [from_them.pk, to_them.pk]
    assert ids(admin_client.get("/api/v1/messages", {"phone": "+15551234567"})) == expected
    # An unencoded "+" in a query string arrives as a space.
    assert ids(admin_client.get("/api/v1/messages?phone=+15551234567")) == expected
    assert ids(admin_client.get("/api/v1/messages", {"phone": "+1 555 123 4567"})) == expected


def test_filter_by_since_and_until(admin_client):
    now = timezone.now()
    old = OutboundMessageFactory()
    Message.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))
    recent = OutboundMessageFactory()
    Message.objects.filter(pk=recent.pk).update(created_at=now - timedelta(hours=1))

    day_ago = (now - timedelta(days=1)).isoformat()
    assert ids(admin_client.get("/api/v1/messages", {"since": day_ago})) == [recent.pk]
    assert ids(admin_client.get("/api/v1/messages", {"until": day_ago})) == [old.pk]


def test_since_and_until_accept_a_bare_date(admin_client):
    made = OutboundMessageFactory()
    Message.objects.filter(pk=made.pk).update(created_at="2026-03-02T12:00:00Z")
    assert ids(admin_client.get("/api/v1/messages?since=2026-03-02&until=2026-03-03")) == [made.pk]
    assert ids(admin_client.get("/api/v1/messages?since=2026-03-03")) == []


def test_empty_filters_are_ignored(admin_client):
    made = OutboundMessageFactory()
    assert ids(admin_client.get("/api/v1/messages?status=&phone=&since=")) == [made.pk]


@pytest.mark.parametrize(
    "query",
    ["direction=sideways", "status=lost", "since=yesterday", "until=2026-13-01", "phone=%00"],
)
def test_bad_filters_are_a_400(admin_client, query):
    response = admin_client.get(f"/api/v1/messages?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


# --- conversations ------------------------------------------------------------------------


def test_conversations_list_one_per_contact_with_the_contract_fields(admin_client):
    phone = paired_device(sims=2)
    admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "one"})
    last = admin_client.post(
        "/api/v1/messages",
        {"to": "+15551234567", "body": "two", "device_id": phone.device.pk, "sim_slot": 2},
    ).json()
    admin_client.post("/api/v1/messages", {"to": "+15557654321", "body": "other"})

    results = admin_client.get("/api/v1/conversations").json()["results"]

    assert [c["phone"] for c in results] == ["+15557654321", "+15551234567"]
    mine = results[1]
    assert {"id", "phone", "last_message", "unread", "device_id", "sim_slot", "updated_at"} <= set(
        mine
    )
    assert mine["last_message"]["id"] == last["id"]
    assert mine["last_message"]["body"] == "two"
    assert (mine["device_id"], mine["sim_slot"]) == (phone.device.pk, 2)
    assert mine["unread"] == 0
    assert mine["updated_at"].endswith("Z")


def test_conversations_are_ordered_by_latest_activity(admin_client):
    admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "first"})
    admin_client.post("/api/v1/messages", {"to": "+15557654321", "body": "second"})
    admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "third"})

    results = admin_client.get("/api/v1/conversations").json()["results"]

    assert [c["phone"] for c in results] == ["+15551234567", "+15557654321"]


def test_conversations_paginate(admin_client):
    for n in range(5):
        ConversationFactory(phone=f"+1555000000{n}")
    seen = follow_all(admin_client, "/api/v1/conversations?limit=2")
    assert len({c["id"] for c in seen}) == 5


def test_conversation_messages_are_the_thread_newest_first(admin_client):
    a = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "one"}).json()
    admin_client.post("/api/v1/messages", {"to": "+15557654321", "body": "other"})
    b = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "two"}).json()
    conversation_id = Message.objects.get(pk=a["id"]).conversation_id

    response = admin_client.get(f"/api/v1/conversations/{conversation_id}/messages")

    assert ids(response) == [b["id"], a["id"]]


def test_messages_of_an_unknown_conversation_is_a_404(admin_client):
    response = admin_client.get("/api/v1/conversations/cnv_nothere/messages")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
