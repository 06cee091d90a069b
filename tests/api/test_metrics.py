"""GET /metrics: Prometheus text format, for an admin key or an allowed client address."""

from __future__ import annotations

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from messaging.services import record_status
from smsgate.metrics import register_collector, unregister_collector
from tests.factories import InboundMessageFactory, OutboundMessageFactory, paired_device

pytestmark = pytest.mark.django_db


def samples(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_metrics_count_messages_by_direction_and_status(admin_client):
    for _ in range(3):
        InboundMessageFactory()
    OutboundMessageFactory()
    OutboundMessageFactory(status="delivered")
    OutboundMessageFactory(status="failed")

    got = samples(admin_client.get("/metrics"))

    def messages(direction: str, status: str) -> float:
        return got[("smsgate_messages", (("direction", direction), ("status", status)))]

    assert messages("inbound", "received") == 3
    assert messages("outbound", "queued") == 1
    assert messages("outbound", "delivered") == 1
    assert messages("outbound", "failed") == 1
    assert messages("outbound", "cancelled") == 0


def test_metrics_show_queue_depths_and_devices_online(admin_client):
    paired_device()
    paired_device(online=False)
    paired_device(enabled=False)
    OutboundMessageFactory()
    OutboundMessageFactory()
    dispatched = OutboundMessageFactory()
    record_status(message_id=dispatched.pk, status="dispatched")

    got = samples(admin_client.get("/metrics"))

    assert got[("smsgate_queue_depth", (("status", "queued"),))] == 2
    assert got[("smsgate_queue_depth", (("status", "dispatched"),))] == 1
    assert got[("smsgate_queue_depth", (("status", "scheduled"),))] == 0
    assert got[("smsgate_devices_online", ())] == 1
    assert got[("smsgate_devices", (("state", "enabled"),))] == 2
    assert got[("smsgate_devices", (("state", "disabled"),))] == 1
    assert got[("smsgate_dispatched_stale", ())] == 0


def test_metrics_follow_the_api(admin_client):
    sent = admin_client.post("/api/v1/messages", {"to": "+15551234567", "body": "x"}).json()
    admin_client.post(f"/api/v1/messages/{sent['id']}/cancel")

    got = samples(admin_client.get("/metrics"))

    key = ("smsgate_messages", (("direction", "outbound"), ("status", "cancelled")))
    assert got[key] == 1


def test_apps_can_register_collectors(admin_client):
    def collect_deliveries():
        family = GaugeMetricFamily("smsgate_test_deliveries", "test", labels=["outcome"])
        family.add_metric(["succeeded"], 7)
        yield family

    register_collector(collect_deliveries, name="test-deliveries")
    register_collector(collect_deliveries, name="test-deliveries")  # twice: replaced, not doubled
    try:
        response = admin_client.get("/metrics")
    finally:
        unregister_collector("test-deliveries")

    assert samples(response)[("smsgate_test_deliveries", (("outcome", "succeeded"),))] == 7
    assert response.content.decode().count("# TYPE smsgate_test_deliveries gauge") == 1


def test_a_failing_collector_does_not_break_the_scrape(admin_client):
    def broken():
        raise RuntimeError("boom")

    register_collector(broken, name="test-broken")
    try:
        got = samples(admin_client.get("/metrics"))
    finally:
        unregister_collector("test-broken")
    assert ("smsgate_devices_online", ()) in got


def test_metrics_need_a_key(anon_client):
    response = anon_client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_metrics_refuse_a_bad_key(bad_key_client):
    assert bad_key_client.get("/metrics").status_code == 401


def test_metrics_refuse_a_staff_key(staff_client):
    response = staff_client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    "allow", [["127.0.0.1"], ["10.0.0.0/8", "127.0.0.0/8"], ["::1", "127.0.0.1"]]
)
def test_an_allowed_address_needs_no_key(anon_client, settings, allow):
    settings.SMSGATE_METRICS_ALLOW = allow
    response = anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert "smsgate_devices_online" in response.content.decode()


@pytest.mark.parametrize("allow", [[], ["10.0.0.0/8"], ["not-an-address"]])
def test_other_addresses_still_need_a_key(anon_client, settings, allow):
    settings.SMSGATE_METRICS_ALLOW = allow
    assert anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401


def test_metrics_only_answer_get(admin_client):
    response = admin_client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
