"""`simulate_device --protocol app` runs the app emulator against a mobile API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.models import Message, Status
from smsgate.crypto import hash_secret
from tests.factories import paired_device
from tests.phones.fake_mobile_server import FakeMobileServer
from tests.phones.test_app_emulator import message


@pytest.fixture
def server() -> Iterator[FakeMobileServer]:
    fake = FakeMobileServer().start()
    yield fake
    fake.stop()


def simulate(server: FakeMobileServer, *args: str) -> str:
    out = StringIO()
    call_command(
        "simulate_device", "--protocol", "app", "--server-url", server.base,
        "--private-token", "private-tok", *args, stdout=out, stderr=StringIO(),
    )  # fmt: skip
    return out.getvalue()


def test_once_registers_sends_reports_and_forwards_an_inbound_sms(
    server: FakeMobileServer,
) -> None:
    server.messages = [message(numbers=("+15550002222", "+15550003333"))]
    out = simulate(server, "--once", "--inbound", "+15557654321:Hello", "--fail-to", "+15550003333")

    assert "registered as dev_1; webhooks: 4" in out
    register = server.seen("POST", "/mobile/v1/device")[0]
    assert register.headers["Authorization"] == "Bearer private-tok"
    states = [r.json()[0]["state"] for r in server.seen("PATCH", "/mobile/v1/message")]
    assert states == ["Pending", "Processed", "Processed", "Sent", "Sent"]
    events = [r.json()["event"] for r in server.seen("POST", "/hooks/")]
    assert events == ["sms:sent", "sms:failed", "sms:delivered", "sms:received"]
    assert "report msg-1: Sent (HTTP 204)" in out


def test_rounds_hold_the_event_stream(server: FakeMobileServer) -> None:
    out = simulate(server, "--polls", "2", "--interval", "0.3", "--no-delivery")
    assert server.seen("GET", "/mobile/v1/events")
    assert "registered as dev_1" in out


def test_the_app_protocol_needs_the_private_token(server: FakeMobileServer) -> None:
    with pytest.raises(CommandError, match="private-token"):
        call_command("simulate_device", "--protocol", "app", "--once")


def test_a_refused_registration_is_a_command_error(server: FakeMobileServer) -> None:
    server.device_status["POST"] = 401
    with pytest.raises(CommandError, match="HTTP 401"):
        simulate(server, "--once")


def test_msync_still_needs_a_device_id() -> None:
    with pytest.raises(CommandError, match="--device-id"):
        call_command("simulate_device", "--token", "t", "--once")


@pytest.mark.django_db(transaction=True)
def test_once_against_smsgate_delivers_a_queued_message_and_stores_the_reply(
    live_server: Any, admin_client: Any
) -> None:
    private = "private-" + os.urandom(12).hex()
    device = paired_device(app_private_token_hash=hash_secret(private)).device
    sent = admin_client.post(
        "/api/v1/messages",
        {"to": "+14155550111", "body": "hi", "device_id": device.pk},
        format="json",
    )
    assert sent.status_code == 202, sent.content
    out = StringIO()
    call_command(
        "simulate_device", "--protocol", "app", "--server", live_server.url,
        "--private-token", private, "--inbound", "+14155550111:Thanks", "--once", stdout=out,
    )  # fmt: skip

    assert f"registered as {device.pk}" in out.getvalue()
    message = Message.objects.get(pk=sent.json()["id"])
    assert message.status == Status.DELIVERED
    reply = Message.objects.get(direction="inbound", body="Thanks")
    assert reply.device_id == device.pk
