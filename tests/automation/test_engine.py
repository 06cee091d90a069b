"""The engine behind every inbound endpoint, driven through messaging.services.receive_inbound."""

from __future__ import annotations

import pytest
from django.test import override_settings

from automation.models import RuleHit
from messaging.models import Conversation, Direction, Message, OptOut, Status

pytestmark = pytest.mark.django_db

SENDER = "+15550001111"


def outbound_to(phone: str = SENDER) -> list[Message]:
    return list(
        Message.objects.filter(direction=Direction.OUTBOUND, to_number=phone).order_by("id")
    )


def test_a_keyword_rule_replies_through_the_same_device_and_sim(receive, make_rule, phone):
    make_rule(
        name="Confirm",
        match={"keywords": ["YES", "Y"]},
        actions=[{"type": "reply", "text": "Thanks {{from}}, confirmed on {{device}}: {{body}}"}],
    )

    result = receive("yes!", sim_slot=2)

    assert [m.body for m in result.replies] == [f"Thanks {SENDER}, confirmed on Front desk: yes!"]
    reply = result.replies[0]
    assert (reply.device_id, reply.sim_slot, reply.to_number) == (phone.device.pk, 2, SENDER)
    assert reply.status == Status.QUEUED
    assert reply.source == "automation"
    assert reply.metadata["automation"]["in_reply_to"] == result.message.pk
    hit = RuleHit.objects.get()
    assert hit.rule_name == "Confirm"
    assert hit.message_id == result.message.pk
    assert hit.actions == [
        {
            "type": "reply",
            "status": "done",
            "detail": "",
            "text": reply.body,
            "message_id": reply.pk,
        }
    ]


def test_a_keyword_inside_a_longer_word_does_not_match(receive, make_rule):
    make_rule(match={"keywords": ["YES"]})

    assert receive("yesterday was fine").replies == []
    assert receive("Well yes").replies == []
    assert RuleHit.objects.count() == 0


def test_all_given_conditions_must_hold(receive, make_rule, phone):
    make_rule(
        match={
            "keywords": ["order"],
            "contains": "LATE",
            "regex": r"#\d{4}\b",
            "sender": "+1555000*",
            "device_id": phone.device.pk,
        }
    )

    assert receive("order #1234 is late").replies != []
    assert receive("order #1234 is on time").replies == []
    assert receive("order #12 is late").replies == []
    assert receive("order #1234 is late", sender="+15559990000").replies == []
    assert receive("question: order #1234 late").replies == []


def test_sender_glob_and_exact_sender(receive, make_rule):
    make_rule(
        name="vip", match={"sender": "+15550001111"}, actions=[{"type": "reply", "text": "vip"}]
    )
    make_rule(name="area", match={"sender": "+1666*"}, actions=[{"type": "reply", "text": "area"}])

    assert [m.body for m in receive("hi").replies] == ["vip"]
    assert [m.body for m in receive("hi", sender="+16660001234").replies] == ["area"]
    assert receive("hi", sender="+17770001234").replies == []


def test_rules_run_by_priority_then_creation_and_stop_ends_evaluation(receive, make_rule):
    make_rule(name="late", priority=50, actions=[{"type": "reply", "text": "third"}])
    make_rule(name="first", priority=10, actions=[{"type": "reply", "text": "first"}])
    make_rule(name="tie", priority=50, actions=[{"type": "reply", "text": "fourth"}])
    make_rule(name="second", priority=20, actions=[{"type": "reply", "text": "second"}])

    assert [m.body for m in receive("hello").replies] == ["first", "second", "third", "fourth"]

    make_rule(name="stopper", priority=15, stop=True, actions=[{"type": "tag", "tag": "x"}])
    assert [m.body for m in receive("hello again").replies] == ["first"]


def test_disabled_rules_do_not_run(receive, make_rule):
    make_rule(enabled=False)
    assert receive("anything").replies == []


