"""The devices page's card for the SMS Gateway for Android app (docs/phones/README.md): the API
URL and private token shown once, the three steps in the app's own words, which build to use,
and each app phone's version, SIMs and stream; admins only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from devices.models import Device
from smsgate.crypto import hash_secret
from tests.dashboard.conftest import csrf_post
from tests.factories import paired_device

pytestmark = pytest.mark.django_db


def _pair(client: Client) -> tuple[str, Any]:
    response = csrf_post(client, "/devices/new/", {"name": "Desk", "sim1": "+15550000402"})
    assert response.status_code == 200
    return response.content.decode(), response


def test_pairing_shows_the_app_url_and_private_token_once(admin_web: Client) -> None:
    html, response = _pair(admin_web)

    private_token = response.context["issued"].app_private_token
    assert Device.objects.get().app_private_token_hash == hash_secret(private_token)
    assert "SMS Gateway for Android" in html
    assert (
        '<code class="big-value" id="app-server-url" data-app-server-url>'
        "http://testserver/api/mobile/v1</code>"
    ) in html
    assert f"data-app-private-token>{private_token}</code>" in html
    assert 'data-copy="#app-private-token"' in html and 'data-copy="#app-server-url"' in html
    assert response["Cache-Control"] == "no-store"
    assert private_token not in admin_web.get("/devices/").content.decode()


def test_the_steps_name_the_apps_own_settings(admin_web: Client) -> None:
    html, _ = _pair(admin_web)

    steps = html.split("data-app-steps>", 1)[1].split("</ol>", 1)[0]
    for words in (
        "<strong>Settings</strong> tab → <strong>Cloud server…</strong>",
        "<strong>API URL</strong>",
        "<strong>Private Token</strong>",
        "<strong>Notification channel</strong> to <strong>SSE Only</strong>",
        "switch <strong>Cloud server</strong> on",
        "<strong>Online</strong>",
    ):
        assert words in steps


def test_a_plain_http_lan_address_says_to_use_the_insecure_build(
    admin_web: Client, settings: Any
) -> None:
    settings.SMSGATE_PUBLIC_URL = "http://192.168.1.20:8000"
    html, _ = _pair(admin_web)

    assert "http://192.168.1.20:8000/api/mobile/v1</code>" in html
    build = html.split("data-app-build>", 1)[1].split("</p>", 1)[0]
    assert "refuses it" in build and "app-insecure.apk" in build and "HTTPS" in build


def test_an_https_server_says_to_use_the_regular_build(admin_web: Client, settings: Any) -> None:
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    html, _ = _pair(admin_web)

    build = html.split("data-app-build>", 1)[1].split("</p>", 1)[0]
    assert "Use the app's regular build" in build and "refuses" not in build


def test_rotation_shows_a_new_private_token(admin_web: Client) -> None:
    _, first = _pair(admin_web)
    device = Device.objects.get()

    response = csrf_post(admin_web, f"/devices/{device.pk}/rotate/")

    new_token = response.context["issued"].app_private_token
    assert new_token != first.context["issued"].app_private_token
    assert f"data-app-private-token>{new_token}</code>" in response.content.decode()
    device.refresh_from_db()
    assert device.app_private_token_hash == hash_secret(new_token)


def test_an_app_phone_card_shows_version_sims_and_stream(admin_web: Client) -> None:
    now = timezone.now()
    paired_device(
        sims=2,
        name="App phone",
        app_token_hash=hash_secret("app-token"),
        app_version="1.68.0",
        stream_connected_at=now - timedelta(minutes=5),
        stream_last_event_at=now - timedelta(minutes=1),
    )
    html = admin_web.get("/devices/").content.decode()

    assert "<dd data-app-version>SMS Gateway for Android 1.68.0</dd>" in html
    stream = html.split("<dd data-stream>", 1)[1].split("</dd>", 1)[0]
    assert "connected since" in stream and "5\xa0minutes ago" in stream
    assert "last event" in stream and "1\xa0minute ago" in stream
    assert "1: " in html and "2: " in html  # both SIMs listed


def test_an_app_phone_without_a_stream_says_so(admin_web: Client) -> None:
    paired_device(name="Polling phone", app_token_hash=hash_secret("app-token"))
    html = admin_web.get("/devices/").content.decode()

    assert "<dd data-stream>no stream</dd>" in html


def test_a_phone_of_another_app_has_no_app_rows(admin_web: Client) -> None:
    paired_device(name="SMSSync phone")
    html = admin_web.get("/devices/").content.decode()

    assert "SMSSync phone" in html and "data-stream" not in html and "data-app-version" not in html


def test_staff_cannot_pair_or_rotate(staff_web: Client) -> None:
    phone = paired_device()
    assert csrf_post(staff_web, "/devices/new/", {"name": "Desk"}).status_code == 403
    assert csrf_post(staff_web, f"/devices/{phone.device.pk}/rotate/").status_code == 403
    assert Device.objects.count() == 1
    phone.device.refresh_from_db()
    assert phone.device.app_private_token_hash is None


def test_visitors_are_sent_to_log_in(anon_web: Client) -> None:
    response = anon_web.get("/devices/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
