"""The re-route sweep racing 20 polls on PostgreSQL (docs/routing.md#re-routing): a message is
handed to one line at most, on the line its row names, and none is lost. The polls are MSync
`outgoing` calls (check-in and `phones.queue.claim` in one transaction); the sweeps call the
beat task, as a worker does."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from messaging.models import REROUTED, Message, MessageEvent, Status
from messaging.policy import update_policy
from messaging.tasks import reroute_waiting_messages
from tests.devices.conftest import MSync
from tests.factories import OutboundMessageFactory, PairedDevice, paired_device

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POLLERS = 20
SWEEPERS = 3
ONLINE, OFFLINE = 4, 2
PER_PHONE = 50  # queued on each phone; the rest of the 500 wait in the shared queue
TOTAL = 500
IDLE_WAIT = 0.2  # seconds between empty polls
DEADLINE = 30.0  # seconds: the race takes about 10; only a stuck message runs this long


@dataclass
class Race:
    handed: list[tuple[str, str]] = field(default_factory=list)  # (device id, message id)
    moves: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    polls_done: threading.Event = field(default_factory=threading.Event)


def unlimited_phone(*, online: bool) -> PairedDevice:
    return paired_device(
        sims=1, online=online, limit_per_minute=100000, limit_per_hour=None, limit_per_day=None
    )


def queue_messages(phones: list[PairedDevice]) -> dict[str, str | None]:
    """Unpinned messages put on each phone by routing, and the rest in the shared queue: the
    device each was queued on, by message id."""
    now = timezone.now()
    queued: dict[str, str | None] = {}
    for phone in phones:
        for _ in range(PER_PHONE):
            message = cast(
                Message, OutboundMessageFactory(device=phone.device, sim_slot=1, routed_at=now)
            )
            queued[message.pk] = phone.device.pk
    # Older, so the sweeps reach them first, while the polls are claiming them from the pool.
    earlier = now - timedelta(minutes=1)
    while len(queued) < TOTAL:
        message = cast(Message, OutboundMessageFactory(device=None, routed_at=earlier))
        queued[message.pk] = None
    return queued


def poll(race: Race, phone: PairedDevice, start: threading.Barrier) -> None:
    client = MSync(phone)
    try:
        start.wait()
        ends = time.monotonic() + DEADLINE
        while time.monotonic() < ends:
            response = client.post("outgoing", limit=7)
            assert response.status_code == 200, response.content
            got = [(phone.device.pk, m["id"]) for m in response.json()["messages"]]
            with race.lock:
                race.handed.extend(got)
            # An empty poll ends only when nothing is left: the sweep may still be moving
            # messages off the offline phones, or holding a row this poll skipped. Phones
            # wait between empty polls; here that leaves the sweeps their share of the GIL.
            if not got:
                if not Message.objects.filter(status=Status.QUEUED).exists():
                    return
                time.sleep(IDLE_WAIT)
    except BaseException as exc:  # reported by the test thread
        race.errors.append(exc)
    finally:
        connection.close()


def sweep(race: Race, start: threading.Barrier) -> None:
    try:
        start.wait()
        while not race.polls_done.is_set():
            moved = reroute_waiting_messages()["rerouted"]
            with race.lock:
                race.moves.append(moved)
    except BaseException as exc:
        race.errors.append(exc)
    finally:
        connection.close()


def run(online: list[PairedDevice]) -> Race:
    race = Race()
    start = threading.Barrier(POLLERS + SWEEPERS)
    pollers = [
        threading.Thread(target=poll, args=(race, online[i % len(online)], start))
        for i in range(POLLERS)
    ]
    sweepers = [threading.Thread(target=sweep, args=(race, start)) for _ in range(SWEEPERS)]
    for thread in [*pollers, *sweepers]:
        thread.start()
    for thread in pollers:
        thread.join(timeout=DEADLINE + 30)
    race.polls_done.set()
    for thread in sweepers:
        thread.join(timeout=30)
    return race


def test_twenty_polls_racing_the_sweep_never_hand_a_message_to_two_lines():
    update_policy(reroute_after=0)
    online = [unlimited_phone(online=True) for _ in range(ONLINE)]
    offline = [unlimited_phone(online=False) for _ in range(OFFLINE)]
    queued_on = queue_messages([*online, *offline])
    offline_ids = {p.device.pk for p in offline}
    stranded = {pk: device for pk, device in queued_on.items() if device in offline_ids}

    started = time.monotonic()
    race = run(online)
    took = time.monotonic() - started

    assert race.errors == []
    assert took < DEADLINE, "the polls ran out of time: a message was stuck"
    # Each message went to one line once: one hand-out, one `dispatched` event.
    handed = Counter(message_id for _, message_id in race.handed)
    assert handed.most_common(1)[0][1] == 1
    twice = (
        MessageEvent.objects.filter(status=Status.DISPATCHED)
        .values("message_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert list(twice) == []
    # Nothing lost: all 500 were handed out, and to the phone their row names.
    assert set(handed) == set(queued_on)
    rows = dict(Message.objects.values_list("pk", "device_id"))
    assert all(rows[message_id] == device_id for device_id, message_id in race.handed)
    assert Counter(Message.objects.values_list("status", flat=True)) == {Status.DISPATCHED: TOTAL}
    assert MessageEvent.objects.filter(status=Status.DISPATCHED).count() == TOTAL
    # The offline phones' messages all moved, once each, to a phone that polls; a message
    # moved at most once (off an offline phone, or out of the shared queue): a sweep locking a
    # row another sweep had just moved used to read its device as None and move it again.
    assert len(stranded) == OFFLINE * PER_PHONE
    assert {rows[pk] for pk in stranded} <= {p.device.pk for p in online}
    moves = dict(
        MessageEvent.objects.filter(status=REROUTED)
        .values("message_id")
        .annotate(n=Count("id"))
        .values_list("message_id", "n")
    )
    assert set(stranded) <= set(moves)
    assert set(moves.values()) == {1}
    details = dict(
        MessageEvent.objects.filter(status=REROUTED, message_id__in=stranded).values_list(
            "message_id", "detail"
        )
    )
    tried = dict(Message.objects.filter(pk__in=stranded).values_list("pk", "lines_tried"))
    for pk, device in stranded.items():
        assert tried[pk] == [f"{device}:1"]
        assert details[pk] == (
            f"device {device} SIM 1 → device {rows[pk]} SIM 1: "
            f"device {device} is offline for 0 s or more"
        )
    # Every move the sweeps counted is one event: none was lost or made twice.
    assert sum(race.moves) == len(moves)
