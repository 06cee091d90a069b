"""The benchmark stays out of the product: its module imports, its baseline views are off by
default, and the batch path it measures reads shared things once per batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from messaging.models import Message
from smsgate.services import create_api_key
from tests.factories import paired_device
from webhooks.models import Delivery, Event
from webhooks.services import create_endpoint

pytestmark = pytest.mark.django_db


def test_the_bench_command_and_its_parts_import() -> None:
    from bench import receiver, run, views

    assert callable(run.main) and callable(receiver.main) and callable(views.bare_ingest)


@pytest.mark.parametrize(("method", "path"), [("get", "/bench/json"), ("post", "/bench/ingest")])
def test_the_baseline_views_are_not_served_by_default(method: str, path: str) -> None:
    response = getattr(Client(), method)(path)

    assert response.status_code == 404
    assert Message.objects.count() == 0


@pytest.mark.urls("bench.urls")
def test_the_bare_ingest_view_stores_one_message_and_one_outbox_row() -> None:
    key = create_api_key(name="bench").plaintext

    response = Client().post(
        "/bench/ingest",
        json.dumps({"from": "+12025550123", "message": "hello"}),
        content_type="application/json",
        HTTP_X_API_KEY=key,
    )

    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.from_number, message.body) == ("+12025550123", "hello")
    assert Event.objects.get().message_id == message.pk


@pytest.mark.urls("bench.urls")
def test_the_bare_ingest_view_needs_an_api_key() -> None:
    response = Client().post("/bench/ingest", "{}", content_type="application/json")

    assert response.status_code == 401
    assert Message.objects.count() == 0


def test_an_msync_batch_reads_the_webhook_endpoints_once(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    for name in ("a", "b"):
        create_endpoint(url=f"http://127.0.0.1:9/{name}", events=["sms.received"])
    phone = paired_device(sims=1)
    messages = [
        {"from": f"+1202555{i:04d}", "message": f"m {i}", "timestamp": 1744029005123 + i}
        for i in range(30)
    ]

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
        response = Client().post(
            "/api/sms/msync",
            json.dumps({"action": "incoming", "device_id": phone.device.pk, "messages": messages}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {phone.token}",
        )

    assert response.status_code == 200 and response.json()["received"] == 30
    endpoint_reads = [q for q in queries.captured_queries if 'FROM "webhooks_endpoint"' in q["sql"]]
    assert len(endpoint_reads) == 1
    # Behaviour unchanged: every message still has one delivery per subscribed endpoint.
    assert Delivery.objects.count() == 60
    assert Event.objects.filter(type="sms.received").count() == 30
