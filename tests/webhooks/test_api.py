"""The webhooks API: endpoints, secrets and rotation, test pings, deliveries, retry, replay."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from messaging.models import Message
from webhooks.models import Delivery, Endpoint, Event
from webhooks.outbox import enqueue_forward
from webhooks.tasks import deliver_webhook

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {
    "id",
    "url",
    "format",
    "events",
    "filters",
    "history",
    "enabled",
    "disabled_reason",
    "created_at",
}


def test_creating_a_standard_webhook_shows_a_whsec_secret_once(
    admin_client: APIClient, allow_private: None
) -> None:
    response = admin_client.post(
        "/api/v1/webhooks",
        {
            "url": "http://127.0.0.1:9/hook",
            "format": "standard",
            "events": ["sms.received", "sms.failed"],
            "filters": {"device_id": "dev_x", "from": "+1555*"},
            "history": 10,
            "max_attempts": 5,
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert CONTRACT_FIELDS <= set(body)
    assert body["id"].startswith("whk_")
    assert body["events"] == ["sms.received", "sms.failed"]
    assert body["filters"] == {"device_id": "dev_x", "from": "+1555*"}
    assert body["history"] == 10
    assert body["max_attempts"] == 5
    assert body["enabled"] is True
    assert body["disabled_reason"] == ""
    assert body["created_at"].endswith("Z")
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    endpoint = Endpoint.objects.get(pk=body["id"])
    assert secret not in endpoint.secret_encrypted
    read = admin_client.get(f"/api/v1/webhooks/{body['id']}").json()
    assert "secret" not in read
    listed = admin_client.get("/api/v1/webhooks").json()
    assert [w["id"] for w in listed["results"]] == [body["id"]]
    assert listed["next"] is None
    assert "secret" not in listed["results"][0]


def test_defaults_subscribe_to_every_event(admin_client: APIClient, allow_private: None) -> None:
    body = admin_client.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, format="json"
    ).json()
    assert body["format"] == "standard"
    assert body["events"] == [
        "sms.received",
        "sms.sent",
        "sms.delivered",
        "sms.failed",
        "device.offline",
        "device.online",
    ]
    assert body["history"] == 0
    assert body["max_attempts"] == 8


def test_a_given_secret_is_used(admin_client: APIClient, allow_private: None) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
    body = admin_client.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "secret": secret}, format="json"
    ).json()
    assert body["secret"] == secret


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "url"),
        ({"url": "http://127.0.0.1:9/h", "format": "carrier-pigeon"}, "format"),
        ({"url": "http://127.0.0.1:9/h", "events": ["sms.exploded"]}, "events"),
        ({"url": "http://127.0.0.1:9/h", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/h", "history": 7}, "history"),
        ({"url": "http://127.0.0.1:9/h", "max_attempts": 0}, "max_attempts"),
        ({"url": "http://127.0.0.1:9/h", "secret": "whsec_short"}, "secret"),
        ({"url": "http://127.0.0.1:9/h", "secret": "not-whsec-at-all-but-long"}, "secret"),
        ({"url": "http://127.0.0.1:9/h", "filters": {"colour": "red"}}, "filters"),
        ({"url": "http://127.0.0.1:9/h", "filters": "nope"}, "filters"),
        ({"url": "ftp://example.org/h"}, "url"),
        ({"url": 12}, "url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    payload: dict[str, Any], field: str, admin_client: APIClient, allow_private: None
) -> None:
    response = admin_client.post("/api/v1/webhooks", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Endpoint.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://2130706433/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_private_urls_are_refused_at_creation(url: str, admin_client: APIClient) -> None:
    response = admin_client.post("/api/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]
    # The refusal tells a user how to allow a receiver on their own machine.
    assert "SMSGATE_WEBHOOKS_ALLOW_PRIVATE" in str(response.json()["error"]["fields"]["url"])
    assert Endpoint.objects.count() == 0


def test_the_metadata_address_is_refused_even_when_private_ones_are_allowed(
    admin_client: APIClient, allow_private: None
) -> None:
    response = admin_client.post(
        "/api/v1/webhooks", {"url": "http://169.254.169.254/"}, format="json"
    )
    assert response.status_code == 400


def test_a_name_that_does_not_resolve_yet_is_accepted(admin_client: APIClient) -> None:
    response = admin_client.post(
        "/api/v1/webhooks", {"url": "https://hooks.invalid/sms"}, format="json"
    )
    assert response.status_code == 201


def test_only_admins_manage_webhooks(
    staff_client: APIClient, anon_client: APIClient, bad_key_client: APIClient
) -> None:
    for client, status in ((staff_client, 403), (anon_client, 401), (bad_key_client, 401)):
        assert client.get("/api/v1/webhooks").status_code == status
        assert (
            client.post(
                "/api/v1/webhooks", {"url": "https://example.org/h"}, format="json"
            ).status_code
            == status
        )
    assert Endpoint.objects.count() == 0


def test_update_and_delete(
    admin_client: APIClient, create_webhook: Callable[..., dict[str, Any]]
) -> None:
    webhook = create_webhook("http://127.0.0.1:9/hook")
    url = f"/api/v1/webhooks/{webhook['id']}"
    response = admin_client.patch(
        url, {"events": ["sms.delivered"], "history": 20, "enabled": False}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["events"] == ["sms.delivered"]
    assert body["history"] == 20
    assert body["enabled"] is False
    assert body["disabled_reason"]
    assert admin_client.patch(url, {"format": "chat"}, format="json").status_code == 400
    assert admin_client.patch(url, {"history": 3}, format="json").status_code == 400
    body = admin_client.patch(url, {"enabled": True}, format="json").json()
    assert body["enabled"] is True
    assert body["disabled_reason"] == ""

    assert admin_client.delete(url).status_code == 204
    assert admin_client.get(url).status_code == 404
    assert admin_client.delete(url).status_code == 404
    assert admin_client.get("/api/v1/webhooks/whk_nothere").json()["error"]["code"] == "not_found"


def test_re_enabling_sends_what_waited(
    admin_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    receive()
    delivery = Delivery.objects.get(endpoint_id=webhook["id"])
    url = f"/api/v1/webhooks/{webhook['id']}"
    admin_client.patch(url, {"enabled": False}, format="json")
    assert deliver_webhook(delivery.pk) == "endpoint disabled"
    admin_client.patch(url, {"enabled": True}, format="json")
    assert deliver_webhook(delivery.pk) == "succeeded"


def test_rotation_signs_with_both_secrets_for_24_hours(
    admin_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    old = webhook["secret"]
    receiver.expect_request("/hook").respond_with_data("ok")
    start = timezone.now()
    with freeze_time(start) as clock:
        response = admin_client.post(f"/api/v1/webhooks/{webhook['id']}/rotate-secret")
        assert response.status_code == 200
        new = response.json()["secret"]
        assert new.startswith("whsec_") and new != old

        admin_client.post(f"/api/v1/webhooks/{webhook['id']}/test")
        request, _ = receiver.log[-1]
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            Webhook(secret).verify(request.get_data(), dict(request.headers))

        clock.move_to(start + timedelta(hours=24, seconds=1))
        admin_client.post(f"/api/v1/webhooks/{webhook['id']}/test")
        request, _ = receiver.log[-1]
        Webhook(new).verify(request.get_data(), dict(request.headers))
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(request.get_data(), dict(request.headers))


def test_the_test_action_sends_a_signed_ping(
    admin_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("pong")
    response = admin_client.post(f"/api/v1/webhooks/{webhook['id']}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["event"] == "ping"
    assert body["status"] == "succeeded"
    assert body["attempts"][0]["status_code"] == 200
    assert body["attempts"][0]["response_excerpt"] == "pong"
    request, _ = receiver.log[-1]
    payload = Webhook(webhook["secret"]).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "ping"
    assert payload["data"]["endpointId"] == webhook["id"]


def test_a_failing_test_ping_is_reported_not_retried(
    admin_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("nope", status=404)
    body = admin_client.post(f"/api/v1/webhooks/{webhook['id']}/test").json()
    assert body["status"] == "failed"
    assert body["attempts"][0]["error"] == "HTTP 404"
    assert body["next_attempt_at"] is None
    # A test ping never counts against the endpoint's health.
    assert Endpoint.objects.get(pk=webhook["id"]).failing_since is None


def test_deliveries_list_with_attempts_then_retry_and_replay(
    admin_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"), max_attempts=1)
    receiver.expect_ordered_request("/hook").respond_with_data("broken", status=500)
    receiver.expect_ordered_request("/hook").respond_with_data("fixed", status=200)
    receiver.expect_ordered_request("/hook").respond_with_data("again", status=200)
    receive()
    delivery = Delivery.objects.get(endpoint_id=webhook["id"])
    assert deliver_webhook(delivery.pk) == "failed"

    listed = admin_client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json()
    assert listed["next"] is None
    (item,) = listed["results"]
    assert item["id"] == delivery.pk
    assert item["event_id"] == delivery.event_id
    assert item["event"] == "sms.received"
    assert item["status"] == "failed"
    assert item["next_attempt_at"] is None
    (attempt,) = item["attempts"]
    assert set(attempt) >= {"at", "status_code", "duration_ms", "error", "response_excerpt"}
    assert attempt["status_code"] == 500
    assert attempt["response_excerpt"] == "broken"
    failed_only = admin_client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries?status=failed")
    assert len(failed_only.json()["results"]) == 1
    assert (
        admin_client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries?status=odd").status_code
        == 400
    )

    response = admin_client.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/retry")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert [a["status_code"] for a in body["attempts"]] == [500, 200]

    since = (delivery.created_at - timedelta(seconds=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            f"/api/v1/webhooks/{webhook['id']}/replay", {"since": since}, format="json"
        )
    assert response.status_code == 202
    assert response.json() == {"replayed": 1}
    assert len(callbacks) == 1
    assert deliver_webhook(delivery.pk) == "succeeded"
    ids = {r.headers["webhook-id"] for r, _ in receiver.log}
    assert ids == {delivery.event_id}
    assert Delivery.objects.get(pk=delivery.pk).attempts.count() == 3

    assert (
        admin_client.post(
            f"/api/v1/webhooks/{webhook['id']}/replay", {"since": "yesterday"}, format="json"
        ).status_code
        == 400
    )
    assert admin_client.post("/api/v1/webhooks/deliveries/dlv_nothere/retry").status_code == 404


def test_forward_to_an_endpoint_shares_the_event_with_subscriptions(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
) -> None:
    subscribed = create_webhook("http://127.0.0.1:9/sub")
    only_forwarded = create_webhook("http://127.0.0.1:9/fwd", events=["sms.delivered"])
    message = receive()
    enqueue_forward(message=message, endpoint_id=only_forwarded["id"])
    enqueue_forward(message=message, endpoint_id=subscribed["id"])
    event = Event.objects.get(message=message)
    assert sorted(d.endpoint_id for d in event.deliveries.all()) == sorted(
        [subscribed["id"], only_forwarded["id"]]
    )


def test_forward_to_an_ad_hoc_url_uses_a_hidden_endpoint(
    admin_client: APIClient,
    receive: Callable[..., Message],
    receiver: HTTPServer,
    allow_private: None,
) -> None:
    receiver.expect_request("/adhoc").respond_with_data("+OK")
    message = receive()
    enqueue_forward(message=message, url=receiver.url_for("/adhoc"), format="form")
    enqueue_forward(message=message, url=receiver.url_for("/adhoc"), format="form")
    delivery = Delivery.objects.get()
    assert delivery.endpoint.internal
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert admin_client.get("/api/v1/webhooks").json()["results"] == []


def test_forward_to_a_missing_endpoint_is_a_domain_error(receive: Callable[..., Message]) -> None:
    from smsgate.errors import NotFound

    message = receive()
    with pytest.raises(NotFound):
        enqueue_forward(message=message, endpoint_id="whk_gone")


def test_the_delivery_log_reads_in_a_fixed_number_of_queries(
    admin_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    django_assert_max_num_queries: Any,
) -> None:
    webhook = create_webhook("http://127.0.0.1:9/hook")
    for n in range(10):
        receive(body=f"message {n}", sender=f"+155512300{n:02d}")
    for delivery in Delivery.objects.all():
        deliver_webhook(delivery.pk)  # refused connection: one failed attempt each
    # Key lookup, the endpoint, the page of deliveries with their events, their attempts.
    with django_assert_max_num_queries(5):
        response = admin_client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries")
    assert len(response.json()["results"]) == 10
    assert all(len(d["attempts"]) == 1 for d in response.json()["results"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/webhooks/{id}"),
        ("patch", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/test"),
        ("post", "/api/v1/webhooks/{id}/rotate-secret"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        ("post", "/api/v1/webhooks/{id}/replay"),
        ("post", "/api/v1/webhooks/deliveries/dlv_x/retry"),
        ("get", "/api/v1/webhooks/deliveries/dlv_x"),
    ],
)
def test_staff_and_strangers_cannot_touch_an_endpoint(
    method: str,
    path: str,
    staff_client: APIClient,
    anon_client: APIClient,
    create_webhook: Callable[..., dict[str, Any]],
) -> None:
    webhook = create_webhook("http://127.0.0.1:9/hook")
    url = path.format(id=webhook["id"])
    assert getattr(staff_client, method)(url, {}, format="json").status_code == 403
    assert getattr(anon_client, method)(url, {}, format="json").status_code == 401
    assert Endpoint.objects.filter(pk=webhook["id"], enabled=True).exists()
