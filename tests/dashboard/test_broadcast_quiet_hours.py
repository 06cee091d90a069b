"""Broadcasts respect quiet hours unless the sender unticks the box, and the preview says who
will be held and until when. At 05:00 UTC it is midnight in New York, 21:00 in Los Angeles and
14:00 in Tokyo."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from freezegun import freeze_time

from dashboard.models import Broadcast
from messaging.policy import update_policy
from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db

NEW_YORK, LOS_ANGELES, TOKYO = "+12125550123", "+13105550123", "+81312345678"
RECIPIENTS = f"{NEW_YORK}\n{LOS_ANGELES}\n{TOKYO}"
MIDNIGHT_IN_NEW_YORK = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
# The browser's form: a hidden "0", then the checkbox's "1" when it is ticked.
TICKED, UNTICKED = ["0", "1"], ["0"]


@pytest.fixture
def quiet_nights() -> None:
    update_policy(quiet_hours={"start": "21:00", "end": "08:00"})


def post(client: Client, **fields: object):  # type: ignore[no-untyped-def]
    with freeze_time(MIDNIGHT_IN_NEW_YORK):
        return csrf_post(
            client, "/broadcasts/", {"recipients": RECIPIENTS, "body": "Sale!", **fields}
        )


def test_the_form_respects_quiet_hours_by_default(staff_web: Client) -> None:
    page = staff_web.get("/broadcasts/").content.decode()
    assert 'name="respect_quiet_hours" value="1" data-respect-quiet checked' in page


@pytest.mark.usefixtures("quiet_nights")
@pytest.mark.parametrize("choice", [{}, {"respect_quiet_hours": TICKED}])
def test_the_preview_says_how_many_will_be_held_and_until_when(
    staff_web: Client, choice: dict[str, object]
) -> None:
    response = post(staff_web, **choice)
    assert response.status_code == 200
    assert response.context["plan"].quiet.held == 2
    assert (
        "2 will be held for quiet hours until 08:00 their time (latest 2026-12-04 16:00 UTC)."
        in response.content.decode()
    )
    assert b"data-respect-quiet checked" in response.content


@pytest.mark.usefixtures("quiet_nights")
def test_unticking_the_box_leaves_the_preview_silent_and_the_box_unticked(
    staff_web: Client,
) -> None:
    response = post(staff_web, respect_quiet_hours=UNTICKED)
    assert response.context["plan"].quiet is None
    assert b"data-plan-quiet" not in response.content
    assert b"data-respect-quiet>" in response.content


def test_without_quiet_hours_in_the_policy_the_preview_says_nothing(staff_web: Client) -> None:
    response = post(staff_web)
    assert response.context["plan"].quiet is None
    assert b"data-plan-quiet" not in response.content


@pytest.mark.usefixtures("quiet_nights")
def test_a_preview_with_nobody_at_night_says_so(staff_web: Client) -> None:
    with freeze_time(datetime(2026, 12, 4, 18, 0, tzinfo=UTC)):  # 13:00 NY, 03:00 Tokyo
        response = csrf_post(
            staff_web, "/broadcasts/", {"recipients": f"{NEW_YORK}\n{LOS_ANGELES}", "body": "Hi"}
        )
    assert response.context["plan"].quiet.held == 0
    assert b"No recipient is in quiet hours (21:00\xe2\x80\x9308:00 their time) now." in (
        response.content
    )


@pytest.mark.usefixtures("quiet_nights")
@pytest.mark.parametrize(
    ("choice", "statuses"),
    [
        ({}, ["scheduled", "scheduled", "queued"]),
        ({"respect_quiet_hours": TICKED}, ["scheduled", "scheduled", "queued"]),
        ({"respect_quiet_hours": UNTICKED}, ["queued", "queued", "queued"]),
    ],
)
def test_sending_holds_the_recipients_at_night_unless_unticked(
    staff_web: Client, choice: dict[str, object], statuses: list[str]
) -> None:
    response = post(staff_web, confirm="1", **choice)
    assert response.status_code == 302
    # Dict, not id order: ids made in the same frozen millisecond do not sort by creation.
    messages = Broadcast.objects.get().messages.values_list("to_number", "status")
    assert dict(messages) == dict(zip([NEW_YORK, LOS_ANGELES, TOKYO], statuses, strict=True))
