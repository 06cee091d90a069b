"""The devices API (docs/api.md#devices): admin only, credentials shown once, pairing QR."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import override_settings

from devices.models import Device, Sim
from smsgate.crypto import hash_secret
from tests.factories import OutboundMessageFactory, paired_device

pytestmark = pytest.mark.django_db

DEVICE_FIELDS = {
    "id",
    "name",
    "enabled",
    "online",
    "last_seen_at",
    "battery_level",
    "signal_strength",
    "network_type",
    "sim_state",
    "location",
    "sims",
    "limits",
    "queued",
}


def create(client, **body):
    body = {"name": "Front desk", "sims": [{"slot": 1, "number": "+15551234567"}], **body}
    return client.post("/api/v1/devices", body, format="json")


def test_create_shows_credentials_once_and_stores_only_hashes(admin_client):
    response = create(admin_client)

    assert response.status_code == 201
    data = response.json()
    assert set(data) == DEVICE_FIELDS | {"token", "smssync_secret", "pairing"}
    assert data["id"].startswith("dev_")
    assert data["sims"] == [{"slot": 1, "number": "+15551234567"}]
    assert data["limits"] == {"per_minute": 29, "per_hour": None, "per_day": None}
    assert data["queued"] == 0 and data["online"] is False and data["location"] is None
    device = Device.objects.get()
    assert device.token_hash == hash_secret(data["token"])
    assert device.smssync_secret_hash == hash_secret(data["smssync_secret"])
    private_token = data["pairing"]["payload"]["app"]["private_token"]
    assert device.app_private_token_hash == hash_secret(private_token)
    assert device.app_token_hash is None  # the app has not registered yet
    detail = admin_client.get(f"/api/v1/devices/{data['id']}").json()
    assert set(detail) == DEVICE_FIELDS


@override_settings(SMSGATE_PUBLIC_URL="https://sms.example.org")
def test_pairing_qr_encodes_the_payload(admin_client):
    data = create(admin_client).json()

    payload = data["pairing"]["payload"]
    assert payload == {
        "server": "https://sms.example.org",
        "device_id": data["id"],
        "token": data["token"],
        "smssync_url": "https://sms.example.org/api/sms/smssync",
        "msync_url": "https://sms.example.org/api/sms/msync",
        "app": {
            "server_url": "https://sms.example.org/api/mobile/v1",
            "private_token": payload["app"]["private_token"],
        },
    }
    qr_url = data["pairing"]["qr_url"]
    assert qr_url.startswith("data:image/png;base64,")
    png = base64.b64decode(qr_url.split(",", 1)[1])
    assert png.startswith(b"\x89PNG")


def test_pairing_qr_contains_exactly_the_payload_json(admin_client):
    import segno

    data = create(admin_client).json()
    expected = segno.make(json.dumps(data["pairing"]["payload"], separators=(",", ":")), error="m")

    assert data["pairing"]["qr_url"] == expected.png_data_uri(scale=4, border=2)
    assert data["pairing"]["payload"]["server"] == "http://testserver"


def test_a_device_without_sims_gets_slot_one(admin_client):
    data = admin_client.post("/api/v1/devices", {"name": "Spare"}, format="json").json()

    assert data["sims"] == [{"slot": 1, "number": ""}]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x", "sims": [{"slot": 0}]},
        {"name": "x", "sims": [{"slot": 1}, {"slot": 1}]},
        {"name": "x", "sims": [{"slot": 1, "number": "not a number"}]},
        {"name": "x", "limits": {"per_minute": 0}},
        {"name": "x", "sims": "one"},
    ],
)
def test_invalid_creation_is_a_400(admin_client, body):
    response = admin_client.post("/api/v1/devices", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert Device.objects.count() == 0


def test_list_detail_and_queued_count(admin_client):
    phone = paired_device(sims=2)
    OutboundMessageFactory(device=phone.device)
    OutboundMessageFactory(device=phone.device)

    listing = admin_client.get("/api/v1/devices").json()
    detail = admin_client.get(f"/api/v1/devices/{phone.device.pk}").json()

    assert listing["next"] is None
    assert [d["id"] for d in listing["results"]] == [phone.device.pk]
    assert detail["queued"] == 2
    assert [s["slot"] for s in detail["sims"]] == [1, 2]


def test_patch_changes_name_enabled_limits_and_sims(admin_client):
    phone = paired_device(sims=2)

    response = admin_client.patch(
        f"/api/v1/devices/{phone.device.pk}",
        {
            "name": "Kiosk",
            "enabled": False,
            "limits": {"per_minute": 10, "per_day": 500},
            "sims": [{"slot": 2, "number": "+15550001111"}],
        },
        format="json",
    )

    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "Kiosk" and data["enabled"] is False
    assert data["limits"] == {"per_minute": 10, "per_hour": None, "per_day": 500}
    assert data["sims"] == [{"slot": 2, "number": "+15550001111"}]
    assert list(Sim.objects.values_list("slot", flat=True)) == [2]


def test_delete_removes_the_device(admin_client):
    phone = paired_device()

    assert admin_client.delete(f"/api/v1/devices/{phone.device.pk}").status_code == 204
    assert admin_client.get(f"/api/v1/devices/{phone.device.pk}").status_code == 404
    assert admin_client.delete(f"/api/v1/devices/{phone.device.pk}").status_code == 404


def test_rotate_credentials_returns_new_ones(admin_client):
    data = create(admin_client).json()

    rotated = admin_client.post(f"/api/v1/devices/{data['id']}/rotate-credentials").json()

    assert rotated["token"] != data["token"]
    assert rotated["smssync_secret"] != data["smssync_secret"]
    assert rotated["pairing"]["payload"]["token"] == rotated["token"]
    old_app, new_app = data["pairing"]["payload"]["app"], rotated["pairing"]["payload"]["app"]
    assert new_app["private_token"] != old_app["private_token"]
    assert new_app["server_url"] == "http://testserver/api/mobile/v1"
    device = Device.objects.get(pk=data["id"])
    assert device.app_private_token_hash == hash_secret(new_app["private_token"])
    assert admin_client.post("/api/v1/devices/dev_nope/rotate-credentials").status_code == 404


@pytest.mark.parametrize(
    ("client_name", "status"),
    [("staff_client", 403), ("anon_client", 401), ("bad_key_client", 401)],
)
def test_only_admins_manage_devices(request, client_name, status):
    client = request.getfixturevalue(client_name)
    phone = paired_device()

    assert client.get("/api/v1/devices").status_code == status
    assert client.get(f"/api/v1/devices/{phone.device.pk}").status_code == status
    assert create(client).status_code == status
    assert (
        client.patch(f"/api/v1/devices/{phone.device.pk}", {"name": "x"}, format="json").status_code
        == status
    )
    assert (
        client.post(f"/api/v1/devices/{phone.device.pk}/rotate-credentials").status_code == status
    )
    assert client.delete(f"/api/v1/devices/{phone.device.pk}").status_code == status
    assert Device.objects.get().name == phone.device.name


def test_phone_paths_never_redirect(admin_client):
    assert admin_client.get("/api/sms/smssync/").status_code == 404


def test_listing_devices_costs_the_same_for_many(admin_client, django_assert_max_num_queries):
    for _ in range(5):
        phone = paired_device(sims=2)
        OutboundMessageFactory(device=phone.device)
    admin_client.get("/api/v1/devices")  # warm the API key's last_used_at

    with django_assert_max_num_queries(4):
        response = admin_client.get("/api/v1/devices")

    assert [d["queued"] for d in response.json()["results"]] == [1] * 5


def test_a_limit_too_large_for_its_column_is_a_400_not_a_500(admin_client):
    """Found by the schema fuzzer: `per_minute: 51648727035` overflowed the integer column."""
    response = admin_client.post(
        "/api/v1/devices",
        {"name": "big", "limits": {"per_minute": 51648727035}},
        format="json",
    )

    assert response.status_code == 400
