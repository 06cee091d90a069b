"""Housekeeping: webhook events older than SMSGATE_WEBHOOK_RETENTION_DAYS are deleted with
their deliveries and attempts, once none of their deliveries is still pending.

Like Svix's retention window: the delivery log stays readable (and replayable) for weeks, and
the tables do not grow forever. A pending delivery keeps its event however old it is.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from smsgate.celery import register_periodic_task
from smsgate.ids import id_before
from webhooks.models import DeliveryStatus, Event

PRUNE_BATCH = 1000


@shared_task(name="webhooks.prune_events")
def prune_events() -> dict[str, int]:
    """Delete finished events past the retention window, in batches (0 days keeps them).

    Safe to run twice or concurrently: each batch is a plain delete of rows that match.
    """
    days = int(settings.SMSGATE_WEBHOOK_RETENTION_DAYS)
    if days <= 0:
        return {"deleted": 0}
    cutoff = timezone.now() - timedelta(days=days)
    old = Event.objects.filter(pk__lt=id_before("evt", cutoff), created_at__lt=cutoff).exclude(
        deliveries__status=DeliveryStatus.PENDING
    )
    deleted = 0
    while True:
        batch = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            return {"deleted": deleted}
        with transaction.atomic():
            # Re-checked inside the delete: a hand retry may have made a delivery pending again.
            removed = (
                Event.objects.filter(pk__in=batch)
                .exclude(deliveries__status=DeliveryStatus.PENDING)
                .delete()[1]
            )
        deleted += removed.get(Event._meta.label, 0)


register_periodic_task("prune-webhook-events", "webhooks.prune_events", timedelta(hours=1))
