"""A Celery worker keeps its database connection from one task to the next, as a web worker
does from one request to the next, and drops it once it broke.

Celery's Django fixup, which every worker installs, used to close the connection before and
after every task: each webhook delivery then opened a new PostgreSQL session, which cost the
server more CPU than the delivery's own statements (bench: 7.8 ms of PostgreSQL CPU per
delivery before, 1.6 ms after)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import OperationalError, connection

from smsgate.celery import app
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_fixup() -> Iterator[None]:
    """The signal handlers `celery worker` installs (DjangoWorkerFixup.install), for this test."""
    fixup = DjangoWorkerFixup(app)
    signals.task_prerun.connect(fixup.on_task_prerun)
    signals.task_postrun.connect(fixup.on_task_postrun)
    yield
    signals.task_prerun.disconnect(fixup.on_task_prerun)
    signals.task_postrun.disconnect(fixup.on_task_postrun)


def run_task_signals() -> None:
    """What the worker sends around one task run (not eagerly)."""
    signals.task_prerun.send(sender=deliver_webhook, task_id="t1", task=deliver_webhook)
    signals.task_postrun.send(sender=deliver_webhook, task_id="t1", task=deliver_webhook)


def test_a_worker_reuses_its_database_connection_across_tasks(worker_fixup: None) -> None:
    # A fresh session: one this test process opened more than CONN_MAX_AGE (60 s) ago is
    # rightly closed as obsolete by the first task, which is not what this test is about.
    connection.close()
    connection.ensure_connection()
    session = connection.connection
    for _ in range(3):
        run_task_signals()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert connection.connection is session


@pytest.mark.postgres
def test_a_connection_the_database_dropped_is_replaced_at_the_next_task(
    worker_fixup: None,
) -> None:
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    # Another session ends this one, as a PostgreSQL restart would.
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT 1")

    run_task_signals()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
