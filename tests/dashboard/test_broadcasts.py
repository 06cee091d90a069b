"""Broadcasts: recipients pasted or uploaded, opt-outs removed before sending, progress."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from dashboard.models import Broadcast
from messaging import services
from messaging.models import Message
from tests.dashboard.conftest import csrf_post
from tests.factories import OptOutFactory

pytestmark = pytest.mark.django_db


def test_an_empty_broadcast_page_says_so(staff_web: Client) -> None:
    assert b"No broadcasts yet" in staff_web.get("/broadcasts/").content


def test_preview_removes_opt_outs_duplicates_and_bad_entries_and_sends_nothing(
    staff_web: Client,
) -> None:
    OptOutFactory(phone="+15550000102")
    pasted = "+15550000101, +15550000102\n+15550000101;garbage\n+15550000103"
    response = csrf_post(staff_web, "/broadcasts/", {"recipients": pasted, "body": "Sale!"})
    assert response.status_code == 200
    plan = response.context["plan"]
    assert plan.recipients == ["+15550000101", "+15550000103"]
    assert plan.opted_out == ["+15550000102"]
    assert [i["to"] for i in plan.invalid] == ["garbage"]
    assert plan.duplicates == 1
    assert b"Send to 2" in response.content
    assert b"opted-out number removed" in response.content
    assert not Message.objects.exists()


def test_a_csv_upload_uses_its_phone_column(staff_web: Client) -> None:
    upload = SimpleUploadedFile(
        "list.csv", b"name,phone\nAda,+15550000111\nBob,+15550000112\n", content_type="text/csv"
    )
    response = csrf_post(staff_web, "/broadcasts/", {"csv": upload, "body": "Hi"})
    assert response.context["plan"].recipients == ["+15550000111", "+15550000112"]


def test_sending_queues_one_message_per_recipient_and_records_who_was_left_out(
    staff_web: Client,
) -> None:
    OptOutFactory(phone="+15550000122")
    pasted = "\n".join(f"+1555000012{n}" for n in range(1, 6))
    response = csrf_post(
        staff_web, "/broadcasts/", {"recipients": pasted, "body": "Closed Monday", "confirm": "1"}
    )
    broadcast = Broadcast.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/broadcasts/{broadcast.pk}/"
    sent = Message.objects.filter(direction="outbound")
    assert sorted(sent.values_list("to_number", flat=True)) == [
        "+15550000121",
        "+15550000123",
        "+15550000124",
        "+15550000125",
    ]
    assert set(sent.values_list("source", flat=True)) == {"dashboard"}
    assert broadcast.skipped == [
        {"to": "+15550000122", "code": "recipient_opted_out", "message": "Opted out: removed."}
    ]
    assert broadcast.messages.count() == 4


def test_progress_counts_each_stage_reached(staff_web: Client) -> None:
    csrf_post(
        staff_web,
        "/broadcasts/",
        {
            "recipients": "+15550000131 +15550000132 +15550000133 +15550000134",
            "body": "Hi",
            "confirm": "1",
        },
    )
    broadcast = Broadcast.objects.get()
    ids = list(broadcast.messages.order_by("id").values_list("id", flat=True))
    services.record_status(message_id=ids[0], status="sent")
    services.record_status(message_id=ids[1], status="delivered")
    services.record_status(message_id=ids[2], status="failed", reason="no signal")
    progress = staff_web.get(f"/broadcasts/{broadcast.pk}/progress/").json()
    assert {
        k: progress[k] for k in ("total", "sent", "delivered", "failed", "done", "percent")
    } == {
        "total": 4,
        "sent": 2,
        "delivered": 1,
        "failed": 1,
        "done": 3,
        "percent": 75,
    }
    page = staff_web.get(f"/broadcasts/{broadcast.pk}/")
    assert b'aria-valuenow="75"' in page.content


def test_sending_to_nobody_is_an_inline_error(staff_web: Client) -> None:
    OptOutFactory(phone="+15550000141")
    response = csrf_post(
        staff_web, "/broadcasts/", {"recipients": "+15550000141", "body": "Hi", "confirm": "1"}
    )
    assert response.status_code == 400
    assert b"no recipient left" in response.content
    assert not Broadcast.objects.exists()


def test_an_empty_message_body_is_an_inline_error(staff_web: Client) -> None:
    response = csrf_post(
        staff_web, "/broadcasts/", {"recipients": "+15550000151", "body": "", "confirm": "1"}
    )
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_an_unknown_broadcast_is_a_404(staff_web: Client) -> None:
    assert staff_web.get("/broadcasts/999/").status_code == 404
    assert staff_web.get("/broadcasts/999/progress/").status_code == 404


def test_too_many_entries_are_refused_before_parsing(staff_web: Client) -> None:
    pasted = " ".join(f"+1555{n:07d}" for n in range(5001))
    response = csrf_post(staff_web, "/broadcasts/", {"recipients": pasted, "body": "Hi"})
    assert response.status_code == 400
    assert b"At most 1000 recipients" in response.content


def test_a_binary_upload_is_a_clear_error_not_a_crash(staff_web: Client) -> None:
    upload = SimpleUploadedFile("x.csv", b"\x00\xff\xfe\x00garbage\x00\n\x00", "text/csv")
    response = csrf_post(staff_web, "/broadcasts/", {"csv": upload, "body": "Hi"})
    assert response.status_code == 200
    assert response.context["plan"].recipients == []
    assert b"Send to" not in response.content


def test_a_csv_with_nul_bytes_can_still_be_sent(staff_web: Client) -> None:
    upload = SimpleUploadedFile("x.csv", b"phone\n+1555000\x000161\n\x00junk\x00\n", "text/csv")
    response = csrf_post(staff_web, "/broadcasts/", {"csv": upload, "body": "Hi", "confirm": "1"})
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert list(broadcast.messages.values_list("to_number", flat=True)) == ["+15550000161"]
    assert [s["to"] for s in broadcast.skipped] == ["junk"]
