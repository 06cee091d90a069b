"""Housekeeping of the hit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automation.models import RuleHit
from automation.tasks import prune_rule_hits

pytestmark = pytest.mark.django_db


def _hit(age_days: int) -> RuleHit:
    hit = RuleHit.objects.create(rule_name="r", phone="+15550001111")
    RuleHit.objects.filter(pk=hit.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    return hit


def test_old_hits_are_pruned_and_a_second_run_changes_nothing(settings):
    settings.SMSGATE_RULE_HIT_RETENTION_DAYS = 30
    old, recent = _hit(31), _hit(29)

    assert prune_rule_hits() == {"deleted": 1}
    assert prune_rule_hits() == {"deleted": 0}
    assert list(RuleHit.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not RuleHit.objects.filter(pk=old.pk).exists()


def test_zero_keeps_hits_forever(settings):
    settings.SMSGATE_RULE_HIT_RETENTION_DAYS = 0
    _hit(4000)
    assert prune_rule_hits() == {"deleted": 0}
    assert RuleHit.objects.count() == 1
