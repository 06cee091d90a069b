"""The third-party API over plain HTTP: bad input, ids, encrypted and data messages, reading,
cancelling, settings, webhooks and the wake-ups they send."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from devices import wake
from devices.models import Device, PhoneSettings
from messaging.models import Message, OptOut, Status
from messaging.services import record_status, send_message
from smsgate.crypto import hash_secret
from tests.factories import PairedDevice, paired_device
from tests.thirdparty.conftest import BASE
from thirdparty.models import AppMessage

pytestmark = pytest.mark.django_db

TEXT = {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "Hello"}}
ENCRYPTED_NUMBER = (
    "$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdHNhbHRzYWx0c2FsdA==$Y2lwaGVydGV4dGNpcGhlcg=="
)
ENCRYPTED_TEXT = (
    "$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdHNhbHRzYWx0c2FsdA==$dGV4dHRleHR0ZXh0dGV4dA=="
)


@pytest.fixture
def sent_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """What reaches the phones' stream groups once the change commits."""
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(wake, "send_to_groups", lambda pairs: seen.extend(pairs))
    return seen


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"textMessage": {"text": "x"}}, "phoneNumbers"),
        ({"phoneNumbers": [], "textMessage": {"text": "x"}}, "phoneNumbers"),
        ({"phoneNumbers": ["+1555"] * 101, "textMessage": {"text": "x"}}, "phoneNumbers"),
        (
            {"phoneNumbers": ["+15551230001", "+15551230001"], "textMessage": {"text": "x"}},
            "phoneNumbers",
        ),
        ({"phoneNumbers": ["12"], "textMessage": {"text": "x"}}, "phoneNumbers"),
        ({"phoneNumbers": ["+15551230001"]}, "textMessage"),
        ({**TEXT, "message": "also"}, "textMessage"),
        ({**TEXT, "id": "x" * 37}, "id"),
        ({**TEXT, "id": "a/b"}, "id"),
        ({**TEXT, "simNumber": 4}, "simNumber"),
        ({**TEXT, "priority": 300}, "priority"),
        ({**TEXT, "ttl": 2}, "ttl"),
        ({**TEXT, "ttl": 60, "validUntil": "2030-01-01T00:00:00"}, "ttl"),
        ({**TEXT, "validUntil": "tomorrow"}, "validUntil"),
        ({**TEXT, "scheduleAt": 5}, "scheduleAt"),
        ({**TEXT, "withDeliveryReport": "yes"}, "withDeliveryReport"),
        (
            {"phoneNumbers": ["+15551230001"], "dataMessage": {"data": "AAE=", "port": 70000}},
            "dataMessage",
        ),
        ([1, 2], "phoneNumbers"),
    ],
)
def test_bad_messages_are_400_and_store_nothing(
    admin_api: APIClient, app_phone: PairedDevice, body: Any, field: str
) -> None:
    response = admin_api.post(BASE + "/messages", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["data"]
    assert not Message.objects.exists() and not AppMessage.objects.exists()


def test_a_past_valid_until_and_an_unknown_device_are_clear_4xx(
    admin_api: APIClient, app_phone: PairedDevice
) -> None:
    past = admin_api.post(
        BASE + "/messages", {**TEXT, "validUntil": "2001-01-01T00:00:00"}, format="json"
    )
    assert 400 <= past.status_code < 500
    unknown = admin_api.post(BASE + "/messages", {**TEXT, "deviceId": "dev_nope"}, format="json")
    assert 400 <= unknown.status_code < 500
    assert not Message.objects.exists()


def test_a_duplicate_id_is_409(admin_api: APIClient, app_phone: PairedDevice) -> None:
    first = admin_api.post(BASE + "/messages", {**TEXT, "id": "same-id"}, format="json")
    assert first.status_code == 202
    assert first["Location"].endswith("/api/3rdparty/v1/messages/same-id")
    again = admin_api.post(BASE + "/messages", {**TEXT, "id": "same-id"}, format="json")
    assert again.status_code == 409
    assert Message.objects.count() == 1


def test_an_opted_out_recipient_fails_alone_and_all_refused_is_an_error(
    admin_api: APIClient, app_phone: PairedDevice
) -> None:
    OptOut.objects.create(phone="+15551230002")
    both = admin_api.post(
        BASE + "/messages",
        {"phoneNumbers": ["+15551230001", "+15551230002"], "textMessage": {"text": "x"}},
        format="json",
    )
    assert both.status_code == 202
    recipients = both.json()["recipients"]
    assert recipients[0]["state"] == "Pending"
    assert recipients[1]["state"] == "Failed" and "opted out" in recipients[1]["error"]
    alone = admin_api.post(
        BASE + "/messages",
        {"phoneNumbers": ["+15551230002"], "textMessage": {"text": "x"}, "id": "only-out"},
        format="json",
    )
    assert alone.status_code == 422
    assert not AppMessage.objects.filter(pk="only-out").exists()


def test_an_encrypted_message_is_stored_and_forwarded_opaque(
    admin_api: APIClient, app_phone: PairedDevice
) -> None:
    response = admin_api.post(
        BASE + "/messages",
        {
            "phoneNumbers": [ENCRYPTED_NUMBER],
            "textMessage": {"text": ENCRYPTED_TEXT},
            "isEncrypted": True,
            "id": "secret-1",
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["isEncrypted"] is True
    assert body["recipients"] == [{"phoneNumber": ENCRYPTED_NUMBER, "state": "Pending"}]
    message = Message.objects.get()
    assert (message.to_number, message.body) == (ENCRYPTED_NUMBER, ENCRYPTED_TEXT)
    assert message.device_id == app_phone.device.pk
    assert message.conversation_id is None
    assert message.metadata["app"]["isEncrypted"] is True
    assert admin_api.get(BASE + "/messages/secret-1").json()["textMessage"] == {
        "text": ENCRYPTED_TEXT
    }


def test_an_encrypted_message_needs_an_app_phone(admin_api: APIClient) -> None:
    paired_device(sims=1)  # an SMSSync/MSync phone cannot decrypt
    response = admin_api.post(
        BASE + "/messages",
        {
            "phoneNumbers": [ENCRYPTED_NUMBER],
            "textMessage": {"text": ENCRYPTED_TEXT},
            "isEncrypted": True,
        },
        format="json",
    )
    assert response.status_code == 422
    assert "decrypt" in response.json()["message"]


def test_every_smsgate_message_is_readable_and_listed_here(
    admin_api: APIClient, app_phone: PairedDevice
) -> None:
    # Pinned to the phone: a retryable failure of an unpinned message would move it to SIM 2.
    elsewhere = send_message(
        to="+15551230009", body="From the dashboard", device_id=app_phone.device.pk
    )
    record_status(message_id=elsewhere.pk, status=Status.DISPATCHED)
    record_status(message_id=elsewhere.pk, status=Status.FAILED, reason="RESULT_ERROR_NO_SERVICE")
    admin_api.post(
        BASE + "/messages",
        {
            "phoneNumbers": ["+15551230001", "+15551230002"],
            "textMessage": {"text": "x"},
            "id": "two",
        },
        format="json",
    )
    read = admin_api.get(BASE + f"/messages/{elsewhere.pk}").json()
    assert read["state"] == "Failed"
    assert read["recipients"] == [
        {"phoneNumber": "+15551230009", "state": "Failed", "error": "RESULT_ERROR_NO_SERVICE"}
    ]
    assert set(read["states"]) == {"Pending", "Processed", "Failed"}
    assert read["states"]["Failed"].endswith("+00:00")
    # Each smsgate message of an app message also leads to it.
    second = Message.objects.get(to_number="+15551230002")
    assert admin_api.get(BASE + f"/messages/{second.pk}").json()["id"] == "two"

    listed = admin_api.get(BASE + "/messages", {"limit": 1})
    assert listed["X-Total-Count"] == "2"
    assert [m["id"] for m in listed.json()] == ["two"]
    older = admin_api.get(BASE + "/messages", {"limit": 1, "offset": 1}).json()
    assert [m["id"] for m in older] == [elsewhere.pk]
    failed = admin_api.get(BASE + "/messages", {"state": "Failed"}).json()
    assert [m["id"] for m in failed] == [elsewhere.pk]
    assert admin_api.get(BASE + "/messages/nope").status_code == 404


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"state": "Done"}, {"from": "x"}]
)
def test_bad_list_queries_are_400(admin_api: APIClient, query: dict[str, Any]) -> None:
    assert admin_api.get(BASE + "/messages", query).status_code == 400


