"""The SMS Gateway for Android app's pairing card in a real browser: pair a phone, copy the API
URL and the private token with the page's copy buttons, read the steps; fits a phone screen."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from devices.models import Device
from smsgate.crypto import hash_secret
from tests.browser.conftest import PHONE, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_pair_a_phone_for_the_app_and_copy_its_values(admin_page: Any, server_url: str) -> None:
    page = admin_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/devices/")
    page.click("text=Pair a new phone")
    page.fill("#dev-name", "Shop phone")
    page.click("text=Create and show QR")

    card = page.locator("[data-app-pairing]")
    expect(card.get_by_role("heading")).to_have_text("With the SMS Gateway for Android app")
    expect(card.locator("[data-app-server-url]")).to_have_text(f"{server_url}/api/mobile/v1")
    token = card.locator("[data-app-private-token]").inner_text().strip()
    assert Device.objects.get().app_private_token_hash == hash_secret(token)
    # Large enough to read across a desk and type into a phone.
    size = card.locator("[data-app-private-token]").evaluate("e => getComputedStyle(e).fontSize")
    assert float(size.removesuffix("px")) >= 20

    copy_token = card.get_by_role("button", name="Copy the private token")
    copy_token.click()
    expect(copy_token).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
    card.get_by_role("button", name="Copy the API URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{server_url}/api/mobile/v1"

    steps = card.locator("[data-app-steps] li")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("Settings tab → Cloud server…")
    expect(steps.nth(1)).to_contain_text("Notification channel to SSE Only")
    expect(steps.nth(2)).to_contain_text("reads Online")
    # The test server is plain HTTP on 127.0.0.1, which the app's regular build allows.
    expect(card.locator("[data-app-build]")).to_contain_text("Use the app's regular build")

    card.locator("summary").click()
    expect(card.get_by_role("img", name="QR code of the private token")).to_be_visible()
    screenshot(page, "device-pairing-app")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    copy_token.scroll_into_view_if_needed()
    expect(copy_token).to_be_in_viewport(ratio=1)
