"""Re-routing end to end (docs/routing.md#re-routing): two phones speaking their own doors over
HTTP (the SMS Gateway app and MSync), a Twilio app sending to a real local HTTP server standing
in for Twilio, and a webhook endpoint on the same server. The service rules are in
test_rerouting.py; these tests prove the doors, the sweep, the provider send and the webhook
carry them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs

import pytest
from django.utils import timezone
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient
from standardwebhooks import Webhook
from werkzeug import Request, Response

from devices.tasks import check_device_heartbeats
from messaging.models import Message, ProviderApp
from messaging.policy import update_policy
from messaging.tasks import reroute_waiting_messages
from providers.services import create_provider_app
from providers.tasks import send_via_provider
from tests.devices.conftest import MSync
from tests.factories import paired_device
from tests.phones.conftest import AppPhone, app_phone
from tests.providers.conftest import TWILIO_SID, TWILIO_TOKEN, post_form, twilio_signature
from webhooks.models import Delivery
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db

TO = "+254722000444"
TWILIO_PATH = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
# What each door says when the radio could not send: retryable, so the message moves.
APP_FAILURE = "Send result: RESULT_ERROR_GENERIC_FAILURE"
MSYNC_FAILURE = "RESULT_ERROR_NO_SERVICE"


class Phone(Protocol):
    """A simulated phone: it polls for messages and reports what became of them."""

    @property
    def device_id(self) -> str: ...

    @property
    def failure(self) -> str: ...  # the retryable reason this door reports

    def poll(self) -> list[str]: ...

    def report(self, message_id: str, state: str, error: str = "") -> None: ...


@dataclass
class AppDoorPhone:
    """The SMS Gateway for Android app: `GET /message`, `PATCH /message`."""

    app: AppPhone
    failure: str = APP_FAILURE

    @property
    def device_id(self) -> str:
        return self.app.device.pk

    def poll(self) -> list[str]:
        response = self.app.get("/message")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()]

    def report(self, message_id: str, state: str, error: str = "") -> None:
        name = state.capitalize()
        recipient: dict[str, Any] = {"phoneNumber": TO, "state": name}
        if error:
            recipient["error"] = error
        body = [{"id": message_id, "state": name, "recipients": [recipient]}]
        assert self.app.patch("/message", body).status_code == 204


@dataclass
class MSyncPhone:
    """An MSync phone: `outgoing` polls, `delivery` reports by the uuid it was handed."""

    msync: MSync
    failure: str = MSYNC_FAILURE
    uuids: dict[str, str] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.msync.paired.device.pk

    def poll(self) -> list[str]:
        response = self.msync.post("outgoing")
        assert response.status_code == 200, response.content
        handed = response.json()["messages"]
        self.uuids.update({item["id"]: item["uuid"] for item in handed})
        return [item["id"] for item in handed]

    def report(self, message_id: str, state: str, error: str = "") -> None:
        report = {"uuid": self.uuids[message_id], "status": state}
        if error:
            report["error"] = error
        response = self.msync.post("delivery", reports=[report])
        assert response.status_code == 200, response.content


def app_door_phone(limit_per_day: int) -> AppDoorPhone:
    phone = app_phone(limit_per_day=limit_per_day)
    registered = phone.register()
    assert registered.status_code == 201, registered.content
    phone.token = registered.json()["token"]
    return AppDoorPhone(phone)


def msync_phone(limit_per_day: int) -> MSyncPhone:
    return MSyncPhone(MSync(paired_device(sims=1, limit_per_day=limit_per_day)))


DOORS: dict[str, Callable[[int], Phone]] = {"app": app_door_phone, "msync": msync_phone}


@dataclass
class World:
    first: Phone  # the pool's first choice: the most budget left today
    second: Phone
    twilio: ProviderApp
    server: HTTPServer
    api: APIClient
    provider_requests: list[dict[str, str]]

    def send(self, **fields: Any) -> dict[str, Any]:
        response = self.api.post(
            "/api/v1/messages", {"to": TO, "body": "Your code is 1234", **fields}, format="json"
        )
        assert response.status_code == 202, response.content
        return dict(response.json())

    def message(self, message_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/messages/{message_id}")
        assert response.status_code == 200
        return dict(response.json())

    def line(self, phone: Phone) -> str:
        return f"device {phone.device_id} SIM 1"


@pytest.fixture(
    params=[("app", "msync"), ("msync", "app")], ids=["app-then-msync", "msync-then-app"]
)
def world(
    request: pytest.FixtureRequest, httpserver: HTTPServer, admin_client: APIClient, settings: Any
) -> Iterator[World]:
    base = httpserver.url_for("").rstrip("/")
    settings.SMSGATE_TWILIO_API_URL = base
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = True
    settings.SMSGATE_PUBLIC_URL = "https://sms.example.org"
    first_door, second_door = request.param
    first = DOORS[first_door](100)
    second = DOORS[second_door](50)
    twilio = create_provider_app(
        provider="twilio",
        name="Twilio KE",
        credentials={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
        numbers=["+254709000111"],
    )
    seen: list[dict[str, str]] = []

    def fake_twilio(req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.get_data(as_text=True)).items()}
        seen.append(form)
        return Response(
            json.dumps({"sid": f"SM{len(seen):032d}", "status": "queued"}),
            status=201,
            content_type="application/json",
        )

    httpserver.expect_request(TWILIO_PATH, method="POST").respond_with_handler(fake_twilio)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    yield World(first, second, twilio, httpserver, admin_client, seen)


def rerouted(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail"] for event in events if event["status"] == "rerouted"]


def test_a_failure_on_one_phone_moves_the_message_to_the_other_which_delivers_it(world):
    sent = world.send()
    assert sent["device_id"] == world.first.device_id
    message_id = sent["id"]
    assert world.second.poll() == []  # not B's yet

    assert world.first.poll() == [message_id]
    world.first.report(message_id, "failed", world.first.failure)

    moved = world.message(message_id)
    assert (moved["status"], moved["device_id"]) == ("queued", world.second.device_id)
    assert world.first.poll() == []  # the app would re-offer an unreported hand-out: not this
    assert world.second.poll() == [message_id]
    world.second.report(message_id, "sent")
    world.second.report(message_id, "delivered")

    done = world.message(message_id)
    assert (done["status"], done["device_id"], done["sim_slot"]) == (
        "delivered",
        world.second.device_id,
        1,
    )
    assert done["from"] == Message.objects.get(pk=message_id).device.sims.get().number
    assert rerouted(done["events"]) == [
        f"{world.line(world.first)} → {world.line(world.second)}: failed ({world.first.failure})"
    ]
    statuses = [event["status"] for event in done["events"]]
    assert statuses.count("dispatched") == 2  # once per line, never twice on one
    assert world.first.poll() == [] and world.second.poll() == []


@pytest.mark.parametrize("failover", [None, False])
def test_a_pinned_message_fails_where_it_was_sent_and_the_other_phone_never_gets_it(
    world, failover
):
    fields = {"device_id": world.second.device_id}
    if failover is not None:
        fields["failover"] = failover
    message_id = world.send(**fields)["id"]

    assert world.first.poll() == []
    assert world.second.poll() == [message_id]
    world.second.report(message_id, "failed", world.second.failure)

    failed = world.message(message_id)
    assert (failed["status"], failed["reason"], failed["device_id"]) == (
        "failed",
        world.second.failure,
        world.second.device_id,
    )
    assert rerouted(failed["events"]) == []
    update_policy(reroute_after=0)
    assert reroute_waiting_messages() == {"rerouted": 0}
    assert world.first.poll() == [] and world.second.poll() == []


def test_failover_true_lets_a_named_phone_hand_the_message_on(world):
    message_id = world.send(device_id=world.second.device_id, failover=True)["id"]
    assert world.second.poll() == [message_id]
    world.second.report(message_id, "failed", world.second.failure)
    assert world.first.poll() == [message_id]
    assert world.message(message_id)["device_id"] == world.first.device_id


def test_a_message_on_a_phone_that_went_offline_moves_to_the_one_still_polling(world, settings):
    update_policy(reroute_after=1)
    message_id = world.send()["id"]
    assert world.message(message_id)["device_id"] == world.first.device_id

    # The first phone stops calling in; the second keeps polling.
    later = timezone.now() + timedelta(seconds=settings.SMSGATE_DEVICE_OFFLINE_AFTER + 5)
    with freeze_time(later):
        assert world.second.poll() == []
        assert check_device_heartbeats() == {"offline": 1}
        assert reroute_waiting_messages() == {"rerouted": 1}
        assert reroute_waiting_messages() == {"rerouted": 0}  # a second sweep finds nothing
        assert world.second.poll() == [message_id]
        world.second.report(message_id, "sent")

    done = world.message(message_id)
    assert (done["status"], done["device_id"]) == ("sent", world.second.device_id)
    assert rerouted(done["events"]) == [
        f"{world.line(world.first)} → {world.line(world.second)}: "
        f"device {world.first.device_id} is offline for 1 s or more"
    ]
    # Back online, the first phone finds nothing: the message is the second's.
    assert world.first.poll() == []


def test_with_both_phones_failing_the_fallback_app_sends_it_once(
    world, django_capture_on_commit_callbacks
):
    update_policy(fallback_app_id=world.twilio.pk, max_attempts=3)
    hook = world.api.post(
        "/api/v1/webhooks",
        {"url": world.server.url_for("/hook"), "events": ["sms.rerouted"]},
        format="json",
    )
    assert hook.status_code == 201, hook.content
    message_id = world.send()["id"]

    assert world.first.poll() == [message_id]
    world.first.report(message_id, "failed", world.first.failure)
    assert world.second.poll() == [message_id]
    with django_capture_on_commit_callbacks() as callbacks:
        world.second.report(message_id, "failed", world.second.failure)
    # The move enqueued the provider send once it committed; the worker runs it.
    assert any("schedule_provider_send" in getattr(cb, "__qualname__", "") for cb in callbacks)
    assert world.provider_requests == []

    assert send_via_provider(message_id) == "sent"
    assert send_via_provider(message_id) == "not due"  # a duplicate task sends nothing
    assert world.first.poll() == [] and world.second.poll() == []
    assert world.provider_requests == [
        {
            "To": TO,
            "From": "+254709000111",
            "Body": "Your code is 1234",
            "StatusCallback": f"https://sms.example.org/api/sms/apps/{world.twilio.pk}/receive"
            f"?message={message_id}",
        }
    ]
    twilio_reports(world, message_id, "delivered")

    done = world.message(message_id)
    assert (done["status"], done["app_id"], done["device_id"], done["from"]) == (
        "delivered",
        world.twilio.pk,
        None,
        "+254709000111",
    )
    app_line = f"provider app {world.twilio.pk}"
    assert rerouted(done["events"]) == [
        f"{world.line(world.first)} → {world.line(world.second)}: failed ({world.first.failure})",
        f"{world.line(world.second)} → {app_line}: failed ({world.second.failure})",
    ]

    # Each move is one sms.rerouted event, delivered signed to the real receiver.
    deliveries = Delivery.objects.filter(endpoint_id=hook.json()["id"]).order_by("event_id")
    assert [deliver_webhook(d.pk) for d in deliveries] == ["succeeded", "succeeded"]
    hooks = [r for r, _ in world.server.log if r.path == "/hook"]
    payloads = [Webhook(hook.json()["secret"]).verify(r.get_data(), dict(r.headers)) for r in hooks]
    assert [p["type"] for p in payloads] == ["sms.rerouted", "sms.rerouted"]
    assert [p["data"]["rerouted"] for p in payloads] == [
        {
            "from": world.line(world.first),
            "to": world.line(world.second),
            "reason": f"failed ({world.first.failure})",
        },
        {
            "from": world.line(world.second),
            "to": app_line,
            "reason": f"failed ({world.second.failure})",
        },
    ]
    assert {p["data"]["messageId"] for p in payloads} == {message_id}
    # Exactly one send reached the provider, however many moves and task runs there were.
    assert len(world.provider_requests) == 1


def twilio_reports(world: World, message_id: str, status: str) -> None:
    """Twilio's status callback, signed for the StatusCallback URL it was given."""
    sid = Message.objects.get(pk=message_id).provider_message_id
    params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "AccountSid": TWILIO_SID}
    url = world.provider_requests[-1]["StatusCallback"]
    response = post_form(
        APIClient(),
        url.removeprefix("https://sms.example.org"),
        params,
        HTTP_X_TWILIO_SIGNATURE=twilio_signature(url, params),
    )
    assert response.status_code == 200, response.content
