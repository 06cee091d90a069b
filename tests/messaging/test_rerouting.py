"""Routing that never strands a message (docs/routing.md): the pool's order, moves on a retryable
failure or a line that will not take the message, pinned messages, the attempts bound."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import Sim
from messaging.models import REROUTED, Message, Status
from messaging.policy import update_policy
from messaging.rerouting import is_retryable, reroute_waiting
from messaging.routing import pool_route
from messaging.services import record_status, send_message
from tests.factories import DeviceFactory, ProviderAppFactory, SimFactory

pytestmark = pytest.mark.django_db

TO = "+254722000444"


def phone(name: str, **fields) -> Sim:
    return SimFactory(device=DeviceFactory(name=name, **fields), slot=1)


def dispatched_on(sim: Sim, **fields) -> Message:
    """A message the pool put on `sim`, handed to the phone."""
    message = send_message(to=TO, body="Hello", **fields)
    assert message.device_id == sim.device_id, "the pool chose another phone"
    Message.objects.filter(pk=message.pk).update(
        status=Status.DISPATCHED, dispatched_at=timezone.now(), sim_slot=sim.slot
    )
    return message


def used(sim: Sim, segments: int, *, status: str = Status.SENT, ago: timedelta = timedelta()):
    Message.objects.create(
        direction="outbound",
        status=status,
        to_number="+254722000999",
        body="x",
        segments=segments,
        device=sim.device,
        sim_slot=sim.slot,
        dispatched_at=timezone.now() - ago,
    )


# --- the pool's order -----------------------------------------------------------------------


def test_the_pool_picks_the_sim_with_the_most_budget_left_today():
    busy = phone("busy", limit_per_day=100)
    quiet = phone("quiet", limit_per_day=100)
    used(busy, 60)
    used(quiet, 10)
    assert pool_route().sim == quiet


def test_a_paced_out_sim_is_never_chosen_while_another_has_budget():
    # More left today, but its minute is used up: the other SIM goes first.
    paced = phone("paced", limit_per_day=1000, limit_per_minute=2)
    other = phone("other", limit_per_day=50)
    used(paced, 2)
    assert pool_route().sim == other
    route = pool_route(exclude={f"{other.device_id}:1"})
    assert route.sim == paced and route.paced_out


def test_the_hour_budget_counts_too():
    hourly = phone("hourly", limit_per_hour=5)
    other = phone("other", limit_per_day=10)
    used(hourly, 5, ago=timedelta(minutes=30))
    assert pool_route().sim == other


def test_failed_sends_use_no_budget():
    refunded = phone("refunded", limit_per_day=10)
    other = phone("other", limit_per_day=10)
    used(refunded, 8, status=Status.FAILED)
    used(other, 3)
    assert pool_route().sim == refunded


def test_a_sim_whose_last_sends_all_failed_is_tried_last():
    failing = phone("failing", limit_per_day=1000)
    healthy = phone("healthy", limit_per_day=10)
    Sim.objects.filter(pk=failing.pk).update(failures_in_a_row=3)
    assert pool_route().sim == healthy


def test_failure_streaks_follow_reports():
    sim = phone("only")
    for _ in range(2):
        record_status(message_id=dispatched_on(sim).pk, status=Status.FAILED, reason="x")
    sim.refresh_from_db()
    assert sim.failures_in_a_row == 2
    record_status(message_id=dispatched_on(sim).pk, status=Status.SENT)
    sim.refresh_from_db()
    assert sim.failures_in_a_row == 0


# --- moving on a failed report --------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    [
        "RESULT_ERROR_NO_SERVICE",
        "Send result: RESULT_ERROR_GENERIC_FAILURE (Generic failure cause)",
        "radio off",
        "error code 4",
        "SMS limit exceeded",
    ],
)
def test_retryable_reasons(reason):
    assert is_retryable(reason)


@pytest.mark.parametrize("reason", ["RESULT_ERROR_NULL_PDU", "invalid destination", "error code 3"])
def test_reasons_that_blame_the_message(reason):
    assert not is_retryable(reason)


def test_a_retryable_failure_moves_the_message_to_another_phone():
    first = phone("first", limit_per_day=100)
    second = phone("second", limit_per_day=50)
    message = dispatched_on(first)

    assert record_status(message_id=message.pk, status=Status.FAILED, reason="radio off")

    message.refresh_from_db()
    assert (message.status, message.device_id, message.sim_slot) == (
        Status.QUEUED,
        second.device_id,
        1,
    )
    assert message.from_number == second.number and message.dispatched_at is None
    assert message.lines_tried == [f"{first.device_id}:1"]
    failed, moved = list(message.events.order_by("id"))[-2:]
    assert (failed.status, failed.applied) == (Status.FAILED, False)
    assert moved.status == REROUTED
    assert moved.detail == (
        f"device {first.device_id} SIM 1 → device {second.device_id} SIM 1: failed (radio off)"
    )


def test_a_failure_that_blames_the_message_fails_it():
    first = phone("first")
    phone("second")
    message = dispatched_on(first)
    record_status(message_id=message.pk, status=Status.FAILED, reason="RESULT_ERROR_NULL_PDU")
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.FAILED, first.device_id)


def test_a_pinned_message_fails_where_it_was_sent():
    first = phone("first")
    phone("second")
    message = send_message(to=TO, body="Hi", device_id=first.device_id)
    assert message.pinned
    record_status(message_id=message.pk, status=Status.FAILED, reason="radio off")
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.FAILED, first.device_id)


def test_failover_lets_a_named_device_move():
    first = phone("first")
    second = phone("second")
    message = send_message(to=TO, body="Hi", device_id=first.device_id, failover=True)
    assert not message.pinned
    record_status(message_id=message.pk, status=Status.FAILED, reason="radio off")
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.QUEUED, second.device_id)


def test_a_message_tries_at_most_max_attempts_lines():
    update_policy(max_attempts=2)
    sims = [phone(f"p{i}", limit_per_day=100 - i) for i in range(3)]
    message = dispatched_on(sims[0])
    record_status(message_id=message.pk, status=Status.FAILED, reason="no service")
    message.refresh_from_db()
    assert message.device_id == sims[1].device_id
    record_status(message_id=message.pk, status=Status.FAILED, reason="no service")
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.FAILED, sims[1].device_id)
    assert message.events.filter(status=REROUTED).count() == 1


def test_the_fallback_app_is_the_last_resort(django_capture_on_commit_callbacks):
    app = ProviderAppFactory(numbers=["+254709000111"], can_send=True)
    update_policy(fallback_app_id=app.pk)
    only = phone("only")
    message = dispatched_on(only)
    with django_capture_on_commit_callbacks() as callbacks:
        record_status(message_id=message.pk, status=Status.FAILED, reason="no service")
    message.refresh_from_db()
    assert (message.status, message.app_id, message.device_id) == (Status.QUEUED, app.pk, None)
    assert message.from_number == "+254709000111"
    # The provider app's send is enqueued once the move commits.
    assert any("schedule_provider_send" in getattr(cb, "__qualname__", "") for cb in callbacks)


def test_with_no_other_line_the_failure_stands():
    only = phone("only")
    message = dispatched_on(only)
    record_status(message_id=message.pk, status=Status.FAILED, reason="no service")
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.FAILED, "no service")


def test_a_message_the_phone_sent_is_never_sent_again():
    first = phone("first")
    phone("second")
    message = dispatched_on(first)
    record_status(message_id=message.pk, status=Status.SENT)
    record_status(message_id=message.pk, status=Status.FAILED, reason="radio off")
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.FAILED, first.device_id)


# --- the sweep: lines that will not take a message ------------------------------------------


def waited(message: Message, seconds: int) -> None:
    Message.objects.filter(pk=message.pk).update(
        routed_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_message_on_a_phone_that_went_offline_moves_after_reroute_after():
    update_policy(reroute_after=30)
    first = phone("first", limit_per_day=100)
    second = phone("second", limit_per_day=10)
    message = send_message(to=TO, body="Hi")
    assert message.device_id == first.device_id
    first.device.__class__.objects.filter(pk=first.device_id).update(online=False)

    waited(message, 20)
    assert reroute_waiting() == 0
    waited(message, 31)
    assert reroute_waiting() == 1

    message.refresh_from_db()
    assert message.device_id == second.device_id
    assert message.events.last().detail == (
        f"device {first.device_id} SIM 1 → device {second.device_id} SIM 1: "
        f"device {first.device_id} is offline for 30 s or more"
    )
    assert reroute_waiting() == 0  # a second sweep finds nothing


def test_a_message_held_by_pacing_moves():
    update_policy(reroute_after=30)
    paced = phone("paced", limit_per_day=1000, limit_per_minute=1)
    other = phone("other", limit_per_day=5)
    message = send_message(to=TO, body="Hi")
    assert message.device_id == paced.device_id
    used(paced, 1)
    waited(message, 60)
    assert reroute_waiting() == 1
    message.refresh_from_db()
    assert message.device_id == other.device_id
    assert "is paced out" in message.events.last().detail


def test_an_online_phone_with_budget_keeps_its_message_however_slow_its_polls():
    update_policy(reroute_after=30)
    first = phone("first", limit_per_day=100)
    phone("second", limit_per_day=10)
    message = send_message(to=TO, body="Hi")
    waited(message, 3600)
    assert reroute_waiting() == 0
    message.refresh_from_db()
    assert message.device_id == first.device_id


def test_dispatched_pinned_and_scheduled_messages_never_move():
    update_policy(reroute_after=30)
    first = phone("first", limit_per_day=100)
    phone("second", limit_per_day=10)
    dispatched = dispatched_on(first)
    pinned = send_message(to=TO, body="Hi", device_id=first.device_id)
    later = send_message(to=TO, body="Hi", send_at=timezone.now() + timedelta(minutes=5))
    first.device.__class__.objects.filter(pk=first.device_id).update(online=False)
    for message in (dispatched, pinned, later):
        waited(message, 3600)
    assert reroute_waiting() == 0
    for message in (dispatched, pinned):
        message.refresh_from_db()
        assert message.device_id == first.device_id


def test_with_nowhere_to_go_a_message_waits():
    update_policy(reroute_after=30)
    only = phone("only")
    message = send_message(to=TO, body="Hi")
    only.device.__class__.objects.filter(pk=only.device_id).update(online=False)
    waited(message, 60)
    assert reroute_waiting() == 0
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.QUEUED, only.device_id)


def test_messages_an_online_phone_will_take_never_hold_up_stranded_ones(monkeypatch):
    # The sweep's batch holds only messages on lines that will not take them: older messages
    # waiting for a slow but online phone used to fill it and strand the rest.
    monkeypatch.setattr("messaging.rerouting.SWEEP_BATCH", 3)
    update_policy(reroute_after=30)
    slow = phone("slow")
    gone = phone("gone")
    for _ in range(3):
        waited(send_message(to=TO, body="Hi", device_id=slow.device_id, failover=True), 3600)
    stranded = send_message(to=TO, body="Hi", device_id=gone.device_id, failover=True)
    gone.device.__class__.objects.filter(pk=gone.device_id).update(online=False)
    waited(stranded, 60)

    assert reroute_waiting() == 1
    stranded.refresh_from_db()
    assert stranded.device_id == slow.device_id


def test_an_app_phone_that_failed_is_not_tried_again_on_its_other_sim():
    # The SMS Gateway app keeps the id of a message it failed: its other SIM would never send it.
    app_phone = DeviceFactory(name="app phone", app_token_hash="x", limit_per_day=100)
    SimFactory(device=app_phone, slot=1)
    SimFactory(device=app_phone, slot=2)
    other = phone("other", limit_per_day=10)
    message = send_message(to=TO, body="Hi")
    assert message.device_id == app_phone.pk
    record_status(message_id=message.pk, status=Status.FAILED, reason="no service")
    message.refresh_from_db()
    assert (message.device_id, message.lines_tried) == (other.device_id, [app_phone.pk])
    record_status(message_id=message.pk, status=Status.FAILED, reason="no service")
    message.refresh_from_db()
    assert (message.status, message.device_id) == (Status.FAILED, other.device_id)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_failover_must_be_a_json_boolean(admin_client, value):
    response = admin_client.post(
        "/api/v1/messages", {"to": TO, "body": "Hi", "failover": value}, format="json"
    )
    assert response.status_code == 400
    assert "failover" in response.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_the_api_pins_a_named_device_unless_failover(admin_client):
    sim = phone("named")
    pinned = admin_client.post(
        "/api/v1/messages", {"to": TO, "body": "Hi", "device_id": sim.device_id}, format="json"
    )
    free = admin_client.post(
        "/api/v1/messages",
        {"to": TO, "body": "Hi", "device_id": sim.device_id, "failover": True},
        format="json",
    )
    assert (pinned.status_code, free.status_code) == (202, 202)
    assert Message.objects.get(pk=pinned.json()["id"]).pinned
    assert not Message.objects.get(pk=free.json()["id"]).pinned


def test_a_phone_that_went_silent_does_not_draw_every_new_message():
    # Still online (not marked offline yet) but taking nothing: its queue counts against it.
    silent = phone("silent", limit_per_day=100)
    busy = phone("busy", limit_per_day=100)
    used(busy, 10)
    first = send_message(to=TO, body="one", sim_slot=None)
    assert first.device_id == silent.device_id
    routed = [send_message(to=f"+25472200{i:04d}", body="x").device_id for i in range(20)]
    # 10 more on the silent phone evens the two out; then they take turns.
    assert routed[:9] == [silent.device_id] * 9
    assert routed.count(busy.device_id) >= 5
