"""Celery tasks of the webhooks outbox; both take ids or nothing and are safe to run twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from smsgate.celery import register_periodic_task
from webhooks.delivery import attempt_deliveries, attempt_delivery, requeue_lost_deliveries
from webhooks.recording import disable_failing_endpoints


@shared_task(name="webhooks.deliver_webhook")
def deliver_webhook(delivery_id: str) -> str:
    """One attempt at a delivery, if it is due and no other worker holds it."""
    return attempt_delivery(delivery_id=delivery_id)


@shared_task(name="webhooks.deliver_webhooks")
def deliver_webhooks(delivery_ids: list[str]) -> dict[str, int]:
    """One attempt at each delivery that is due and no other worker holds, side by side;
    returns how many ended how."""
    results = attempt_deliveries(delivery_ids=delivery_ids)
    return dict(Counter(results.values()))


@shared_task(name="webhooks.requeue_due_deliveries")
def requeue_due_deliveries() -> dict[str, int]:
    """Re-publish deliveries that are due but whose broker message was lost."""
    return {"requeued": requeue_lost_deliveries()}


@shared_task(name="webhooks.disable_failing_endpoints")
def disable_long_failing_endpoints() -> dict[str, int]:
    """Disable endpoints that failed for 5 days even if nothing is left to attempt."""
    return {"disabled": disable_failing_endpoints()}


register_periodic_task(
    "webhooks-disable-failing-endpoints",
    "webhooks.disable_failing_endpoints",
    timedelta(hours=1),
)
register_periodic_task(
    "webhooks-requeue-due-deliveries",
    "webhooks.requeue_due_deliveries",
    timedelta(seconds=settings.SMSGATE_WEBHOOKS_SWEEP_INTERVAL),
)