def test_tag_action_tags_the_conversation_once(receive, make_rule):
    make_rule(match={"keywords": ["support"]}, actions=[{"type": "tag", "tag": "support"}])

    result = receive("SUPPORT: my phone is broken")
    receive("support again")

    conversation = Conversation.objects.get(pk=result.message.conversation_id)
    assert conversation.tags == ["support"]
    statuses = [h.actions[0]["status"] for h in RuleHit.objects.order_by("id")]
    assert statuses == ["done", "skipped"]


def test_opt_out_and_opt_in_actions(receive, make_rule):
    make_rule(
        name="leave",
        match={"keywords": ["LEAVE"]},
        actions=[{"type": "reply", "text": "Bye"}, {"type": "opt_out"}],
    )
    make_rule(
        name="join",
        match={"keywords": ["JOIN"]},
        actions=[{"type": "opt_in"}, {"type": "reply", "text": "Welcome"}],
    )

    result = receive("leave")
    assert OptOut.objects.filter(phone=SENDER, source="rule").exists()
    # The rule's own reply is its confirmation: queued before the opt-out and kept.
    assert [m.body for m in result.replies] == ["Bye"]
    assert result.replies[0].status == Status.QUEUED

    assert [m.body for m in receive("join").replies] == ["Welcome"]
    assert not OptOut.objects.filter(phone=SENDER).exists()


def test_an_opted_out_number_gets_no_automated_reply(receive, make_rule):
    make_rule(actions=[{"type": "reply", "text": "hi"}, {"type": "tag", "tag": "seen"}])
    OptOut.objects.create(phone=SENDER, source="api")

    result = receive("hello")

    assert result.replies == []
    assert outbound_to() == []
    hit = RuleHit.objects.get()
    assert hit.suppressed is True
    assert hit.actions[0]["status"] == "suppressed"
    assert hit.actions[0]["detail"] == "recipient opted out"
    assert hit.actions[1]["status"] == "done"  # tagging still happens


def test_an_alphanumeric_sender_is_never_replied_to_and_the_message_is_kept(receive, make_rule):
    make_rule()

    result = receive("Your balance is 10", sender="MPESA")

    assert result.created is True
    assert result.replies == []
    hit = RuleHit.objects.get()
    assert hit.actions[0]["status"] == "skipped"
    assert hit.actions[0]["detail"] == "the sender is not a phone number"
    assert Message.objects.filter(pk=result.message.pk).exists()


def test_a_reply_falls_back_to_any_sim_when_the_slot_is_unknown(receive, make_rule, phone):
    make_rule()

    result = receive("hi", sim_slot=7)

    assert [(m.device_id, m.sim_slot) for m in result.replies] == [(phone.device.pk, 1)]


def test_a_duplicate_inbound_triggers_nothing_again(receive, make_rule):
    make_rule()

    first = receive("hi", source_id="same-id")
    again = receive("hi", source_id="same-id")

    assert len(first.replies) == 1
    assert again.created is False and again.replies == []
    assert len(outbound_to()) == 1


def test_replies_on_a_provider_app_go_through_that_app(make_rule):
    from messaging.inbox import InboundSMS
    from pipeline.inbound import receive_one as receive_inbound
    from smsgate.crypto import encrypt_json
    from tests.factories import ProviderAppFactory

    app = ProviderAppFactory(
        name="Twilio US",
        credentials_encrypted=encrypt_json({"account_sid": "AC" + "1" * 32, "auth_token": "t"}),
    )
    make_rule(actions=[{"type": "reply", "text": "via {{device}}"}])

    result = receive_inbound(
        InboundSMS(from_number=SENDER, body="hi", source="twilio", app=app, source_id="SM1")
    )

    assert [(m.app_id, m.device_id, m.body) for m in result.replies] == [
        (app.pk, None, "via Twilio US")
    ]


# --- built-in compliance -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "Stop.",
        " STOP ",
        "stopall",
        "Unsubscribe",
        "CANCEL",
        "end",
        "QUIT",
        "revoke",
        "OPT OUT",
        "opt-out",
        "optout",
        "STOP please",
        "\u00a0stop!",
    ],
)
def test_stop_words_opt_out_with_one_confirmation(receive, body):
    result = receive(body)

    assert OptOut.objects.filter(phone=SENDER, source="keyword").exists()
    assert len(result.replies) == 1
    assert "unsubscribed" in result.replies[0].body
    hit = RuleHit.objects.get()
    assert hit.builtin == "stop"