def test_cancelling_tells_the_phone_and_a_sent_message_is_409(
    admin_api: APIClient,
    app_phone: PairedDevice,
    sent_events: list[tuple[str, dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    admin_api.post(BASE + "/messages", {**TEXT, "id": "c1"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.delete(BASE + "/messages/c1")
    assert response.status_code == 200
    assert response.json()["state"] == "Cancelled"
    message = Message.objects.get()
    assert message.status == Status.CANCELLED
    assert sent_events == [
        (
            f"phone.{app_phone.device.pk}",
            {"type": "phone.event", "event": "MessageCancelled", "data": {"messageId": message.pk}},
        )
    ]
    admin_api.post(BASE + "/messages", {**TEXT, "id": "c2"}, format="json")
    record_status(message_id=Message.objects.get(status="queued").pk, status=Status.SENT)
    assert admin_api.delete(BASE + "/messages/c2").status_code == 409
    assert admin_api.delete(BASE + "/messages/none").status_code == 404


def test_settings_are_validated_merged_replaced_and_pushed(
    admin_api: APIClient,
    sent_events: list[tuple[str, dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    bad_bodies: list[Any] = [
        {"nope": {}},
        {"messages": {"send_interval_min": "5"}},
        {"messages": {"limit_period": "Sometimes"}},
        {"webhooks": {"internet_required": 1}},
        {"gateway": {"private_token": "x"}},
        {"ping": []},
        [],
    ]
    for bad in bad_bodies:
        assert admin_api.patch(BASE + "/settings", bad, format="json").status_code == 400, bad
    with django_capture_on_commit_callbacks(execute=True):
        patched = admin_api.patch(
            BASE + "/settings",
            {"webhooks": {"signing_key": "k1", "retry_count": 3}, "ping": {"interval_seconds": 30}},
            format="json",
        )
    assert patched.status_code == 200
    assert patched.json() == {"webhooks": {"retry_count": 3}, "ping": {"interval_seconds": 30}}
    assert sent_events[-1][1]["event"] == "SettingsUpdated"
    replaced = admin_api.put(BASE + "/settings", {"logs": {"lifetime_days": 7}}, format="json")
    assert replaced.json() == {"logs": {"lifetime_days": 7}, "webhooks": {}}
    # PUT replaced the groups but kept the write-only key.
    assert PhoneSettings.current().values["webhooks"] == {"signing_key": "k1"}
    assert "signing_key" not in str(admin_api.get(BASE + "/settings").json())


def test_webhook_changes_and_inbox_refresh_wake_the_phones(
    admin_api: APIClient,
    allow_private: None,
    sent_events: list[tuple[str, dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = admin_api.post(
            BASE + "/webhooks",
            {"id": "w1", "url": "http://127.0.0.1:9/a", "event": "sms:sent"},
            format="json",
        )
        replaced = admin_api.post(
            BASE + "/webhooks",
            {"id": "w1", "url": "http://127.0.0.1:9/b", "event": "sms:delivered"},
            format="json",
        )
        deleted = admin_api.delete(BASE + "/webhooks/w1")
        refresh = admin_api.post(
            BASE + "/inbox/refresh",
            {"since": "2026-12-01T00:00:00", "until": "2026-12-02T00:00:00"},
            format="json",
        )
    assert (created.status_code, replaced.status_code, deleted.status_code) == (201, 201, 204)
    assert replaced.json() == {
        "id": "w1",
        "deviceId": None,
        "url": "http://127.0.0.1:9/b",
        "event": "sms:delivered",
    }
    assert refresh.status_code == 202
    events = [message["event"] for _, message in sent_events]
    assert events == ["WebhooksUpdated"] * 3 + ["MessagesExportRequested"]
    assert sent_events[-1][1]["data"]["since"] == "2026-12-01T00:00:00+00:00"
    assert admin_api.delete(BASE + "/webhooks/w1").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/a", "event": "sms:bogus"},
        {"url": "http://127.0.0.1:9/a", "event": "mms:received"},
        {"url": "ftp://127.0.0.1/a", "event": "sms:sent"},
        {"url": "http://127.0.0.1:9/a", "event": "sms:sent", "id": "x" * 40},
        {"event": "sms:sent"},
    ],
)
def test_bad_webhooks_are_400(admin_api: APIClient, allow_private: None, body: Any) -> None:
    assert admin_api.post(BASE + "/webhooks", body, format="json").status_code == 400


def test_a_webhook_id_of_another_smsgate_webhook_is_409(
    admin_api: APIClient, admin_client: APIClient, allow_private: None
) -> None:
    other = admin_client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/s"}, format="json")
    response = admin_api.post(
        BASE + "/webhooks",
        {"id": other.json()["id"], "url": "http://127.0.0.1:9/a", "event": "sms:sent"},
        format="json",
    )
    assert response.status_code == 409


def test_devices_are_listed_and_deleted(admin_api: APIClient, app_phone: PairedDevice) -> None:
    listed = admin_api.get(BASE + "/devices").json()
    assert listed[0]["simCards"][1] == {
        "slotIndex": 1,
        "simNumber": 2,
        "phoneNumber": app_phone.device.sims.get(slot=2).number,
    }
    assert admin_api.delete(BASE + f"/devices/{app_phone.device.pk}").status_code == 204
    assert admin_api.delete(BASE + f"/devices/{app_phone.device.pk}").status_code == 404
    assert admin_api.get(BASE + "/devices").json() == []


JUNK: list[Any] = [
    None,
    "text",
    17,
    [],
    {"phoneNumbers": "+15551230001", "textMessage": "x"},
    {"phoneNumbers": [None], "textMessage": {"text": None}},
    {"phoneNumbers": [["+1"]], "dataMessage": {"data": 1, "port": "x"}},
    {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x" * 5000}},
    {"phoneNumbers": ["x" * 300], "textMessage": {"text": "x"}, "isEncrypted": True},
    {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x"}, "ttl": 10**30},
    {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x"}, "scheduleAt": "9" * 100},
    {"phoneNumbers": ["+15551230001"], "textMessage": {"text": "x"}, "deviceId": ["d"]},
    {"url": None, "event": None, "id": 5},
    {"url": "http://127.0.0.1:9/" + "a" * 3000, "event": "sms:sent"},
    {"messages": {"limit_value": 10**20}},
    {"webhooks": {"signing_key": "a\x00b"}},
    {"scopes": "all", "ttl": "x"},
    {"scopes": [1], "ttl": -1},
    {"since": "2026-12-02", "until": "2026-12-01"},
]
WRITES = [
    ("post", "/messages"),
    ("post", "/webhooks"),
    ("put", "/settings"),
    ("patch", "/settings"),
    ("post", "/auth/token"),
    ("post", "/inbox/refresh"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_no_junk_body_is_a_server_error(
    admin_api: APIClient, app_phone: PairedDevice, allow_private: None, method: str, path: str
) -> None:
    for body in JUNK:
        response = getattr(admin_api, method)(BASE + path, body, format="json")
        assert 400 <= response.status_code < 500 or response.status_code in (200, 201, 202), (
            body,
            response.status_code,
        )
    raw = getattr(admin_api, method)(BASE + path, b"{not json", content_type="application/json")
    assert raw.status_code == 400


@pytest.mark.parametrize("ident", ["x" * 500, "%00", "msg_" + "9" * 60, "..", "a b"])
def test_odd_ids_in_paths_are_404_not_errors(admin_api: APIClient, ident: str) -> None:
    for method, path in (
        ("get", "/messages/"),
        ("delete", "/messages/"),
        ("delete", "/webhooks/"),
        ("delete", "/devices/"),
    ):
        response = getattr(admin_api, method)(BASE + path + ident)
        assert response.status_code in (400, 404), (method, path, ident, response.status_code)
    assert admin_api.delete(BASE + "/auth/token/" + "j" * 300).status_code == 204


def test_a_data_sms_goes_only_to_an_app_phone(admin_api: APIClient) -> None:
    plain = paired_device(sims=1)
    body = {"phoneNumbers": ["+15551230001"], "dataMessage": {"data": "AAEC", "port": 53739}}
    refused = admin_api.post(BASE + "/messages", body, format="json")
    assert refused.status_code == 422 and "data SMS" in refused.json()["message"]
    named = admin_api.post(BASE + "/messages", {**body, "deviceId": plain.device.pk}, format="json")
    assert named.status_code == 422
    assert not Message.objects.exists()

    app = paired_device(sims=1, online=False)
    Device.objects.filter(pk=app.device.pk).update(app_token_hash=hash_secret("app-token-2"))
    sent = admin_api.post(BASE + "/messages", {**body, "id": "data-1"}, format="json")
    assert sent.status_code == 202
    message = Message.objects.get()
    assert message.device_id == app.device.pk  # not the online SMSSync/MSync phone
    assert message.metadata["app"]["dataPort"] == 53739
    assert admin_api.get(BASE + "/messages/data-1").json()["dataMessage"] == {
        "data": "AAEC",
        "port": 53739,
    }


def test_a_page_of_messages_costs_a_fixed_number_of_queries(
    admin_api: APIClient, app_phone: PairedDevice, django_assert_max_num_queries: Any
) -> None:
    def send(count: int) -> None:
        for n in range(count):
            admin_api.post(
                BASE + "/messages",
                {
                    "phoneNumbers": [f"+1555123{n:04d}", f"+1555124{n:04d}"],
                    "textMessage": {"text": "x"},
                },
                format="json",
            )
            send_message(to=f"+1555125{n:04d}", body="elsewhere")

    # Key, count, page, its events, its app messages with their recipients, messages and events.
    send(3)
    with django_assert_max_num_queries(8):
        assert len(admin_api.get(BASE + "/messages").json()) == 6
    send(10)
    with django_assert_max_num_queries(8):
        assert len(admin_api.get(BASE + "/messages").json()) == 26
