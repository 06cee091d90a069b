"""The enabled endpoints are kept in each process's memory under a version the database
replaces with every change (webhooks/versions.py): whatever changes an endpoint, and however,
the very next inbound SMS sees it, in this process and in any other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Message
from webhooks import outbox, versions
from webhooks import services as webhook_services
from webhooks.models import ConfigVersion, Delivery, Endpoint

pytestmark = pytest.mark.django_db

Receive = Callable[..., Message]


@pytest.fixture
def endpoints(allow_private: None) -> list[str]:
    return [
        webhook_services.create_endpoint(
            url=f"http://127.0.0.1:9/hook{i}", events=["sms.received"]
        )[0].pk
        for i in range(2)
    ]


def delivered_to(message: Message) -> set[str]:
    return set(
        Delivery.objects.filter(event__message=message).values_list("endpoint_id", flat=True)
    )


def endpoints_token() -> str:
    return ConfigVersion.objects.get(name=versions.ENDPOINTS).token


def test_a_warm_process_reads_only_the_version(endpoints: list[str], receive: Receive):
    receive(body="warm up")

    with CaptureQueriesContext(connection) as ctx:
        message = receive(body="second")

    sql = [q["sql"] for q in ctx.captured_queries]
    assert not any('FROM "webhooks_endpoint"' in s for s in sql), sql
    assert sum("webhooks_configversion" in s for s in sql) == 1
    assert delivered_to(message) == set(endpoints)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda pk: webhook_services.update_endpoint(endpoint_id=pk, changes={"enabled": False}),
            id="disabled by an admin",
        ),
        # How the delivery worker disables an endpoint (410 Gone, failing for days): a
        # queryset update, which sends no signal.
        pytest.param(
            lambda pk: Endpoint.objects.filter(pk=pk).update(enabled=False),
            id="disabled by a bare update",
        ),
        pytest.param(
            lambda pk: webhook_services.delete_endpoint(endpoint_id=pk), id="deleted by an admin"
        ),
        pytest.param(lambda pk: Endpoint.objects.filter(pk=pk).delete(), id="deleted in bulk"),
        pytest.param(
            lambda pk: webhook_services.update_endpoint(
                endpoint_id=pk, changes={"events": ["sms.sent"]}
            ),
            id="unsubscribed",
        ),
    ],
)
def test_the_next_inbound_sees_a_change(
    endpoints: list[str], receive: Receive, change: Callable[[str], Any]
):
    receive(body="warm up")  # this process now holds both endpoints

    change(endpoints[0])

    assert delivered_to(receive(body="after")) == {endpoints[1]}


def test_another_process_holding_the_old_copy_sees_the_change(
    endpoints: list[str], receive: Receive
):
    receive(body="warm up")
    process_a = outbox._endpoints._held
    assert process_a is not None

    # Process B (a fresh process: nothing in memory) disables an endpoint and receives.
    versions.forget_all()
    Endpoint.objects.filter(pk=endpoints[0]).update(enabled=False)
    assert delivered_to(receive(body="in b")) == {endpoints[1]}

    # Back in process A, with its copy from before the change.
    outbox._endpoints._held = process_a
    assert delivered_to(receive(body="in a")) == {endpoints[1]}


def test_a_copy_loaded_inside_a_rolled_back_change_is_not_used(
    endpoints: list[str], receive: Receive, allow_private: None
):
    receive(body="warm up")

    with pytest.raises(RuntimeError), transaction.atomic():
        extra = webhook_services.create_endpoint(url="http://127.0.0.1:9/extra")[0]
        assert extra.pk in delivered_to(receive(body="inside"))  # loaded with the extra one
        raise RuntimeError("roll back")

    assert delivered_to(receive(body="after")) == set(endpoints)


def test_writes_that_change_no_subscription_keep_the_version(
    endpoints: list[str], receive: Receive
):
    before = endpoints_token()

    # Every failed attempt writes failing_since; an automation forward makes an internal one.
    Endpoint.objects.filter(pk=endpoints[0]).update(failing_since=timezone.now())
    outbox._internal_endpoint("http://127.0.0.1:9/adhoc", "standard")
    webhook_services.rotate_secret(endpoint_id=endpoints[1])

    assert endpoints_token() == before


def test_without_a_version_row_every_batch_reads_the_endpoints(
    endpoints: list[str], receive: Receive
):
    # A flushed database (TransactionTestCase) has no row until the next change writes one.
    ConfigVersion.objects.all().delete()
    receive(body="first")
    Endpoint.objects.filter(pk=endpoints[0]).update(format="chat")  # writes the row again
    ConfigVersion.objects.all().delete()

    with CaptureQueriesContext(connection) as ctx:
        message = receive(body="second")

    assert any('FROM "webhooks_endpoint"' in q["sql"] for q in ctx.captured_queries)
    assert delivered_to(message) == set(endpoints)
