"""The outbox and its attempts: standard deliveries verified with the official library,
retries on a schedule, Retry-After, 410, exhaustion, the 5-day rule and the lost-message sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from werkzeug import Request, Response

from devices.signals import device_health_changed
from messaging.models import Message, Status
from messaging.services import record_status, send_message
from tests.factories import PairedDevice
from webhooks.delivery import requeue_lost_deliveries
from webhooks.models import Attempt, Delivery, Endpoint, Event
from webhooks.tasks import deliver_webhook, requeue_due_deliveries

pytestmark = pytest.mark.django_db


def _only_delivery(webhook: dict[str, Any]) -> Delivery:
    return Delivery.objects.select_related("event").get(endpoint_id=webhook["id"])


def test_an_inbound_sms_only_enqueues_and_the_worker_delivers_a_verifiable_event(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
    django_capture_on_commit_callbacks: Any,
    phone: PairedDevice,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"), events=["sms.received"])
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = receive(body="Meter 4471 reading 0032", sender="+15551230001", sim_slot=2)
    # The inbound path wrote the outbox rows and left the HTTP to a worker.
    assert len(receiver.log) == 0
    delivery = _only_delivery(webhook)
    assert delivery.status == "pending"
    assert delivery.event.type == "sms.received"
    # After commit the inbound path only publishes to the broker (in-memory in tests):
    # running its callbacks still makes no request; a worker does that.
    assert callbacks
    for callback in callbacks:
        callback()
    assert len(receiver.log) == 0
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.attempts.count() == 0

    assert deliver_webhook(delivery.pk) == "succeeded"
    request, _ = receiver.log[-1]
    payload = Webhook(webhook["secret"]).verify(request.get_data(), dict(request.headers))
    assert payload["id"] == delivery.event_id
    assert payload["id"].startswith("evt_")
    assert payload["type"] == "sms.received"
    assert payload["createdAt"].endswith("Z")
    assert payload["data"] == {
        "messageId": message.pk,
        "deviceId": phone.device.pk,
        "simSlot": 2,
        "from": "+15551230001",
        "to": phone.device.sims.get(slot=2).number,
        "body": "Meter 4471 reading 0032",
        "receivedAt": payload["data"]["receivedAt"],
        "metadata": {},
    }
    assert request.headers["webhook-id"] == delivery.event_id
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempts.get().status_code == 200

    # A duplicate broker message changes nothing.
    assert deliver_webhook(delivery.pk) == "skipped"
    assert len(receiver.log) == 1
    assert Attempt.objects.filter(delivery=delivery).count() == 1


def test_it_retries_500_500_200_with_the_same_webhook_id_and_ends_succeeded(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    for status in (500, 500, 200):
        receiver.expect_ordered_request("/hook").respond_with_data("x", status=status)
    receive()
    delivery = _only_delivery(webhook)
    start = timezone.now()
    with freeze_time(start) as clock:
        assert deliver_webhook(delivery.pk) == "retry scheduled"
        delivery.refresh_from_db()
        first_delay = (delivery.next_attempt_at - start).total_seconds()
        assert 4 <= first_delay <= 6  # 5 s ± 20 % jitter
        # Not due yet: a duplicate or early message does nothing.
        assert deliver_webhook(delivery.pk) == "skipped"

        clock.move_to(delivery.next_attempt_at)
        assert deliver_webhook(delivery.pk) == "retry scheduled"
        delivery.refresh_from_db()
        second_delay = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 240 <= second_delay <= 360  # 5 min ± 20 %

        clock.move_to(delivery.next_attempt_at)
        assert deliver_webhook(delivery.pk) == "succeeded"
        assert deliver_webhook(delivery.pk) == "skipped"

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert [a.status_code for a in delivery.attempts.all()] == [500, 500, 200]
    assert delivery.attempts.all()[0].error == "HTTP 500"
    ids = {r.headers["webhook-id"] for r, _ in receiver.log}
    assert ids == {delivery.event_id}
    stamps = [r.headers["webhook-timestamp"] for r, _ in receiver.log]
    assert len(set(stamps)) == 3  # each attempt is signed anew


def test_the_schedule_follows_the_contract_and_runs_out_as_failed(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("down", status=503)
    receive()
    delivery = _only_delivery(webhook)
    delays = []
    with freeze_time(timezone.now()) as clock:
        for _ in range(8):
            before = timezone.now()
            result = deliver_webhook(delivery.pk)
            delivery.refresh_from_db()
            if delivery.next_attempt_at:
                delays.append((delivery.next_attempt_at - before).total_seconds())
                clock.move_to(delivery.next_attempt_at)
    assert result == "failed"
    assert delivery.status == "failed"
    assert delivery.next_attempt_at is None
    assert delivery.attempts.count() == 8
    for delay, base in zip(delays, [5, 300, 1800, 7200, 18000, 36000, 36000], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    # Nothing is dropped: a failed delivery can be retried by hand.
    assert deliver_webhook(delivery.pk) == "skipped"


def test_retry_after_is_honoured(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "120"})
    )
    receive()
    delivery = _only_delivery(webhook)
    with freeze_time(timezone.now()):
        deliver_webhook(delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.next_attempt_at - timezone.now()).total_seconds() == pytest.approx(120)


def test_410_gone_fails_the_delivery_and_disables_the_endpoint(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
    admin_client: Any,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("gone", status=410)
    receive()
    delivery = _only_delivery(webhook)
    assert deliver_webhook(delivery.pk) == "failed"
    body = admin_client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert body["enabled"] is False
    assert "410" in body["disabled_reason"]
    # A disabled endpoint gets no new deliveries.
    receive(body="Another one", sender="+15551230002")
    assert Delivery.objects.filter(endpoint_id=webhook["id"]).count() == 1


def test_a_redirect_is_a_failed_attempt(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_response(
        Response("", status=301, headers={"Location": receiver.url_for("/elsewhere")})
    )
    receive()
    delivery = _only_delivery(webhook)
    assert deliver_webhook(delivery.pk) == "retry scheduled"
    attempt = delivery.attempts.get()
    assert attempt.status_code == 301
    assert "redirects are not followed" in attempt.error
    assert "/elsewhere" not in [r.path for r, _ in receiver.log]


def test_an_endpoint_failing_for_five_days_is_disabled(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("no", status=500)
    start = timezone.now()
    with freeze_time(start) as clock:
        receive(body="first", sender="+15551230001")
        first = _only_delivery(webhook)
        deliver_webhook(first.pk)
        assert Endpoint.objects.get(pk=webhook["id"]).failing_since == start
        clock.move_to(start + timedelta(days=5, minutes=1))
        receive(body="second", sender="+15551230002")
        second = Delivery.objects.exclude(pk=first.pk).get(endpoint_id=webhook["id"])
        deliver_webhook(second.pk)
    endpoint = Endpoint.objects.get(pk=webhook["id"])
    assert endpoint.enabled is False
    assert "5 days" in endpoint.disabled_reason


def test_a_success_resets_the_failure_clock(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_ordered_request("/hook").respond_with_data("no", status=500)
    receiver.expect_ordered_request("/hook").respond_with_data("yes")
    receive()
    delivery = _only_delivery(webhook)
    with freeze_time(timezone.now()) as clock:
        deliver_webhook(delivery.pk)
        assert Endpoint.objects.get(pk=webhook["id"]).failing_since is not None
        clock.move_to(Delivery.objects.get(pk=delivery.pk).next_attempt_at)
        deliver_webhook(delivery.pk)
    assert Endpoint.objects.get(pk=webhook["id"]).failing_since is None


def test_a_timeout_is_a_failed_attempt(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
    settings: Any,
) -> None:
    settings.SMSGATE_WEBHOOKS_TIMEOUT = 0.5
    webhook = create_webhook(receiver.url_for("/hook"))

    def slow(request: Request) -> Response:
        threading.Event().wait(1.5)
        return Response("late")

    receiver.expect_request("/hook").respond_with_handler(slow)
    receive()
    delivery = _only_delivery(webhook)
    assert deliver_webhook(delivery.pk) == "retry scheduled"
    attempt = delivery.attempts.get()
    assert attempt.status_code is None
    assert "No answer within 0.5 s" in attempt.error
    assert attempt.duration_ms is not None


def test_an_unsafe_destination_is_refused_again_at_delivery_time(
    receive: Callable[..., Message],
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
    settings: Any,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = False
    receive()
    delivery = _only_delivery(webhook)
    assert deliver_webhook(delivery.pk) == "retry scheduled"
    error = delivery.attempts.get().error
    assert error.startswith("refused:")
    assert "SMSGATE_WEBHOOKS_ALLOW_PRIVATE=true" in error
    assert len(receiver.log) == 0


def test_status_changes_become_sms_events(
    create_webhook: Callable[..., dict[str, Any]],
    receiver: HTTPServer,
    phone: PairedDevice,
) -> None:
    webhook = create_webhook(
        receiver.url_for("/hook"), events=["sms.sent", "sms.delivered", "sms.failed"]
    )
    receiver.expect_request("/hook").respond_with_data("ok")
    message = send_message(to="+15557654321", body="Your code is 1234", device_id=phone.device.pk)
    record_status(message_id=message.pk, status=Status.DISPATCHED)
    record_status(message_id=message.pk, status=Status.SENT)
    record_status(message_id=message.pk, status=Status.DELIVERED)
    # A late report never moves the status back and emits nothing.
    record_status(message_id=message.pk, status=Status.SENT)
    types = list(
        Event.objects.filter(message=message).order_by("id").values_list("type", flat=True)
    )
    assert types == ["sms.sent", "sms.delivered"]
    delivered = Delivery.objects.get(endpoint_id=webhook["id"], event__type="sms.delivered")
    deliver_webhook(delivered.pk)
    request, _ = receiver.log[-1]
    payload = Webhook(webhook["secret"]).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "sms.delivered"
    assert payload["data"]["messageId"] == message.pk
    assert payload["data"]["status"] == "delivered"
    assert payload["data"]["deliveredAt"].endswith("Z")
    assert payload["data"]["sentAt"].endswith("Z")
    assert payload["data"]["error"] is None


def test_a_failed_message_carries_its_reason(
    create_webhook: Callable[..., dict[str, Any]], phone: PairedDevice
) -> None:
    create_webhook("http://127.0.0.1:9/hook", events=["sms.failed"])
    message = send_message(to="+15557654321", body="Hello", device_id=phone.device.pk)
    record_status(message_id=message.pk, status=Status.DISPATCHED)
    record_status(message_id=message.pk, status=Status.FAILED, reason="generic failure")
    event = Event.objects.get(message=message, type="sms.failed")
    assert event.data["status"] == "failed"
    assert event.data["error"] == "generic failure"


def test_device_health_changes_become_device_events(
    create_webhook: Callable[..., dict[str, Any]], phone: PairedDevice
) -> None:
    webhook = create_webhook("http://127.0.0.1:9/hook", events=["device.offline"])
    device_health_changed.send(sender=type(phone.device), device=phone.device, online=False)
    device_health_changed.send(sender=type(phone.device), device=phone.device, online=True)
    delivery = Delivery.objects.select_related("event").get(endpoint_id=webhook["id"])
    assert delivery.event.type == "device.offline"
    assert delivery.event.data["deviceId"] == phone.device.pk
    assert delivery.event.data["online"] is False


def test_filters_pick_the_device_and_the_sender(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
) -> None:
    by_sender = create_webhook("http://127.0.0.1:9/a", filters={"from": "+1555123*"})
    by_device = create_webhook("http://127.0.0.1:9/b", filters={"device_id": "dev_other"})
    receive(sender="+15551230001")
    receive(sender="+15559990001", body="other sender")
    assert Delivery.objects.filter(endpoint_id=by_sender["id"]).count() == 1
    assert Delivery.objects.filter(endpoint_id=by_device["id"]).count() == 0


def test_unsubscribed_events_create_nothing(
    create_webhook: Callable[..., dict[str, Any]], receive: Callable[..., Message]
) -> None:
    create_webhook("http://127.0.0.1:9/a", events=["sms.delivered"])
    receive()
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_the_sweep_republishes_lost_deliveries_only(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhook = create_webhook("http://127.0.0.1:9/a")
    for n in range(3):
        receive(body=f"message {n}", sender=f"+1555123000{n}")
    lost, fresh, leased = Delivery.objects.filter(endpoint_id=webhook["id"]).order_by("id")
    now = timezone.now()
    Delivery.objects.filter(pk=lost.pk).update(enqueued_at=now - timedelta(minutes=5))
    Delivery.objects.filter(pk=leased.pk).update(
        enqueued_at=None, lease_until=now + timedelta(seconds=30)
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert requeue_due_deliveries() == {"requeued": 1}
    # Marked as published: the next sweep does not publish it again.
    assert requeue_lost_deliveries() == 0
    assert Delivery.objects.get(pk=fresh.pk).enqueued_at is not None


def test_an_attempt_cut_short_by_a_dead_worker_is_recovered(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    """The worker claimed the delivery and died: its lease expires, the sweep picks the
    delivery up again, and the interrupted attempt stays visible."""
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    receive()
    delivery = _only_delivery(webhook)
    past = timezone.now() - timedelta(minutes=2)
    Delivery.objects.filter(pk=delivery.pk).update(
        lease_until=past, enqueued_at=None, attempts_made=1
    )
    Attempt.objects.create(delivery=delivery, at=past - timedelta(seconds=20))
    assert requeue_lost_deliveries() == 1
    assert deliver_webhook(delivery.pk) == "succeeded"
    first, second = delivery.attempts.all()
    assert first.error.startswith("interrupted")
    assert second.succeeded


def test_two_endpoints_get_one_delivery_each_of_the_same_event(
    create_webhook: Callable[..., dict[str, Any]], receive: Callable[..., Message]
) -> None:
    create_webhook("http://127.0.0.1:9/a")
    create_webhook("http://127.0.0.1:9/b")
    message = receive()
    event = Event.objects.get(message=message)
    assert event.deliveries.count() == 2


def test_the_outbox_adds_a_constant_handful_of_queries_to_an_inbound_sms(
    create_webhook: Callable[..., dict[str, Any]], receive: Callable[..., Message]
) -> None:
    receive(body="warm-up", sender="+15551230009")
    with CaptureQueriesContext(connection) as without_endpoints:
        receive(body="no endpoints", sender="+15551230007")
    for n in range(5):
        create_webhook(f"http://127.0.0.1:9/{n}")
    with CaptureQueriesContext(connection) as with_endpoints:
        receive(body="counted", sender="+15551230008")
    # Endpoints, the event (looked up for a forward, then inserted), existing deliveries, one
    # bulk insert: five queries whatever the number of endpoints, one when there are none.
    assert len(with_endpoints) - len(without_endpoints) <= 4
    assert Delivery.objects.filter(event__message__body="counted").count() == 5


def test_an_outbound_message_keeps_working_without_endpoints(phone: PairedDevice) -> None:
    message = send_message(to="+15557654321", body="Hello", device_id=phone.device.pk)
    record_status(message_id=message.pk, status=Status.DISPATCHED)
    assert record_status(message_id=message.pk, status=Status.SENT)
    assert Message.objects.get(pk=message.pk).status == "sent"


def test_metrics_report_deliveries_by_outcome(
    admin_client: Any,
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    receive(body="one", sender="+15551230001")
    receive(body="two", sender="+15551230002")
    deliver_webhook(Delivery.objects.filter(endpoint_id=webhook["id"]).first().pk)
    response = admin_client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'smsgate_webhook_deliveries{status="succeeded"} 1.0' in text
    assert 'smsgate_webhook_deliveries{status="pending"} 1.0' in text
    assert 'smsgate_webhook_endpoints{state="enabled"} 1.0' in text


def test_a_silent_phone_emits_device_offline_through_the_devices_sweep(
    create_webhook: Callable[..., dict[str, Any]], phone: PairedDevice
) -> None:
    from devices.models import Device
    from devices.services import mark_offline_devices

    webhook = create_webhook("http://127.0.0.1:9/hook", events=["device.offline"])
    Device.objects.filter(pk=phone.device.pk).update(
        online=True, last_seen_at=timezone.now() - timedelta(hours=1)
    )
    assert mark_offline_devices() == 1
    assert mark_offline_devices() == 0
    delivery = Delivery.objects.select_related("event").get(endpoint_id=webhook["id"])
    assert delivery.event.type == "device.offline"
    assert delivery.event.data["deviceId"] == phone.device.pk


def test_a_successful_delivery_takes_two_queries_and_a_second_run_two(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    receiver: HTTPServer,
) -> None:
    """Claim the delivery, open the attempt and read its endpoint and event in one statement;
    record the success, the attempt and the endpoint's health in another. A duplicate run
    finds nothing to claim and looks up why."""
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement claim needs data-modifying CTEs (PostgreSQL)")
    webhook = create_webhook(receiver.url_for("/hook"))
    receiver.expect_request("/hook").respond_with_data("ok")
    receive()
    delivery = _only_delivery(webhook)
    with CaptureQueriesContext(connection) as queries:
        assert deliver_webhook(delivery.pk) == "succeeded"
    assert len(queries) <= 2
    with CaptureQueriesContext(connection) as again:
        assert deliver_webhook(delivery.pk) == "skipped"
    assert len(again) <= 2
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.succeeded and attempt.status_code == 200 and attempt.duration_ms is not None
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.lease_until is None
    assert delivery.completed_at is not None and delivery.attempts_made == 1


def test_a_success_after_the_lease_was_taken_over_leaves_the_delivery_to_its_new_owner(
    create_webhook: Callable[..., dict[str, Any]],
    receive: Callable[..., Message],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from webhooks.formats import standard
    from webhooks.formats.base import Outcome

    webhook = create_webhook("http://127.0.0.1:9/hook")
    receive()
    delivery = _only_delivery(webhook)
    Endpoint.objects.filter(pk=webhook["id"]).update(failing_since=timezone.now())
    other_lease = timezone.now() + timedelta(minutes=5)

    def slow_success(target: Any, **kwargs: Any) -> tuple[Outcome, None]:
        # Another worker took the delivery over while this request was running.
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=other_lease)
        return Outcome(True, status_code=200, excerpt="ok"), None

    monkeypatch.setattr(standard, "post", slow_success)
    assert deliver_webhook(delivery.pk) == "lease lost"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.lease_until == other_lease
    attempt = Attempt.objects.get(delivery=delivery)
    assert not attempt.succeeded and attempt.error == "finished after its lease expired"
    assert Endpoint.objects.get(pk=webhook["id"]).failing_since is not None
