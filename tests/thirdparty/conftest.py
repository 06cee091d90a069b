"""Fixtures for the app's third-party API: clients as the app's integrators hold them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rest_framework.test import APIClient

from devices.models import Device
from smsgate.crypto import hash_secret
from tests.factories import PairedDevice, paired_device

BASE = "/api/3rdparty/v1"


def basic(password: str, login: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def app_phone(db: None) -> PairedDevice:
    """An online phone paired with the SMS Gateway for Android app (it has an app token)."""
    paired = paired_device(sims=2)
    Device.objects.filter(pk=paired.device.pk).update(app_token_hash=hash_secret("app-token"))
    paired.device.refresh_from_db()
    return paired


@pytest.fixture
def admin_api(admin_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(admin_key))
    return client


@pytest.fixture
def staff_api(staff_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(staff_key))
    return client


@pytest.fixture
def allow_private(settings: Any) -> None:
    """Webhook receivers here are local servers on loopback, refused by default (SSRF)."""
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
