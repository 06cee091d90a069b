"""One loop guard for every automated sender: rules, built-ins and chat webhook answers.

Two bots answering each other (a chat receiver that always has something to say, and a sender
that is itself a bot) must stop after SMSGATE_AUTOREPLY_LIMIT replies to the number in an hour;
the replies held back are logged as suppressed hits, like a rule's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from automation.models import RuleHit
from messaging.models import Direction, Message
from webhooks.models import Delivery
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db

BOT = "+15551230001"
LIMIT = 3


@pytest.fixture(autouse=True)
def limit(settings: Any) -> None:
    settings.SMSGATE_AUTOREPLY_LIMIT = LIMIT


def replies_to_bot() -> list[Message]:
    return list(Message.objects.filter(direction=Direction.OUTBOUND, to_number=BOT).order_by("id"))


def deliver_everything() -> list[str]:
    """Run every pending delivery once, like the worker would."""
    pending = Delivery.objects.filter(attempts_made=0).order_by("id")
    return [deliver_webhook(pk) for pk in pending.values_list("pk", flat=True)]


def test_a_chat_receiver_that_always_answers_gets_limit_replies_then_is_suppressed(
    admin_client: Any,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/bot"), format="chat")
    receiver.expect_request("/bot").respond_with_json({"sms_text": "Tell me more!"})

    for n in range(LIMIT + 3):
        receive(body=f"I am a bot too ({n})", sender=BOT)
        assert deliver_everything() == ["succeeded"]

    assert [m.source for m in replies_to_bot()] == ["chat"] * LIMIT
    held = RuleHit.objects.filter(phone=BOT, suppressed=True)
    assert held.count() == 3
    hit = held.first()
    assert hit is not None
    assert hit.rule_id is None
    assert webhook["id"] in hit.rule_name
    [action] = hit.actions
    assert action["type"] == "reply"
    assert action["status"] == "suppressed"
    assert action["detail"].startswith("loop guard")
    assert action["text"] == "Tell me more!"
    listed = admin_client.get("/api/v1/rules/hits", {"suppressed": "true", "phone": BOT}).json()
    assert len(listed["results"]) == 3
    last = Delivery.objects.filter(endpoint_id=webhook["id"]).order_by("-id").first()
    assert last is not None
    assert last.attempts.get().error.startswith("reply suppressed: loop guard")


def test_rule_replies_forwards_and_chat_answers_share_one_count(
    admin_client: Any,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    create_webhook(receiver.url_for("/bot"), format="chat")
    receiver.expect_request("/bot").respond_with_json({"sms_text": "Tell me more!"})
    rule = admin_client.post(
        "/api/v1/rules",
        {
            "name": "Acknowledge and forward",
            "match": {"contains": "bot"},
            "actions": [
                {"type": "reply", "text": "Got it"},
                {"type": "forward", "url": receiver.url_for("/bot"), "format": "chat"},
            ],
        },
        format="json",
    )
    assert rule.status_code == 201, rule.json()

    for n in range(3):
        receive(body=f"I am a bot ({n})", sender=BOT)
        deliver_everything()

    # Round 1: the rule's reply, the subscribed chat endpoint's and the forward's answers.
    # That is the limit; nothing else goes, from any of them.
    sent = replies_to_bot()
    assert len(sent) == LIMIT
    assert sorted(m.source for m in sent) == ["automation", "chat", "chat"]
    held = RuleHit.objects.filter(phone=BOT, suppressed=True)
    assert {h.rule_name for h in held} >= {"Acknowledge and forward"}
    assert any(h.rule_name.startswith("Chat webhook") for h in held)
    assert held.count() == 2 * 3  # rounds 2 and 3: the rule's reply and two chat answers each


def test_the_limit_counts_chat_replies_when_a_rule_decides(
    admin_client: Any, receive: Callable[..., Message]
) -> None:
    from messaging.services import send_message

    for n in range(LIMIT):
        send_message(to=BOT, body=f"chat answer {n}", source="chat")
    admin_client.post(
        "/api/v1/rules",
        {
            "name": "Echo",
            "match": {"contains": "bot"},
            "actions": [{"type": "reply", "text": "ok"}],
        },
        format="json",
    )

    receive(body="bot again", sender=BOT)

    assert not Message.objects.filter(to_number=BOT, source="automation").exists()
    hit = RuleHit.objects.get(phone=BOT)
    assert hit.suppressed
    assert hit.actions[0]["detail"].startswith("loop guard")
