"""`Idempotency-Key`: the same key and body replay the first response; another body is a 409."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time
from rest_framework.test import APIClient

from messaging.models import IdempotencyRecord, Message
from messaging.tasks import prune_idempotency_records
from smsgate.services import create_api_key
from tests.factories import OptOutFactory

pytestmark = pytest.mark.django_db

BODY = {"to": "+15551234567", "body": "Your code is 1234"}


def post(client: APIClient, body: dict, key: str = "order-8812", path: str = "/api/v1/messages"):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_replay_the_original_response_with_200(admin_client):
    first = post(admin_client, BODY)
    again = post(admin_client, BODY)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Message.objects.count() == 1


def test_the_replay_ignores_key_order_in_the_body(admin_client):
    first = post(admin_client, {"to": "+15551234567", "body": "x", "metadata": {"a": 1, "b": 2}})
    again = post(admin_client, {"metadata": {"b": 2, "a": 1}, "body": "x", "to": "+15551234567"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_a_409_and_creates_nothing(admin_client):
    post(admin_client, BODY)
    response = post(admin_client, {**BODY, "body": "Your code is 9999"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Message.objects.count() == 1


def test_keys_belong_to_one_api_key(admin_client):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(name='other').plaintext}")

    first = post(admin_client, BODY)
    theirs = post(other, BODY)

    assert first.status_code == theirs.status_code == 202
    assert first.json()["id"] != theirs.json()["id"]
    assert Message.objects.count() == 2


def test_without_a_key_every_request_sends(admin_client):
    admin_client.post("/api/v1/messages", BODY, format="json")
    admin_client.post("/api/v1/messages", BODY, format="json")
    assert Message.objects.count() == 2


def test_a_bulk_send_is_replayed_whole(admin_client):
    body = {"to": ["+15551234567", "+15551234568"], "body": "x"}
    first = post(admin_client, body)
    again = post(admin_client, body)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert Message.objects.count() == 2


def test_a_refused_request_is_not_remembered(admin_client):
    OptOutFactory(phone="+15551234567")
    refused = post(admin_client, BODY)
    assert refused.status_code == 422

    OptOutFactory._meta.model.objects.all().delete()
    retried = post(admin_client, BODY)

    assert retried.status_code == 202
    assert Message.objects.count() == 1


def test_an_invalid_body_is_not_remembered(admin_client):
    assert post(admin_client, {"to": "nope", "body": "x"}).status_code == 400
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_an_unusable_key_is_a_400(admin_client, key):
    response = post(admin_client, BODY, key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_the_aliases_honour_the_key_too(admin_client):
    body = {"to": "+15551234567", "message": "hi"}
    first = post(admin_client, body, path="/api/v1/send")
    again = post(admin_client, body, path="/api/v1/send")

    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Message.objects.count() == 1


def test_a_refused_alias_request_is_not_replayed_as_success(admin_client):
    OptOutFactory(phone="+15551234567")
    body = {"to": "+15551234567", "message": "hi"}
    first = post(admin_client, body, path="/api/v1/send")
    again = post(admin_client, body, path="/api/v1/send")

    assert first.status_code == again.status_code == 422
    assert again.json()["success"] is False


def test_keys_are_kept_for_the_ttl_then_pruned(admin_client, settings):
    settings.SMSGATE_IDEMPOTENCY_TTL_HOURS = 48
    first = post(admin_client, BODY)

    with freeze_time(timezone.now() + timedelta(hours=47)):
        assert prune_idempotency_records() == {"deleted": 0}
        assert post(admin_client, BODY).json() == first.json()
    with freeze_time(timezone.now() + timedelta(hours=49)):
        assert prune_idempotency_records() == {"deleted": 1}
        assert prune_idempotency_records() == {"deleted": 0}
        assert post(admin_client, BODY).status_code == 202
    assert Message.objects.count() == 2
