"""Messaging's part of /metrics: messages by direction and status, queue depths, stale
dispatches and devices online. Three aggregate queries per scrape."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from devices.models import Device
from messaging.models import Direction, Message, Status
from smsgate.metrics import register_collector

OUTBOUND_STATUSES = [s for s in Status.values if s != Status.RECEIVED]
QUEUE_STATUSES = [Status.SCHEDULED, Status.QUEUED, Status.DISPATCHED]


def collect_messaging() -> Iterator[Metric]:
    counts = {
        (row["direction"], row["status"]): row["n"]
        for row in Message.objects.order_by().values("direction", "status").annotate(n=Count("id"))
    }
    messages = GaugeMetricFamily(
        "smsgate_messages",
        "Messages stored, by direction (inbound/outbound) and current status.",
        labels=["direction", "status"],
    )
    messages.add_metric(
        [Direction.INBOUND, Status.RECEIVED], counts.get(("inbound", "received"), 0)
    )
    for status in OUTBOUND_STATUSES:
        messages.add_metric([Direction.OUTBOUND, status], counts.get(("outbound", status), 0))
    yield messages

    queue = GaugeMetricFamily(
        "smsgate_queue_depth",
        "Outbound messages not yet reported on: scheduled (waiting for send_at), queued "
        "(waiting for a phone or provider) and dispatched (handed out, no report yet).",
        labels=["status"],
    )
    for status in QUEUE_STATUSES:
        queue.add_metric([status], counts.get(("outbound", status), 0))
    yield queue

    yield GaugeMetricFamily(
        "smsgate_dispatched_stale",
        "Dispatched messages without a report after SMSGATE_DISPATCH_TIMEOUT (never re-sent).",
        value=Message.objects.filter(status=Status.DISPATCHED, stale=True).count(),
    )

    devices = Device.objects.aggregate(
        n_total=Count("id"),
        n_enabled=Count("id", filter=Q(enabled=True)),
        n_online=Count("id", filter=Q(enabled=True, online=True)),
    )
    yield GaugeMetricFamily(
        "smsgate_devices_online",
        "Enabled devices that called in recently.",
        value=devices["n_online"],
    )
    family = GaugeMetricFamily("smsgate_devices", "Paired devices.", labels=["state"])
    family.add_metric(["enabled"], devices["n_enabled"])
    family.add_metric(["disabled"], devices["n_total"] - devices["n_enabled"])
    yield family


register_collector(collect_messaging, name="messaging")
