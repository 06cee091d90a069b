"""`respect_quiet_hours` on POST /api/v1/messages (docs/api.md#sending): with frozen time, the
same instant is night in New York and day in Tokyo."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from messaging.models import Message
from messaging.policy import update_policy
from messaging.tasks import release_scheduled_messages

pytestmark = pytest.mark.django_db

NEW_YORK = "+12125550123"
TOKYO = "+81312345678"
EVENING_IN_NEW_YORK = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)  # 21:00 EST, 11:00 JST


@pytest.fixture
def quiet_nights() -> None:
    update_policy(quiet_hours={"start": "21:00", "end": "08:00"})


@pytest.mark.usefixtures("quiet_nights")
def test_a_message_to_new_york_at_night_is_scheduled_for_its_morning(admin_client, phone):
    with freeze_time(EVENING_IN_NEW_YORK):
        held = admin_client.post(
            "/api/v1/messages",
            {"to": NEW_YORK, "body": "Sale!", "respect_quiet_hours": True},
            format="json",
        )
        sent = admin_client.post(
            "/api/v1/messages",
            {"to": TOKYO, "body": "Sale!", "respect_quiet_hours": True},
            format="json",
        )

    assert held.status_code == sent.status_code == 202
    assert (held.json()["status"], held.json()["send_at"]) == ("scheduled", "2026-12-04T13:00:00Z")
    assert (sent.json()["status"], sent.json()["send_at"]) == ("queued", None)
    events = admin_client.get(f"/api/v1/messages/{held.json()['id']}").json()["events"]
    assert events[0]["status"] == "scheduled"
    assert events[0]["detail"].startswith(
        "held for quiet hours until 08:00 America/New_York (2026-12-04 13:00 UTC)"
    )

    with freeze_time(datetime(2026, 12, 4, 13, 0, 1, tzinfo=UTC)):
        assert release_scheduled_messages() == {"released": 1}
    assert Message.objects.get(pk=held.json()["id"]).status == "queued"


@pytest.mark.usefixtures("quiet_nights")
def test_a_bulk_send_holds_only_the_recipients_at_night(admin_client, phone):
    with freeze_time(EVENING_IN_NEW_YORK):
        response = admin_client.post(
            "/api/v1/messages",
            {"to": [NEW_YORK, TOKYO], "body": "Sale!", "respect_quiet_hours": True},
            format="json",
        )
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["scheduled", "queued"]


@pytest.mark.usefixtures("quiet_nights")
@pytest.mark.parametrize("body", [{}, {"respect_quiet_hours": False}])
def test_an_api_message_is_not_held_unless_it_asks(admin_client, phone, body):
    with freeze_time(EVENING_IN_NEW_YORK):
        response = admin_client.post(
            "/api/v1/messages", {"to": NEW_YORK, "body": "Code 1234", **body}, format="json"
        )
    assert response.json()["status"] == "queued"


def test_without_quiet_hours_in_the_policy_nothing_is_held(admin_client, phone):
    with freeze_time(EVENING_IN_NEW_YORK):
        response = admin_client.post(
            "/api/v1/messages",
            {"to": NEW_YORK, "body": "Sale!", "respect_quiet_hours": True},
            format="json",
        )
    assert response.json()["status"] == "queued"


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, [], {}])
def test_respect_quiet_hours_must_be_a_json_boolean(admin_client, value):
    response = admin_client.post(
        "/api/v1/messages",
        {"to": NEW_YORK, "body": "Sale!", "respect_quiet_hours": value},
        format="json",
    )
    assert response.status_code == 400
    assert "respect_quiet_hours" in response.json()["error"]["fields"]
    assert not Message.objects.exists()
