"""`send_at`, `expires_at` and cancel, with the beat tasks that move messages on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from messaging.models import Message, MessageEvent
from messaging.services import record_status
from messaging.tasks import expire_messages, release_scheduled_messages

pytestmark = pytest.mark.django_db


def iso(dt) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_a_future_send_at_schedules_the_message(admin_client):
    send_at = timezone.now() + timedelta(hours=1)
    response = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "later", "send_at": iso(send_at)}
    )
    assert response.status_code == 202
    assert response.json()["status"] == "scheduled"
    assert Message.objects.get().status == "scheduled"


def test_a_past_send_at_queues_at_once(admin_client):
    send_at = timezone.now() - timedelta(minutes=5)
    response = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "now", "send_at": iso(send_at)}
    )
    assert response.json()["status"] == "queued"


def test_release_moves_due_messages_to_queued_once(admin_client):
    send_at = timezone.now() + timedelta(minutes=10)
    sent = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "later", "send_at": iso(send_at)}
    ).json()
    assert release_scheduled_messages() == {"released": 0}

    with freeze_time(send_at + timedelta(seconds=1)):
        first = release_scheduled_messages()
        second = release_scheduled_messages()

    assert first == {"released": 1}
    assert second == {"released": 0}
    detail = admin_client.get(f"/api/v1/messages/{sent['id']}").json()
    assert detail["status"] == "queued"
    assert [e["status"] for e in detail["events"]] == ["scheduled", "queued"]


def test_expire_moves_unsent_messages_past_expires_at_to_expired_once(admin_client):
    expires_at = timezone.now() + timedelta(minutes=10)
    sent = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "x", "expires_at": iso(expires_at)}
    ).json()
    assert sent["expires_at"] == iso(expires_at)

    with freeze_time(expires_at + timedelta(seconds=1)):
        first = expire_messages()
        second = expire_messages()

    assert first == {"expired": 1}
    assert second == {"expired": 0}
    detail = admin_client.get(f"/api/v1/messages/{sent['id']}").json()
    assert detail["status"] == "expired"
    assert detail["reason"]
    assert MessageEvent.objects.filter(message_id=sent["id"], status="expired").count() == 1


def test_a_dispatched_message_does_not_expire(admin_client):
    expires_at = timezone.now() + timedelta(minutes=10)
    sent = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "x", "expires_at": iso(expires_at)}
    ).json()
    record_status(message_id=sent["id"], status="dispatched")

    with freeze_time(expires_at + timedelta(seconds=1)):
        assert expire_messages() == {"expired": 0}
    assert Message.objects.get().status == "dispatched"


@pytest.mark.parametrize(
    "times",
    [
        {"expires_at": "2000-01-01T00:00:00Z"},
        {"send_at": "2099-01-02T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"},
        {"send_at": "tomorrow"},
        {"expires_at": 5},
    ],
)
def test_impossible_times_are_a_400(admin_client, times):
    response = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "x", **times}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) & {"send_at", "expires_at"}
    assert not Message.objects.exists()


@pytest.mark.parametrize("extra", [{}, {"send_at": "2099-01-01T00:00:00Z"}])
def test_cancel_answers_200_while_queued_or_scheduled(admin_client, extra):
    sent = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "x", **extra}, format="json"
    ).json()

    response = admin_client.post(f"/api/v1/messages/{sent['id']}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Message.objects.get().status == "cancelled"
    assert Message.objects.get().reason


@pytest.mark.parametrize("status", ["dispatched", "sent", "delivered", "failed", "cancelled"])
def test_cancel_is_a_409_once_the_message_left_the_queue(admin_client, status):
    sent = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "x"}).json()
    if status == "cancelled":
        admin_client.post(f"/api/v1/messages/{sent['id']}/cancel")
    else:
        record_status(message_id=sent["id"], status=status)

    response = admin_client.post(f"/api/v1/messages/{sent['id']}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_cancellable"
    assert Message.objects.get().status == status


def test_cancel_of_an_unknown_message_is_a_404(admin_client):
    response = admin_client.post("/api/v1/messages/msg_nothere/cancel")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_cancelled_scheduled_message_is_never_released(admin_client):
    send_at = timezone.now() + timedelta(minutes=10)
    sent = admin_client.post(
        "/api/v1/messages", {"to": "+15551234567", "body": "x", "send_at": iso(send_at)}
    ).json()
    admin_client.post(f"/api/v1/messages/{sent['id']}/cancel")

    with freeze_time(send_at + timedelta(seconds=1)):
        assert release_scheduled_messages() == {"released": 0}
    assert Message.objects.get().status == "cancelled"
