"""Layout in a real browser: no dashboard page scrolls sideways on a 390 px phone, and the
header is a single row on a 1280 px desktop. Every page is visited with realistic data (long
ids, a provider app's receive path, a webhook with deliveries, tags, rules…)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect
from pytest_httpserver import HTTPServer

from automation import services as automation
from dashboard import services as dashboard
from messaging import services
from messaging.models import Conversation, InboundRequest
from smsgate.services import create_api_key
from tests.browser.conftest import DESKTOP, PHONE, off_the_loop, screenshot
from tests.browser.phone import SimulatedPhone
from tests.factories import ConversationFactory, OptOutFactory, ProviderAppFactory, paired_device
from webhooks import services as webhooks
from webhooks.delivery import attempt_delivery
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
# A table in a sideways-scrolling box hides its last columns (Outcome, Response) on a phone.
HIDDEN_COLUMNS = """() => [...document.querySelectorAll('.table-wrap, table')]
  .filter(e => e.offsetParent !== null)
  .map(e => e.scrollWidth - e.clientWidth)
  .reduce((a, b) => Math.max(a, b), 0)"""
# 1 when every visible item of the header (and every nav link) crosses the line through the
# middle of the brand, that is, when the header is a single row; more when something wrapped.
HEADER_ROWS = """() => {
  const bar = document.querySelector('.topbar');
  const brand = bar.querySelector('.brand').getBoundingClientRect();
  const middle = (brand.top + brand.bottom) / 2;
  const items = [...bar.querySelectorAll(':scope > *, nav li')].filter(e => e.offsetParent !== null);
  const off = items.filter(e => {
    const r = e.getBoundingClientRect();
    return r.top > middle || r.bottom < middle;
  });
  const ul = bar.querySelector('nav ul');
  const crowded = ul.offsetParent !== null && ul.scrollWidth > ul.clientWidth;
  return 1 + off.length + (crowded ? 1 : 0);
}"""


def _realistic_data(server_url: str, admin_user: User, httpserver: HTTPServer) -> dict[str, str]:
    paired = paired_device(sims=2, name="Front desk phone", battery_level=76, network_type="LTE")
    phone = SimulatedPhone(server_url, paired)
    endpoint, _ = webhooks.create_endpoint(
        url=httpserver.url_for("/a/rather/long/webhook/receiver/path/for/the/crm/integration"),
        events=["sms.received", "sms.sent", "sms.failed"],
        max_attempts=1,
    )
    httpserver.expect_request(
        "/a/rather/long/webhook/receiver/path/for/the/crm/integration"
    ).respond_with_data('{"error": "' + "the CRM is down for maintenance " * 8 + '"}', 503)
    phone.receive("+15550005555", "Do you deliver on Sundays? " * 6)
    for delivery in Delivery.objects.filter(endpoint=endpoint):
        attempt_delivery(delivery_id=delivery.pk, force=True)
    conversation = Conversation.objects.get(phone="+15550005555")
    conversation.tags = ["vip", "sunday-delivery"]
    conversation.save(update_fields=["tags"])
    off_the_loop(
        lambda: services.send_message(to="+15550005555", body="Yes, until noon.", source="api")
    )
    app = ProviderAppFactory(name="Twilio marketing line")
    InboundRequest.objects.create(
        source="twilio",
        method="POST",
        path=f"/api/sms/apps/{app.pk}/receive",
        query="a=" + "x" * 300,
        outcome="rejected",
        status_code=403,
        detail="bad signature: the X-Twilio-Signature header does not match the app's auth token",
        app=app,
        body=b"From=%2B15550001111&Body=" + b"hello+" * 200,
    )
    OptOutFactory(phone="+15550004444")
    opted_out = ConversationFactory(phone="+15550004444", tags=["moved-away"])
    rule = automation.create_rule(
        name="Opening hours",
        match={"keywords": ["HOURS", "OPEN"]},
        actions=[{"type": "reply", "text": "We are open 9 to 5, Monday to Saturday."}],
    )
    create_api_key(name="CRM integration key")
    broadcast = off_the_loop(
        lambda: dashboard.run_broadcast(
            entries=["+15550003333", "+15550003334"], body="Closed on Monday.", user=admin_user
        )
    )
    log = InboundRequest.objects.exclude(source="twilio").order_by("-id").first()
    assert log is not None
    return {
        "home": "/",
        "inbox": "/inbox/",
        "thread": f"/inbox/{conversation.pk}/",
        "thread-opted-out": f"/inbox/{opted_out.pk}/",
        "broadcasts": "/broadcasts/",
        "broadcast": f"/broadcasts/{broadcast.pk}/",
        "opt-outs": "/opt-outs/",
        "logs": "/logs/",
        "log-detail": f"/logs/{log.pk}/",
        "app-log-detail": f"/logs/{InboundRequest.objects.get(source='twilio').pk}/",
        "devices": "/devices/",
        "webhooks": "/webhooks/",
        "webhook": f"/webhooks/{endpoint.pk}/",
        "rules": "/rules/",
        "routing": "/routing/",
        "rule-new": "/rules/new/",
        "rule": f"/rules/{rule.pk}/",
        "users": "/users/",
        "keys": "/keys/",
    }


def test_no_page_scrolls_sideways_on_a_phone_and_the_header_is_one_row_on_a_desktop(
    admin_page: Any, admin_user: User, server_url: str, httpserver: HTTPServer, settings: Any
) -> None:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    pages = _realistic_data(server_url, admin_user, httpserver)
    page = admin_page
    wide: dict[str, int] = {}
    rows: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for name, url in pages.items():
        page.set_viewport_size(DESKTOP)
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.locator("h1").first).to_be_visible()
        if page.evaluate(HEADER_ROWS) != 1:
            rows[name] = page.evaluate(HEADER_ROWS)
        screenshot(page, f"layout-{name}")
        page.set_viewport_size(PHONE)
        overflow = page.evaluate(OVERFLOW)
        if overflow > 0:
            wide[name] = overflow
        if page.evaluate(HIDDEN_COLUMNS) > 0:
            hidden[name] = page.evaluate(HIDDEN_COLUMNS)
    assert wide == {}, f"pages wider than a 390 px phone (extra px): {wide}"
    assert hidden == {}, f"tables that scroll sideways at 390 px (hidden px): {hidden}"
    assert rows == {}, f"header rows at 1280 px: {rows}"


def test_the_phone_menu_opens_and_shows_every_section(admin_page: Any) -> None:
    page = admin_page
    page.set_viewport_size(PHONE)
    page.goto("/inbox/")
    assert page.evaluate(HEADER_ROWS) == 1
    nav = page.locator(".topbar nav a[href='/rules/']")
    expect(nav).to_be_hidden()
    page.locator("[data-menu-toggle]").click()
    expect(nav).to_be_visible()
    expect(page.locator(".topbar nav a[href='/api/docs/']")).to_be_visible()
    assert page.evaluate(OVERFLOW) <= 0
    screenshot(page, "layout-phone-menu")


def test_the_desktop_header_fits_every_admin_link_in_one_row(admin_page: Any) -> None:
    page = admin_page
    page.goto("/inbox/")
    assert page.locator(".topbar nav a", has_text="Providers").count() == 1
    assert page.locator(".topbar nav a", has_text="Routing").count() == 1
    assert page.evaluate(HEADER_ROWS) == 1
    # and the check notices a header that no longer fits
    page.evaluate(
        """label => {
      const li = document.createElement('li');
      li.innerHTML = `<a href="#">${label}</a>`;
      document.querySelector('.topbar nav ul').append(li);
    }""",
        "A very long section name that cannot fit",
    )
    assert page.evaluate(HEADER_ROWS) > 1
