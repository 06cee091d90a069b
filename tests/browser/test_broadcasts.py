"""A broadcast to 50 numbers in a real browser, with the progress bar moving live; quiet
hours held where it is night."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboard.models import Broadcast
from messaging.policy import update_policy
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


def test_a_broadcast_holds_the_recipients_at_night_where_they_are(staff_page: Any) -> None:
    # The server is another process, so its clock cannot be frozen: the quiet hours are put
    # around New York's time now instead (Tokyo, 13 or 14 hours ahead, is outside them).
    now_in_new_york = timezone.now().astimezone(ZoneInfo("America/New_York"))
    start, end = now_in_new_york - timedelta(hours=1), now_in_new_york + timedelta(hours=1)
    update_policy(quiet_hours={"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"})
    page = staff_page
    page.goto("/broadcasts/")
    expect(page.locator("[data-respect-quiet]")).to_be_checked()
    page.fill("#recipients", "+12125550123\n+12125550124\n+81312345678")
    page.fill("#bc-body", "Sale ends tonight.")
    page.click("text=Preview recipients")
    expect(page.locator("[data-plan-quiet]")).to_contain_text(
        f"2 will be held for quiet hours until {end:%H:%M} their time"
    )
    page.uncheck("[data-respect-quiet]")
    page.click("text=Check again")
    expect(page.locator("[data-plan-count]")).to_have_text("3")
    expect(page.locator("[data-plan-quiet]")).to_have_count(0)
    expect(page.locator("[data-respect-quiet]")).not_to_be_checked()
    page.check("[data-respect-quiet]")
    page.click("text=Send to 3")

    expect(page.locator("[data-progress-count=total]")).to_have_text("3")
    messages = Broadcast.objects.get().messages.values_list("to_number", "status")
    assert dict(messages) == {
        "+12125550123": "scheduled",
        "+12125550124": "scheduled",
        "+81312345678": "queued",
    }
