"""The Routing page (admin): the policy form saved through the same service as the API, and the
lines routing can use today, read-only, in a bounded number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from messaging.models import RoutingPolicy, Status
from messaging.policy import current_policy
from tests.dashboard.conftest import csrf_post
from tests.factories import OutboundMessageFactory, ProviderAppFactory, paired_device

pytestmark = pytest.mark.django_db

URL = "/routing/"
VALID = {
    "fallback_app_id": "",
    "reroute_after": "300",
    "max_attempts": "4",
    "quiet": "on",
    "quiet_start": "21:00",
    "quiet_end": "08:00",
}


@pytest.fixture(autouse=True)
def env_defaults(settings: Any) -> None:
    settings.SMSGATE_FALLBACK_APP_ID = ""
    settings.SMSGATE_REROUTE_AFTER = 120
    settings.SMSGATE_MAX_ROUTE_ATTEMPTS = 3


def _handed(phone: Any, slot: int, segments: int, status: str = Status.SENT) -> None:
    OutboundMessageFactory(
        device=phone.device,
        sim_slot=slot,
        segments=segments,
        status=status,
        dispatched_at=timezone.now() - timedelta(hours=1),
    )


def test_the_page_shows_the_defaults_and_the_lines_of_today(admin_web: Client) -> None:
    shop = paired_device(sims=2, name="Shop", limit_per_day=100)
    paired_device(sims=1, name="Desk", online=False)
    paired_device(sims=1, name="Drawer", enabled=False)
    _handed(shop, 1, 30)
    _handed(shop, 1, 5, status=Status.FAILED)  # refunded, as pool routing counts
    sim2 = shop.device.sims.get(slot=2)
    sim2.failures_in_a_row = 4
    sim2.save(update_fields=["failures_in_a_row"])
    ProviderAppFactory(can_send=True, name="Twilio main")
    ProviderAppFactory(can_send=False, name="Inbound only")

    response = admin_web.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Not saved yet" in html
    assert 'name="reroute_after" type="number"' in html and 'value="120"' in html
    lines = {(line.device.name, line.slot): line for line in response.context["phone_lines"]}
    assert set(lines) == {("Shop", 1), ("Shop", 2), ("Desk", 1)}
    assert lines[("Shop", 1)].left_today == 70
    assert lines[("Shop", 2)].left_today == 100
    assert lines[("Shop", 2)].failures_in_a_row == 4
    assert lines[("Desk", 1)].left_today is None  # no daily limit
    assert "70 of 100" in html and '<span class="warn">4: tried last</span>' in html
    assert "pill-offline" in html
    assert [app.name for app in response.context["apps"]] == ["Twilio main"]
    assert "Inbound only" not in html  # neither a line nor a fallback choice


def test_the_navigation_links_the_page_for_admins_only(
    admin_web: Client, staff_web: Client
) -> None:
    assert b'href="/routing/"' in admin_web.get("/inbox/").content
    assert b'href="/routing/"' not in staff_web.get("/inbox/").content


def test_posting_the_form_saves_the_policy(admin_web: Client) -> None:
    app = ProviderAppFactory(can_send=True)

    response = csrf_post(admin_web, URL, {**VALID, "fallback_app_id": app.pk})

    assert response.status_code == 302
    assert response["Location"] == URL
    assert current_policy().as_json() == {
        "fallback_app_id": app.pk,
        "reroute_after": 300,
        "max_attempts": 4,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
    }
    page = admin_web.get(URL).content.decode()
    assert "Routing policy saved." in page
    assert f'<option value="{app.pk}" selected>' in page


def test_unticking_quiet_hours_turns_them_off(admin_web: Client) -> None:
    csrf_post(admin_web, URL, VALID)

    csrf_post(admin_web, URL, {k: v for k, v in VALID.items() if k != "quiet"})

    assert current_policy().quiet_hours is None


INVALID = [
    ({"reroute_after": "soon"}, "reroute_after"),
    ({"reroute_after": "-1"}, "reroute_after"),
    ({"reroute_after": "9" * 5000}, "reroute_after"),
    ({"max_attempts": "0"}, "max_attempts"),
    ({"max_attempts": ""}, "max_attempts"),
    ({"fallback_app_id": "app_nothere"}, "fallback_app_id"),
    ({"quiet_start": "25:00"}, "quiet_start"),
    ({"quiet_end": ""}, "quiet_end"),
    ({"quiet_start": "08:00", "quiet_end": "08:00"}, "quiet_hours"),
]


@pytest.mark.parametrize(("change", "field"), INVALID, ids=lambda v: repr(v)[:30])
def test_an_invalid_post_shows_the_error_by_its_field_and_saves_nothing(
    admin_web: Client, change: dict[str, str], field: str
) -> None:
    response = csrf_post(admin_web, URL, {**VALID, **change})

    assert response.status_code == 400
    assert field in response.context["errors"]
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert 'aria-invalid="true"' in html
    # What was typed is kept in the form.
    assert response.context["form"]["reroute_after"] == {**VALID, **change}["reroute_after"]
    assert not RoutingPolicy.objects.exists()


def test_a_receive_only_app_is_refused_as_the_fallback(admin_web: Client) -> None:
    app = ProviderAppFactory(can_send=False)

    response = csrf_post(admin_web, URL, {**VALID, "fallback_app_id": app.pk})

    assert response.status_code == 400
    assert "only receives" in response.context["errors"]["fallback_app_id"]
    assert not RoutingPolicy.objects.exists()


def test_a_fallback_that_was_disabled_since_stays_visible(admin_web: Client) -> None:
    app = ProviderAppFactory(can_send=True, name="Old fallback")
    csrf_post(admin_web, URL, {**VALID, "fallback_app_id": app.pk})
    app.enabled = False
    app.save(update_fields=["enabled"])

    html = admin_web.get(URL).content.decode()

    assert f'<option value="{app.pk}" selected>Old fallback (disabled: not used)</option>' in html


def test_a_fallback_that_lost_its_sending_credentials_does_not_block_saving(
    admin_web: Client,
) -> None:
    app = ProviderAppFactory(can_send=True)
    csrf_post(admin_web, URL, {**VALID, "fallback_app_id": app.pk})
    app.can_send = False
    app.save(update_fields=["can_send"])

    response = csrf_post(admin_web, URL, {**VALID, "fallback_app_id": app.pk, "max_attempts": "2"})

    assert response.status_code == 302
    assert current_policy().max_attempts == 2
    assert current_policy().fallback_app_id == app.pk  # kept; routing does not use it


def test_staff_get_a_403_and_change_nothing(staff_web: Client) -> None:
    assert staff_web.get(URL).status_code == 403
    assert csrf_post(staff_web, URL, VALID).status_code == 403
    assert not RoutingPolicy.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(anon_web: Client) -> None:
    response = anon_web.get(URL)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={URL}"


def test_a_post_without_the_csrf_token_is_refused(admin_web: Client) -> None:
    assert admin_web.post(URL, VALID).status_code == 403
    assert not RoutingPolicy.objects.exists()


def test_the_page_reads_in_the_same_queries_however_many_lines(
    admin_web: Client, django_assert_max_num_queries: Any, django_assert_num_queries: Any
) -> None:
    paired_device(sims=1)
    admin_web.get(URL)  # the session and the user are loaded the same way on every view
    with django_assert_max_num_queries(7) as few:
        assert admin_web.get(URL).status_code == 200
    for n in range(6):
        phone = paired_device(sims=2, limit_per_day=50)
        _handed(phone, 1, n + 1)
    paired_device(sims=0)
    for _ in range(4):
        ProviderAppFactory(can_send=True)

    with django_assert_num_queries(len(few.captured_queries)):
        response = admin_web.get(URL)

    assert len(response.context["phone_lines"]) == 14
