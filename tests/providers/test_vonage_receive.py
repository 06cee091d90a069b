"""Vonage inbound SMS and delivery receipts, with worked signatures (docs/providers/vonage.md#signature)."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from messaging.models import InboundRequest, Message, ProviderMessagePart, Status
from messaging.services import send_message
from providers.services import create_provider_app
from providers.vonage import compute_signature, signature_base, signature_is_valid
from tests.providers.conftest import VONAGE_SECRET, post_form, receive_path

pytestmark = pytest.mark.django_db

# Vonage's documented examples (docs/providers/vonage.md#signature), signed with SHA-256 HMAC and secret s1gn4tur3S3cr3tK3y.
WORKED = {
    "msisdn": "254722000333",
    "to": "254709000111",
    "messageId": "1A0000000F3B7C21",
    "text": "Meter 4471 reading=0032 & ok",
    "type": "text",
    "keyword": "METER",
    "api-key": "a1b2c3d4",
    "message-timestamp": "2025-04-07 12:30:05",
    "timestamp": "1744029005",
    "nonce": "3f6c1b2a-9d8e-4c7b-a6f5-0e1d2c3b4a59",
    "sig": "C74A52C363850DB8941E82522B77EA209FE8B5E638C1A6C8E740E5B52E8E3AD1",
}
WORKED_BASE = (
    "&api-key=a1b2c3d4&keyword=METER&message-timestamp=2025-04-07 12:30:05"
    "&messageId=1A0000000F3B7C21&msisdn=254722000333"
    "&nonce=3f6c1b2a-9d8e-4c7b-a6f5-0e1d2c3b4a59&text=Meter 4471 reading_0032 _ ok"
    "&timestamp=1744029005&to=254709000111&type=text"
)


def unsigned(params):
    return {k: v for k, v in params.items() if k != "sig"}


def test_the_signature_base_string_is_the_worked_one():
    assert signature_base(WORKED) == WORKED_BASE


def test_the_worked_sha256_hmac_signature_is_reproduced():
    assert compute_signature(WORKED, VONAGE_SECRET, "sha256") == WORKED["sig"].lower()
    assert signature_is_valid(WORKED, VONAGE_SECRET, "sha256")
    assert signature_is_valid({**WORKED, "sig": WORKED["sig"].lower()}, VONAGE_SECRET, "sha256")


def test_the_worked_md5hash_signature_is_reproduced():
    assert compute_signature(WORKED, VONAGE_SECRET, "md5hash") == "e8b5551cb72090d4192404d18d215093"
    signed = {**WORKED, "sig": "E8B5551CB72090D4192404D18D215093"}
    assert signature_is_valid(signed, VONAGE_SECRET, "md5hash")


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_every_hmac_method_verifies(method):
    digest = hmac.new(VONAGE_SECRET.encode(), WORKED_BASE.encode(), getattr(hashlib, method))
    signed = {**WORKED, "sig": digest.hexdigest().upper()}
    assert signature_is_valid(signed, VONAGE_SECRET, method)
    assert not signature_is_valid({**signed, "text": "changed"}, VONAGE_SECRET, method)


def test_the_worked_get_request_is_stored_in_e164(vonage_app):
    response = Client().get(f"{receive_path(vonage_app)}?{urlencode(WORKED)}")
    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.from_number, message.to_number) == ("+254722000333", "+254709000111")
    assert message.body == "Meter 4471 reading=0032 & ok"
    assert message.provider_message_id == "1A0000000F3B7C21"
    assert message.received_at.isoformat() == "2025-04-07T12:30:05+00:00"
    assert InboundRequest.objects.get().outcome == "accepted"


def test_the_worked_json_post_is_stored(vonage_app):
    response = Client().post(
        receive_path(vonage_app), json.dumps(WORKED), content_type="application/json"
    )
    assert response.status_code == 200
    assert Message.objects.get().from_number == "+254722000333"


def test_the_worked_form_post_is_stored(vonage_app):
    assert post_form(Client(), receive_path(vonage_app), WORKED).status_code == 200
    assert Message.objects.count() == 1


def test_an_md5hash_app_accepts_the_worked_md5_signature(db):
    app = create_provider_app(
        provider="vonage",
        name="md5",
        credentials={
            "api_key": "a1b2c3d4",
            "api_secret": "x",
            "signature_secret": VONAGE_SECRET,
            "signature_method": "md5hash",
        },
    )
    params = {**WORKED, "sig": "e8b5551cb72090d4192404d18d215093"}
    assert Client().get(f"{receive_path(app)}?{urlencode(params)}").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {**WORKED, "text": "Meter 4471 reading=9999 & ok"},
        {**WORKED, "sig": "0" * 64},
        unsigned(WORKED),
    ],
    ids=["tampered", "wrong-sig", "no-sig"],
)
def test_a_bad_signature_is_403_and_stores_nothing(vonage_app, params):
    response = Client().get(f"{receive_path(vonage_app)}?{urlencode(params)}")
    assert response.status_code == 403
    assert not Message.objects.exists()
    assert InboundRequest.objects.get().outcome == "rejected"


def test_stale_timestamps_are_refused_when_a_max_age_is_set(vonage_app, settings):
    settings.SMSGATE_VONAGE_SIGNATURE_MAX_AGE = 300
    response = Client().get(f"{receive_path(vonage_app)}?{urlencode(WORKED)}")
    assert response.status_code == 403


def test_an_app_without_a_signature_secret_accepts_unsigned(unsigned_vonage_app):
    response = Client().get(f"{receive_path(unsigned_vonage_app)}?{urlencode(unsigned(WORKED))}")
    assert response.status_code == 200
    assert Message.objects.count() == 1


def test_a_retry_is_acknowledged_and_stored_once(vonage_app):
    url = f"{receive_path(vonage_app)}?{urlencode(WORKED)}"
    assert Client().get(url).status_code == 200
    assert Client().get(url).status_code == 200
    assert Message.objects.count() == 1
    assert InboundRequest.objects.order_by("id").last().outcome == "duplicate"


def test_an_empty_probe_is_acknowledged(vonage_app):
    assert Client().get(receive_path(vonage_app)).status_code == 200
    assert not Message.objects.exists()


def _part(n, total, text, message_id, ref="A7"):
    return {
        "msisdn": "254722000333",
        "to": "254709000111",
        "messageId": message_id,
        "text": text,
        "type": "text",
        "concat": "true",
        "concat-ref": ref,
        "concat-total": str(total),
        "concat-part": str(n),
        "message-timestamp": "2025-04-07 12:30:05",
    }


def test_concatenated_parts_are_reassembled_once_all_arrived(unsigned_vonage_app):
    path = receive_path(unsigned_vonage_app)
    parts = [_part(3, 3, "three.", "P3"), _part(1, 3, "One, ", "P1"), _part(2, 3, "two, ", "P2")]
    for params in parts[:2]:
        assert post_form(Client(), path, params).status_code == 200
    assert not Message.objects.exists()
    assert post_form(Client(), path, parts[0]).status_code == 200  # a retried part
    assert post_form(Client(), path, parts[2]).status_code == 200
    message = Message.objects.get()
    assert message.body == "One, two, three."
    assert message.metadata["parts"] == ["P1", "P2", "P3"]
    assert set(ProviderMessagePart.objects.values_list("message_id", flat=True)) == {message.pk}
    # Retries of any part after assembly change nothing.
    for params in parts:
        assert post_form(Client(), path, params).status_code == 200
    assert Message.objects.count() == 1


def test_concat_parts_as_json_booleans_are_accepted(unsigned_vonage_app):
    path = receive_path(unsigned_vonage_app)
    for n, text in ((1, "a"), (2, "b")):
        body = {**_part(n, 2, text, f"J{n}"), "concat": True, "concat-part": n}
        response = Client().post(path, json.dumps(body), content_type="application/json")
        assert response.status_code == 200
    assert Message.objects.get().body == "ab"


def test_a_reused_concat_ref_starts_a_new_message(unsigned_vonage_app):
    path = receive_path(unsigned_vonage_app)
    for n, mid in ((1, "X1"), (2, "X2")):
        post_form(Client(), path, _part(n, 2, f"first{n} ", mid))
    for n, mid in ((1, "Y1"), (2, "Y2")):
        post_form(Client(), path, _part(n, 2, f"second{n} ", mid))
    assert sorted(Message.objects.values_list("body", flat=True)) == [
        "first1 first2 ",
        "second1 second2 ",
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("delivered", Status.DELIVERED), ("failed", Status.FAILED), ("rejected", Status.FAILED)],
)
def test_a_delivery_receipt_is_applied(unsigned_vonage_app, status, expected):
    message = send_message(to="+254722000333", body="Hi", app_id=unsigned_vonage_app.pk)
    Message.objects.filter(pk=message.pk).update(
        status=Status.SENT, provider_message_id="1B00000021C4D9E7"
    )
    dlr = {
        "msisdn": "254722000333",
        "to": "AcmeMeters",
        "network-code": "63902",
        "messageId": "1B00000021C4D9E7",
        "price": "0.00850000",
        "status": status,
        "scts": "2504071230",
        "err-code": "0" if status == "delivered" else "6",
        "api-key": "a1b2c3d4",
        "message-timestamp": "2025-04-07 12:30:09",
    }
    response = Client().post(
        receive_path(unsigned_vonage_app), json.dumps(dlr), content_type="application/json"
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == expected
    if expected == Status.FAILED:
        assert "err-code 6" in message.reason
    assert Message.objects.filter(direction="inbound").count() == 0


def test_a_receipt_finds_the_message_by_client_ref(unsigned_vonage_app):
    message = send_message(to="+254722000333", body="Hi", app_id=unsigned_vonage_app.pk)
    Message.objects.filter(pk=message.pk).update(status=Status.SENT)
    dlr = {
        "msisdn": "254722000333",
        "messageId": "1C",
        "status": "delivered",
        "client-ref": message.pk,
    }
    assert Client().get(f"{receive_path(unsigned_vonage_app)}?{urlencode(dlr)}").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.DELIVERED, "1C")


def test_a_signed_receipt_must_carry_a_valid_signature(vonage_app):
    dlr = {
        "msisdn": "254722000333",
        "messageId": "1C",
        "status": "delivered",
        "timestamp": "1744029005",
        "nonce": "n",
    }
    signed = {**dlr, "sig": compute_signature(dlr, VONAGE_SECRET, "sha256")}
    assert Client().get(f"{receive_path(vonage_app)}?{urlencode(signed)}").status_code == 200
    assert Client().get(f"{receive_path(vonage_app)}?{urlencode(dlr)}").status_code == 403


def test_a_long_message_missing_a_part_is_stored_after_an_hour(unsigned_vonage_app):
    from datetime import timedelta

    from django.utils import timezone

    from providers.tasks import store_incomplete_long_messages

    path = receive_path(unsigned_vonage_app)
    post_form(Client(), path, _part(1, 3, "One, ", "M1"))
    post_form(Client(), path, _part(3, 3, "three.", "M3"))
    assert store_incomplete_long_messages() == {"stored": 0}  # too early
    ProviderMessagePart.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert store_incomplete_long_messages() == {"stored": 1}
    message = Message.objects.get()
    assert message.body == "One, [part 2 missing]three."
    assert message.metadata["incomplete"] is True
    assert message.from_number == "+254722000333"
    assert store_incomplete_long_messages() == {"stored": 0}
    # The missing part arriving late is acknowledged and does not duplicate the message.
    assert post_form(Client(), path, _part(2, 3, "two, ", "M2")).status_code == 200
    ProviderMessagePart.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert store_incomplete_long_messages() == {"stored": 0}
    assert Message.objects.count() == 1
    assert ProviderMessagePart.objects.filter(message=message).count() == 3
