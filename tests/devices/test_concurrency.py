"""Concurrent polls on PostgreSQL: every queued message is handed out exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from devices.models import Device
from messaging.models import Message, Status
from tests.devices.conftest import MSync
from tests.factories import OutboundMessageFactory, PairedDevice, paired_device

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20


def unlimited(paired: PairedDevice) -> PairedDevice:
    Device.objects.filter(pk=paired.device.pk).update(
        limit_per_minute=100000, limit_per_hour=None, limit_per_day=None
    )
    return paired


def poll_until_empty(phones: list[PairedDevice]) -> tuple[list[str], list[BaseException]]:
    handed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(paired: PairedDevice) -> None:
        client = MSync(paired)
        try:
            start.wait()
            empty = 0
            while empty < 2:
                response = client.post("outgoing", limit=7)
                assert response.status_code == 200, response.content
                ids = [m["id"] for m in response.json()["messages"]]
                empty = 0 if ids else empty + 1
                with lock:
                    handed.extend(ids)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(phones[i % len(phones)],)) for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return handed, errors


def test_twenty_polls_of_one_device_hand_each_of_500_messages_out_once():
    phone = unlimited(paired_device(sims=2))
    ids = {OutboundMessageFactory(device=phone.device, sim_slot=1 + i % 2).pk for i in range(500)}

    handed, errors = poll_until_empty([phone])

    assert errors == []
    assert len(handed) == 500
    assert Counter(handed).most_common(1)[0][1] == 1
    assert set(handed) == ids
    assert Message.objects.filter(status=Status.DISPATCHED).count() == 500
    assert Message.objects.filter(events__status="dispatched").count() == 500


def test_four_devices_sharing_the_pool_never_get_the_same_message():
    phones = [unlimited(paired_device(sims=1)) for _ in range(4)]
    ids = {OutboundMessageFactory(device=None).pk for _ in range(500)}

    handed, errors = poll_until_empty(phones)

    assert errors == []
    assert sorted(handed) == sorted(ids)
    owners = Counter(Message.objects.values_list("device_id", flat=True))
    assert sum(owners.values()) == 500 and None not in owners
