"""A real Celery worker on Redis, killed with SIGKILL in the middle of a delivery: nothing is
lost. The lease of the interrupted attempt expires, the sweep publishes the delivery again,
and a second worker finishes every delivery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from messaging.models import Message
from webhooks.models import Delivery

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def broker() -> Iterator[Celery]:
    app = Celery("smsgate-test-client", broker=settings.REDIS_URL)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    yield app
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


@pytest.fixture
def start_worker() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "smsgate.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "SMSGATE_WEBHOOKS_ALLOW_PRIVATE": "true",
        "SMSGATE_WEBHOOKS_TIMEOUT": "3",
    }

    def start(name: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "smsgate",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
                "-l",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(DEADLINE + 60)
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_loses_nothing(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    httpserver: HTTPServer,
    broker: Celery,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    first_request = threading.Event()
    release = threading.Event()

    def slow_receiver(request: Request) -> Response:
        if not first_request.is_set():
            first_request.set()
            # Hold the first attempt open until its worker is dead.
            release.wait(timeout=30)
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(slow_receiver)
    webhook = create_webhook(httpserver.url_for("/hook"))
    for n in range(5):
        receive(body=f"message {n}", sender=f"+1555123000{n}")
    ids = list(
        Delivery.objects.filter(endpoint_id=webhook["id"])
        .order_by("id")
        .values_list("pk", flat=True)
    )
    assert len(ids) == 5
    for pk in ids:
        broker.send_task("webhooks.deliver_webhook", args=[pk])

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
        # What beat does every 30 s, more often so the test stays short.
        broker.send_task("webhooks.requeue_due_deliveries")
        time.sleep(2)

    statuses = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == dict.fromkeys(ids, "succeeded")
    interrupted = Delivery.objects.get(pk__in=ids, attempts_made=2)
    first_attempt, second_attempt = interrupted.attempts.all()
    assert first_attempt.error.startswith("interrupted")
    assert second_attempt.succeeded
