"""The inbox in a real browser: login, live arrival of messages, replying and status ticks."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from messaging.encoding import segment_info
from messaging.models import Message
from messaging.services import send_bulk
from tests.browser.conftest import PASSWORD, new_page, off_the_loop, screenshot, wait_live
from tests.browser.phone import SimulatedPhone
from tests.factories import paired_device

pytestmark = pytest.mark.django_db(transaction=True)


def receive(phone: SimulatedPhone, sender: str, body: str) -> Message:
    """The phone posts an SMS to the MSync endpoint; returns the stored message."""
    assert phone.receive(sender, body)["received"] == 1
    return Message.objects.filter(direction="inbound", from_number=sender, body=body).get()


def test_login_with_the_form_lands_on_the_inbox(
    browser: Any, server_url: str, admin_user: User
) -> None:
    page = new_page(browser, server_url)
    page.goto("/inbox/")
    expect(page).to_have_url(f"{server_url}/login/?next=/inbox/")
    screenshot(page, "login")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("did not match")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server_url}/inbox/")
    expect(page.locator(".conversations .empty")).to_contain_text("No conversations yet")
    screenshot(page, "inbox-empty")
    page.context.close()


def test_an_inbound_message_appears_in_the_open_thread_and_list_without_reload(
    browser: Any, server_url: str, staff_user: User
) -> None:
    phone = SimulatedPhone(server_url, paired_device(sims=1, name="Front desk"))
    first = receive(phone, "+15550001111", "Hello there")

    inbox = new_page(browser, server_url, staff_user)
    inbox.goto("/inbox/")
    wait_live(inbox)
    row = inbox.locator(f"#conv-{first.conversation_id}")
    expect(row.locator("[data-unread]")).to_have_text("1")

    thread = inbox.context.new_page()
    thread.goto(f"/inbox/{first.conversation_id}/")
    wait_live(thread)
    expect(thread.locator(".bubble.inbound")).to_have_count(1)
    # Opening the thread marked it read; the other open page follows without reload.
    expect(row.locator("[data-unread]")).to_be_hidden()

    second = receive(phone, "+15550001111", "Are you open today?")
    expect(thread.locator(f"#msg-{second.pk}")).to_contain_text("Are you open today?")
    expect(row.locator(".preview")).to_contain_text("Are you open today?")

    other = receive(phone, "+15550002222", "New customer here")
    new_row = inbox.locator(f"#conv-{other.conversation_id}")
    expect(new_row).to_contain_text("New customer here")
    expect(new_row.locator("[data-unread]")).to_have_text("1")
    expect(inbox.locator(".conversations li").first).to_have_id(f"conv-{other.conversation_id}")
    expect(inbox.locator("[data-unread-total]")).to_have_text("1")
    screenshot(inbox, "inbox")
    screenshot(thread, "thread")
    inbox.context.close()


def test_a_reply_ticks_from_queued_to_sent_to_delivered(
    browser: Any, server_url: str, staff_user: User
) -> None:
    paired = paired_device(sims=1, name="Front desk")
    phone = SimulatedPhone(server_url, paired)
    first = receive(phone, "+15550003333", "Can I book for 3pm?")
    page = new_page(browser, server_url, staff_user)
    page.goto(f"/inbox/{first.conversation_id}/")
    wait_live(page)

    page.fill("#body", "Yes, see you at 3pm ✓")
    expect(page.locator("[data-segment-counter]")).to_contain_text("1 segment · UCS-2")
    page.click(".sendbox button[type=submit]")
    wait_live(page)
    reply = Message.objects.get(direction="outbound", to_number="+15550003333")
    assert reply.source == "dashboard"
    assert reply.device_id == paired.device.pk
    tick = page.locator(f"#msg-{reply.pk} .tick")
    expect(tick).to_have_attribute("aria-label", "Queued: waiting for a phone or provider")
    expect(page.locator(f"#msg-{reply.pk} .line")).to_have_text("Front desk · SIM 1")

    assert [m["id"] for m in phone.poll()] == [reply.pk]
    expect(tick).to_have_attribute("aria-label", "Dispatched: handed to the phone")
    phone.report([str(reply.uuid)], "sent")
    expect(tick).to_have_attribute("aria-label", "Sent")
    phone.report([str(reply.uuid)], "delivered")
    expect(tick).to_have_attribute("aria-label", "Delivered")
    expect(tick).to_have_text("✓✓")
    screenshot(page, "thread-reply")
    page.context.close()


SEGMENT_SAMPLES = [
    "",
    "Hello",
    "a" * 160,
    "a" * 161,
    "[" * 80,
    "[" * 81,
    "Price: 5€ {ok}",
    "“Curly quotes”",
    "café au lait",
    "non\u00a0breaking space",
    "emoji 👍🏽 and family 👨‍👩‍👧",
    "😀" * 35,
    "😀" * 36,
    "line\r\nbreak",
    "x" * 152 + "€",
]


def test_the_segment_counter_counts_like_the_server(staff_page: Any) -> None:
    staff_page.goto("/inbox/")
    for text in SEGMENT_SAMPLES:
        browser_info = staff_page.evaluate("t => window.smsgate.segmentInfo(t)", text)
        server = segment_info(text)
        assert browser_info == {
            "encoding": server.encoding,
            "segments": server.segments,
            "units": server.units,
        }, text


def test_a_burst_or_a_filtered_list_shows_a_notice_instead_of_rows(staff_page: Any) -> None:
    page = staff_page
    page.goto("/inbox/")
    wait_live(page)
    # Made in this test process: the event reaches the server's socket through Redis.
    off_the_loop(lambda: send_bulk(recipients=[f"+1555001{n:04d}" for n in range(25)], body="Sale"))
    expect(page.locator("[data-new-activity]")).to_be_visible()
    expect(page.locator(".conversations li.conversation")).to_have_count(0)
    page.reload()
    expect(page.locator(".conversations li.conversation")).to_have_count(25)

    page.goto("/inbox/?q=%2B15550010001")
    wait_live(page)
    expect(page.locator(".conversations li.conversation")).to_have_count(1)
    expect(page.locator("[data-new-activity]")).to_be_hidden()
    off_the_loop(lambda: send_bulk(recipients=["+15550019999"], body="Another"))
    expect(page.locator("[data-new-activity]")).to_be_visible()
    expect(page.locator(".conversations li.conversation")).to_have_count(1)
