"""Admin pages in a real browser: rules with a dry run, retrying a failed webhook delivery,
pairing a phone, roles, and a screenshot of every page at desktop and phone widths."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect
from pytest_httpserver import HTTPServer

from automation.models import Rule
from messaging.inbox import InboundSMS
from messaging.models import InboundRequest
from pipeline.inbound import receive_one
from tests.browser.conftest import new_page, off_the_loop, screenshot
from tests.browser.phone import SimulatedPhone
from tests.factories import OptOutFactory, paired_device
from webhooks import services as webhooks
from webhooks.delivery import attempt_delivery
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_a_rule_and_dry_run_it(admin_page: Any) -> None:
    page = admin_page
    page.goto("/rules/")
    expect(page.locator(".empty").first).to_contain_text("No rules yet")
    page.click("text=New rule")
    page.fill("#rule-name", "Confirm appointments")
    page.fill("#rule-keywords", "YES Y")
    page.select_option("#action-0-type", "reply")
    page.fill("#action-0-value", "Thanks {{from}}, you are confirmed.")
    screenshot(page, "rule-editor")
    page.click("text=Create rule")
    expect(page.locator(".flash")).to_contain_text("Rule “Confirm appointments” created.")
    rule = Rule.objects.get()
    assert rule.match["keywords"] == ["YES", "Y"]

    page.fill("#dry-from", "+15550007777")
    page.fill("#dry-body", "yes please")
    page.click("text=Try it")
    expect(page.locator("[data-dry-match]")).to_contain_text("Confirm appointments")
    expect(page.locator("[data-dry-reply]")).to_have_text("Thanks +15550007777, you are confirmed.")
    page.fill("#dry-body", "maybe")
    page.click("text=Try it")
    expect(page.locator("[data-dry-nomatch]")).to_be_visible()
    screenshot(page, "rules")


def test_retry_a_failed_webhook_delivery(
    admin_page: Any, httpserver: HTTPServer, settings: Any
) -> None:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    httpserver.expect_request("/hook").respond_with_data("down for maintenance", status=503)
    endpoint, _ = webhooks.create_endpoint(
        url=httpserver.url_for("/hook"), events=["sms.received"], max_attempts=1
    )
    paired = paired_device(sims=1)
    off_the_loop(
        lambda: receive_one(
            InboundSMS(
                from_number="+15550008888",
                body="hi",
                source="msync",
                device=paired.device,
                sim_slot=1,
            )
        )
    )
    delivery = Delivery.objects.get(endpoint=endpoint)
    attempt_delivery(delivery_id=delivery.pk, force=True)

    page = admin_page
    page.goto("/webhooks/")
    page.click(f"text={httpserver.url_for('/hook')}")
    card = page.locator(f"#delivery-{delivery.pk}")
    expect(card.locator("[data-delivery-status]")).to_have_text("failed")
    expect(card.locator(".attempts")).to_contain_text("503")
    expect(card.locator(".attempts")).to_contain_text("down for maintenance")
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_data("ok")
    card.locator("text=Retry now").click()
    expect(page.locator(".flash")).to_contain_text("retried: succeeded")
    expect(card.locator("[data-delivery-status]")).to_have_text("succeeded")
    expect(card.locator(".attempts tbody tr")).to_have_count(2)
    screenshot(page, "webhook-deliveries")
    page.goto("/webhooks/")
    screenshot(page, "webhooks")


def test_pair_a_phone_with_its_qr_code(admin_page: Any) -> None:
    page = admin_page
    page.goto("/devices/")
    expect(page.locator(".empty")).to_contain_text("No phones yet")
    page.click("text=Pair a new phone")
    page.fill("#dev-name", "Front desk")
    page.fill("#dev-sim1", "+15550006666")
    page.click("text=Create and show QR")
    expect(page.locator("[data-pairing-qr]")).to_be_visible()
    screenshot(page, "device-pairing")


def test_every_page_has_screenshots_at_both_widths(admin_page: Any, server_url: str) -> None:
    paired = paired_device(sims=2, name="Shop phone", battery_level=76, network_type="LTE")
    phone = SimulatedPhone(server_url, paired)
    phone.receive("+15550005555", "Do you deliver on Sundays?")
    OptOutFactory(phone="+15550004444")
    page = admin_page
    for name, url in [
        ("home", "/"),
        ("devices", "/devices/"),
        ("routing", "/routing/"),
        ("opt-outs", "/opt-outs/"),
        ("logs", "/logs/"),
        ("keys", "/keys/"),
        ("users", "/users/"),
        ("broadcasts", "/broadcasts/"),
    ]:
        page.goto(url)
        expect(page.locator("h1").first).to_be_visible()
        screenshot(page, name)
    entry = InboundRequest.objects.get()
    page.goto("/logs/")
    page.click(f"a[href='/logs/{entry.pk}/']")
    expect(page.locator("pre.body")).to_contain_text("Do you deliver on Sundays?")
    screenshot(page, "log-detail")


def test_a_staff_login_cannot_open_admin_pages(staff_page: Any) -> None:
    for url in ["/devices/", "/routing/", "/webhooks/", "/rules/", "/logs/", "/keys/", "/users/"]:
        response = staff_page.goto(url)
        assert response is not None and response.status == 403, url
        expect(staff_page.locator("h1")).to_contain_text("403")
    screenshot(staff_page, "forbidden")
    staff_page.goto("/inbox/")
    expect(staff_page.locator("nav")).to_contain_text("Broadcasts")
    expect(staff_page.locator("nav")).not_to_contain_text("Devices")


def test_keyboard_users_can_skip_to_the_content(
    browser: Any, server_url: str, staff_user: User
) -> None:
    page = new_page(browser, server_url, staff_user)
    page.goto("/inbox/")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.context.close()
