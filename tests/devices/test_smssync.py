"""SMSSync requests replayed exactly as the Android app sends them (docs/phones/smssync.md)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from messaging.models import InboundRequest, Message, MessageEvent, Status
from tests.devices.conftest import TRANSACTION_STATEMENTS
from tests.factories import OutboundMessageFactory, PairedDevice, config_versions_as_migrated

pytestmark = pytest.mark.django_db

MESSAGE_ID = "9b2f6d0e-3c1a-4e8b-a7d5-61f0c2e4b839"


def form_body(secret: str, **overrides: str) -> str:
    # Field order as the app sends it: secret, from, message, sent_timestamp, sent_to,
    # message_id, device_id (OkHttp FormBody: space → +, + → %2B).
    fields = {
        "secret": secret,
        "from": "+254722000333",
        "message": "Meter 4471 reading 0032",
        "sent_timestamp": "1744029005123",
        "sent_to": "+254709000111",
        "message_id": MESSAGE_ID,
        "device_id": "kiosk-07",
    }
    fields.update(overrides)
    return urlencode(fields)


def post_form(client: Client, body: str, **extra: str):
    return client.post(
        "/api/sms/smssync", data=body, content_type="application/x-www-form-urlencoded", **extra
    )


def test_form_encoded_incoming_sms_is_stored_once_with_millisecond_timestamp(smssync_client, phone):
    response = post_form(smssync_client, form_body(phone.secret))

    assert response.status_code == 200
    assert response.json() == {"payload": {"success": True, "error": None}}
    message = Message.objects.get()
    assert message.direction == "inbound"
    assert message.status == Status.RECEIVED
    assert message.from_number == "+254722000333"
    assert message.to_number == "+254709000111"
    assert message.body == "Meter 4471 reading 0032"
    assert message.device_id == phone.device.pk
    assert message.received_at.isoformat() == "2025-04-07T12:30:05.123000+00:00"
    log = InboundRequest.objects.get()
    assert log.source == "smssync" and log.outcome == "accepted"
    assert log.headers["User-Agent"] == "SMSSync-Android/v3.1.1"
    assert b"secret=" in bytes(log.body)


def test_a_retried_message_id_creates_one_message(smssync_client, phone):
    first = post_form(smssync_client, form_body(phone.secret))
    second = post_form(smssync_client, form_body(phone.secret))

    assert first.json()["payload"]["success"] is True
    assert second.json() == {"payload": {"success": True, "error": None}}
    assert Message.objects.count() == 1
    assert list(InboundRequest.objects.order_by("id").values_list("outcome", flat=True)) == [
        "accepted",
        "duplicate",
    ]


def test_json_scheme_with_string_values_is_accepted(smssync_client, phone):
    # org.json's compact output: no spaces, every value a string.
    body = json.dumps(
        {
            "secret": phone.secret,
            "from": "+254722000333",
            "message": "Meter 4471 reading 0032",
            "sent_timestamp": "1744029005123",
            "sent_to": "+254709000111",
            "message_id": MESSAGE_ID,
            "device_id": "kiosk-07",
        },
        separators=(",", ":"),
    )
    response = smssync_client.post(
        "/api/sms/smssync", data=body, content_type="application/json; charset=UTF-8"
    )

    assert response.json() == {"payload": {"success": True, "error": None}}
    assert Message.objects.get().body == "Meter 4471 reading 0032"


def test_xml_body_labelled_as_json_is_accepted(smssync_client, phone):
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><payload><secret>{phone.secret}</secret>'
        "<from>+254722000333</from><message>Meter 4471 reading 0032</message>"
        "<sent_timestamp>1744029005123</sent_timestamp><sent_to>+254709000111</sent_to>"
        f"<message_id>{MESSAGE_ID}</message_id><device_id>kiosk-07</device_id></payload>"
    )
    response = smssync_client.post(
        "/api/sms/smssync", data=body, content_type="application/json; charset=UTF-8"
    )

    assert response.json() == {"payload": {"success": True, "error": None}}
    assert Message.objects.get().from_number == "+254722000333"


def test_timestamp_in_seconds_is_accepted(smssync_client, phone):
    post_form(smssync_client, form_body(phone.secret, sent_timestamp="1744029005"))

    assert Message.objects.get().received_at.isoformat() == "2025-04-07T12:30:05+00:00"


def test_a_wrong_secret_stores_nothing_but_the_log(smssync_client, phone):
    response = post_form(smssync_client, form_body("not-the-secret"))

    assert response.status_code == 200
    payload = response.json()["payload"]
    assert payload["success"] is False and payload["error"]
    assert Message.objects.count() == 0
    log = InboundRequest.objects.get()
    assert log.outcome == "rejected"


def test_basic_auth_in_the_sync_url_identifies_the_device(smssync_client, phone):
    import base64

    credentials = base64.b64encode(f"{phone.device.pk}:{phone.token}".encode()).decode()
    response = post_form(smssync_client, form_body(""), HTTP_AUTHORIZATION=f"Basic {credentials}")

    assert response.json()["payload"]["success"] is True
    assert Message.objects.get().device_id == phone.device.pk


def test_integration_test_button_gets_a_payload_and_stores_nothing(smssync_client, phone):
    body = urlencode(
        {
            "secret": phone.secret,
            "from": "+000000000000",
            "message": "Test Message From SMSSync Integration",
        }
    )
    response = post_form(smssync_client, body)

    assert response.json() == {"payload": {"success": True, "error": None}}
    assert Message.objects.count() == 0


def test_task_send_hands_out_queued_messages_once(smssync_client, phone):
    queued = OutboundMessageFactory(device=phone.device, sim_slot=1, to_number="+254722000333")

    response = smssync_client.get(f"/api/sms/smssync?task=send&secret={phone.secret}")
    again = smssync_client.get(f"/api/sms/smssync?task=send&secret={phone.secret}")

    assert response.status_code == 200
    assert response.json() == {
        "payload": {
            "task": "send",
            "secret": phone.secret,
            "messages": [{"to": "+254722000333", "message": "Hello", "uuid": str(queued.uuid)}],
        }
    }
    assert again.json()["payload"]["messages"] == []
    queued.refresh_from_db()
    assert queued.status == Status.DISPATCHED
    assert MessageEvent.objects.filter(message=queued, status="dispatched").count() == 1


def test_task_send_with_nothing_queued_still_lists_messages(smssync_client, phone):
    response = smssync_client.get(f"/api/sms/smssync?task=send&secret={phone.secret}")

    assert response.json() == {"payload": {"task": "send", "secret": phone.secret, "messages": []}}


def test_task_send_with_a_wrong_secret_fails(smssync_client, phone):
    OutboundMessageFactory(device=phone.device)

    response = smssync_client.get("/api/sms/smssync?task=send&secret=wrong")

    assert response.json()["payload"]["success"] is False
    assert Message.objects.get().status == Status.QUEUED


def test_task_sent_lists_only_uuids_dispatched_by_a_poll(smssync_client, phone):
    dispatched = OutboundMessageFactory(device=phone.device, status=Status.DISPATCHED)
    queued = OutboundMessageFactory(device=phone.device)
    body = json.dumps({"queued_messages": [str(dispatched.uuid), str(queued.uuid), "not-a-uuid"]})

    response = smssync_client.post(
        "/api/sms/smssync?task=sent", data=body, content_type="application/json; charset=UTF-8"
    )

    assert response.status_code == 200
    assert response.json() == {"message_uuids": [str(dispatched.uuid)]}


def test_task_result_poll_and_results(smssync_client, phone):
    message = OutboundMessageFactory(device=phone.device, status=Status.DISPATCHED)

    poll = smssync_client.get(f"/api/sms/smssync?task=result&secret={phone.secret}")
    assert poll.json() == {"message_uuids": [str(message.uuid)]}

    body = json.dumps(
        {
            "message_result": [
                {
                    "uuid": str(message.uuid),
                    "sent_result_code": 0,
                    "sent_result_message": "SMSSync Message Sent",
                    "delivered_result_code": -1,
                    "sent_timestamp": "Apr 7, 2025 3:30:05 PM",
                    "delivered_timestamp": "Apr 7, 2025 3:30:09 PM",
                }
            ]
        }
    )
    response = smssync_client.post(
        f"/api/sms/smssync?task=result&secret={phone.secret}",
        data=body,
        content_type="application/json; charset=UTF-8",
    )

    assert response.status_code == 200
    assert response.json()["payload"]["success"] is True
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert list(message.events.values_list("status", flat=True)) == ["sent", "delivered"]


def test_result_poll_survives_the_stale_integration_test_parameters(smssync_client, phone):
    OutboundMessageFactory(device=phone.device, status=Status.SENT)
    url = (
        f"/api/sms/smssync?task=result&secret={phone.secret}?secret={phone.secret}"
        "&from=%2B000000000000&message=Test+Message+From+SMSSync+Integration"
    )

    response = smssync_client.get(url)

    assert len(response.json()["message_uuids"]) == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ('["a list"]', "application/json"),
        ('{"secret": "x", "from": ["+1"], "message": "hi"}', "application/json"),
        (b"\xff\xfe\x00binary\x00", "application/octet-stream"),
        ("<payload><from>", "application/json"),
    ],
)
def test_malformed_bodies_get_the_failure_shape_and_are_logged(
    smssync_client, phone, body, content_type
):
    response = smssync_client.post("/api/sms/smssync", data=body, content_type=content_type)

    assert 400 <= response.status_code < 500
    assert response.json()["payload"]["success"] is False
    assert Message.objects.count() == 0
    assert InboundRequest.objects.get().outcome == "rejected"


def test_a_body_over_the_limit_is_refused_and_logged_truncated(smssync_client, phone, settings):
    settings.SMSGATE_MAX_BODY_BYTES = 64 * 1024
    body = form_body(phone.secret, message="x" * (64 * 1024 + 10))

    response = post_form(smssync_client, body)

    assert response.status_code == 413
    assert response.json()["payload"]["success"] is False
    log = InboundRequest.objects.get()
    assert log.body_truncated is True and len(bytes(log.body)) == 64 * 1024
    assert Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_incoming_sms_stays_within_its_query_budget(
    smssync_client, phone: PairedDevice, django_assert_max_num_queries
):
    config_versions_as_migrated()
    # A fresh process: the configuration version, then the rules and endpoints once.
    with django_assert_max_num_queries(9 + TRANSACTION_STATEMENTS):
        response = post_form(smssync_client, form_body(phone.secret, message_id="first"))
    assert response.json()["payload"]["success"] is True

    # Every later one: raw log, check-in, conversation, message, new conversation, the
    # version, raw-log outcome. The version read took the endpoints read's place; neither the
    # endpoints nor the rules are read while it holds.
    with django_assert_max_num_queries(7 + TRANSACTION_STATEMENTS) as captured:
        response = post_form(smssync_client, form_body(phone.secret, **{"from": "+254722000998"}))

    assert response.json()["payload"]["success"] is True
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert "automation_rule" not in sql and "webhooks_endpoint" not in sql


@pytest.fixture
def auto_reply(monkeypatch):
    """A stand-in for automation (the pipeline's step 2a): replies to every inbound message
    through its device."""
    from messaging.services import send_message

    def receiver(*, message, replies):
        replies.append(
            send_message(
                to=message.from_number,
                body=f"Got: {message.body}",
                device_id=message.device_id,
                sim_slot=message.sim_slot,
                source="automation",
            )
        )

    monkeypatch.setattr("pipeline.inbound.run_automation", receiver)


def test_instant_replies_come_back_in_the_payload_already_dispatched(
    smssync_client, phone, auto_reply, django_capture_on_commit_callbacks
):
    statuses_at_commit = []

    def remember_status():
        statuses_at_commit.extend(
            Message.objects.filter(direction="outbound").values_list("status", flat=True)
        )

    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        transaction.on_commit(remember_status)
        response = post_form(smssync_client, form_body(phone.secret))

    reply = Message.objects.get(direction="outbound")
    assert response.json() == {
        "payload": {
            "success": True,
            "error": None,
            "messages": [
                {
                    "to": "+254722000333",
                    "message": "Got: Meter 4471 reading 0032",
                    "uuid": str(reply.uuid),
                }
            ],
        }
    }
    assert reply.status == Status.DISPATCHED
    assert statuses_at_commit == [Status.DISPATCHED]
    # The reply is never offered again by a poll.
    poll = smssync_client.get(f"/api/sms/smssync?task=send&secret={phone.secret}")
    assert poll.json()["payload"]["messages"] == []


def test_a_retry_does_not_send_the_replies_again(smssync_client, phone, auto_reply):
    post_form(smssync_client, form_body(phone.secret))
    again = post_form(smssync_client, form_body(phone.secret))

    assert again.json() == {"payload": {"success": True, "error": None}}
    assert Message.objects.filter(direction="outbound").count() == 1


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"secret": "s", "from": "+1555\u0000", "message": "hi"}),
        json.dumps({"secret": "s", "from": "+15551234567", "message": "nul \u0000 inside"}),
        urlencode({"secret": "s", "from": "+1" * 50, "message": "hi"}),
    ],
)
def test_values_the_database_cannot_hold_are_refused_not_crashed_on(smssync_client, phone, body):
    body = body.replace('"s"', json.dumps(phone.secret)).replace(
        "secret=s", f"secret={phone.secret}"
    )
    content_type = (
        "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"
    )

    response = smssync_client.post("/api/sms/smssync", data=body, content_type=content_type)

    assert response.status_code == 400
    assert response.json()["payload"]["success"] is False
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/sms/smssync"),
        ("get", "/api/sms/smssync?task=dance"),
        ("get", "/api/sms/smssync?task=sent"),
        ("delete", "/api/sms/smssync?task=send"),
        ("get", "/api/sms/smssync?task=send&secret=%00"),
        ("get", "/api/sms/smssync?task=%00"),
    ],
)
def test_requests_that_mean_nothing_get_the_failure_shape(smssync_client, phone, method, url):
    response = getattr(smssync_client, method)(url)

    assert response.status_code in (200, 400)
    assert response.json()["payload"]["success"] is False
    assert InboundRequest.objects.get().outcome == "rejected"


def test_put_is_accepted_like_post(smssync_client, phone):
    response = smssync_client.put(
        "/api/sms/smssync",
        data=form_body(phone.secret),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.json()["payload"]["success"] is True
    assert Message.objects.count() == 1


def test_alphanumeric_senders_are_kept_as_received(smssync_client, phone):
    post_form(smssync_client, form_body(phone.secret, **{"from": "MPESA"}))

    assert Message.objects.get().from_number == "MPESA"


def test_built_in_help_reply_comes_back_in_the_same_answer(smssync_client, phone):
    response = post_form(smssync_client, form_body(phone.secret, message="HELP"))

    replies = response.json()["payload"]["messages"]
    assert len(replies) == 1 and replies[0]["to"] == "+254722000333"
    reply = Message.objects.get(uuid=replies[0]["uuid"])
    assert reply.status == Status.DISPATCHED and reply.device_id == phone.device.pk


def test_results_are_recorded_as_readable_event_details(smssync_client, phone):
    sent = OutboundMessageFactory(device=phone.device, status=Status.DISPATCHED)
    failed = OutboundMessageFactory(device=phone.device, status=Status.DISPATCHED)
    results = [
        {"uuid": str(sent.uuid), "sent_result_code": -1, "delivered_result_code": -1},
        {"uuid": str(failed.uuid), "sent_result_code": 1, "sent_result_message": "No service"},
    ]
    smssync_client.post(
        f"/api/sms/smssync?task=result&secret={phone.secret}",
        data=json.dumps({"message_result": results}),
        content_type="application/json",
    )

    assert list(sent.events.values_list("detail", flat=True)) == [
        "SMSSync: sent (result code -1), delivered",
        "SMSSync: sent (result code -1), delivered",
    ]
    assert list(failed.events.values_list("detail", flat=True)) == [
        "SMSSync: failed (result code 1): No service"
    ]
