"""The app emulator against a fake mobile API on loopback: its wire shapes, its SSE reading and
reconnect timings, its reports and its signed webhooks follow the app's source."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from phones.smsgateway.emulator import AppPhone
from phones.smsgateway.emulator_state import NO_REPORT, Delays, Sim, failed
from phones.smsgateway.emulator_wire import (
    SseReader,
    app_timestamp,
    gson_dumps,
    java_string_hash,
    received_message_id,
)
from tests.phones.fake_mobile_server import FakeMobileServer, Recorded, wait_for

FAST = Delays(reconnect=(0.02, 0.05, 0.08), patch_retry=0.01, webhook_retry=0.01)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def message(id: str = "msg-1", numbers: tuple[str, ...] = ("+15550002222",), **extra: Any) -> dict:
    return {
        "id": id,
        "message": "Hello",
        "textMessage": {"text": "Hello"},
        "phoneNumbers": list(numbers),
        "simNumber": None,
        "withDeliveryReport": True,
        "state": "Pending",
        **extra,
    }


@pytest.fixture
def server() -> Iterator[FakeMobileServer]:
    fake = FakeMobileServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def phone(server: FakeMobileServer) -> Iterator[AppPhone]:
    emulated = AppPhone(server.base, "private-tok", delays=FAST)
    yield emulated
    emulated.stop()


def patches(server: FakeMobileServer) -> list[dict[str, Any]]:
    items = [r.json() for r in server.seen("PATCH", "/mobile/v1/message")]
    assert all(len(batch) == 1 for batch in items)  # one item per state change, as the app
    return [batch[0] for batch in items]


def hooks(server: FakeMobileServer) -> list[Recorded]:
    return server.seen("POST", "/hooks/")


def assert_signed(hook: Recorded, key: str = "s3cret-key") -> None:
    stamp = hook.headers["X-Timestamp"]
    expected = hmac.new(key.encode(), hook.body + stamp.encode(), hashlib.sha256).hexdigest()
    assert hook.headers["X-Signature"] == expected
    assert abs(int(stamp) - time.time()) < 5


def test_registration_and_start_up_calls_have_the_apps_wire_shape(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    phone.start()

    register = server.seen("POST", "/mobile/v1/device")[0]
    assert register.headers["Authorization"] == "Bearer private-tok"
    assert register.headers["User-Agent"] == "me.capcom.smsgateway/1.68.0"
    assert register.headers["Content-Type"] == "application/json; charset=UTF-8"
    body = register.json()
    assert list(body) == ["name", "simCards"]  # Gson leaves the null pushToken out
    assert body["simCards"] == [
        {
            "slotIndex": 0,
            "simNumber": 1,
            "phoneNumber": "********1111",
            "carrierName": "************rier",
            "iccid": "***************0001",
        }
    ]
    calls = [(r.method, r.path) for r in server.requests]
    assert calls == [
        ("POST", "/mobile/v1/device"),
        ("GET", "/mobile/v1/settings"),
        ("GET", "/mobile/v1/webhooks"),
        ("GET", "/mobile/v1/message?order=lifo"),
    ]
    assert all(r.headers["Authorization"] == "Bearer devtoken" for r in server.requests[1:])
    assert phone.device_id == "dev_1" and phone.signing_key == "s3cret-key"


def test_a_known_token_patches_the_device_and_registers_again_after_a_401(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    phone.register()
    phone.register()
    patch = server.seen("PATCH", "/mobile/v1/device")[0]
    assert patch.json() == {"id": "dev_1", "simCards": patch.json()["simCards"]}
    server.device_status["PATCH"] = 401
    phone.register()
    assert len(server.seen("POST", "/mobile/v1/device")) == 2


def test_a_pending_message_is_reported_in_the_apps_order_with_webhooks(
    server: FakeMobileServer,
) -> None:
    outcomes = {"+15550002222": NO_REPORT, "+15550003333": failed()}
    phone = AppPhone(server.base, "t", delays=FAST, outcome=lambda n: outcomes.get(n, NO_REPORT))
    server.messages = [message(numbers=("+15550002222", "+15550003333"))]
    phone.start()

    items = patches(server)
    assert [(i["state"], [r["state"] for r in i["recipients"]]) for i in items] == [
        ("Pending", ["Processed", "Pending"]),  # any Pending recipient keeps it Pending
        ("Processed", ["Processed", "Processed"]),
        ("Processed", ["Sent", "Processed"]),
        ("Sent", ["Sent", "Failed"]),
    ]
    last = items[-1]
    assert list(last) == ["id", "state", "recipients", "states"]
    assert last["recipients"][1]["error"].startswith("Send result: RESULT_ERROR_GENERIC_FAILURE")
    assert "error" not in last["recipients"][0]
    assert list(last["states"]) == ["Pending", "Processed", "Sent"]
    assert all(TS.match(t) for t in last["states"].values())
    sent, failure = (h.json() for h in hooks(server))
    assert list(sent) == ["id", "webhookId", "event", "deviceId", "payload"]
    assert (sent["event"], sent["webhookId"], sent["deviceId"]) == (
        "sms:sent",
        "wh-sms:sent",
        "dev_1",
    )
    assert sent["payload"] == {
        "partsCount": 1,
        "sentAt": sent["payload"]["sentAt"],
        "messageId": "msg-1",
        "sender": "+15550001111",
        "recipient": "+15550002222",
        "simNumber": 1,
        "phoneNumber": "+15550002222",
    }
    assert failure["event"] == "sms:failed" and failure["payload"]["reason"].startswith("Send")
    for hook in hooks(server):
        assert_signed(hook)


def test_delivery_reports_make_the_message_delivered(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.messages = [message()]
    phone.start()
    assert [i["state"] for i in patches(server)] == ["Processed", "Sent", "Delivered"]
    assert list(patches(server)[-1]["states"]) == ["Pending", "Processed", "Sent", "Delivered"]
    assert [h.json()["event"] for h in hooks(server)] == ["sms:sent", "sms:delivered"]


def test_no_delivery_report_is_asked_when_the_message_says_so(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.messages = [message(withDeliveryReport=False)]
    phone.start()
    assert patches(server)[-1]["state"] == "Sent"


def test_an_expired_message_fails_whole_without_being_sent(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    numbers = ("+15550002222", "+15550003333")
    server.messages = [message(numbers=numbers, validUntil="2020-01-01T00:00:00.000+00:00")]
    phone.start()
    (item,) = patches(server)
    assert item["state"] == "Failed" and list(item["states"]) == ["Pending", "Failed"]
    assert {r["error"] for r in item["recipients"]} == {"TTL expired"}
    assert [h.json()["payload"]["recipient"] for h in hooks(server)] == list(numbers)


def test_a_known_id_is_reported_again_and_never_sent_twice(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.messages = [message()]
    phone.start()
    before = len(hooks(server))
    phone.pull()
    again = patches(server)[-1]
    assert again["state"] == "Delivered" and len(patches(server)) == 4
    assert len(hooks(server)) == before


def test_a_cancelling_message_the_phone_never_had_is_reported_cancelled(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.messages = [message(state="Cancelling"), message("msg-2", state="Processed")]
    phone.start()
    (item,) = patches(server)
    assert item["state"] == "Cancelled" and list(item["states"]) == ["Cancelled"]
    assert item["recipients"] == [{"phoneNumber": "+15550002222", "state": "Cancelled"}]


def test_a_received_sms_is_a_signed_webhook_with_the_apps_message_id(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    phone.start()
    at = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
    message_id = phone.receive_sms("+15557654321", "Yes <please> & 'thanks'", received_at=at)

    (hook,) = hooks(server)
    assert_signed(hook)
    assert b"\\u003cplease\\u003e \\u0026 \\u0027thanks\\u0027" in hook.body  # Gson's escaping
    payload = hook.json()["payload"]
    assert payload == {
        "message": "Yes <please> & 'thanks'",
        "receivedAt": "2026-12-03T08:00:00.000Z",
        "messageId": message_id,
        "sender": "+15557654321",
        "recipient": "+15550001111",
        "simNumber": 1,
        "phoneNumber": "+15557654321",
    }
    assert message_id == received_message_id(
        "+15557654321", 1796284800000, 1, "Yes <please> & 'thanks'"
    )


def test_a_ping_is_the_apps_health_report(server: FakeMobileServer, phone: AppPhone) -> None:
    server.hook_events.append("system:ping")
    phone.start()
    phone.ping()
    (hook,) = hooks(server)
    assert_signed(hook)
    health = hook.json()["payload"]["health"]
    assert list(health) == ["version", "releaseId", "status", "checks"]
    assert health["status"] == "pass" and "messages:failed" in health["checks"]


def test_message_ids_follow_javas_hash_codes() -> None:
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -(2**31)
    # (((h("+1")·31 + Date(0).hashCode())·31 + 0)·31 + h("")) as unsigned hex
    assert received_message_id("+1", 0, None, "") == format((1382 * 31**3) & 0xFFFFFFFF, "x")
    later = received_message_id("+1", 1000, None, "")
    assert later != received_message_id("+1", 0, None, "")


def test_timestamps_are_javas_with_milliseconds_and_offset() -> None:
    moment = datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)
    assert app_timestamp(moment) == "2026-12-03T08:00:00.123Z"
    plus_one = timezone(timedelta(hours=1))
    assert app_timestamp(moment, plus_one) == "2026-12-03T09:00:00.123+01:00"
    assert app_timestamp(moment, timezone(timedelta(hours=-5, minutes=-30))).endswith("-05:30")


def test_gson_leaves_nulls_out_and_escapes_html() -> None:
    assert gson_dumps({"a": None, "b": [{"c": None, "d": "x=1"}]}) == '{"b":[{"d":"x\\u003d1"}]}'
    assert gson_dumps({"t": "é"}) == '{"t":"é"}'


def test_the_sse_reader_reads_events_comments_and_multiline_data() -> None:
    reader = SseReader()
    text = ":keepalive\n\nevent: MessageEnqueued\ndata: null\n\ndata: a\ndata:b\n\nevent: X\n\n"
    events = [e for line in text.split("\n") for e in reader.feed(line)]
    assert [(e.name, e.data) for e in events] == [("MessageEnqueued", "null"), (None, "a\nb")]
    assert reader.comments == ["keepalive"]


def test_the_stream_wakes_the_phone_and_each_event_does_what_the_app_does(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    phone.start_thread()
    wait_for(lambda: server.streams)
    stream = server.seen("GET", "/mobile/v1/events")[0]
    assert stream.headers["Accept"] == "text/event-stream"
    assert stream.headers["User-Agent"].startswith("okhttp/")
    assert stream.headers["Authorization"] == "Bearer devtoken"
    wait_for(lambda: len(server.seen("GET", "/mobile/v1/message")) == 2)  # start + connect

    server.messages = [message()]
    pushed = time.monotonic()
    server.push(":keepalive\n\nevent: MessageEnqueued\ndata: null\n\n")
    wait_for(lambda: len(patches(server)) == 3, timeout=2)
    assert phone.stream_events[0].name == "MessageEnqueued"
    assert phone.stream_events[0].at - pushed < 1
    assert phone.reader.comments == ["keepalive"]

    server.messages = [message("msg-2")]
    server.push('data: {"any": "thing"}\n\n')  # no event name means MessageEnqueued
    wait_for(lambda: len(patches(server)) == 6)
    server.push("event: WebhooksUpdated\ndata: null\n\nevent: SettingsUpdated\ndata: null\n\n")
    wait_for(lambda: len(server.seen("GET", "/mobile/v1/settings")) == 2)
    assert len(server.seen("GET", "/mobile/v1/webhooks")) == 2
    server.push('event: Bogus\ndata: null\n\nevent: MessageCancelled\ndata: {"messageId": "x"}\n\n')
    wait_for(lambda: len(phone.stream_events) == 6)
    assert any("unknown event 'Bogus'" in e for e in phone.errors)
    assert len(server.streams) == 1  # an unknown event does not drop the stream


def test_reconnects_wait_as_the_app_does_and_an_open_stream_resets_the_count(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.stream_mode = "fail"
    phone.start_thread()
    wait_for(lambda: len(phone.reconnect_waits) >= 12)
    assert phone.reconnect_waits[:12] == [0.02] * 5 + [0.05] * 5 + [0.08] * 2
    server.stream_mode = "open"
    wait_for(lambda: server.streams)
    seen = len(phone.reconnect_waits)
    server.close_streams()  # a clean end after an open stream waits the first delay again
    wait_for(lambda: len(phone.reconnect_waits) > seen)
    assert phone.reconnect_waits[seen] == 0.02


def test_the_default_delays_are_the_apps() -> None:
    waits = [Delays().reconnect_after(n) for n in range(1, 13)]
    assert waits == [5.0] * 5 + [30.0] * 5 + [60.0] * 2


def test_webhook_retries_are_bounded_by_the_settings_retry_count(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.hook_status = 500
    phone.start()
    phone.receive_sms("+15557654321", "hi")
    assert len(hooks(server)) == 3  # the emulator's bound (webhook_attempts)
    server.settings["webhooks"]["retry_count"] = 1
    phone.sync_settings()
    phone.receive_sms("+15557654321", "again")
    assert len(hooks(server)) == 5  # one try and one retry
    (first, second) = hooks(server)[3:]
    assert first.body == second.body and first.json()["id"] == second.json()["id"]


def test_settings_stop_at_the_first_group_the_app_would_refuse(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    server.settings = {
        "messages": {"processing_order": "FIFO"},
        "gateway": {"cloud_url": "http://192.168.1.10:8000/api/mobile/v1"},
        "webhooks": {"signing_key": "never-applied"},
    }
    phone.start()
    assert any("cloud_url must start with https://" in e for e in phone.errors)
    assert phone.settings == {"messages": {"processing_order": "FIFO"}}
    assert len(phone.webhooks) == 4  # the other syncs still ran
    assert server.seen("GET", "/mobile/v1/message?order=fifo")


@pytest.mark.parametrize(
    ("group", "values"),
    [
        ("webhooks", {"retry_count": 0}),
        ("gateway", {"notification_channel": "FCM"}),
        ("messages", {"limit_period": "PerWeek"}),
        ("messages", {"log_lifetime_days": "soon"}),
    ],
)
def test_values_the_app_refuses_fail_the_settings_sync(
    server: FakeMobileServer, phone: AppPhone, group: str, values: dict[str, Any]
) -> None:
    server.settings = {group: values}
    phone.register()
    with pytest.raises(ValueError, match=f"Failed to import {group}"):
        phone.sync_settings()


def test_an_unknown_webhook_event_keeps_the_previous_list(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    phone.start()
    server.extra_hooks = [{"id": "x", "url": server.url + "/hooks/x", "event": "sms:exploded"}]
    with pytest.raises(ValueError):
        phone.sync_webhooks()
    assert len(phone.webhooks) == 4


def test_app_started_reaches_the_webhooks_known_before_the_start(server: FakeMobileServer) -> None:
    server.hook_events.append("app:started")
    phone = AppPhone(server.base, "t", delays=FAST, sims=[Sim(0, "+15550001111", None, None, 7)])
    phone.start()
    assert hooks(server) == []  # first start: no device id, no webhooks yet
    phone.start()
    (hook,) = hooks(server)
    assert hook.json()["payload"] == {
        "simCards": [{"slotIndex": 0, "simNumber": 1, "phoneNumber": "+15550001111"}]
    }


def test_an_export_request_sends_the_received_messages_of_the_period_again(
    server: FakeMobileServer, phone: AppPhone
) -> None:
    phone.start_thread()
    wait_for(lambda: server.streams)
    at = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    phone.receive_sms("+15557654321", "old", received_at=at - timedelta(days=2))
    phone.receive_sms("+15557654321", "new", received_at=at)
    data = {"since": "2026-12-03T00:00:00Z", "until": "2026-12-04T00:00:00Z"}
    server.push(f"event: MessagesExportRequested\ndata: {json.dumps(data)}\n\n")
    wait_for(lambda: len(hooks(server)) == 3)
    assert hooks(server)[-1].json()["payload"]["message"] == "new"
