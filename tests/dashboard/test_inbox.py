"""The inbox and thread pages through the Django test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from messaging import services
from messaging.inbox import InboundSMS
from messaging.models import Conversation, Message, Status
from pipeline.inbound import receive_one
from tests.dashboard.conftest import csrf_post
from tests.factories import OptOutFactory, paired_device

pytestmark = pytest.mark.django_db


def receive(sender: str, body: str, device: Any = None) -> Message:
    sms = InboundSMS(
        from_number=sender, body=body, source="msync", device=device, sim_slot=1 if device else None
    )
    return receive_one(sms).message


def test_an_empty_inbox_says_so(staff_web: Client) -> None:
    response = staff_web.get("/inbox/")
    assert b"No conversations yet" in response.content


def test_conversations_are_listed_newest_first_with_unread_counts(staff_web: Client) -> None:
    receive("+15550000001", "first")
    receive("+15550000001", "again")
    newest = receive("+15550000002", "second contact")
    response = staff_web.get("/inbox/")
    page = list(response.context["page"])
    assert [c.phone for c in page] == ["+15550000002", "+15550000001"]
    assert [c.unread for c in page] == [1, 2]
    assert f'id="conv-{newest.conversation_id}"'.encode() in response.content
    assert response.context["unread_total"] == 3


def test_the_inbox_is_a_constant_number_of_queries(
    staff_web: Client, django_assert_max_num_queries: Any
) -> None:
    device = paired_device(sims=1).device
    last = None
    for n in range(15):
        last = receive(f"+1555000{n:04d}", f"hello {n}", device)
        services.send_message(to=f"+1555000{n:04d}", body="reply")
    assert last is not None
    # session, user, unread total, count, page (with line and last message joined), devices
    with django_assert_max_num_queries(6):
        assert staff_web.get("/inbox/").status_code == 200
    # the thread: the same, plus marking it read on this first open
    with django_assert_max_num_queries(8):
        assert staff_web.get(f"/inbox/{last.conversation_id}/").status_code == 200
    with django_assert_max_num_queries(6):
        assert staff_web.get(f"/inbox/{last.conversation_id}/").status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [("0000003", ["+15550000003"]), ("pizza", ["+15550000004"]), ("nothing", [])],
)
def test_search_matches_number_or_text(staff_web: Client, query: str, expected: list[str]) -> None:
    receive("+15550000003", "hello")
    receive("+15550000004", "A large PIZZA please")
    response = staff_web.get("/inbox/", {"q": query})
    assert [c.phone for c in response.context["page"]] == expected
    if not expected:
        assert b"No conversation matches" in response.content


def test_the_device_filter_keeps_that_devices_conversations(staff_web: Client) -> None:
    a, b = paired_device(sims=1).device, paired_device(sims=1).device
    receive("+15550000005", "via a", a)
    receive("+15550000006", "via b", b)
    response = staff_web.get("/inbox/", {"device": b.pk})
    assert [c.phone for c in response.context["page"]] == ["+15550000006"]


def test_opening_a_thread_shows_messages_in_order_and_marks_it_read(staff_web: Client) -> None:
    first = receive("+15550000007", "one")
    receive("+15550000007", "two")
    response = staff_web.get(f"/inbox/{first.conversation_id}/")
    assert response.status_code == 200
    assert [m.body for m in response.context["messages_"]] == ["one", "two"]
    assert Conversation.objects.get(pk=first.conversation_id).unread == 0


def test_an_unknown_thread_is_a_404_page(staff_web: Client) -> None:
    response = staff_web.get("/inbox/cnv_nothere/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_send_box_queues_a_dashboard_message_to_the_contact(staff_web: Client) -> None:
    device = paired_device(sims=1).device
    first = receive("+15550000008", "hi", device)
    response = csrf_post(staff_web, f"/inbox/{first.conversation_id}/send/", {"body": "Hello!"})
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/{first.conversation_id}/"
    reply = Message.objects.get(direction="outbound")
    assert (reply.to_number, reply.body, reply.source, reply.status) == (
        "+15550000008",
        "Hello!",
        "dashboard",
        Status.QUEUED,
    )
    assert reply.device_id == device.pk


def test_an_opted_out_contact_gets_an_inline_error_and_nothing_is_sent(staff_web: Client) -> None:
    first = receive("+15550000009", "hi")
    OptOutFactory(phone="+15550000009")
    response = csrf_post(staff_web, f"/inbox/{first.conversation_id}/send/", {"body": "Hello?"})
    assert response.status_code == 422
    assert b"has opted out" in response.content
    assert b"Hello?" in response.content  # the draft is kept
    assert not Message.objects.filter(direction="outbound").exists()


def test_an_empty_reply_is_refused_inline(staff_web: Client) -> None:
    first = receive("+15550000010", "hi")
    response = csrf_post(staff_web, f"/inbox/{first.conversation_id}/send/", {"body": ""})
    assert response.status_code == 400
    assert b"non-empty" in response.content


def test_new_message_to_a_number_opens_its_thread(staff_web: Client) -> None:
    response = csrf_post(staff_web, "/inbox/compose/", {"to": "+15550000011", "body": "Hi"})
    message = Message.objects.get(to_number="+15550000011")
    assert response["Location"] == f"/inbox/{message.conversation_id}/"


def test_new_message_to_a_bad_number_names_the_problem(staff_web: Client) -> None:
    response = csrf_post(staff_web, "/inbox/compose/", {"to": "not a number", "body": "Hi"})
    assert response.status_code == 400
    assert b'aria-invalid="true"' in response.content
    assert not Message.objects.exists()


def test_status_ticks_carry_the_failure_reason(staff_web: Client) -> None:
    message = services.send_message(to="+15550000012", body="hello")
    services.record_status(message_id=message.pk, status="failed", reason="generic failure")
    response = staff_web.get(f"/inbox/{message.conversation_id}/m/{message.pk}/")
    assert response.status_code == 200
    assert b'aria-label="Failed: generic failure"' in response.content
    assert b"tick-failed" in response.content


def test_live_fragments_render_one_row_and_one_message(staff_web: Client) -> None:
    message = receive("+15550000013", "<b>hi</b>")
    row = staff_web.get(f"/inbox/{message.conversation_id}/row/")
    assert row.status_code == 200
    assert b"&lt;b&gt;hi&lt;/b&gt;" in row.content  # escaped, never raw HTML
    assert staff_web.get("/inbox/unread/").json() == {"unread": 1}
    assert staff_web.get(f"/inbox/{message.conversation_id}/m/msg_nothere/").status_code == 404


def test_marking_read_needs_a_post_with_csrf(staff_web: Client) -> None:
    message = receive("+15550000014", "hi")
    assert staff_web.post(f"/inbox/{message.conversation_id}/read/").status_code == 403
    response = csrf_post(staff_web, f"/inbox/{message.conversation_id}/read/")
    assert response.status_code == 204
    assert Conversation.objects.get(pk=message.conversation_id).unread == 0


def test_a_queued_message_can_be_cancelled_from_its_thread(staff_web: Client) -> None:
    message = services.send_message(to="+15550000015", body="oops")
    page = staff_web.get(f"/inbox/{message.conversation_id}/")
    cancel_url = f"/inbox/{message.conversation_id}/m/{message.pk}/cancel/"
    assert cancel_url.encode() in page.content
    response = csrf_post(staff_web, cancel_url)
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == Status.CANCELLED
    assert cancel_url.encode() not in staff_web.get(f"/inbox/{message.conversation_id}/").content
    # Too late once cancelled (or sent): a message, not an error page.
    response = csrf_post(staff_web, cancel_url)
    assert response.status_code == 302


def test_a_sender_name_gets_no_send_box(staff_web: Client) -> None:
    bank = receive("MPESA", "You have received KES 100")
    numbered = receive("+15550000001", "hello")

    page = staff_web.get(f"/inbox/{bank.conversation_id}/").content.decode()
    assert "cannot be replied to" in page and 'name="body"' not in page
    page = staff_web.get(f"/inbox/{numbered.conversation_id}/").content.decode()
    assert 'name="body"' in page and "cannot be replied to" not in page


def test_a_message_that_moved_shows_its_route_trail(staff_web: Client) -> None:
    first = paired_device(name="Office phone")
    second = paired_device(name="Shop phone")
    message = services.send_message(to="+15550000014", body="hello", device_id=first.device.pk)
    Message.objects.filter(pk=message.pk).update(pinned=False)
    services.record_status(message_id=message.pk, status="dispatched")
    services.record_status(message_id=message.pk, status="failed", reason="radio off")
    message.refresh_from_db()
    assert message.device_id == second.device.pk

    thread = staff_web.get(f"/inbox/{message.conversation_id}/")
    bubble = staff_web.get(f"/inbox/{message.conversation_id}/m/{message.pk}/")

    for page in (thread, bubble):
        assert b"rerouted from Office phone \xc2\xb7 SIM 1 \xe2\x86\x92 Shop phone" in page.content
