"""A busy phone's check-ins: the seen-write throttle and the idle-poll fast path.

A device polled a moment ago through this process is read, not written, while the row says it
is online and was seen within `SEEN_RESOLUTION`; every offline → online transition still
writes and fires `device_health_changed`. An `outgoing` poll that finds nothing waiting is
answered from one read, without a transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from devices.models import Device
from messaging.models import InboundRequest, Message, Status
from phones import checkin as checkins
from tests.budgets import budget, is_postgres
from tests.devices.conftest import TRANSACTION_STATEMENTS, MSync, health_events
from tests.factories import OutboundMessageFactory, paired_device

pytestmark = pytest.mark.django_db(transaction=True)


def _device_writes(queries: Any) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE devices_device")
    ]


def test_a_second_call_within_the_resolution_does_not_write_the_device(
    django_assert_max_num_queries,
):
    client = MSync(paired_device(sims=1))
    client.post("outgoing")
    seen = Device.objects.get().last_seen_at

    with django_assert_max_num_queries(99) as queries:
        response = client.post("outgoing")

    assert response.json() == {"messages": []}
    assert _device_writes(queries) == []
    assert Device.objects.get().last_seen_at == seen


def test_the_call_is_written_again_once_the_last_write_is_older_than_the_resolution(
    django_assert_max_num_queries,
):
    client = MSync(paired_device(sims=1))
    client.post("outgoing")
    old = timezone.now() - timedelta(seconds=checkins.SEEN_RESOLUTION + 1)
    Device.objects.update(last_seen_at=old)

    with django_assert_max_num_queries(99) as queries:
        client.post("outgoing")

    assert len(_device_writes(queries)) == 1
    assert Device.objects.get().last_seen_at > old


def test_a_device_swept_offline_comes_back_online_with_its_event_even_within_the_resolution():
    client = MSync(paired_device(sims=1))
    client.post("outgoing")
    # What mark_offline_devices does, a moment after this process wrote the check-in.
    Device.objects.update(online=False, online_changed_at=timezone.now())
    with health_events() as seen:
        client.post("outgoing")
        client.post("outgoing")

    device = Device.objects.get()
    assert device.online is True
    assert seen == [(device.pk, True)]


def test_an_idle_poll_after_the_first_is_one_read_and_no_transaction(
    django_assert_max_num_queries,
):
    """Raw log INSERT, the check-in read, raw log outcome: no BEGIN, no device UPDATE."""
    client = MSync(paired_device(sims=1))
    client.post("outgoing")

    with django_assert_max_num_queries(3) as queries:
        response = client.post("outgoing")

    assert response.json() == {"messages": []}
    assert not any(q["sql"].startswith("BEGIN") for q in queries.captured_queries)
    entry = InboundRequest.objects.order_by("-received_at").first()
    assert entry is not None
    assert entry.outcome == InboundRequest.Outcome.ACCEPTED
    assert entry.device_id == client.paired.device.pk
    assert entry.detail == "0 handed out"


def test_a_message_queued_after_an_idle_poll_is_handed_out_by_the_next():
    client = MSync(paired_device(sims=1))
    client.post("outgoing")
    client.post("outgoing")
    message = OutboundMessageFactory(device=client.paired.device, sim_slot=1)

    response = client.post("outgoing")

    assert [m["uuid"] for m in response.json()["messages"]] == [str(message.uuid)]
    assert Message.objects.get(pk=message.pk).status == Status.DISPATCHED


def test_the_idle_path_still_refuses_another_devices_id_and_a_bad_limit():
    client = MSync(paired_device(sims=1))
    other = paired_device(sims=1)
    client.post("outgoing")

    wrong = client.post("outgoing", device_id=other.device.pk)
    bad_limit = client.post("outgoing", limit="lots")

    assert wrong.status_code == 403
    assert bad_limit.status_code == 400


def test_a_steadily_busy_poll_stays_within_its_budget_with_the_write_throttled(
    django_assert_max_num_queries,
):
    """Check-in (a locking read instead of the UPDATE), claim, the messages' UPDATE with their
    events' INSERT (one statement), plus the raw log's INSERT and outcome UPDATE."""
    phone = paired_device(sims=1)
    client = MSync(phone)
    for _ in range(4):
        OutboundMessageFactory(device=phone.device, sim_slot=1)
    client.post("outgoing", limit=2)

    with django_assert_max_num_queries(budget(5, sqlite=6) + TRANSACTION_STATEMENTS) as queries:
        response = client.post("outgoing", limit=2)

    handed = response.json()["messages"]
    assert len(handed) == 2
    assert _device_writes(queries) == []
    if is_postgres():  # SQLite locks the whole database for the transaction instead
        assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    for item in handed:
        message = Message.objects.get(uuid=item["uuid"])
        events = list(message.events.values_list("status", "detail"))
        assert events[-1] == ("dispatched", "handed to MSync (outgoing)")
        assert message.status == Status.DISPATCHED and message.sim_slot == 1


def test_an_idle_smssync_send_poll_is_one_read_and_answers_as_before(
    smssync_client, django_assert_max_num_queries
):
    phone = paired_device(sims=1)
    url = f"/api/sms/smssync?task=send&secret={phone.secret}"
    smssync_client.get(url)

    with django_assert_max_num_queries(3) as queries:
        response = smssync_client.get(url)

    assert response.json() == {"payload": {"task": "send", "secret": phone.secret, "messages": []}}
    assert not any(q["sql"].startswith("BEGIN") for q in queries.captured_queries)
    message = OutboundMessageFactory(device=phone.device, sim_slot=1)
    handed = smssync_client.get(url).json()["payload"]["messages"]
    assert [m["uuid"] for m in handed] == [str(message.uuid)]
    assert (
        smssync_client.get("/api/sms/smssync?task=send&secret=wrong").json()["payload"]["success"]
        is False
    )
