"""The full inbound pipeline from a phone (raw log, message, automation, webhook outbox): what it
costs in statements and commits, and that the batching behind those figures changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from automation import services as rule_services
from automation.models import RuleHit
from messaging import rawlog
from messaging.models import Conversation, InboundRequest, Message
from tests.devices.conftest import SMSSYNC_UA, TRANSACTION_STATEMENTS, MSync
from tests.devices.test_smssync import form_body, post_form
from tests.factories import PairedDevice
from webhooks import publish as webhook_publish
from webhooks import services as webhook_services
from webhooks.models import Delivery, Event

# What bench/profile.py measures: a tagging rule among others, and two subscribed endpoints.
TAG_RULE: dict[str, Any] = {
    "name": "tag every message",
    "match": {"contains": "meter"},
    "actions": [{"type": "tag", "tag": "meter"}],
}


@pytest.fixture
def pipeline(db: None, settings: Any) -> list[str]:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    rule_services.create_rule(**TAG_RULE)
    for i in range(19):
        rule_services.create_rule(
            name=f"unmatched {i}",
            match={"keywords": [f"code{i}"]},
            actions=[{"type": "tag", "tag": "never"}],
        )
    return [
        webhook_services.create_endpoint(
            url=f"http://127.0.0.1:9/hook{i}", events=["sms.received"]
        )[0].pk
        for i in range(2)
    ]


def _sms(sender: str, text: str, source_id: str) -> dict[str, Any]:
    return {"from": sender, "message": text, "id": source_id, "timestamp": 1_763_000_000_000}


def _statements(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split(" ", 1)[0].upper() for q in ctx.captured_queries]


# PostgreSQL's figures: SQLite splits big INSERTs and has no data-modifying WITH.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_smssync_message_through_the_full_pipeline_is_one_work_commit(
    phone: PairedDevice, pipeline: list[str]
):
    client = Client(HTTP_USER_AGENT=SMSSYNC_UA)
    post_form(client, form_body(phone.secret, **{"from": "+254722000999", "message_id": "w"}))

    with CaptureQueriesContext(connection) as ctx:
        response = post_form(client, form_body(phone.secret))

    assert response.json()["payload"]["success"] is True
    statements = _statements(ctx)
    # raw-log INSERT (its own commit, first), then one transaction: check-in, conversation
    # lookup, message, new conversation, the rules' and endpoints' version (both are kept in
    # memory while it holds), tag write (the new conversation is not read back), hit log,
    # event + deliveries (one statement), raw-log outcome. Was 15 + 2 (a savepoint and a read
    # around the tag, an event lookup, two INSERTs) and a third commit.
    assert len(statements) <= 10 + TRANSACTION_STATEMENTS, ctx.captured_queries
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert 'automation_rule"' not in sql and 'webhooks_endpoint"' not in sql
    assert sql.count("webhooks_configversion") == 1
    assert statements[0] == "INSERT" and statements[1] == "BEGIN"
    assert statements.count("COMMIT") == 1 and statements[-1] == "COMMIT"
    assert "SAVEPOINT" not in statements
    log = InboundRequest.objects.order_by("id").last()
    assert log is not None and log.outcome == "accepted" and log.status_code == 200
    message = Message.objects.get(from_number="+254722000333")
    assert Conversation.objects.get(pk=message.conversation_id).tags == ["meter"]
    assert RuleHit.objects.get(message=message).actions[0]["status"] == "done"
    event = Event.objects.get(message=message)
    assert sorted(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == (
        sorted(pipeline)
    )


# PostgreSQL's figures: SQLite splits big INSERTs and has no data-modifying WITH.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_msync_batch_of_100_costs_the_same_statements_as_one_message(
    phone: PairedDevice, pipeline: list[str]
):
    msync = MSync(phone)
    msync.post("incoming", messages=[_sms("+12025559999", "warm up", "w")])  # rules cached
    messages = [_sms(f"+1202555{i:04d}", f"meter {i}", f"b{i}") for i in range(100)]

    with CaptureQueriesContext(connection) as ctx:
        response = msync.post("incoming", messages=messages)

    assert response.json() == {"success": True, "received": 100, "duplicates": 0}
    statements = _statements(ctx)
    # Was 809: per message a savepointed tag, a hit, an event lookup, an event, deliveries.
    assert len(statements) <= 10 + TRANSACTION_STATEMENTS, ctx.captured_queries
    assert statements.count("COMMIT") == 1
    assert RuleHit.objects.count() == 100
    assert Event.objects.count() == 101 and Delivery.objects.count() == 202
    tagged = Conversation.objects.exclude(phone="+12025559999").values_list("tags", flat=True)
    assert len(tagged) == 100 and all(tags == ["meter"] for tags in tagged)
    assert InboundRequest.objects.order_by("id").last().outcome == "accepted"


def test_a_second_tag_of_one_conversation_in_a_batch_is_skipped(
    phone: PairedDevice, pipeline: list[str]
):
    msync = MSync(phone)
    messages = [_sms("+12025550001", f"meter {i}", f"s{i}") for i in range(2)]
    msync.post("incoming", messages=messages)

    statuses = [h.actions[0]["status"] for h in RuleHit.objects.order_by("id")]
    assert statuses == ["done", "skipped"]
    assert Conversation.objects.get().tags == ["meter"]
    # A later message of a tagged conversation: skipped, the tags unchanged.
    msync.post("incoming", messages=[_sms("+12025550001", "meter", "s3")])
    assert RuleHit.objects.order_by("id").last().actions[0]["detail"] == "already tagged"
    assert Conversation.objects.get().tags == ["meter"]


def test_a_batch_publishes_every_delivery_once_after_commit(
    phone: PairedDevice, pipeline: list[str], django_capture_on_commit_callbacks, monkeypatch
):
    published: list[list[str]] = []
    monkeypatch.setattr(webhook_publish, "publish", lambda ids: published.append(list(ids)))
    messages = [_sms(f"+1202555{i:04d}", "meter", f"p{i}") for i in range(3)]

    with django_capture_on_commit_callbacks(execute=True):
        MSync(phone).post("incoming", messages=messages)

    assert len(published) == 1
    assert sorted(published[0]) == sorted(Delivery.objects.values_list("pk", flat=True))
    assert len(published[0]) == 6


def test_a_forward_and_a_subscription_of_one_endpoint_share_the_event_in_a_batch(
    phone: PairedDevice, pipeline: list[str]
):
    rule_services.create_rule(
        name="forward", priority=-1, actions=[{"type": "forward", "webhook_id": pipeline[0]}]
    )
    messages = [_sms(f"+1202555{i:04d}", "meter", f"f{i}") for i in range(3)]

    MSync(phone).post("incoming", messages=messages)

    assert Event.objects.count() == 3
    for event in Event.objects.all():
        assert sorted(
            Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)
        ) == (sorted(pipeline))


@pytest.mark.django_db(transaction=True)
def test_an_outcome_recorded_in_a_transaction_that_rolls_back_is_recorded_again():
    from django.test import RequestFactory

    entry, _, _ = rawlog.log_request(RequestFactory().post("/api/sms/msync"), source="msync")

    with pytest.raises(RuntimeError), transaction.atomic():
        rawlog.finish(entry, outcome="accepted", status_code=200, detail="work done")
        raise RuntimeError("the work's commit failed")
    entry.refresh_from_db()
    assert entry.outcome != "accepted"  # rolled back with the work

    with CaptureQueriesContext(connection) as ctx:
        rawlog.finish(entry, outcome="accepted", status_code=200, detail="work done")
    assert len(ctx.captured_queries) == 1
    entry.refresh_from_db()
    assert entry.outcome == "accepted"


@pytest.mark.django_db(transaction=True)
def test_an_outcome_committed_with_the_work_is_not_written_twice():
    from django.test import RequestFactory

    entry, _, _ = rawlog.log_request(RequestFactory().post("/api/sms/msync"), source="msync")
    with transaction.atomic():
        rawlog.finish(entry, outcome="accepted", status_code=200, detail="work done")

    with CaptureQueriesContext(connection) as ctx:
        rawlog.finish(entry, outcome="accepted", status_code=200, detail="work done")
        assert ctx.captured_queries == []
        # A different outcome is still written.
        rawlog.finish(entry, outcome="error", status_code=500, detail="later")
    assert len(ctx.captured_queries) == 1
    entry.refresh_from_db()
    assert entry.outcome == "error"


@pytest.mark.django_db(transaction=True)
def test_an_msync_action_that_fails_records_its_rejection_after_the_rollback(
    phone: PairedDevice,
):
    response = MSync(phone).post("incoming", messages=[{"from": "", "message": 5}])

    assert response.status_code == 400
    log = InboundRequest.objects.get()
    assert log.outcome == "rejected" and log.status_code == 400
    assert log.device_id == phone.device.pk
    assert Message.objects.count() == 0


def test_known_and_new_conversations_tagged_in_one_batch_keep_their_own_tags(
    phone: PairedDevice, pipeline: list[str]
):
    msync = MSync(phone)
    msync.post("incoming", messages=[_sms("+12025550001", "hello", "k0")])
    Conversation.objects.filter(phone="+12025550001").update(tags=["vip"])

    msync.post(
        "incoming",
        messages=[_sms("+12025550001", "meter", "k1"), _sms("+12025550002", "meter", "k2")],
    )

    tags = dict(Conversation.objects.values_list("phone", "tags"))
    assert tags == {"+12025550001": ["vip", "meter"], "+12025550002": ["meter"]}
