"""Home charts, opt-outs, the raw inbound log and API keys."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging import services
from messaging.inbox import InboundSMS
from messaging.models import InboundRequest, OptOut
from pipeline.inbound import receive_one
from smsgate.auth import find_api_key
from smsgate.models import APIKey
from smsgate.services import create_api_key
from tests.dashboard.conftest import csrf_post
from tests.factories import OptOutFactory, paired_device

pytestmark = pytest.mark.django_db


# --- home -----------------------------------------------------------------------------------


def test_home_without_traffic_shows_empty_charts(staff_web: Client) -> None:
    response = staff_web.get("/")
    assert b"No messages in the last 14 days" in response.content
    assert b"No phone has reported" in response.content


def test_home_charts_are_inline_svg_with_per_day_and_per_device_figures(staff_web: Client) -> None:
    device = paired_device(sims=1, name="Shop phone").device
    for n in range(3):
        receive_one(
            InboundSMS(
                from_number=f"+155500002{n:02d}",
                body="hi",
                source="msync",
                device=device,
                sim_slot=1,
            )
        )
    a = services.send_message(to="+15550000200", body="one", device_id=device.pk)
    b = services.send_message(to="+15550000201", body="two", device_id=device.pk)
    services.record_status(message_id=a.pk, status="delivered")
    services.record_status(message_id=b.pk, status="failed", reason="no credit")
    response = staff_web.get("/")
    assert response.context["daily"].total_in == 3
    assert response.context["daily"].total_out == 2
    assert len(response.context["daily"].bars) == 28
    html = response.content.decode()
    assert "<svg" in html and "<script src=" in html  # the app's own script, no chart library
    assert "Shop phone: 1 of 2 delivered" in html
    assert ">50%<" in html


# --- opt-outs -------------------------------------------------------------------------------


def test_opt_outs_list_and_empty_state(staff_web: Client) -> None:
    assert b"Nobody has opted out" in staff_web.get("/opt-outs/").content
    OptOutFactory(phone="+15550000301")
    assert b"+15550000301" in staff_web.get("/opt-outs/").content


def test_staff_add_an_opt_out_which_cancels_queued_messages(staff_web: Client) -> None:
    queued = services.send_message(to="+15550000302", body="promo")
    response = csrf_post(staff_web, "/opt-outs/add/", {"phone": "+15550000302"})
    assert response.status_code == 302
    assert OptOut.objects.get(phone="+15550000302").source == "dashboard"
    queued.refresh_from_db()
    assert queued.status == "cancelled"


def test_a_bad_number_is_an_inline_error(staff_web: Client) -> None:
    response = csrf_post(staff_web, "/opt-outs/add/", {"phone": "call me"})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    assert not OptOut.objects.exists()


def test_only_admins_remove_opt_outs(staff_web: Client, admin_web: Client) -> None:
    OptOutFactory(phone="+15550000303")
    assert csrf_post(staff_web, "/opt-outs/remove/", {"phone": "+15550000303"}).status_code == 403
    assert OptOut.objects.filter(phone="+15550000303").exists()
    assert b"Remove" not in staff_web.get("/opt-outs/").content
    assert csrf_post(admin_web, "/opt-outs/remove/", {"phone": "+15550000303"}).status_code == 302
    assert not OptOut.objects.filter(phone="+15550000303").exists()


# --- raw inbound log ------------------------------------------------------------------------


def _log(**fields: object) -> InboundRequest:
    defaults: dict[str, object] = {
        "source": "smssync",
        "method": "POST",
        "path": "/api/sms/smssync",
    }
    return InboundRequest.objects.create(**{**defaults, **fields})


def test_the_log_is_empty_at_first_and_filterable(admin_web: Client) -> None:
    assert b"No phone or provider has called in yet" in admin_web.get("/logs/").content
    _log(source="smssync", outcome="accepted")
    _log(source="twilio", outcome="rejected", path="/api/sms/apps/app_x/receive")
    assert len(admin_web.get("/logs/").context["page"]) == 2
    only = admin_web.get("/logs/", {"source": "twilio"}).context["page"]
    assert [r.source for r in only] == ["twilio"]
    only = admin_web.get("/logs/", {"outcome": "accepted"}).context["page"]
    assert [r.outcome for r in only] == ["accepted"]


def test_a_body_that_is_not_utf8_or_is_html_is_shown_safely(admin_web: Client) -> None:
    entry = _log(body=b"<script>alert(1)</script>\xff\xfe\x00end", headers={"X-Test": "<i>"})
    response = admin_web.get(f"/logs/{entry.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\ufffd\ufffd\\0end" in html
    assert "<script>alert(1)" not in html
    assert "&lt;i&gt;" in html


def test_json_bodies_are_pretty_printed(admin_web: Client) -> None:
    entry = _log(body=b'{"action":"incoming","messages":[]}')
    html = admin_web.get(f"/logs/{entry.pk}/").content.decode()
    assert "&quot;action&quot;: &quot;incoming&quot;,\n" in html


def test_a_deeply_nested_json_body_is_shown_as_sent(admin_web: Client) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    entry = _log(body=deep)
    response = admin_web.get(f"/logs/{entry.pk}/")
    assert response.status_code == 200
    assert "[" * 100 in response.content.decode()


def test_an_unknown_log_entry_is_a_404(admin_web: Client) -> None:
    assert admin_web.get("/logs/req_nothere/").status_code == 404


# --- API keys -------------------------------------------------------------------------------


def test_creating_a_key_shows_it_once_and_it_works(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/keys/create/", {"name": "CRM", "role": "staff"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    plaintext = response.context["issued"].plaintext
    assert plaintext.encode() in response.content
    key = find_api_key(plaintext)
    assert key is not None and (key.name, key.role) == ("CRM", "staff")
    assert plaintext.encode() not in admin_web.get("/keys/").content


@pytest.mark.parametrize(("name", "role"), [("", "staff"), ("x" * 101, "staff"), ("ok", "root")])
def test_a_key_needs_a_name_and_a_known_role(admin_web: Client, name: str, role: str) -> None:
    response = csrf_post(admin_web, "/keys/create/", {"name": name, "role": role})
    assert response.status_code == 400
    assert not APIKey.objects.exists()


def test_revoking_a_key_stops_it_working(admin_web: Client) -> None:
    issued = create_api_key(name="old", role="admin")
    response = csrf_post(admin_web, f"/keys/{issued.api_key.pk}/revoke/")
    assert response.status_code == 302
    assert find_api_key(issued.plaintext) is None
    assert b"revoked" in admin_web.get("/keys/").content


def test_staff_cannot_create_or_revoke_keys(staff_web: Client) -> None:
    issued = create_api_key(name="keep", role="admin")
    assert csrf_post(staff_web, "/keys/create/", {"name": "x", "role": "admin"}).status_code == 403
    assert csrf_post(staff_web, f"/keys/{issued.api_key.pk}/revoke/").status_code == 403
    assert APIKey.objects.count() == 1 and find_api_key(issued.plaintext) is not None
