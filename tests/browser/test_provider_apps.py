"""The provider apps page in a real browser: create an app and copy its receive URL."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from messaging.models import ProviderApp
from tests.browser.conftest import PHONE, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_a_provider_app_and_copy_its_receive_url(admin_page: Any, server_url: str) -> None:
    page = admin_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/apps/")
    expect(page.locator(".empty")).to_contain_text("No provider apps yet")
    page.click("text=Add a provider app")
    page.select_option("#app-provider", "africastalking")
    # Only the chosen provider's credential fields are on show.
    expect(page.locator("#cred-twilio-auth_token")).to_be_hidden()
    page.fill("#app-name", "AT Kenya")
    page.fill("#app-numbers", "+254709000111")
    page.fill("#cred-africastalking-username", "acme")
    page.fill("#cred-africastalking-api_key", "at-key-secret")
    page.fill("#cred-africastalking-token", "at-token-secret")
    page.click("text=Create app")
    expect(page.locator(".flash")).to_contain_text("Credentials stored: api_key, token, username")

    app = ProviderApp.objects.get()
    row = page.locator(f"#app-{app.pk}")
    url = f"{server_url}/api/sms/apps/{app.pk}/receive"
    expect(row.locator("[data-receive-url]")).to_have_text(url)
    row.get_by_role("button", name="Copy").click()
    expect(row.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert "at-key-secret" not in page.content() and "at-token-secret" not in page.content()
    screenshot(page, "provider-apps")
    # On a phone the card keeps the receive URL and its button in view, no sideways scrolling.
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(row.get_by_role("button", name="Copy")).to_be_in_viewport()
    page.click("text=Add a provider app")
    page.select_option("#app-provider", "twilio")
    expect(page.locator("#cred-twilio-messaging_service_sid")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
