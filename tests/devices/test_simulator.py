"""The phone simulator drives the whole loop over real HTTP against a live server."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.models import Message, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def paired(live_server, admin_client):
    data = admin_client.post(
        "/api/v1/devices",
        {"name": "Simulated", "sims": [{"slot": 1, "number": "+15550100001"}]},
        format="json",
    ).json()
    return data


def simulate(live_server, paired, *args: str) -> str:
    out = StringIO()
    call_command(
        "simulate_device",
        "--server",
        live_server.url,
        "--device-id",
        paired["id"],
        *args,
        "--once",
        stdout=out,
    )
    return out.getvalue()


@pytest.mark.parametrize("protocol", ["msync", "smssync"])
def test_api_send_poll_sent_delivered_and_inbound(
    live_server, admin_client, paired, protocol, tmp_path
):
    credentials = (
        ["--token", paired["token"]]
        if protocol == "msync"
        else ["--secret", paired["smssync_secret"]]
    )
    sent = admin_client.post(
        "/api/v1/messages",
        {"to": "+15557654321", "body": "Your code is 1234", "device_id": paired["id"]},
        format="json",
    ).json()
    inbound_file = tmp_path / "inbound.txt"
    inbound_file.write_text("+15557654321:Thanks, got it\n")

    output = simulate(
        live_server,
        paired,
        "--protocol",
        protocol,
        *credentials,
        "--inbound",
        "+15557654322:Hello from the simulator",
        "--inbound-file",
        str(inbound_file),
    )

    assert "send to +15557654321: Your code is 1234" in output
    message = admin_client.get(f"/api/v1/messages/{sent['id']}").json()
    assert message["status"] == Status.DELIVERED
    assert [e["status"] for e in message["events"]] == ["queued", "dispatched", "sent", "delivered"]
    inbound = admin_client.get("/api/v1/messages?direction=inbound").json()["results"]
    assert sorted((m["from"], m["body"]) for m in inbound) == [
        ("+15557654321", "Thanks, got it"),
        ("+15557654322", "Hello from the simulator"),
    ]
    assert all(m["device_id"] == paired["id"] for m in inbound)


def test_smssync_simulator_can_authenticate_with_basic_auth(live_server, admin_client, paired):
    Message.objects.all().delete()
    admin_client.post(
        "/api/v1/messages",
        {"to": "+15557654321", "body": "hi", "device_id": paired["id"]},
        format="json",
    )

    output = simulate(live_server, paired, "--protocol", "smssync", "--token", paired["token"])

    assert "send to +15557654321: hi" in output
    assert Message.objects.get().status == Status.DELIVERED


def test_wrong_credentials_stop_the_simulator(live_server, paired):
    with pytest.raises(CommandError):
        simulate(live_server, paired, "--token", "wrong", "--inbound", "+15550000000:x")
