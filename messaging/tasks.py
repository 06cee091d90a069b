"""Housekeeping: scheduled sends, expiry, idempotency records, the raw inbound log."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.models import IdempotencyRecord, InboundRequest, Message, Status
from messaging.rerouting import reroute_waiting
from messaging.services import record_status
from smsgate.celery import register_periodic_task
from smsgate.housekeeping import delete_in_batches
from smsgate.ids import id_before


@shared_task(name="messaging.release_scheduled_messages")
def release_scheduled_messages() -> dict[str, int]:
    """Move scheduled messages whose send_at has come into the queue."""
    due = list(
        Message.objects.filter(status=Status.SCHEDULED, send_at__lte=timezone.now()).values_list(
            "pk", flat=True
        )[:1000]
    )
    released = sum(
        record_status(message_id=pk, status=Status.QUEUED, detail="send_at reached") for pk in due
    )
    return {"released": released}


@shared_task(name="messaging.expire_messages")
def expire_messages() -> dict[str, int]:
    """Expire messages still on our side (scheduled/queued) after their expires_at."""
    due = list(
        Message.objects.filter(
            status__in=[Status.SCHEDULED, Status.QUEUED], expires_at__lte=timezone.now()
        ).values_list("pk", flat=True)[:1000]
    )
    expired = sum(
        record_status(
            message_id=pk, status=Status.EXPIRED, reason="expires_at passed before sending"
        )
        for pk in due
    )
    return {"expired": expired}


@shared_task(name="messaging.reroute_waiting_messages")
def reroute_waiting_messages() -> dict[str, int]:
    """Unpinned messages stuck on a line that will not take them move to another line."""
    return {"rerouted": reroute_waiting()}


@shared_task(name="messaging.prune_idempotency_records")
def prune_idempotency_records() -> dict[str, int]:
    cutoff = timezone.now() - timedelta(hours=settings.SMSGATE_IDEMPOTENCY_TTL_HOURS)
    with transaction.atomic():
        deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return {"deleted": deleted}


@shared_task(name="messaging.prune_raw_log")
def prune_raw_log() -> dict[str, int]:
    """Delete raw inbound log rows older than SMSGATE_RAW_LOG_RETENTION_DAYS (0 keeps them).

    The log is the evidence of what phones and providers sent; the messages themselves live in
    their own table and are never pruned. In batches, safe to run twice or concurrently.
    """
    days = int(settings.SMSGATE_RAW_LOG_RETENTION_DAYS)
    if days <= 0:
        return {"deleted": 0}
    cutoff = timezone.now() - timedelta(days=days)
    old = InboundRequest.objects.filter(pk__lt=id_before("req", cutoff), received_at__lt=cutoff)
    return {"deleted": delete_in_batches(old)}


register_periodic_task(
    "release-scheduled-messages", "messaging.release_scheduled_messages", timedelta(seconds=15)
)
register_periodic_task("expire-messages", "messaging.expire_messages", timedelta(seconds=30))
register_periodic_task(
    "reroute-waiting-messages", "messaging.reroute_waiting_messages", timedelta(seconds=15)
)
register_periodic_task(
    "prune-idempotency-records", "messaging.prune_idempotency_records", timedelta(hours=1)
)
register_periodic_task("prune-raw-log", "messaging.prune_raw_log", timedelta(hours=1))
