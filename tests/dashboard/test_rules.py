"""The rules pages: list and reorder, editor, dry run and hit log."""

from __future__ import annotations

import pytest
from django.test import Client

from automation import services as automation
from automation.models import Rule, RuleHit
from messaging.inbox import InboundSMS
from pipeline.inbound import receive_one
from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db


def _rule(name: str, keyword: str, priority: int) -> Rule:
    return automation.create_rule(
        name=name,
        priority=priority,
        match={"keywords": [keyword]},
        actions=[{"type": "reply", "text": f"Got {keyword}"}],
    )


def test_no_rules_yet_says_the_built_ins_still_work(admin_web: Client) -> None:
    html = admin_web.get("/rules/").content.decode()
    assert "No rules yet" in html and "No rule has matched" in html


def test_creating_a_rule_from_the_editor(admin_web: Client) -> None:
    assert admin_web.get("/rules/new/").status_code == 200
    response = csrf_post(
        admin_web,
        "/rules/new/",
        {
            "name": "Confirm",
            "enabled": "on",
            "stop": "on",
            "priority": "10",
            "keywords": "YES, Y",
            "sender": "+1555*",
            "action_rows": "3",
            "action-0-type": "reply",
            "action-0-value": "Thanks {{from}}",
            "action-1-type": "tag",
            "action-1-value": "confirmed",
            "action-2-type": "",
        },
    )
    assert response.status_code == 302
    rule = Rule.objects.get()
    assert (rule.name, rule.enabled, rule.stop, rule.priority) == ("Confirm", True, True, 10)
    assert rule.match["keywords"] == ["YES", "Y"] and rule.match["sender"] == "+1555*"
    assert rule.actions == [
        {"type": "reply", "text": "Thanks {{from}}"},
        {"type": "tag", "tag": "confirmed"},
    ]


def test_an_invalid_rule_is_shown_with_its_field_errors_and_not_saved(admin_web: Client) -> None:
    response = csrf_post(
        admin_web,
        "/rules/new/",
        {
            "name": "Bad",
            "regex": "(",
            "action_rows": "3",
            "action-0-type": "reply",
            "action-0-value": "{{nope}}",
        },
    )
    assert response.status_code == 400
    assert b"match.regex" in response.content
    assert response.context["values"]["name"] == "Bad"  # the form keeps what was typed
    assert not Rule.objects.exists()


def test_editing_a_rule(admin_web: Client) -> None:
    rule = _rule("Old", "A", 10)
    page = admin_web.get(f"/rules/{rule.pk}/")
    assert b'value="Old"' in page.content and b"Got A" in page.content
    csrf_post(
        admin_web,
        f"/rules/{rule.pk}/",
        {
            "name": "New",
            "enabled": "",
            "keywords": "B",
            "action_rows": "1",
            "action-0-type": "opt_out",
        },
    )
    rule.refresh_from_db()
    assert (rule.name, rule.enabled, rule.actions) == ("New", False, [{"type": "opt_out"}])


def test_moving_rules_up_and_down(admin_web: Client) -> None:
    first, second, third = _rule("one", "A", 10), _rule("two", "B", 20), _rule("three", "C", 30)
    csrf_post(admin_web, f"/rules/{third.pk}/move/", {"direction": "up"})
    assert list(Rule.objects.values_list("name", flat=True)) == ["one", "three", "two"]
    csrf_post(admin_web, f"/rules/{first.pk}/move/", {"direction": "down"})
    assert list(Rule.objects.values_list("name", flat=True)) == ["three", "one", "two"]
    csrf_post(admin_web, f"/rules/{second.pk}/move/", {"direction": "down"})  # already last
    assert list(Rule.objects.values_list("name", flat=True)) == ["three", "one", "two"]


def test_the_dry_run_shows_matches_and_replies_and_changes_nothing(admin_web: Client) -> None:
    _rule("Yes", "YES", 10)
    response = csrf_post(admin_web, "/rules/dry-run/", {"from": "+15550000501", "body": "yes!"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-dry-match" in html and "Got YES" in html
    assert not RuleHit.objects.exists()
    response = csrf_post(admin_web, "/rules/dry-run/", {"from": "+15550000501", "body": "no"})
    assert b"No rule matches" in response.content


def test_a_dry_run_without_sender_is_an_inline_error(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/rules/dry-run/", {"from": "", "body": "hi"})
    assert response.status_code == 400
    assert b'role="alert"' in response.content


def test_the_hit_log_lists_what_rules_did(admin_web: Client) -> None:
    _rule("Yes", "YES", 10)
    receive_one(InboundSMS(from_number="+15550000502", body="YES", source="msync"))
    html = admin_web.get("/rules/").content.decode()
    assert "+15550000502" in html and "reply:" in html


def test_deleting_a_rule(admin_web: Client) -> None:
    rule = _rule("Gone", "X", 10)
    assert csrf_post(admin_web, f"/rules/{rule.pk}/delete/").status_code == 302
    assert not Rule.objects.exists()


def test_staff_cannot_open_or_change_rules(staff_web: Client) -> None:
    rule = _rule("Keep", "K", 10)
    assert staff_web.get("/rules/").status_code == 403
    assert csrf_post(staff_web, f"/rules/{rule.pk}/delete/").status_code == 403
    assert Rule.objects.exists()


def test_an_unknown_rule_is_a_404(admin_web: Client) -> None:
    assert admin_web.get("/rules/rule_nothere/").status_code == 404


@pytest.mark.parametrize("rows", ["abc", "1000000000", "-5"])
def test_a_tampered_row_count_is_harmless(admin_web: Client, rows: str) -> None:
    response = csrf_post(
        admin_web,
        "/rules/new/",
        {
            "name": "X",
            "keywords": "A",
            "action_rows": rows,
            "action-0-type": "reply",
            "action-0-value": "hi",
        },
    )
    assert response.status_code in (302, 400)
