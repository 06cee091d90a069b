"""The periodic sweep that disables an endpoint failing for 5 days with nothing left to try."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from freezegun import freeze_time
from pytest_httpserver import HTTPServer

from messaging.models import Message
from webhooks.models import Delivery, DeliveryStatus, Endpoint
from webhooks.tasks import deliver_webhook, disable_long_failing_endpoints

pytestmark = pytest.mark.django_db


def test_an_endpoint_whose_deliveries_are_exhausted_is_disabled_after_five_days(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("no", status=500)
    start = timezone.now()
    with freeze_time(start) as clock:
        receive()
        delivery = Delivery.objects.get(endpoint_id=webhook["id"])
        deliver_webhook(delivery.pk)
        # The schedule gave up: nothing will ever attempt this endpoint again.
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)

        clock.move_to(start + timedelta(days=4, hours=23))
        assert disable_long_failing_endpoints() == {"disabled": 0}
        assert Endpoint.objects.get(pk=webhook["id"]).enabled is True

        clock.move_to(start + timedelta(days=5, minutes=1))
        assert disable_long_failing_endpoints() == {"disabled": 1}
        assert disable_long_failing_endpoints() == {"disabled": 0}

    endpoint = Endpoint.objects.get(pk=webhook["id"])
    assert endpoint.enabled is False
    assert "5 days" in endpoint.disabled_reason


def test_the_sweep_leaves_healthy_and_recently_failing_endpoints_alone(
    create_webhook: Callable[..., dict[str, Any]], receiver: HTTPServer
) -> None:
    healthy = create_webhook(receiver.url_for("/ok"))
    failing = create_webhook(receiver.url_for("/new"))
    Endpoint.objects.filter(pk=failing["id"]).update(
        failing_since=timezone.now() - timedelta(days=2)
    )

    assert disable_long_failing_endpoints() == {"disabled": 0}
    assert disable_long_failing_endpoints() == {"disabled": 0}
    assert Endpoint.objects.filter(enabled=True).count() == 2
    assert healthy["id"] != failing["id"]
