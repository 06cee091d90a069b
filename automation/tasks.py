"""Housekeeping for the rule hit log."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from automation.models import RuleHit
from smsgate.celery import register_periodic_task
from smsgate.housekeeping import delete_in_batches


@shared_task(name="automation.prune_rule_hits")
def prune_rule_hits() -> dict[str, int]:
    """Delete hits older than SMSGATE_RULE_HIT_RETENTION_DAYS (0 keeps them forever), in
    batches."""
    days = int(getattr(settings, "SMSGATE_RULE_HIT_RETENTION_DAYS", 90))
    if days <= 0:
        return {"deleted": 0}
    cutoff = timezone.now() - timedelta(days=days)
    return {"deleted": delete_in_batches(RuleHit.objects.filter(created_at__lt=cutoff))}


register_periodic_task("prune-rule-hits", "automation.prune_rule_hits", timedelta(hours=1))
