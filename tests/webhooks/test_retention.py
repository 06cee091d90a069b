"""Retention: finished webhook events and old raw-log rows are pruned; pending work never is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from ulid import ULID

from messaging.models import InboundRequest
from messaging.tasks import prune_raw_log
from smsgate.ids import id_before
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, Event
from webhooks.retention import prune_events
from webhooks.services import create_endpoint

pytestmark = pytest.mark.django_db


def id_at(prefix: str, age_days: float) -> str:
    moment = timezone.now() - timedelta(days=age_days)
    return f"{prefix}_{str(ULID.from_timestamp(moment.timestamp())).lower()}"


@pytest.fixture
def endpoint(allow_private: None) -> Endpoint:
    return create_endpoint(
        url="http://127.0.0.1:9/hook", format="standard", events=["sms.received"]
    )[0]


def event(endpoint: Endpoint, *, age_days: float, status: str) -> Event:
    evt = Event.objects.create(id=id_at("evt", age_days), type="sms.received", data={})
    Event.objects.filter(pk=evt.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    delivery = Delivery.objects.create(event=evt, endpoint=endpoint, status=status)
    Attempt.objects.create(delivery=delivery, at=timezone.now(), succeeded=True)
    return evt


def test_finished_events_past_the_window_go_with_their_deliveries_and_attempts(
    settings: Any, endpoint: Endpoint
) -> None:
    settings.SMSGATE_WEBHOOK_RETENTION_DAYS = 30
    old_ok = event(endpoint, age_days=31, status=DeliveryStatus.SUCCEEDED)
    old_failed = event(endpoint, age_days=40, status=DeliveryStatus.FAILED)
    old_pending = event(endpoint, age_days=45, status=DeliveryStatus.PENDING)
    recent = event(endpoint, age_days=29, status=DeliveryStatus.SUCCEEDED)

    assert prune_events() == {"deleted": 2}
    assert prune_events() == {"deleted": 0}  # safe to run twice

    kept = set(Event.objects.values_list("pk", flat=True))
    assert kept == {old_pending.pk, recent.pk}
    assert not Delivery.objects.filter(event_id__in=[old_ok.pk, old_failed.pk]).exists()
    assert Attempt.objects.count() == 2
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_zero_days_keeps_events_forever(settings: Any, endpoint: Endpoint) -> None:
    settings.SMSGATE_WEBHOOK_RETENTION_DAYS = 0
    event(endpoint, age_days=4000, status=DeliveryStatus.SUCCEEDED)
    assert prune_events() == {"deleted": 0}
    assert Event.objects.count() == 1


def raw_request(age_days: float) -> InboundRequest:
    row = InboundRequest.objects.create(
        id=id_at("req", age_days), source="smssync", method="POST", path="/api/sms/smssync"
    )
    InboundRequest.objects.filter(pk=row.pk).update(
        received_at=timezone.now() - timedelta(days=age_days)
    )
    return row


def test_raw_log_rows_past_the_window_are_pruned(settings: Any) -> None:
    settings.SMSGATE_RAW_LOG_RETENTION_DAYS = 30
    raw_request(31)
    recent = raw_request(29)
    assert prune_raw_log() == {"deleted": 1}
    assert prune_raw_log() == {"deleted": 0}
    assert list(InboundRequest.objects.values_list("pk", flat=True)) == [recent.pk]

    settings.SMSGATE_RAW_LOG_RETENTION_DAYS = 0
    raw_request(4000)
    assert prune_raw_log() == {"deleted": 0}


def test_id_before_sorts_between_earlier_and_later_ids() -> None:
    now = timezone.now()
    cut = id_before("evt", now)
    assert id_at("evt", 0.001) < cut < id_at("evt", -0.001)
