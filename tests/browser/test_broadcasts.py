"""A broadcast to 50 numbers in a real browser, with the progress bar moving live."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from dashboard.models import Broadcast
from tests.browser.conftest import screenshot, wait_live
from tests.browser.phone import SimulatedPhone
from tests.factories import OptOutFactory, paired_device

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_broadcast_to_50_numbers_reaches_100_percent(staff_page: Any, server_url: str) -> None:
    # No per-minute pacing, so one poll hands the phone all 50 messages.
    phone = SimulatedPhone(
        server_url, paired_device(sims=1, name="Bulk phone", limit_per_minute=None)
    )
    OptOutFactory(phone="+15550009999")
    numbers = [f"+1555000{n:04d}" for n in range(1000, 1050)] + ["+15550009999"]
    page = staff_page
    page.goto("/broadcasts/")
    expect(page.locator(".empty")).to_contain_text("No broadcasts yet")
    page.fill("#recipients", "\n".join(numbers))
    page.fill("#bc-body", "We are closed on Monday.")
    expect(page.locator("[data-segment-counter]")).to_contain_text("1 segment · GSM-7")
    page.click("text=Preview recipients")
    expect(page.locator("[data-plan-count]")).to_have_text("50")
    expect(page.locator("[data-plan]")).to_contain_text("1 opted-out number removed: +15550009999")
    screenshot(page, "broadcast-preview")
    page.click("text=Send to 50")

    expect(page.locator("[data-progress-count=total]")).to_have_text("50")
    expect(page.locator("[data-progress-percent]")).to_have_text("0%")
    wait_live(page)
    broadcast = Broadcast.objects.get()
    assert broadcast.messages.count() == 50
    assert [s["to"] for s in broadcast.skipped] == ["+15550009999"]
    polled = phone.poll(limit=100)
    assert len(polled) == 50
    uuids = [m["uuid"] for m in polled]
    expect(page.locator("[data-progress-count=sent]")).to_have_text("0")
    phone.report(uuids[:25], "sent")
    expect(page.locator("[data-progress-percent]")).to_have_text("50%")
    phone.report(uuids[25:], "sent")
    expect(page.locator("[data-progress-percent]")).to_have_text("100%")
    expect(page.locator("[data-progress-bar]")).to_have_attribute("aria-valuenow", "100")
    phone.report(uuids, "delivered")
    expect(page.locator("[data-progress-count=delivered]")).to_have_text("50")
    screenshot(page, "broadcast-progress")
