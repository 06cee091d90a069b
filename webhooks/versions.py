"""Configuration every inbound SMS reads (the webhook endpoints, the automation rules), kept in
each process's memory and checked against its version in the database.

    version read ── one SELECT of every ConfigVersion row, once per batch (smsgate/batch.py)
        │ the token this process loaded its copy under?  yes ─> the copy (no query, no parsing)
        └ no ─> load from the rows (one query) and keep it under the token just read

The token is replaced by database triggers in the statement that changes a row of those
tables (webhooks/models.py ConfigVersion), so the version is read in the same database as the
rows, and a process sees a committed change at its next batch: web and worker alike, however
the change was made. The version is read before the rows: a change committed in between makes
the copy newer than its token, which only costs one load more at the next batch. A copy loaded
inside a transaction that rolls back is kept under a token the database never commits, so the
next batch loads again.

No row (a database flushed by a test, before the first change): nothing is kept, every batch
loads; the next change writes the row again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import connection

from smsgate.batch import batch_cached
from webhooks.models import ConfigVersion

T = TypeVar("T")

ENDPOINTS = "webhooks.endpoints"
RULES = "automation.rules"

_TABLE = ConfigVersion._meta.db_table


def _read_tokens() -> dict[str, str]:
    # A plain cursor: this runs for every inbound batch and every status event, and the ORM
    # would build a queryset and model instances for two short rows.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name, token FROM {_TABLE}")  # noqa: S608 (a constant)
        return {str(name): str(token) for name, token in cursor.fetchall()}


def current_token(name: str) -> str | None:
    """The version of `name` in the database now (once per batch for all names)."""
    return batch_cached("webhooks.versions", _read_tokens).get(name)


_caches: list[VersionedCache[Any]] = []


class VersionedCache(Generic[T]):
    """One process-wide copy of what `load` reads, valid while the version of `name` holds."""

    def __init__(self, name: str, load: Callable[[], T]) -> None:
        self.name = name
        self._load = load
        self._held: tuple[str, T] | None = None
        _caches.append(self)

    def get(self) -> T:
        token = current_token(self.name)
        held = self._held  # one read: another thread may replace it meanwhile
        if token is not None and held is not None and held[0] == token:
            return held[1]
        value = self._load()
        self._held = (token, value) if token is not None else None
        return value

    def forget(self) -> None:
        self._held = None


def forget_all() -> None:
    """Drop every process-local copy (a new process starts like this; tests use it)."""
    for cache in _caches:
        cache.forget()
