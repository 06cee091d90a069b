"""The SMS Gateway for Android app's credentials (docs/phones/sms-gateway-app.md): a private
token made with every pairing, shown once, stored hashed, and replaced by rotation."""

from __future__ import annotations

from typing import Any

import pytest

from devices import services
from devices.models import Device
from smsgate.crypto import hash_secret

pytestmark = pytest.mark.django_db


def test_registering_makes_a_private_token_stored_only_hashed() -> None:
    credentials = services.register_device(name="Shop")

    device = Device.objects.get()
    assert credentials.app_private_token
    assert device.app_private_token_hash == hash_secret(credentials.app_private_token)
    assert credentials.app_private_token not in {credentials.token, credentials.smssync_secret}


def test_each_device_gets_its_own_private_token() -> None:
    first = services.register_device(name="One").app_private_token
    second = services.register_device(name="Two").app_private_token

    assert first != second


def test_rotation_replaces_the_private_token_and_drops_the_app_token() -> None:
    credentials = services.register_device(name="Shop")
    # As after the app registered with the private token and got its device token.
    Device.objects.filter(pk=credentials.device.pk).update(app_token_hash=hash_secret("app-tok"))

    rotated = services.rotate_credentials(device_id=credentials.device.pk)

    device = Device.objects.get()
    assert rotated.app_private_token != credentials.app_private_token
    assert device.app_private_token_hash == hash_secret(rotated.app_private_token)
    assert device.app_token_hash is None


def test_the_schema_documents_the_app_pairing(admin_client: Any) -> None:
    document = admin_client.get("/api/schema/?format=json").json()
    schemas = document["components"]["schemas"]

    payload = schemas["PairingPayload"]
    assert "app" in payload["properties"] and "app" in payload["required"]
    app_ref = payload["properties"]["app"]["$ref"].rsplit("/", 1)[1]
    assert set(schemas[app_ref]["properties"]) == {"server_url", "private_token"}
