"""An unpinned message goes to the online SIM with the most sending budget left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Status
from tests.budgets import budget
from tests.factories import OutboundMessageFactory, paired_device

pytestmark = pytest.mark.django_db


def send(client):
    response = client.post("/api/v1/messages", {"to": "+15551234567", "body": "hi"})
    assert response.status_code == 202, response.json()
    return response.json()


def handed(device, slot, segments, *, ago=timedelta(hours=2), status=Status.SENT):
    OutboundMessageFactory(
        device=device,
        sim_slot=slot,
        status=status,
        segments=segments,
        dispatched_at=timezone.now() - ago,
    )


def test_the_sim_with_the_most_of_its_day_left_is_chosen(admin_client):
    now = timezone.now()
    # The least recently seen phone used to win whatever it had left.
    busy = paired_device(limit_per_day=10, last_seen_at=now - timedelta(seconds=30))
    quiet = paired_device(limit_per_day=10, last_seen_at=now)
    handed(busy.device, 1, 8)
    handed(quiet.device, 1, 2)

    assert send(admin_client)["device_id"] == quiet.device.pk


def test_a_sim_that_used_its_day_is_skipped_for_another_sim_of_the_same_phone(admin_client):
    phone = paired_device(sims=2, limit_per_day=5)
    handed(phone.device, 1, 5)

    body = send(admin_client)

    assert (body["device_id"], body["sim_slot"]) == (phone.device.pk, 2)


def test_on_equal_days_the_sim_with_more_of_its_minute_left_is_chosen(admin_client):
    now = timezone.now()
    busy = paired_device(last_seen_at=now - timedelta(seconds=30))
    quiet = paired_device(last_seen_at=now)
    handed(busy.device, 1, 20, ago=timedelta(seconds=10))

    assert send(admin_client)["device_id"] == quiet.device.pk


def test_failed_sends_do_not_count_against_the_day(admin_client):
    now = timezone.now()
    failing = paired_device(limit_per_day=10, last_seen_at=now)
    other = paired_device(limit_per_day=10, last_seen_at=now - timedelta(seconds=30))
    handed(failing.device, 1, 9, status=Status.FAILED)
    handed(other.device, 1, 1)

    assert send(admin_client)["device_id"] == failing.device.pk


def test_when_every_sim_used_its_day_the_message_still_queues_on_one(admin_client):
    phone = paired_device(limit_per_day=1)
    handed(phone.device, 1, 1)

    assert send(admin_client)["device_id"] == phone.device.pk


@pytest.mark.django_db(transaction=True)
def test_choosing_among_many_phones_costs_the_same_queries(
    admin_client, django_assert_max_num_queries
):
    for n in range(30):
        phone = paired_device(sims=2, limit_per_day=100)
        handed(phone.device, 1, n % 7 + 1)
    admin_client.get("/api/v1/messages")  # the key's last_used_at is written once a minute

    # Key, conversation, opt-out, pool route, BEGIN, the message + event + conversation
    # statement, COMMIT: the same as with one phone.
    with django_assert_max_num_queries(budget(7, sqlite=9)):
        body = send(admin_client)
    assert body["sim_slot"] == 2
