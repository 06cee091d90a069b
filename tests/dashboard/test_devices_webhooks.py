"""Devices and webhooks pages: health, pairing, rotation, enable/disable; endpoints, the
delivery log, retry, replay and test ping (against a real local HTTP receiver)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_httpserver import HTTPServer

from devices.models import Device
from messaging import services
from messaging.inbox import InboundSMS
from pipeline.inbound import receive_one
from smsgate.crypto import hash_secret
from tests.dashboard.conftest import csrf_post
from tests.factories import paired_device
from webhooks import services as webhooks
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


# --- devices --------------------------------------------------------------------------------


def test_no_devices_yet_says_how_to_pair(admin_web: Client) -> None:
    assert b"No phones yet" in admin_web.get("/devices/").content


def test_device_cards_show_health_queue_and_pacing(admin_web: Client) -> None:
    phone = paired_device(
        sims=2, name="Shop", battery_level=81, network_type="LTE", latitude=52.5, longitude=13.4
    )
    services.send_message(to="+15550000401", body="hi", device_id=phone.device.pk)
    response = admin_web.get("/devices/")
    html = response.content.decode()
    assert "Shop" in html and "81%" in html and "LTE" in html and "52.50000" in html
    assert "<span data-queued>1</span> waiting" in html
    assert "29/min" in html


def test_pairing_a_phone_shows_its_qr_and_credentials_once(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/devices/new/", {"name": "Desk", "sim1": "+15550000402"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    device = Device.objects.get(name="Desk")
    token = response.context["issued"].token
    assert device.token_hash == hash_secret(token)
    assert b"data:image/png;base64," in response.content
    assert token.encode() in response.content
    assert token.encode() not in admin_web.get("/devices/").content


def test_a_phone_needs_a_name_and_a_valid_number(admin_web: Client) -> None:
    assert csrf_post(admin_web, "/devices/new/", {"name": ""}).status_code == 400
    response = csrf_post(admin_web, "/devices/new/", {"name": "X", "sim1": "nope"})
    assert response.status_code == 400
    assert not Device.objects.exists()


def test_rotating_credentials_replaces_the_token(admin_web: Client) -> None:
    phone = paired_device(sims=1)
    response = csrf_post(admin_web, f"/devices/{phone.device.pk}/rotate/")
    phone.device.refresh_from_db()
    assert phone.device.token_hash != hash_secret(phone.token)
    assert phone.device.token_hash == hash_secret(response.context["issued"].token)


def test_disabling_and_enabling_a_device(admin_web: Client) -> None:
    phone = paired_device(sims=1)
    csrf_post(admin_web, f"/devices/{phone.device.pk}/enabled/", {"enabled": "0"})
    phone.device.refresh_from_db()
    assert phone.device.enabled is False
    csrf_post(admin_web, f"/devices/{phone.device.pk}/enabled/", {"enabled": "1"})
    phone.device.refresh_from_db()
    assert phone.device.enabled is True


def test_unknown_devices_are_404(admin_web: Client) -> None:
    assert csrf_post(admin_web, "/devices/dev_nothere/rotate/").status_code == 404


@pytest.mark.parametrize("url", ["/devices/", "/webhooks/"])
def test_staff_cannot_open_devices_or_webhooks(staff_web: Client, url: str) -> None:
    assert staff_web.get(url).status_code == 403


# --- webhooks -------------------------------------------------------------------------------


@pytest.fixture
def allow_private(settings: Any) -> None:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True


def _failed_delivery(httpserver: HTTPServer) -> Delivery:
    httpserver.expect_request("/hook").respond_with_data("boom", status=500)
    endpoint, _ = webhooks.create_endpoint(
        url=httpserver.url_for("/hook"), events=["sms.received"], max_attempts=1
    )
    phone = paired_device(sims=1)
    receive_one(
        InboundSMS(
            from_number="+15550000403", body="hi", source="msync", device=phone.device, sim_slot=1
        )
    )
    delivery = Delivery.objects.get(endpoint=endpoint)
    from webhooks.delivery import attempt_delivery

    attempt_delivery(delivery_id=delivery.pk, force=True)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    return delivery


def test_no_webhooks_yet_says_so(admin_web: Client) -> None:
    assert b"No webhooks yet" in admin_web.get("/webhooks/").content


def test_adding_a_webhook_shows_its_secret_once(admin_web: Client, allow_private: None) -> None:
    response = csrf_post(
        admin_web,
        "/webhooks/new/",
        {"url": "http://127.0.0.1:9/hook", "format": "standard", "events": ["sms.received"]},
    )
    assert response.status_code == 200
    endpoint = Endpoint.objects.get()
    assert endpoint.events == ["sms.received"]
    assert response.context["secret"].startswith("whsec_")
    assert response.context["secret"].encode() not in admin_web.get("/webhooks/").content


def test_a_private_url_is_refused_inline(admin_web: Client) -> None:
    response = csrf_post(admin_web, "/webhooks/new/", {"url": "http://127.0.0.1/x"})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    assert not Endpoint.objects.exists()


def test_the_delivery_log_shows_each_attempt(
    admin_web: Client, allow_private: None, httpserver: HTTPServer
) -> None:
    delivery = _failed_delivery(httpserver)
    html = admin_web.get(f"/webhooks/{delivery.endpoint_id}/").content.decode()
    assert f'id="delivery-{delivery.pk}"' in html
    assert "sms.received" in html and ">500<" in html and "boom" in html


def test_retry_makes_a_new_attempt_now(
    admin_web: Client, allow_private: None, httpserver: HTTPServer
) -> None:
    delivery = _failed_delivery(httpserver)
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_data("ok")
    response = csrf_post(admin_web, f"/webhooks/deliveries/{delivery.pk}/retry/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempts.count() == 2


def test_test_ping_and_replay_and_disable(
    admin_web: Client, allow_private: None, httpserver: HTTPServer
) -> None:
    delivery = _failed_delivery(httpserver)
    endpoint_id = delivery.endpoint_id
    csrf_post(admin_web, f"/webhooks/{endpoint_id}/test/")
    assert Delivery.objects.filter(endpoint_id=endpoint_id, event__type="ping").exists()
    csrf_post(admin_web, f"/webhooks/{endpoint_id}/replay/", {"window": "1h"})
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    csrf_post(admin_web, f"/webhooks/{endpoint_id}/enabled/", {"enabled": "0"})
    assert Endpoint.objects.get(pk=endpoint_id).enabled is False


def test_an_unknown_webhook_is_404_and_an_unknown_delivery_is_a_flash(admin_web: Client) -> None:
    assert admin_web.get("/webhooks/whk_nothere/").status_code == 404
    assert csrf_post(admin_web, "/webhooks/deliveries/dlv_nothere/retry/").status_code == 302
