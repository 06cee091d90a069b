"""The official Python client (android-sms-gateway 4.3.3), unchanged, against a live smsgate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from android_sms_gateway import ahttp, client, domain
from android_sms_gateway.enums import ProcessState, WebhookEvent
from android_sms_gateway.errors import APIError
from django.db import connections

from devices import wake
from messaging.models import Message, Status
from messaging.services import record_status
from tests.factories import PairedDevice
from thirdparty.models import AppMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def base_url(live_server: Any, allow_private: None, monkeypatch: pytest.MonkeyPatch) -> str:
    # The live server answers from short-lived threads: persistent connections would outlive
    # the test in them and keep the test database from being dropped.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    # A trailing slash, as integrators paste it: the client strips it.
    return f"{live_server.url}/api/3rdparty/v1/"


def test_the_sync_client_sends_reads_lists_and_sees_delivered(
    base_url: str, admin_key: str, app_phone: PairedDevice
) -> None:
    with client.APIClient("integrator", admin_key, base_url=base_url) as api:
        state = api.send(
            domain.Message(
                phone_numbers=["+15551230001", "+15551230002"],
                text_message=domain.TextMessage(text="Your code is 4471"),
                with_delivery_report=True,
                sim_number=2,
                device_id=app_phone.device.pk,
                id="order-4471",
            )
        )
        assert state.id == "order-4471"
        assert state.state == ProcessState.Pending
        assert [r.phone_number for r in state.recipients] == ["+15551230001", "+15551230002"]
        assert state.device_id == app_phone.device.pk

        # Two ordinary smsgate messages, each with its own route and history.
        messages = list(Message.objects.filter(source="thirdparty").order_by("to_number"))
        assert [m.sim_slot for m in messages] == [2, 2]
        for message in messages:
            record_status(message_id=message.pk, status=Status.DISPATCHED)
            record_status(message_id=message.pk, status=Status.SENT)
            record_status(message_id=message.pk, status=Status.DELIVERED)

        read = api.get_state("order-4471")
        assert read.state == ProcessState.Delivered
        assert {r.state for r in read.recipients} == {ProcessState.Delivered}
        assert set(read.states or {}) == {"Pending", "Processed", "Sent", "Delivered"}

        listed = api.get_messages(
            query=domain.MessagesQueryFilter(state="Delivered"),
            pagination=domain.QueryPagination(limit=10, offset=0),
        )
        assert [m.id for m in listed] == ["order-4471"]
        assert api.get_messages(query=domain.MessagesQueryFilter(state="Pending")) == []


def test_the_sync_client_cancels_a_pending_message_and_gets_409_after(
    base_url: str, admin_key: str, app_phone: PairedDevice
) -> None:
    with client.APIClient("integrator", admin_key, base_url=base_url) as api:
        later = datetime.now(UTC) + timedelta(hours=2)
        state = api.send(
            domain.Message(
                phone_numbers=["+15551230003"],
                text_message=domain.TextMessage(text="Reminder"),
                valid_until=later.replace(tzinfo=None),  # naive, as many scripts send it
            )
        )
        message = Message.objects.get(source="thirdparty")
        assert message.expires_at is not None
        assert abs((message.expires_at - later).total_seconds()) < 1
        api.cancel_message(state.id)
        assert api.get_state(state.id).state == ProcessState.Cancelled
        # The client's DELETE raises requests' own error rather than its APIError.
        with pytest.raises(requests.HTTPError) as refused:
            api.cancel_message(state.id)
        assert refused.value.response is not None
        assert refused.value.response.status_code == 409


def test_the_sync_client_manages_devices_webhooks_settings_and_health(
    base_url: str, admin_key: str, app_phone: PairedDevice
) -> None:
    with client.APIClient("integrator", admin_key, base_url=base_url) as api:
        devices = api.list_devices()
        assert [d.id for d in devices] == [app_phone.device.pk]
        assert devices[0].name == app_phone.device.name
        assert devices[0].last_seen is not None

        created = api.create_webhook(
            domain.Webhook(
                id=None,
                url="http://127.0.0.1:9/hook",
                event=WebhookEvent.SMS_RECEIVED,
                device_id=app_phone.device.pk,
            )
        )
        assert created.id
        assert created.event == WebhookEvent.SMS_RECEIVED
        listed = api.get_webhooks()
        assert [(w.id, w.event, w.device_id) for w in listed] == [
            (created.id, WebhookEvent.SMS_RECEIVED, app_phone.device.pk)
        ]
        api.delete_webhook(created.id)
        assert api.get_webhooks() == []

        api.update_settings(
            domain.DeviceSettings(
                messages=domain.SettingsMessages(send_interval_min=5, send_interval_max=10),
                webhooks=domain.SettingsWebhooks(signing_key="fleet-key", retry_count=3),
            )
        )
        api.patch_settings(domain.DeviceSettings(ping=domain.SettingsPing(interval_seconds=60)))
        settings = api.get_settings()
        assert settings.messages is not None and settings.messages.send_interval_max == 10
        assert settings.ping is not None and settings.ping.interval_seconds == 60
        # The signing key is write-only.
        assert settings.webhooks is not None and settings.webhooks.signing_key is None
        assert settings.webhooks.retry_count == 3

        for check in (api.health_check, api.liveness_check, api.readiness_check):
            assert check().status.value == "pass"
        assert api.startup_check().status.value == "pass"


def test_the_sync_client_runs_the_token_flow(
    base_url: str, admin_key: str, app_phone: PairedDevice
) -> None:
    with client.APIClient("integrator", admin_key, base_url=base_url) as api:
        token = api.generate_token(
            domain.TokenRequest(scopes=["messages:send", "messages:read"], ttl=600)
        )
        assert token.token_type == "Bearer"
        assert token.refresh_token
    # Login None: the client sends `Bearer <password>`, here the JWT.
    with client.APIClient(None, token.access_token, base_url=base_url) as jwt_api:
        sent = jwt_api.send(
            domain.Message(phone_numbers=["+15551230004"], text_message=domain.TextMessage("Hi"))
        )
        assert jwt_api.get_state(sent.id).state == ProcessState.Pending
        with pytest.raises(APIError) as outside_scope:
            jwt_api.list_devices()
        assert outside_scope.value.status_code == 403
        renewed = jwt_api.refresh_token(token.refresh_token or "")
        assert renewed.id != token.id
        # The refresh revoked the old pair.
        with pytest.raises(APIError) as revoked:
            jwt_api.get_state(sent.id)
        assert revoked.value.status_code == 401
    with client.APIClient(None, renewed.access_token, base_url=base_url) as renewed_api:
        assert renewed_api.get_state(sent.id).id == sent.id
        with client.APIClient("integrator", admin_key, base_url=base_url) as api:
            api.revoke_token(renewed.id)
        with pytest.raises(APIError) as gone:
            renewed_api.get_state(sent.id)
        assert gone.value.status_code == 401


def test_the_async_client_with_aiohttp_sends_reads_and_cancels(
    base_url: str, staff_key: str, app_phone: PairedDevice
) -> None:
    async def run() -> tuple[Any, Any, Any]:
        async with (
            ahttp.AiohttpAsyncHttpClient() as http,
            client.AsyncAPIClient(
                "integrator", staff_key, base_url=base_url, http_client=http
            ) as api,
        ):
            sent = await api.send(
                domain.Message(
                    phone_numbers=["+15551230005"],
                    text_message=domain.TextMessage(text="Async hello"),
                    id="async-1",
                )
            )
            read = await api.get_state("async-1")
            await api.cancel_message("async-1")
            after = await api.get_state("async-1")
            return sent, read, after

    sent, read, after = asyncio.run(run())
    assert sent.id == "async-1" and read.state == ProcessState.Pending
    assert after.state == ProcessState.Cancelled
    message = AppMessage.objects.get(pk="async-1").recipients.get().message
    assert message is not None and message.status == "cancelled"


def test_the_async_client_gets_the_token_and_the_webhooks(
    base_url: str, admin_key: str, app_phone: PairedDevice
) -> None:
    async def run() -> tuple[Any, list[Any]]:
        async with (
            ahttp.AiohttpAsyncHttpClient() as http,
            client.AsyncAPIClient(
                "integrator", admin_key, base_url=base_url, http_client=http
            ) as api,
        ):
            token = await api.generate_token(domain.TokenRequest(scopes=["webhooks:list"]))
            await api.create_webhook(
                domain.Webhook(
                    id="hook-1", url="http://127.0.0.1:9/x", event=WebhookEvent.SYSTEM_PING
                )
            )
        async with (
            ahttp.AiohttpAsyncHttpClient() as http,
            client.AsyncAPIClient(
                None, token.access_token, base_url=base_url, http_client=http
            ) as jwt_api,
        ):
            return token, await jwt_api.get_webhooks()

    token, hooks = asyncio.run(run())
    assert token.access_token
    assert [(h.id, h.event) for h in hooks] == [("hook-1", WebhookEvent.SYSTEM_PING)]


def test_the_sync_client_asks_the_phones_to_resend_their_inbox(
    base_url: str, admin_key: str, app_phone: PairedDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(wake, "send_to_groups", lambda pairs: seen.extend(pairs))
    since, until = datetime(2026, 12, 1), datetime(2026, 12, 2)
    with client.APIClient("integrator", admin_key, base_url=base_url) as api:
        api.refresh_inbox(domain.InboxRefreshRequest(since=since, until=until))
        api.export_inbox(
            domain.MessagesExportRequest(device_id=app_phone.device.pk, since=since, until=until)
        )
    assert [(group, m["event"]) for group, m in seen] == [
        ("phones", "MessagesExportRequested"),
        (f"phone.{app_phone.device.pk}", "MessagesExportRequested"),
    ]
    assert seen[0][1]["data"]["since"] == "2026-12-01T00:00:00+00:00"
