"""Pruning old rows without one long delete."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

PRUNE_BATCH = 5000


def delete_in_batches(old: QuerySet[Any], *, batch: int = PRUNE_BATCH) -> int:
    """Delete what `old` matches, `batch` rows at a time; returns how many rows went.

    A first run over a large backlog never holds one long lock, and a run that stops half-way
    (or a second one at the same time) just leaves less for the next.
    """
    deleted = 0
    while True:
        keys = list(old.values_list("pk", flat=True)[:batch])
        if not keys:
            return deleted
        deleted += old.model.objects.filter(pk__in=keys).delete()[0]
