"""A STOP racing with sends and polls, on PostgreSQL with real threads.

Whatever the interleaving, once an opt-out has committed no poll that starts afterwards hands
the phone a message for that number: the claim reads the list in the statement that takes the
rows, and cancels what it finds (reason `recipient_opted_out`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from devices.models import Device
from messaging.models import Message, Status
from messaging.services import send_message
from messaging.signals import message_queued
from smsgate.errors import Refused
from tests.devices.conftest import MSync
from tests.factories import PairedDevice, paired_device

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NUMBER = "+15550001111"
OTHER = "+15550002222"


def unlimited(paired: PairedDevice) -> PairedDevice:
    Device.objects.filter(pk=paired.device.pk).update(
        limit_per_minute=100000, limit_per_hour=None, limit_per_day=None
    )
    return paired


class Pollers:
    """Phones polling (MSync and SMSSync) until stopped; every poll's start time and the
    numbers it was handed are kept."""

    def __init__(self, phone: PairedDevice, threads: int = 4) -> None:
        self.phone = phone
        self.stop = threading.Event()
        self.polls: list[tuple[float, list[str]]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n % 2 == 0,)) for n in range(threads)
        ]

    def poll_once(self, use_msync: bool) -> None:
        started = time.monotonic()
        if use_msync:
            response = MSync(self.phone).post("outgoing", limit=5)
            assert response.status_code == 200, response.content
            numbers = [m["to"] for m in response.json()["messages"]]
        else:
            url = f"/api/sms/smssync?task=send&secret={self.phone.secret}"
            response = Client().get(url)
            assert response.status_code == 200, response.content
            numbers = [m["to"] for m in response.json()["payload"]["messages"]]
        with self._lock:
            self.polls.append((started, numbers))

    def _run(self, use_msync: bool) -> None:
        try:
            while not self.stop.is_set():
                self.poll_once(use_msync)
        except BaseException as exc:  # reported by the test thread
            self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self) -> Pollers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        # Whatever is still queued goes to one last poll, after everything committed.
        for _ in range(3):
            self.poll_once(True)
            self.poll_once(False)

    def handed_to(self, number: str, *, started_after: float) -> list[float]:
        return [at for at, numbers in self.polls if at > started_after and number in numbers]


def opt_out_through_the_api(admin_client: Any) -> float:
    response = admin_client.post("/api/v1/opt-outs", {"phone": NUMBER}, format="json")
    assert response.status_code == 201
    return time.monotonic()


def test_a_message_queued_while_the_opt_out_commits_is_never_handed_out(admin_client):
    phone = unlimited(paired_device(sims=1))
    in_flight = threading.Event()
    opted_out = threading.Event()

    def hold(sender: Any, message: Message, **kwargs: Any) -> None:
        # Written, not committed, past its opt-out check: the STOP commits now.
        if message.body == "in flight":
            in_flight.set()
            opted_out.wait(timeout=10)

    sent: list[Message] = []

    def sender() -> None:
        try:
            with transaction.atomic():
                sent.append(send_message(to=NUMBER, body="in flight"))
        finally:
            connection.close()

    message_queued.connect(hold, weak=False, dispatch_uid="race-hold")
    try:
        with Pollers(phone) as pollers:
            for n in range(5):
                send_message(to=OTHER, body=f"other {n}")
            thread = threading.Thread(target=sender)
            thread.start()
            assert in_flight.wait(timeout=10)
            committed_at = opt_out_through_the_api(admin_client)
            opted_out.set()
            thread.join(timeout=30)
            time.sleep(0.5)  # the pollers keep polling with the message committed
    finally:
        message_queued.disconnect(dispatch_uid="race-hold")

    assert pollers.errors == []
    assert pollers.handed_to(NUMBER, started_after=committed_at) == []
    [message] = sent
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.CANCELLED, "recipient_opted_out")
    assert Message.objects.filter(to_number=OTHER, status=Status.DISPATCHED).count() == 5


def test_a_stop_by_sms_among_sends_and_polls_leaves_nothing_for_the_number(admin_client):
    phone = unlimited(paired_device(sims=1))
    stop_line = paired_device(sims=1)  # the STOP arrives on a phone that does not poll here
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_sending() -> None:
        try:
            n = 0
            while not done.is_set():
                n += 1
                try:
                    send_message(to=NUMBER, body=f"offer {n}")
                except Refused as exc:
                    assert exc.code == "recipient_opted_out"
                send_message(to=OTHER, body=f"other {n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    senders = [threading.Thread(target=keep_sending) for _ in range(2)]
    with Pollers(phone) as pollers:
        for thread in senders:
            thread.start()
        time.sleep(0.5)
        stop = MSync(stop_line).post(
            "incoming", messages=[{"from": NUMBER, "message": "STOP", "timestamp": 1744029005000}]
        )
        assert stop.status_code == 200, stop.content
        committed_at = time.monotonic()
        time.sleep(0.5)
        done.set()
        for thread in senders:
            thread.join(timeout=30)

    assert errors == []
    assert pollers.errors == []
    assert pollers.handed_to(NUMBER, started_after=committed_at) == []
    waiting = Message.objects.filter(to_number=NUMBER, status=Status.QUEUED, device=phone.device)
    assert not waiting.exists()
    assert not Message.objects.filter(
        to_number=NUMBER, device__isnull=True, status=Status.QUEUED
    ).exists()
    cancelled = Message.objects.filter(to_number=NUMBER, status=Status.CANCELLED)
    assert set(cancelled.values_list("reason", flat=True)) <= {"recipient_opted_out"}
