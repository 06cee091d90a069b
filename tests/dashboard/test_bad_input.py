"""No input produces a 5xx: every dashboard form, fed junk, answers with a 4xx or a page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.dashboard.conftest import csrf_post
from tests.factories import paired_device

pytestmark = pytest.mark.django_db

JUNK = ["", "\x00", "<script>", "9" * 5000, "+1555🙂", "'; DROP TABLE x; --", "%00", "-1"]

POSTS = [
    "/inbox/compose/",
    "/inbox/cnv_nothere/send/",
    "/inbox/cnv_nothere/read/",
    "/inbox/cnv_nothere/m/msg_nothere/cancel/",
    "/broadcasts/",
    "/opt-outs/add/",
    "/opt-outs/remove/",
    "/keys/create/",
    "/keys/key_nothere/revoke/",
    "/devices/new/",
    "/devices/dev_nothere/rotate/",
    "/devices/dev_nothere/enabled/",
    "/webhooks/new/",
    "/webhooks/whk_nothere/test/",
    "/webhooks/whk_nothere/replay/",
    "/webhooks/whk_nothere/enabled/",
    "/webhooks/deliveries/dlv_nothere/retry/",
    "/rules/new/",
    "/rules/dry-run/",
    "/rules/rule_nothere/move/",
    "/rules/rule_nothere/delete/",
    "/users/new/",
    "/users/999/active/",
    "/routing/",
]
FIELDS = [
    "to", "body", "recipients", "phone", "name", "role", "sim1", "sim2", "url", "format",
    "events", "window", "from", "device_id", "keywords", "regex", "sender", "contains",
    "priority", "action_rows", "action-0-type", "action-0-value", "direction", "enabled",
    "confirm", "username", "password", "email", "active", "fallback_app_id", "reroute_after",
    "max_attempts", "quiet", "quiet_start", "quiet_end",
]  # fmt: skip


@pytest.mark.parametrize("url", POSTS)
@pytest.mark.parametrize("junk", JUNK)
def test_junk_in_every_field_is_never_a_server_error(
    admin_web: Client, url: str, junk: str
) -> None:
    paired_device(sims=1)
    response = csrf_post(admin_web, url, dict.fromkeys(FIELDS, junk))
    assert response.status_code < 500, (url, junk, response.status_code)


@pytest.mark.parametrize(
    "url",
    [
        "/inbox/?q=%00&device=%00&page=-1",
        "/inbox/?page=99999",
        "/logs/?source=%00&outcome=%27&page=x",
        "/opt-outs/?q=%00",
        "/webhooks/whk_x/?status=%00",
        "/inbox/cnv_x/m/%00/",
        "/logs/%00/",
    ],
)
def test_junk_in_query_strings_is_never_a_server_error(admin_web: Client, url: str) -> None:
    assert admin_web.get(url).status_code < 500


def test_a_nul_in_a_form_field_is_a_400_page(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/rules/dry-run/", {"from": "abc\x00", "body": "hi"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
