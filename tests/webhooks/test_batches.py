"""Batched delivery: one task claims a batch of deliveries in one statement, sends them side by
side (a slow receiver holds up no other), records the successes in one statement, and two
workers handed the same ids never deliver one twice."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from messaging.models import Message
from smsgate.celery import app as celery_app
from tests.budgets import budget, is_postgres

# The real worker and broker client of the single-delivery kill test.
from tests.webhooks.test_worker_kill import DEADLINE, broker, start_worker  # noqa: F401
from webhooks.delivery import attempt_deliveries, requeue_lost_deliveries
from webhooks.models import Attempt, Delivery
from webhooks.tasks import deliver_webhooks

pytestmark = pytest.mark.django_db


def _deliveries(webhook: dict[str, Any]) -> list[str]:
    return list(
        Delivery.objects.filter(endpoint_id=webhook["id"])
        .order_by("id")
        .values_list("pk", flat=True)
    )


@pytest.fixture
def second_receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_one_task_run_delivers_a_batch_in_two_statements(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    """Claim all ten (opening their attempts, reading endpoints and events) in one statement,
    record the ten successes in another; a duplicate run claims nothing and says why."""
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    for n in range(10):
        receive(body=f"message {n}", sender=f"+1555123{n:04d}")
    ids = _deliveries(webhook)
    with CaptureQueriesContext(connection) as queries:
        assert deliver_webhooks(ids) == {"succeeded": 10}
    # SQLite has no data-modifying WITH: the ORM path there, a dozen statements per delivery
    # (savepoints included).
    assert len(queries) <= budget(2, sqlite=12 * len(ids) + 1)
    assert len(receiver.log) == 10
    with CaptureQueriesContext(connection) as again:
        assert deliver_webhooks(ids) == {"skipped": 10}
    assert len(again) <= budget(2, sqlite=2)
    assert len(receiver.log) == 10
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "succeeded"
    }
    attempts = Attempt.objects.filter(delivery_id__in=ids)
    assert attempts.count() == 10
    assert all(a.succeeded and a.status_code == 200 and a.duration_ms is not None for a in attempts)


def test_a_batch_records_each_outcome_by_its_own_rules(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    second_receiver: HTTPServer,
) -> None:
    ok = create_webhook(receiver.url_for("/ok"))
    gone = create_webhook(second_receiver.url_for("/gone"))
    receiver.expect_request("/ok").respond_with_data("ok")
    second_receiver.expect_request("/gone").respond_with_data("", status=410)
    receive()
    ids = _deliveries(ok) + _deliveries(gone)
    results = attempt_deliveries(delivery_ids=ids)
    assert results == {ids[0]: "succeeded", ids[1]: "failed"}
    assert Delivery.objects.get(pk=ids[1]).endpoint.enabled is False


def test_a_slow_receiver_does_not_hold_up_a_fast_one(
    settings: Any,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    second_receiver: HTTPServer,
) -> None:
    """The slow receiver's delivery comes first in the batch and never answers within the
    timeout; the fast one is delivered at once, and the slow one fails after its own timeout."""
    settings.SMSGATE_WEBHOOKS_TIMEOUT = 1.0
    release = threading.Event()
    arrived: list[float] = []

    def slow(request: Request) -> Response:
        release.wait(timeout=5)
        return Response("late")

    def fast(request: Request) -> Response:
        arrived.append(time.monotonic())
        return Response("ok")

    second_receiver.expect_request("/slow").respond_with_handler(slow)
    receiver.expect_request("/fast").respond_with_handler(fast)
    slow_hook = create_webhook(second_receiver.url_for("/slow"))
    fast_hook = create_webhook(receiver.url_for("/fast"))
    receive()
    ids = _deliveries(slow_hook) + _deliveries(fast_hook)
    started = time.monotonic()
    try:
        results = attempt_deliveries(delivery_ids=ids)
    finally:
        release.set()
    took = time.monotonic() - started
    assert results == {ids[0]: "retry scheduled", ids[1]: "succeeded"}
    assert arrived and arrived[0] - started < 0.9
    # Bounded by the slow request's own timeout, not by the two requests one after the other.
    assert took < 2.5
    slow_attempt = Attempt.objects.get(delivery_id=ids[0])
    assert slow_attempt.error == "No answer within 1 s."
    assert slow_attempt.duration_ms is not None and slow_attempt.duration_ms < 2000


def test_a_finished_delivery_is_recorded_before_its_lease_runs_out_while_another_waits(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    second_receiver: HTTPServer,
) -> None:
    """A `form` request may wait far longer than a `standard` lease lasts: the standard
    delivery that came back at once is recorded while its lease is still ours, not when the
    whole batch is back (by then another worker could have taken it over)."""
    settings.SMSGATE_WEBHOOKS_TIMEOUT = 0.5
    monkeypatch.setattr("webhooks.formats.form.TIMEOUT", 5.0)
    monkeypatch.setattr("webhooks.delivery.LEASE_MARGIN", timedelta(seconds=0.6))
    answered_slow: list[float] = []

    def slow(request: Request) -> Response:
        time.sleep(2.0)
        answered_slow.append(time.time())
        return Response("+OK")

    second_receiver.expect_request("/form").respond_with_handler(slow)
    receiver.expect_request("/fast").respond_with_data("ok")
    form_hook = create_webhook(second_receiver.url_for("/form"), format="form")
    fast_hook = create_webhook(receiver.url_for("/fast"))
    receive()
    ids = _deliveries(form_hook) + _deliveries(fast_hook)
    results = attempt_deliveries(delivery_ids=ids)
    assert results == {ids[0]: "succeeded", ids[1]: "succeeded"}
    fast = Delivery.objects.get(pk=ids[1])
    slow_one = Delivery.objects.get(pk=ids[0])
    assert fast.completed_at is not None and slow_one.completed_at is not None
    # Recorded about 0.8 s in (its 1.1 s lease less half the margin), the form one after 2 s.
    assert fast.completed_at.timestamp() < answered_slow[0] - 0.5
    assert slow_one.completed_at.timestamp() >= answered_slow[0] - 0.05


def test_chat_history_and_replies_work_in_a_batch(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    second_receiver: HTTPServer,
) -> None:
    """The chat format reads the conversation before its request goes to a pool thread, and a
    `sms_text` answer still sends one reply."""
    chat = create_webhook(receiver.url_for("/chat"), format="chat", history=5)
    other = create_webhook(second_receiver.url_for("/other"))
    receiver.expect_request("/chat").respond_with_json({"sms_text": "Thanks!"})
    second_receiver.expect_request("/other").respond_with_data("ok")
    receive(body="first", sender="+15551230001")
    Delivery.objects.update(status="succeeded", next_attempt_at=None)
    receive(body="second", sender="+15551230001")
    ids = list(
        Delivery.objects.filter(status="pending").order_by("id").values_list("pk", flat=True)
    )
    assert len(ids) == 2
    assert set(attempt_deliveries(delivery_ids=ids).values()) == {"succeeded"}
    request, _ = receiver.log[-1]
    history = request.get_json()["conversation_history"]
    assert [h["message"] for h in history] == ["first", "second"]
    reply = Message.objects.get(source="chat")
    assert reply.body == "Thanks!" and reply.to_number == "+15551230001"
    assert attempt_deliveries(delivery_ids=ids) == dict.fromkeys(ids, "skipped")
    assert Message.objects.filter(source="chat").count() == 1
    assert _deliveries(chat) and _deliveries(other)


def test_deliveries_are_published_in_batches(
    settings: Any,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.SMSGATE_WEBHOOKS_BATCH_SIZE = 4
    webhook = create_webhook("http://127.0.0.1:9/hook")
    for n in range(10):
        receive(body=f"message {n}", sender=f"+1555123{n:04d}")
    Delivery.objects.update(enqueued_at=None)
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **kw: sent.append((name, args)))
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_lost_deliveries() == 10
    assert [name for name, _ in sent] == ["webhooks.deliver_webhooks"] * 3
    assert [len(args[0]) for _, args in sent] == [4, 4, 2]
    assert sorted(pk for _, args in sent for pk in args[0]) == _deliveries(webhook)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_is_claiming_is_skipped_not_waited_for(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    if not is_postgres():
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    for n in range(4):
        receive(body=f"message {n}", sender=f"+1555123{n:04d}")
    ids = _deliveries(webhook)
    locked = threading.Event()
    release = threading.Event()

    def hold_two() -> None:
        try:
            with transaction.atomic():
                list(Delivery.objects.select_for_update().filter(pk__in=ids[:2]))
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_two)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        results = attempt_deliveries(delivery_ids=ids)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join()
    assert results == {
        ids[0]: "skipped",
        ids[1]: "skipped",
        ids[2]: "succeeded",
        ids[3]: "succeeded",
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_batch_deliver_each_once(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    if not is_postgres():
        pytest.skip("concurrent claims need PostgreSQL")
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    for n in range(20):
        receive(body=f"message {n}", sender=f"+1555123{n:04d}")
    ids = _deliveries(webhook)
    start = threading.Barrier(2)
    results: list[dict[str, str]] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            results.append(attempt_deliveries(delivery_ids=ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2
    for pk in ids:
        assert sorted(r[pk] for r in results) == ["skipped", "succeeded"]
    delivered = [request.headers["webhook-id"] for request, _ in receiver.log]
    assert len(delivered) == len(set(delivered)) == 20
    assert Attempt.objects.filter(delivery_id__in=ids).count() == 20


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(DEADLINE + 60)
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    httpserver: HTTPServer,
    broker: Celery,  # noqa: F811
    start_worker: Callable[[str], subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    """Every delivery of the batch is leased by the killed worker: their leases expire, the
    sweep publishes them again, a second worker finishes them, and no attempt stays open."""
    first_request = threading.Event()
    release = threading.Event()

    def held(request: Request) -> Response:
        if not first_request.is_set():
            first_request.set()
            release.wait(timeout=30)
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(held)
    webhook = create_webhook(httpserver.url_for("/hook"))
    for n in range(5):
        receive(body=f"message {n}", sender=f"+1555123000{n}")
    ids = _deliveries(webhook)
    broker.send_task("webhooks.deliver_webhooks", args=[ids])

    first = start_worker("first")
    assert first_request.wait(timeout=60), "the first worker never attempted a delivery"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    release.set()
    assert Delivery.objects.filter(status="succeeded").count() == 0

    start_worker("second")
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if Delivery.objects.filter(pk__in=ids, status="succeeded").count() == len(ids):
            break
        broker.send_task("webhooks.requeue_due_deliveries")
        time.sleep(2)

    statuses = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == dict.fromkeys(ids, "succeeded")
    attempts = Attempt.objects.filter(delivery_id__in=ids)
    assert attempts.filter(error__startswith="interrupted").exists()
    assert not attempts.filter(duration_ms__isnull=True, error="").exists()
