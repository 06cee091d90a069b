"""The mobile API's registration, auth, device, webhooks and settings
(docs/phones/sms-gateway-app.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from devices.models import Device, PhoneSettings, Sim
from messaging.models import InboundRequest
from phones.smsgateway.services import signing_key
from smsgate.crypto import hash_secret
from tests.phones.conftest import BASE, AppPhone, app_phone

pytestmark = pytest.mark.django_db


def test_registration_answers_201_with_the_paired_device_and_a_token(app: AppPhone) -> None:
    response = app.register({"name": "Google/sdk_gphone64", "pushToken": None, "simCards": []})
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["id"] == app.device.pk
    assert body["login"] == app.device.pk
    assert "password" in body
    device = Device.objects.get(pk=app.device.pk)
    assert device.app_token_hash == hash_secret(body["token"])
    assert device.name == "Google/sdk_gphone64"
    assert device.app_version == "1.68.0"
    assert signing_key(device)


@pytest.mark.parametrize("token", ["", "wrong-private-token"])
def test_registration_without_the_private_token_is_401(app: AppPhone, token: str) -> None:
    response = app.register(token=token)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert Device.objects.get(pk=app.device.pk).app_token_hash is None


def test_the_device_token_is_not_a_private_token(registered: AppPhone) -> None:
    assert registered.register(token=registered.token).status_code == 401


def test_registering_again_keeps_the_id_rotates_the_token_and_the_signing_key_stays(
    registered: AppPhone,
) -> None:
    key = signing_key(registered.device)
    again = registered.register()
    assert again.status_code == 201
    assert again.json()["id"] == registered.device.pk
    assert again.json()["token"] != registered.token
    assert registered.get("/webhooks").status_code == 401  # the old token stopped working
    assert registered.get("/webhooks", token=again.json()["token"]).status_code == 200
    registered.device.refresh_from_db()
    assert signing_key(registered.device) == key


def test_sim_cards_become_slots_and_a_masked_number_never_replaces_a_known_one(
    app: AppPhone,
) -> None:
    Sim.objects.filter(device=app.device).update(number="+14155550101")
    cards = [
        {"slotIndex": 0, "simNumber": 1, "phoneNumber": "********0101", "carrierName": "T"},
        {"slotIndex": 1, "simNumber": 2, "phoneNumber": "+14155550102", "iccid": "****1"},
    ]
    assert app.register({"name": "x", "simCards": cards}).status_code == 201
    sims = dict(Sim.objects.filter(device=app.device).values_list("slot", "number"))
    assert sims == {1: "+14155550101", 2: "+14155550102"}


def test_patch_device_updates_the_sims(registered: AppPhone) -> None:
    cards = [{"slotIndex": 1, "simNumber": 2, "phoneNumber": None}]
    response = registered.patch("/device", {"id": registered.device.pk, "simCards": cards})
    assert response.status_code == 204
    assert list(Sim.objects.filter(device=registered.device).values_list("slot", flat=True)) == [2]


def test_patch_device_of_another_id_is_403(registered: AppPhone) -> None:
    other = app_phone()
    response = registered.patch("/device", {"id": other.device.pk, "simCards": []})
    assert response.status_code == 403


def test_patch_device_with_an_unknown_token_is_401_so_the_app_registers_again(
    registered: AppPhone,
) -> None:
    response = registered.patch("/device", {"id": registered.device.pk}, token="nope")
    assert response.status_code == 401


def test_get_device_answers_the_external_ip_with_or_without_a_token(registered: AppPhone) -> None:
    anonymous = Client().get(f"{BASE}/device")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"device": None, "externalIp": "127.0.0.1"}
    mine = registered.get("/device").json()
    assert mine["device"]["id"] == registered.device.pk


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/message"),
        ("get", "/messages"),
        ("patch", "/message"),
        ("patch", "/device"),
        ("get", "/webhooks"),
        ("get", "/settings"),
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-device-token"])
def test_every_device_call_needs_the_device_token(
    registered: AppPhone, method: str, path: str, token: str | None
) -> None:
    headers: dict[str, Any] = {} if token is None else {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client = Client()
    if method == "get":
        response = client.get(f"{BASE}{path}", **headers)
    else:
        response = client.patch(f"{BASE}{path}", "[]", content_type="application/json", **headers)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "message" in response.json()


def test_every_call_is_logged_raw_and_is_a_heartbeat(registered: AppPhone) -> None:
    Device.objects.filter(pk=registered.device.pk).update(online=False, last_seen_at=None)
    assert registered.get("/webhooks").status_code == 200
    device = Device.objects.get(pk=registered.device.pk)
    assert device.online and device.last_seen_at is not None
    logged = InboundRequest.objects.filter(source="smsgateway", path=f"{BASE}/webhooks").get()
    assert logged.status_code == 200 and logged.device_id == device.pk
    assert "[removed]" in json.dumps(logged.headers)


@override_settings(SMSGATE_PUBLIC_URL="https://sms.example.org")
def test_webhooks_list_smsgates_own_receive_urls(registered: AppPhone) -> None:
    hooks = registered.get("/webhooks").json()
    events = {h["event"] for h in hooks}
    assert events == {
        "sms:received",
        "sms:data-received",
        "sms:sent",
        "sms:delivered",
        "sms:failed",
        "sms:cancelled",
        "system:ping",
        "app:started",
    }
    for hook in hooks:
        assert hook["url"] == f"https://sms.example.org{BASE}/webhooks/{hook['event']}"
        assert hook["id"] == "smsgate-" + hook["event"].replace(":", "-")
    assert registered.get("/webhooks").json() == hooks  # stable ids


def test_settings_carry_the_fleet_values_the_signing_key_and_sse_only(
    registered: AppPhone,
) -> None:
    PhoneSettings.objects.update_or_create(
        pk=1,
        defaults={"values": {"messages": {"send_interval_min": 5}, "webhooks": {"retry_count": 3}}},
    )
    values: dict[str, Any] = registered.get("/settings").json()
    assert values["messages"] == {"send_interval_min": 5}
    assert values["webhooks"] == {"retry_count": 3, "signing_key": signing_key(registered.device)}
    assert values["gateway"] == {"notification_channel": "SSE_ONLY"}
    # Per device: another phone gets its own key.
    other = app_phone()
    response = other.register()
    other_values = other.get("/settings", token=response.json()["token"]).json()
    assert other_values["webhooks"]["signing_key"] != values["webhooks"]["signing_key"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"name": 5}',
        b'{"simCards": [{"simNumber": 99}]}',
        b'{"simCards": "x"}',
        b'{"simCards": [1]}',
    ],
)
def test_bad_registration_bodies_are_400(app: AppPhone, body: bytes) -> None:
    response = app.http().post(
        f"{BASE}/device",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {app.private_token}",
    )
    assert response.status_code == 400
    assert Device.objects.get(pk=app.device.pk).app_token_hash is None


@pytest.mark.parametrize(
    "body",
    [b"{}", b"[1]", b'[{"id": "x", "state": "Nope"}]', b'[{"state": "Sent"}]', b"nul"],
)
def test_bad_state_patches_are_400(registered: AppPhone, body: bytes) -> None:
    response = registered.http().patch(
        f"{BASE}/message", body, content_type="application/json", **registered.auth()
    )
    assert response.status_code == 400


def test_bad_order_is_400_and_other_methods_405(registered: AppPhone) -> None:
    assert registered.get("/message?order=random").status_code == 400
    response = registered.http().delete(f"{BASE}/message", **registered.auth())
    assert response.status_code == 405


def test_no_trailing_slash_redirect(registered: AppPhone) -> None:
    assert registered.get("/webhooks/").status_code != 301