def test_a_second_stop_gets_no_second_confirmation(receive):
    receive("STOP")
    again = receive("stop")

    assert again.replies == []
    assert len(outbound_to()) == 1
    assert RuleHit.objects.order_by("id").last().actions == [
        {"type": "opt_out", "status": "skipped", "detail": "already opted out"}
    ]


def test_stop_cancels_what_is_still_queued_for_the_number(receive, admin_client):
    response = admin_client.post("/api/v1/messages", {"to": SENDER, "body": "Promo!"})
    assert response.status_code == 202

    receive("STOP")

    promo = Message.objects.get(pk=response.json()["id"])
    assert promo.status == Status.CANCELLED
    assert promo.reason == "recipient_opted_out"


def test_start_opts_in_again_and_confirms(receive):
    receive("STOP")
    result = receive("start")

    assert not OptOut.objects.filter(phone=SENDER).exists()
    assert len(result.replies) == 1
    assert "subscribed" in result.replies[0].body


def test_help_is_answered_once_and_rules_do_not_also_answer(receive, make_rule):
    make_rule(name="catch-all", actions=[{"type": "reply", "text": "We got your message"}])

    result = receive("HELP")

    assert len(result.replies) == 1
    assert "STOP" in result.replies[0].body
    assert RuleHit.objects.get().builtin == "help"


def test_an_opted_out_number_gets_no_help_text(receive):
    receive("STOP")
    assert receive("HELP").replies == []


@override_settings(
    SMSGATE_OPTOUT_CONFIRMATION="Bye from Acme.",
    SMSGATE_OPTIN_CONFIRMATION="Welcome back to Acme.",
    SMSGATE_HELP_TEXT="Acme support: 555-0100.",
)
def test_compliance_texts_are_configurable(receive):
    assert [m.body for m in receive("help").replies] == ["Acme support: 555-0100."]
    assert [m.body for m in receive("stop").replies] == ["Bye from Acme."]
    assert [m.body for m in receive("start").replies] == ["Welcome back to Acme."]


@override_settings(SMSGATE_COMPLIANCE_ENABLED=False)
def test_compliance_can_be_switched_off(receive, make_rule):
    make_rule(match={"keywords": ["STOP"]}, actions=[{"type": "reply", "text": "custom"}])

    result = receive("STOP")

    assert [m.body for m in result.replies] == ["custom"]
    assert not OptOut.objects.exists()


# --- loop guard ------------------------------------------------------------------------------


def test_the_loop_guard_suppresses_replies_beyond_the_limit(receive, make_rule):
    make_rule(actions=[{"type": "reply", "text": "auto"}])

    replies = [len(receive(f"message {i}").replies) for i in range(8)]

    assert replies == [1, 1, 1, 1, 1, 0, 0, 0]
    suppressed = RuleHit.objects.filter(suppressed=True)
    assert suppressed.count() == 3
    assert "loop guard" in suppressed.first().actions[0]["detail"]


@override_settings(SMSGATE_AUTOREPLY_LIMIT=2)
def test_the_loop_guard_limit_is_a_setting_and_counts_per_number(receive, make_rule):
    make_rule()

    assert [len(receive("x").replies) for _ in range(3)] == [1, 1, 0]
    assert len(receive("x", sender="+15550002222").replies) == 1


def test_the_loop_guard_forgets_after_an_hour(receive, make_rule):
    from datetime import timedelta

    from django.utils import timezone

    make_rule()
    for _ in range(5):
        receive("x")
    Message.objects.filter(direction=Direction.OUTBOUND).update(
        created_at=timezone.now() - timedelta(minutes=61)
    )

    assert len(receive("x").replies) == 1


