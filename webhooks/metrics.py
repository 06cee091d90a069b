"""Webhooks' part of /metrics: deliveries by outcome, the backlog of due deliveries, and
endpoints by state. Three aggregate queries per scrape."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from smsgate.metrics import register_collector
from webhooks.models import Delivery, DeliveryStatus, Endpoint


def collect_webhooks() -> Iterator[Metric]:
    counts = dict(
        Delivery.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    deliveries = GaugeMetricFamily(
        "smsgate_webhook_deliveries",
        "Webhook deliveries by outcome: pending (waiting for an attempt or a retry), "
        "succeeded, failed (out of attempts or 410 Gone; can be retried by hand).",
        labels=["status"],
    )
    for status in DeliveryStatus.values:
        deliveries.add_metric([status], counts.get(status, 0))
    yield deliveries

    yield GaugeMetricFamily(
        "smsgate_webhook_deliveries_due",
        "Pending deliveries whose next attempt is due now (a growing number means workers "
        "are missing or too few).",
        value=Delivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        ).count(),
    )

    endpoints = Endpoint.objects.filter(internal=False).aggregate(
        n_enabled=Count("id", filter=Q(enabled=True)),
        n_disabled=Count("id", filter=Q(enabled=False)),
    )
    family = GaugeMetricFamily("smsgate_webhook_endpoints", "Webhook endpoints.", labels=["state"])
    family.add_metric(["enabled"], endpoints["n_enabled"])
    family.add_metric(["disabled"], endpoints["n_disabled"])
    yield family


register_collector(collect_webhooks, name="webhooks")
