"""The whole loop with the app emulator against a real daphne on loopback: a message sent
through the REST API wakes the phone's event stream, the phone pulls, sends and reports, the
message reads delivered, and the phone's reply arrives through its webhook in the inbox.

The event stream is ASGI only, so the server is a real daphne process on the test database
(PostgreSQL: the test's rows must be visible to another process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from phones.smsgateway.emulator import AppPhone
from phones.smsgateway.emulator_state import Delays
from smsgate.crypto import hash_secret
from smsgate.services import create_api_key
from tests.factories import paired_device
from tests.phones.fake_mobile_server import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

NUMBER = "+14155550111"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def daphne(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SMSGATE_PUBLIC_URL": url,
        # The integrator's webhook receiver below is a local server on loopback.
        "SMSGATE_WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    log = (tmp_path / "daphne.log").open("wb")
    daphne_bin = str(Path(sys.executable).parent / "daphne")
    argv = [daphne_bin, "-b", "127.0.0.1", "-p", str(port), "smsgate.asgi:application"]
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "daphne.log").read_text()[-3000:]
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(ready, timeout=30)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        log.close()


def _reports(phone: AppPhone) -> list[tuple[str, int | None]]:
    return [
        (json.loads(e.body or "[]")[0]["state"], e.status)
        for e in phone.exchanges
        if e.method == "PATCH" and e.url.endswith("/message")
    ]


def test_a_sent_message_wakes_the_app_which_reports_delivery_and_its_reply_reaches_the_inbox(
    daphne: str,
) -> None:
    private = "private-" + os.urandom(12).hex()
    device = paired_device(app_private_token_hash=hash_secret(private)).device
    api = requests.Session()
    api.headers["Authorization"] = "Bearer " + create_api_key(name="loop", role="admin").plaintext
    phone = AppPhone(f"{daphne}/api/mobile/v1", private, delays=Delays(reconnect=(0.2, 0.5, 1.0)))
    phone.start_thread()
    try:
        wait_for(lambda: phone.connected_at, timeout=10)
        assert phone.device_id == device.pk and phone.webhooks, phone.errors

        sent_at = time.monotonic()
        answer = api.post(
            f"{daphne}/api/v1/messages",
            json={"to": NUMBER, "body": "Your code is 1234", "device_id": device.pk},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        message_id = answer.json()["id"]

        woken = wait_for(
            lambda: [e for e in phone.stream_events if e.name == "MessageEnqueued"], timeout=2
        )
        assert woken[0].at - sent_at < 2

        def status() -> Any:
            return api.get(f"{daphne}/api/v1/messages/{message_id}", timeout=10).json()["status"]

        wait_for(lambda: status() == "delivered", timeout=5)
        assert _reports(phone) == [("Processed", 204), ("Sent", 204), ("Delivered", 204)]

        def hooks() -> list[tuple[str, int | None]]:
            posts = [e for e in phone.exchanges if e.method == "POST" and "/webhooks/" in e.url]
            return [(e.url.rsplit("/", 1)[1], e.status) for e in posts if e.status is not None]

        wait_for(lambda: len(hooks()) == 2)
        assert hooks() == [("sms:sent", 200), ("sms:delivered", 200)]

        phone.receive_sms(NUMBER, "Thanks, got it")

        def inbox() -> list[dict[str, Any]]:
            listing = api.get(
                f"{daphne}/api/v1/messages", params={"direction": "inbound"}, timeout=10
            ).json()
            return [m for m in listing["results"] if m["body"] == "Thanks, got it"]

        (reply,) = wait_for(inbox, timeout=5)
        assert reply["from"] == NUMBER and reply["device_id"] == device.pk
        assert not phone.errors
    finally:
        phone.stop()


def test_an_integrators_unchanged_client_script_drives_the_whole_loop(
    daphne: str, httpserver: Any, settings: Any
) -> None:
    """The issue's loop: the official client sends → the stream wakes the phone → it sends and
    reports Sent, Delivered → the client reads Delivered → the contact's reply comes back as
    the phone's webhook → automation answers it through the phone → the integrator's
    webhook fires (attempted here by the worker's task)."""
    from android_sms_gateway import client, domain
    from android_sms_gateway.enums import ProcessState, WebhookEvent

    from automation.services import create_rule
    from webhooks.models import Delivery
    from webhooks.tasks import deliver_webhook

    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    private = "private-" + os.urandom(12).hex()
    paired_device(app_private_token_hash=hash_secret(private))
    create_rule(
        name="Thanks",
        match={"keywords": ["THANKS"]},
        actions=[{"type": "reply", "text": "You're welcome!"}],
    )
    key = create_api_key(name="integrator", role="admin").plaintext
    httpserver.expect_request("/hooks/sms").respond_with_data("ok")
    phone = AppPhone(f"{daphne}/api/mobile/v1", private, delays=Delays(reconnect=(0.2, 0.5, 1.0)))
    phone.start_thread()
    try:
        wait_for(lambda: phone.connected_at, timeout=10)
        with client.APIClient("integrator", key, base_url=f"{daphne}/api/3rdparty/v1") as api:
            api.create_webhook(
                domain.Webhook(
                    id=None, url=httpserver.url_for("/hooks/sms"), event=WebhookEvent.SMS_RECEIVED
                )
            )
            sent_at = time.monotonic()
            state = api.send(
                domain.Message(
                    phone_numbers=[NUMBER],
                    text_message=domain.TextMessage(text="Your order has shipped"),
                )
            )
            woken = wait_for(
                lambda: [e for e in phone.stream_events if e.name == "MessageEnqueued"], timeout=2
            )
            assert woken[0].at - sent_at < 2
            wait_for(lambda: api.get_state(state.id).state == ProcessState.Delivered, timeout=5)

            phone.receive_sms(NUMBER, "THANKS")
            # Automation's reply goes out through the same phone, woken again.
            wait_for(lambda: len(_reports(phone)) >= 6, timeout=5)
            assert [s for s, _ in _reports(phone)][3:] == ["Processed", "Sent", "Delivered"]

        (delivery,) = wait_for(lambda: list(Delivery.objects.all()), timeout=5)
        assert deliver_webhook(delivery.pk) == "succeeded"
        (request, _response), *_ = httpserver.log
        envelope = json.loads(request.data)
        assert envelope["event"] == "sms:received"
        assert envelope["payload"]["message"] == "THANKS"
        assert envelope["payload"]["sender"] == NUMBER
        assert not phone.errors
    finally:
        phone.stop()