def test_two_of_our_lines_answering_each_other_stop_at_the_limit(make_rule):
    """Phone A's number texts phone B and both auto-reply: every reply arrives as the other
    phone's inbound message. Without the guard this would never end."""
    from messaging.inbox import InboundSMS
    from pipeline.inbound import receive_one as receive_inbound
    from tests.factories import paired_device

    a, b = paired_device(), paired_device()
    number = {a.device.pk: a.device.sims.get().number, b.device.pk: b.device.sims.get().number}
    other = {a.device.pk: b.device, b.device.pk: a.device}
    make_rule(actions=[{"type": "reply", "text": "Thanks, we will get back to you"}])

    pending = [(a.device, number[b.device.pk], "hello")]  # B's number texts A first
    delivered = 0
    while pending and delivered < 100:
        device, sender, body = pending.pop(0)
        result = receive_inbound(
            InboundSMS(
                from_number=sender,
                body=body,
                source="msync",
                device=device,
                sim_slot=1,
                source_id=f"loop-{delivered}",
            )
        )
        delivered += 1
        for reply in result.replies:
            # The reply leaves `device` and arrives on the other phone, from device's number.
            pending.append((other[device.pk], number[device.pk], reply.body))

    sent = Message.objects.filter(direction=Direction.OUTBOUND, source="automation")
    assert sent.filter(to_number=number[a.device.pk]).count() == 5
    assert sent.filter(to_number=number[b.device.pk]).count() == 5
    assert pending == []
    assert RuleHit.objects.filter(suppressed=True).count() == 1


# --- query budget ----------------------------------------------------------------------------


def _non_matching_rules(make_rule, n: int) -> None:
    for i in range(n):
        make_rule(
            name=f"rule {i}",
            priority=i,
            match={"keywords": [f"code{i}"], "regex": rf"^ref-{i}\b", "sender": "+1777*"},
        )


def _inbound_queries(receive, body: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        receive(body)
    return len(ctx.captured_queries)


def test_fifty_rules_add_at_most_two_queries_to_the_inbound_path(
    receive, make_rule, django_assert_max_num_queries
):
    receive("warm up")  # the conversation exists from now on, as for most inbound messages
    baseline = _inbound_queries(receive, "hello there")

    _non_matching_rules(make_rule, 50)
    # The first message after a change reloads the rules (one query) ...
    with django_assert_max_num_queries(baseline + 2):
        receive("hello there")
    # ... and later ones evaluate all 50 from memory.
    with django_assert_max_num_queries(baseline):
        receive("hello there")


def test_a_matching_rule_among_fifty_costs_its_actions_not_the_evaluation(
    receive, make_rule, django_assert_max_num_queries
):
    receive("warm up")
    baseline = _inbound_queries(receive, "hello there")
    _non_matching_rules(make_rule, 49)
    make_rule(
        name="last",
        priority=1000,
        match={"keywords": ["hello"]},
        actions=[{"type": "tag", "tag": "greeting"}],
    )
    receive("warm the rule cache")

    # The hit log row and the tag (one read and one write, no savepoint: the inbound
    # transaction already holds the conversation's row) are the only additions.
    with django_assert_max_num_queries(baseline + 3):
        receive("hello there")


def test_the_device_id_condition_also_selects_a_provider_app(make_rule, receive):
    from messaging.inbox import InboundSMS
    from pipeline.inbound import receive_one as receive_inbound
    from tests.factories import ProviderAppFactory

    app = ProviderAppFactory()
    make_rule(match={"device_id": app.pk}, actions=[{"type": "reply", "text": "app line"}])

    on_app = receive_inbound(
        InboundSMS(from_number=SENDER, body="hi", source="twilio", app=app, source_id="SM2")
    )

    assert [m.body for m in on_app.replies] == ["app line"]
    assert receive("hi").replies == []  # the same text on a phone line


def test_a_custom_opt_out_rule_confirms_once(receive, make_rule):
    make_rule(
        match={"keywords": ["LEAVE"]},
        actions=[{"type": "opt_out"}, {"type": "reply", "text": "You left"}],
    )

    assert [m.body for m in receive("leave").replies] == ["You left"]
    again = receive("LEAVE")

    assert again.replies == []
    last = RuleHit.objects.order_by("id").last()
    assert [a["status"] for a in last.actions] == ["skipped", "suppressed"]
