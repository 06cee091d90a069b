"""The Celery app: `celery -A smsgate worker` and `celery -A smsgate beat` load this.

Work is not lost: tasks are acknowledged late and re-queued when their worker dies
(settings: acks_late, reject_on_worker_lost, prefetch 1). The flip side is a poison message
that kills every worker that picks it up; `GuardedTask` caps how often one task id may start.
The database rows (outbox deliveries, queued messages) stay the truth either way, and beat
sweeps re-enqueue what is due, so a dropped broker message only delays work.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from datetime import timedelta
from typing import Any

from celery import Celery, Task, signals
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsgate.settings")

log = logging.getLogger(__name__)

if os.environ.get("SMSGATE_QUICKSTART") == "1":
    # The quick start is a demo, often run as root in a container or a fresh VM, and dropping
    # privileges (--uid) would leave the worker unable to write the root-owned SQLite database
    # and broker files of var/. The risk Celery warns about is a root worker unpickling what
    # the broker hands it; smsgate accepts JSON only (CELERY_ACCEPT_CONTENT), so the warning
    # is noise there. Any other run keeps it: a deployment should use its own user.
    warnings.filterwarnings("ignore", category=SecurityWarning)

# A task id that has started this many times without finishing is dropped (and logged).
MAX_STARTS_PER_TASK = 5
_STARTS_TTL = 24 * 3600


class GuardedTask(Task):  # type: ignore[misc]
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        task_id = getattr(self.request, "id", None)
        if task_id and not getattr(self.request, "is_eager", False):
            from django.core.cache import cache

            key = f"celery:starts:{task_id}"
            # The first start (nearly every task) is one round trip to the cache: the add
            # succeeds. Only a task started before counts up.
            starts = 1
            if not cache.add(key, 1, timeout=_STARTS_TTL):
                try:
                    starts = cache.incr(key)
                except ValueError:  # expired between add and incr
                    starts = 1
            if starts > MAX_STARTS_PER_TASK:
                log.error(
                    "dropping task %s[%s]: started %d times without finishing (poison message?)",
                    self.name,
                    task_id,
                    starts - 1,
                )
                return None
        return super().__call__(*args, **kwargs)


app = Celery("smsgate", task_cls=GuardedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(task: Task | None = None, **kwargs: Any) -> None:
    """A task is a request as far as the database is concerned: its connection is kept for
    CONN_MAX_AGE, health-checked before reuse, and dropped once it errored (after a database
    restart, say), as Django does around each HTTP request. (CELERY_DB_REUSE_MAX keeps
    Celery's own fixup from closing it outright.) Not around a task run eagerly, inside the
    caller's transaction."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@signals.worker_shutdown.connect
def _exit_without_teardown(sender: Any = None, **kwargs: Any) -> None:
    """In the quick start, leave at once once the worker has stopped (tasks finished, broker
    connection closed): the interpreter's teardown of a process holding Django and Celery
    took 2-3 s more, which pushed Ctrl-C past the 5 s honcho waits before SIGKILL."""
    if os.environ.get("SMSGATE_QUICKSTART") != "1":
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(getattr(sender, "exitcode", 0) or 0)


def register_periodic_task(name: str, task: str, every: timedelta) -> None:
    """Add a beat entry; django-celery-beat's DatabaseScheduler copies it into its tables."""
    app.conf.beat_schedule[name] = {"task": task, "schedule": every}
