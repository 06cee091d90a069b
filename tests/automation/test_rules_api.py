"""`/api/v1/rules…`: create, read, update, delete, reorder, validation, roles, dry run, hits."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation.models import Rule, RuleHit

pytestmark = pytest.mark.django_db

CONFIRM = {
    "name": "Confirm appointments",
    "enabled": True,
    "priority": 10,
    "match": {
        "keywords": ["YES", "Y"],
        "contains": None,
        "regex": None,
        "sender": "+1555*",
        "device_id": None,
    },
    "actions": [{"type": "reply", "text": "Thanks {{from}}, you are confirmed."}],
    "stop": True,
}


def create(client, **overrides):
    response = client.post("/api/v1/rules", {**CONFIRM, **overrides}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_returns_the_rule(admin_client):
    rule = create(admin_client)

    assert rule["id"].startswith("rule_")
    assert rule["name"] == "Confirm appointments"
    assert rule["match"] == CONFIRM["match"]
    assert rule["actions"] == CONFIRM["actions"]
    assert (rule["priority"], rule["enabled"], rule["stop"]) == (10, True, True)
    assert rule["created_at"].endswith("Z")
    assert Rule.objects.filter(pk=rule["id"]).exists()


def test_only_name_and_actions_are_required(admin_client):
    response = admin_client.post(
        "/api/v1/rules", {"name": "all", "actions": [{"type": "tag", "tag": "x"}]}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["priority"], body["enabled"], body["stop"]) == (100, True, False)
    assert body["match"]["keywords"] is None


def test_list_is_in_evaluation_order(admin_client):
    late = create(admin_client, name="late", priority=50)
    early = create(admin_client, name="early", priority=5)
    tie = create(admin_client, name="tie", priority=50)

    response = admin_client.get("/api/v1/rules")

    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [early["id"], late["id"], tie["id"]]
    assert response.json()["next"] is None


def test_detail_update_and_delete(admin_client):
    rule = create(admin_client)
    url = f"/api/v1/rules/{rule['id']}"

    assert admin_client.get(url).json()["name"] == rule["name"]

    patched = admin_client.patch(
        url, {"enabled": False, "match": {"keywords": ["NO"]}}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False
    assert patched.json()["match"]["keywords"] == ["NO"]
    assert patched.json()["actions"] == CONFIRM["actions"]

    put = admin_client.put(
        url, {"name": "Replaced", "actions": [{"type": "opt_out"}]}, format="json"
    )
    assert put.status_code == 200
    assert (put.json()["name"], put.json()["enabled"], put.json()["priority"]) == (
        "Replaced",
        True,
        100,
    )
    assert put.json()["match"]["keywords"] is None

    assert admin_client.delete(url).status_code == 204
    assert admin_client.get(url).status_code == 404
    assert admin_client.delete(url).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"match": {"regex": "(unclosed"}}, "match.regex"),
        ({"match": {"regex": "a" * 501}}, "match.regex"),
        ({"match": {"regex": 5}}, "match.regex"),
        ({"match": {"keywords": ["!!!"]}}, "match.keywords"),
        ({"match": {"keywords": 7}}, "match.keywords"),
        ({"match": {"colour": "red"}}, "match.colour"),
        ({"match": {"device_id": "dev_nothere"}}, "match.device_id"),
        ({"match": "STOP"}, "match"),
        ({"actions": []}, "actions"),
        ({"actions": [{"type": "explode"}]}, "actions[0].type"),
        ({"actions": [{"type": "reply"}]}, "actions[0].text"),
        ({"actions": [{"type": "reply", "text": "Hi {{name}}"}]}, "actions[0].text"),
        ({"actions": [{"type": "reply", "text": "x" * 1601}]}, "actions[0].text"),
        ({"actions": [{"type": "tag", "tag": 5}]}, "actions[0].tag"),
        ({"actions": [{"type": "tag", "tag": "ok"}, {"type": "forward"}]}, "actions[1].webhook_id"),
        ({"actions": [{"type": "forward", "webhook_id": "whk_nothere"}]}, "actions[0].webhook_id"),
        ({"actions": [{"type": "forward", "url": "ftp://example.org/x"}]}, "actions[0].url"),
        ({"actions": [{"type": "forward", "url": "http://169.254.169.254/"}]}, "actions[0].url"),
        (
            {"actions": [{"type": "forward", "url": "https://example.org", "format": "xml"}]},
            "actions[0].format",
        ),
        ({"actions": [{"type": "opt_out", "text": "bye"}]}, "actions[0].text"),
        ({"actions": "reply"}, "actions"),
        ({"match": {"keywords": ["YES\u0000"]}}, "match.keywords[0]"),
        ({"actions": [{"type": "reply", "text": "a\u0000b"}]}, "actions[0].text"),
        ({"name": ""}, "name"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_invalid_rules_are_a_400_naming_the_field(admin_client, change, field):
    response = admin_client.post("/api/v1/rules", {**CONFIRM, **change}, format="json")

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert field in error["message"]
    assert Rule.objects.count() == 0


def test_a_bad_regex_in_an_update_is_refused_and_changes_nothing(admin_client):
    rule = create(admin_client)

    response = admin_client.patch(
        f"/api/v1/rules/{rule['id']}", {"match": {"regex": "(?<"}}, format="json"
    )

    assert response.status_code == 400
    assert "match.regex" in response.json()["error"]["fields"]
    assert Rule.objects.get().match == CONFIRM["match"]


def test_a_forward_to_a_webhook_or_an_ad_hoc_url_is_accepted(admin_client, settings):
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = admin_client.post(
        "/api/v1/webhooks",
        {"url": "http://127.0.0.1:9/hook", "format": "standard"},
        format="json",
    ).json()
    actions = [
        {"type": "forward", "webhook_id": endpoint["id"]},
        {"type": "forward", "url": "http://127.0.0.1:9/adhoc", "format": "chat"},
        {"type": "forward", "url": "mailto:ops@example.org", "format": "email"},
    ]

    rule = create(admin_client, actions=actions)

    assert rule["actions"] == actions


def test_reorder_puts_the_listed_rules_first(admin_client):
    a = create(admin_client, name="a", priority=1)
    b = create(admin_client, name="b", priority=2)
    c = create(admin_client, name="c", priority=3)

    response = admin_client.post(
        "/api/v1/rules/reorder", {"order": [c["id"], a["id"]]}, format="json"
    )

    assert response.status_code == 200
    assert [r["name"] for r in response.json()["results"]] == ["c", "a", "b"]
    assert [r["priority"] for r in response.json()["results"]] == [10, 20, 30]
    listed = admin_client.get("/api/v1/rules").json()["results"]
    assert [r["id"] for r in listed] == [c["id"], a["id"], b["id"]]


@pytest.mark.parametrize("order", [["rule_nothere"], "notalist", None, ["same", "same"]])
def test_reorder_refuses_unknown_or_repeated_ids(admin_client, order):
    create(admin_client)
    response = admin_client.post("/api/v1/rules/reorder", {"order": order}, format="json")
    assert response.status_code == 400
    assert "order" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/rules"),
        ("post", "/api/v1/rules"),
        ("get", "/api/v1/rules/rule_x"),
        ("patch", "/api/v1/rules/rule_x"),
        ("delete", "/api/v1/rules/rule_x"),
        ("post", "/api/v1/rules/reorder"),
        ("post", "/api/v1/rules/test"),
        ("get", "/api/v1/rules/hits"),
    ],
)
def test_rules_are_for_admins_only(staff_client, anon_client, bad_key_client, method, url):
    assert getattr(staff_client, method)(url, {}, format="json").status_code == 403
    assert getattr(anon_client, method)(url, {}, format="json").status_code == 401
    assert getattr(bad_key_client, method)(url, {}, format="json").status_code == 401


def test_malformed_json_is_a_400(admin_client):
    response = admin_client.post("/api/v1/rules", "{not json", content_type="application/json")
    assert response.status_code == 400


# --- the rule cache across nodes ---------------------------------------------------------


def test_changes_through_the_api_apply_to_the_next_message(admin_client, receive):
    rule = create(admin_client, match={"keywords": ["YES"]})
    assert [m.body for m in receive("yes").replies] == ["Thanks +15550001111, you are confirmed."]

    admin_client.patch(
        f"/api/v1/rules/{rule['id']}",
        {"actions": [{"type": "reply", "text": "Changed"}]},
        format="json",
    )
    assert [m.body for m in receive("yes").replies] == ["Changed"]

    admin_client.delete(f"/api/v1/rules/{rule['id']}")
    assert receive("yes").replies == []


def test_a_change_made_without_the_services_is_seen_by_the_next_message(make_rule, receive):
    rule = make_rule(match={"keywords": ["YES"]}, actions=[{"type": "reply", "text": "old"}])
    assert [m.body for m in receive("yes").replies] == ["old"]

    # A shell, a migration, another node: no signal reaches this process, the database does.
    Rule.objects.filter(pk=rule.pk).update(actions=[{"type": "reply", "text": "new"}])
    assert [m.body for m in receive("yes").replies] == ["new"]

    Rule.objects.filter(pk=rule.pk).delete()
    assert receive("yes").replies == []


def test_another_process_holding_the_old_rules_sees_the_change(make_rule, receive):
    from automation import rules, services
    from webhooks import versions

    rule = make_rule(match={"keywords": ["YES"]}, actions=[{"type": "reply", "text": "old"}])
    assert [m.body for m in receive("yes").replies] == ["old"]
    process_a = rules._rules._held
    assert process_a is not None

    # Process B starts with nothing in memory, disables the rule, and receives.
    versions.forget_all()
    services.update_rule(rule_id=rule.pk, enabled=False)
    assert receive("yes").replies == []

    # Back in process A, with the rules it compiled before the change.
    rules._rules._held = process_a
    assert receive("yes").replies == []


def test_compiled_rules_are_kept_while_the_version_holds(make_rule):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from automation.rules import enabled_rules

    make_rule(name="one")
    first = enabled_rules()

    with CaptureQueriesContext(connection) as ctx:
        again = enabled_rules()

    assert again is first  # not read, not compiled again
    [version_read] = [q["sql"] for q in ctx.captured_queries]
    assert "webhooks_configversion" in version_read


def test_the_rule_version_changes_with_the_rules_only(make_rule):
    from automation import services
    from webhooks.models import ConfigVersion
    from webhooks.versions import ENDPOINTS, RULES

    def tokens() -> dict[str, str]:
        return dict(ConfigVersion.objects.values_list("name", "token"))

    rule = make_rule(name="one")
    before = tokens()
    services.update_rule(rule_id=rule.pk, enabled=True)  # no change
    assert tokens() == before
    services.update_rule(rule_id=rule.pk, priority=5)
    after = tokens()
    assert after[RULES] != before[RULES] and after[ENDPOINTS] == before[ENDPOINTS]


# --- dry run -------------------------------------------------------------------------------


def test_dry_run_reports_matches_and_replies_and_changes_nothing(admin_client, phone):
    rule = create(
        admin_client,
        match={"keywords": ["YES"]},
        actions=[
            {"type": "reply", "text": "Hi {{from}} on {{device}}"},
            {"type": "tag", "tag": "confirmed"},
        ],
    )

    response = admin_client.post(
        "/api/v1/rules/test",
        {"from": "+15550001111", "body": "Yes!", "device_id": phone.device.pk},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["opted_out"] is False
    assert body["replies"] == ["Hi +15550001111 on Front desk"]
    assert body["matches"] == [
        {
            "rule_id": rule["id"],
            "name": rule["name"],
            "builtin": "",
            "actions": [
                {
                    "type": "reply",
                    "status": "would_run",
                    "detail": "",
                    "text": "Hi +15550001111 on Front desk",
                },
                {"type": "tag", "status": "would_run", "detail": "", "tag": "confirmed"},
            ],
        }
    ]
    from messaging.models import Conversation, Message

    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0
    assert RuleHit.objects.count() == 0


def test_dry_run_of_stop_shows_the_confirmation_without_opting_out(admin_client):
    from messaging.models import OptOut

    response = admin_client.post(
        "/api/v1/rules/test", {"from": "+15550001111", "body": "STOP"}, format="json"
    )

    body = response.json()
    assert body["opted_out"] is False
    assert len(body["replies"]) == 1 and "unsubscribed" in body["replies"][0]
    assert body["matches"][0]["rule_id"] is None
    assert body["matches"][0]["builtin"] == "stop"
    assert not OptOut.objects.exists()


def test_dry_run_for_an_opted_out_number_shows_no_replies(admin_client, make_rule):
    from messaging.models import OptOut

    make_rule()
    OptOut.objects.create(phone="+15550001111")

    body = admin_client.post(
        "/api/v1/rules/test", {"from": "+15550001111", "body": "hi"}, format="json"
    ).json()

    assert body["opted_out"] is True
    assert body["replies"] == []
    assert body["matches"][0]["actions"][0]["status"] == "suppressed"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"from": "+15550001111"},
        {"body": "hi"},
        {"from": "", "body": "hi"},
        {"from": "+15550001111", "body": "hi", "device_id": "dev_nothere"},
        {"from": "+15550001111", "body": "x" * 1601},
        {"from": ["x"], "body": "hi"},
    ],
)
def test_dry_run_input_errors_are_400(admin_client, payload):
    response = admin_client.post("/api/v1/rules/test", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]


# --- hit log -------------------------------------------------------------------------------


def test_the_hit_log_shows_which_rule_matched_which_message(admin_client, receive, make_rule):
    rule = make_rule(name="Greeter", actions=[{"type": "reply", "text": "hi"}])
    result = receive("hello")

    response = admin_client.get("/api/v1/rules/hits")

    assert response.status_code == 200
    [hit] = response.json()["results"]
    assert hit["rule_id"] == rule.pk
    assert hit["rule_name"] == "Greeter"
    assert hit["message_id"] == result.message.pk
    assert hit["phone"] == "+15550001111"
    assert hit["suppressed"] is False
    assert hit["actions"][0]["status"] == "done"
    assert hit["actions"][0]["message_id"] == result.replies[0].pk


def test_the_hit_log_filters_suppressed_hits(admin_client, receive, make_rule, settings):
    settings.SMSGATE_AUTOREPLY_LIMIT = 1
    rule = make_rule()
    receive("one")
    receive("two")

    suppressed = admin_client.get("/api/v1/rules/hits?suppressed=true").json()["results"]
    by_rule = admin_client.get(f"/api/v1/rules/hits?rule_id={rule.pk}").json()["results"]

    assert len(suppressed) == 1
    assert suppressed[0]["actions"][0]["status"] == "suppressed"
    assert len(by_rule) == 2
    assert admin_client.get("/api/v1/rules/hits?phone=%2B19999999999").json()["results"] == []


# --- no input is a 5xx ---------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
action_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["reply", "forward", "opt_out", "opt_in", "tag", "x"])},
    optional={
        "text": json_values,
        "tag": json_values,
        "url": json_values,
        "webhook_id": json_values,
        "format": json_values,
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    match=json_values
    | st.dictionaries(
        st.sampled_from(["keywords", "contains", "regex", "sender", "device_id"]), json_values
    ),
    actions=json_values | st.lists(action_like, max_size=3),
    body=st.text(max_size=60),
)
def test_arbitrary_rules_and_dry_runs_never_fail_on_the_server(admin_client, match, actions, body):
    created = admin_client.post(
        "/api/v1/rules", {"name": "fuzz", "match": match, "actions": actions}, format="json"
    )
    assert created.status_code in (201, 400), created.content
    tested = admin_client.post(
        "/api/v1/rules/test", {"from": "+15550001111", "body": body or "x"}, format="json"
    )
    assert tested.status_code in (200, 400), tested.content


def test_the_rule_list_pages_through_ties_without_repeats(admin_client, make_rule):
    made = [make_rule(name=f"r{i}", priority=10 * (i // 3)).pk for i in range(7)]

    seen, url = [], "/api/v1/rules?limit=2"
    while url:
        page = admin_client.get(url).json()
        seen += [r["id"] for r in page["results"]]
        url = page["next"]

    assert seen == made
