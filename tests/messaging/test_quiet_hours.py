"""Quiet hours in the recipient's time zone, at the service level (docs/routing.md#quiet-hours).

The instant most tests freeze, 2026-12-04 02:00 UTC, is 21:00 the evening before in New York
(in a 21:00–08:00 window) and 11:00 in Tokyo (not in it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from messaging import inbox, services
from messaging.models import Message, MessageEvent
from messaging.policy import update_policy
from messaging.tasks import release_scheduled_messages

pytestmark = pytest.mark.django_db

NEW_YORK = "+12125550123"
TOKYO = "+81312345678"
EVENING_IN_NEW_YORK = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
NEW_YORK_MORNING = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)  # 08:00 EST


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


@pytest.fixture
def quiet_nights() -> None:
    update_policy(quiet_hours={"start": "21:00", "end": "08:00"})


def send(to: str, **kwargs: object) -> Message:
    return services.send_message(to=to, body="Sale!", respect_quiet_hours=True, **kwargs)


def first_event(message: Message) -> MessageEvent:
    return MessageEvent.objects.filter(message=message).order_by("at", "id").first()


@pytest.mark.usefixtures("quiet_nights")
def test_the_same_instant_holds_new_york_and_not_tokyo() -> None:
    with freeze_time(EVENING_IN_NEW_YORK):
        held = send(NEW_YORK)
        sent = send(TOKYO)

    assert (held.status, held.send_at) == ("scheduled", NEW_YORK_MORNING)
    assert (sent.status, sent.send_at) == ("queued", None)
    assert first_event(held).detail.startswith(
        "held for quiet hours until 08:00 America/New_York (2026-12-04 13:00 UTC); "
    )
    assert "quiet hours" not in first_event(sent).detail


@pytest.mark.usefixtures("quiet_nights")
@pytest.mark.parametrize(
    ("moment", "until"),
    [
        ("2026-12-04T01:59:59", None),  # 20:59:59 in New York: not yet
        ("2026-12-04T02:00:00", "2026-12-04T13:00:00"),  # 21:00: the window's first minute
        ("2026-12-04T07:30:00", "2026-12-04T13:00:00"),  # 02:30, after midnight: same morning
        ("2026-12-04T12:59:00", "2026-12-04T13:00:00"),  # 07:59
        ("2026-12-04T13:00:00", None),  # 08:00: the end is not in the window
    ],
)
def test_a_window_spanning_midnight_holds_until_the_next_morning(
    moment: str, until: str | None
) -> None:
    with freeze_time(at(moment)):
        message = send(NEW_YORK)
    assert message.send_at == (at(until) if until else None)
    assert message.status == ("scheduled" if until else "queued")


def test_a_daytime_window_holds_until_its_end_the_same_day() -> None:
    update_policy(quiet_hours={"start": "12:00", "end": "14:00"})
    with freeze_time(at("2026-12-04T03:30:00")):  # 12:30 in Tokyo
        message = send(TOKYO)
    assert message.send_at == at("2026-12-04T05:00:00")  # 14:00 JST


@pytest.mark.usefixtures("quiet_nights")
@pytest.mark.parametrize(
    ("spanning", "single", "moment", "until", "zone"),
    [
        # Toll-free +1 800 spans North America to Guam; Guam (UTC+10) is at 00:00, New York 09:00.
        ("+18005550199", NEW_YORK, "2026-12-04T14:00:00", "2026-12-04T22:00:00", "Pacific/Guam"),
        # A Russian mobile spans Kaliningrad's neighbours to Chukotka (UTC+12), at 22:00 there.
        (
            "+79161234567",
            "+74951234567",
            "2026-12-04T10:00:00",
            "2026-12-04T20:00:00",
            "Asia/Anadyr",
        ),
    ],
)
def test_a_number_spanning_zones_is_judged_by_its_latest_local_time(
    spanning: str, single: str, moment: str, until: str, zone: str
) -> None:
    with freeze_time(at(moment)):
        held = send(spanning)
        not_held = send(single)
    assert held.send_at == at(until)
    assert f"until 08:00 {zone} " in first_event(held).detail
    assert not_held.status == "queued"


@pytest.mark.usefixtures("quiet_nights")
def test_a_number_of_unknown_zone_is_never_held() -> None:
    with freeze_time(EVENING_IN_NEW_YORK):
        assert send("+15551234567").status == "queued"


@pytest.mark.usefixtures("quiet_nights")
@pytest.mark.parametrize(
    ("texted_ago", "held"), [(timedelta(hours=23), False), (timedelta(hours=25), True)]
)
def test_a_reply_within_24_hours_of_the_contacts_last_message_is_not_held(
    texted_ago: timedelta, held: bool
) -> None:
    with freeze_time(EVENING_IN_NEW_YORK - texted_ago):
        inbox.store(
            [inbox.InboundSMS(from_number=NEW_YORK, body="Is the shop open?", source="smssync")]
        )
    with freeze_time(EVENING_IN_NEW_YORK):
        reply = send(NEW_YORK)
    assert reply.status == ("scheduled" if held else "queued")


@pytest.mark.usefixtures("quiet_nights")
def test_a_send_at_is_judged_at_that_moment() -> None:
    with freeze_time(at("2026-12-03T20:00:00")):  # 15:00 in New York: outside the window
        in_window = send(NEW_YORK, send_at=at("2026-12-04T03:00:00"))  # 22:00 there
        outside = send(NEW_YORK, send_at=at("2026-12-03T22:00:00"))  # 17:00 there
        tokyo = send(TOKYO, send_at=at("2026-12-04T03:00:00"))  # 12:00 in Tokyo
    assert (in_window.status, in_window.send_at) == ("scheduled", NEW_YORK_MORNING)
    assert outside.send_at == at("2026-12-03T22:00:00")
    assert tokyo.send_at == at("2026-12-04T03:00:00")


def test_quiet_hours_off_change_nothing() -> None:
    with freeze_time(EVENING_IN_NEW_YORK):
        message = send(NEW_YORK)
    assert (message.status, message.send_at) == ("queued", None)


@pytest.mark.usefixtures("quiet_nights")
def test_a_send_that_does_not_ask_is_not_held_and_never_reads_the_policy() -> None:
    with freeze_time(EVENING_IN_NEW_YORK), CaptureQueriesContext(connection) as queries:
        message = services.send_message(to=NEW_YORK, body="Your code is 1234")
        results = services.send_bulk(recipients=[NEW_YORK, TOKYO], body="Hi")
    assert message.status == "queued"
    assert {r.message.status for r in results if r.message} == {"queued"}
    assert not [q for q in queries.captured_queries if "routingpolicy" in q["sql"]]


@pytest.mark.usefixtures("quiet_nights")
def test_a_bulk_send_holds_each_recipient_in_its_own_zone() -> None:
    with freeze_time(EVENING_IN_NEW_YORK - timedelta(hours=2)):
        inbox.store([inbox.InboundSMS(from_number="+12125550124", body="Hello?", source="smssync")])
    with freeze_time(EVENING_IN_NEW_YORK):
        results = services.send_bulk(
            recipients=[NEW_YORK, TOKYO, "+12125550124", "+15551234567"],
            body="Sale!",
            respect_quiet_hours=True,
        )
    assert [(r.to, r.message.status) for r in results if r.message] == [
        (NEW_YORK, "scheduled"),
        (TOKYO, "queued"),
        ("+12125550124", "queued"),  # texted two hours ago: a reply
        ("+15551234567", "queued"),
    ]


@pytest.mark.usefixtures("quiet_nights")
def test_a_bulk_send_reads_the_policy_and_the_recent_replies_once() -> None:
    recipients = [f"+1212555{n:04d}" for n in range(20)] + [f"+813123{n:05d}" for n in range(20)]

    def count(respect: bool) -> int:
        with freeze_time(EVENING_IN_NEW_YORK), CaptureQueriesContext(connection) as queries:
            services.send_bulk(recipients=recipients, body="Hi", respect_quiet_hours=respect)
        return len(queries.captured_queries)

    plain = count(False)
    assert count(True) == plain + 2
    held = Message.objects.filter(status="scheduled")
    assert held.count() == 20
    assert set(held.values_list("send_at", flat=True)) == {NEW_YORK_MORNING}


@pytest.mark.usefixtures("quiet_nights")
def test_a_held_message_is_released_when_the_window_ends() -> None:
    with freeze_time(EVENING_IN_NEW_YORK):
        held = send(NEW_YORK)
    with freeze_time(NEW_YORK_MORNING - timedelta(seconds=1)):
        assert release_scheduled_messages() == {"released": 0}
    with freeze_time(NEW_YORK_MORNING + timedelta(seconds=1)):
        assert release_scheduled_messages() == {"released": 1}
        assert release_scheduled_messages() == {"released": 0}
    held.refresh_from_db()
    assert held.status == "queued"
