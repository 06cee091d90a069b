"""The error envelope (docs/api.md#errors) for every error, and no input that produces a 5xx."""

from __future__ import annotations

import json

import pytest

from messaging.models import Message

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert "json" in response["Content-Type"]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_400_names_the_fields(admin_client):
    error = assert_envelope(admin_client.post(SEND, {}, format="json"), 400, "invalid")
    assert set(error["fields"]) == {"to", "body"}


def test_401_without_a_key(anon_client):
    response = anon_client.post(SEND, {"to": "+15551234567", "body": "x"})
    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_401_with_a_bad_key(bad_key_client):
    assert_envelope(bad_key_client.get(SEND), 401, "not_authenticated")


def test_403_for_a_staff_key_on_an_admin_endpoint(staff_client):
    assert_envelope(staff_client.get("/api/v1/api-keys"), 403, "permission_denied")


def test_404_for_an_unknown_api_path(admin_client):
    assert_envelope(admin_client.get("/api/v1/nothing-here"), 404, "not_found")


def test_405_for_a_wrong_method(admin_client):
    assert_envelope(admin_client.delete(SEND), 405, "method_not_allowed")


def test_415_for_a_form_body(admin_client):
    response = admin_client.post(
        SEND, "to=%2B15551234567&body=x", content_type="application/x-www-form-urlencoded"
    )
    assert_envelope(response, 415, "unsupported_media_type")


def test_413_for_a_body_over_the_limit(admin_client, settings):
    settings.SMSGATE_MAX_BODY_BYTES = 1000
    response = admin_client.post(SEND, {"to": "+15551234567", "body": "x" * 2000}, format="json")
    assert_envelope(response, 413, "body_too_large")
    assert not Message.objects.exists()


def test_the_default_limit_refuses_a_huge_body(admin_client, settings):
    huge = json.dumps({"to": "+15551234567", "body": "x" * (settings.SMSGATE_MAX_BODY_BYTES + 1)})
    response = admin_client.generic("POST", SEND, huge, content_type="application/json")
    assert_envelope(response, 413, "body_too_large")


def set_rate(settings, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": rate},
    }


def test_429_with_retry_after_once_the_rate_is_spent(admin_client, settings):
    set_rate(settings, "2/min")

    assert admin_client.get(SEND).status_code == 200
    assert admin_client.get(SEND).status_code == 200
    response = admin_client.get(SEND)

    assert_envelope(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 60


def test_the_rate_is_counted_per_key(admin_client, staff_client, settings):
    set_rate(settings, "1/min")

    assert admin_client.get(SEND).status_code == 200
    assert admin_client.get(SEND).status_code == 429
    assert staff_client.get(SEND).status_code == 200


def test_the_throttle_applies_to_anonymous_callers_by_address(anon_client, settings):
    set_rate(settings, "1/min")
    assert anon_client.get("/api/schema/?format=json").status_code == 200
    assert_envelope(anon_client.get("/api/schema/?format=json"), 429, "rate_limited")


# --- nothing produces a 5xx ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"[]",
        b'["+15551234567", "hi"]',
        b"null",
        b"42",
        b'"a string"',
        b'{"to": "+15551234567", "body": "x", "sim_slot": NaN}',
        b"\xff\xfe\x00garbage",
        b'{"to": "+15551234567", "body": "x", "metadata": {"n": 1e400}}',
        b'{"to": "+15551234567", "body": "x", "metadata": {"n": ' + b"9" * 5000 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"to": "+15551234567", "body": "x", "metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
    ],
)
def test_malformed_json_is_a_400(admin_client, raw):
    response = admin_client.generic("POST", SEND, raw, content_type="application/json")
    assert_envelope(response, 400)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", 5),
        ("to", {"number": "+15551234567"}),
        ("to", True),
        ("body", []),
        ("body", {"text": "x"}),
        ("body", True),
        ("body", "nul\u0000byte"),
        ("metadata", "x"),
        ("metadata", [1, 2]),
        ("metadata", {"k": "nul\u0000byte"}),
        ("metadata", {"big": "x" * 20_000}),
        ("to", "+1555\u00001234567"),
        ("to", ["+15551234567", "+1555\u00001234567"]),
        ("sim_slot", "a"),
        ("sim_slot", 0),
        ("sim_slot", 1.5),
        ("sim_slot", 10**30),
        ("device_id", 5),
        ("device_id", ""),
        ("device_id", "dev_\u0000"),
        ("device_id", "x" * 500),
        ("send_at", "0000-00-00"),
        ("send_at", "9999-12-31T23:59:59-23:00"),
        ("send_at", []),
        ("expires_at", "2026-02-30T00:00:00Z"),
        ("app_id", ["x"]),
    ],
)
def test_wrong_types_are_a_400_naming_the_field(admin_client, field, value):
    payload = {"to": "+15551234567", "body": "hello", field: value}
    response = admin_client.post(SEND, payload, format="json")
    error = assert_envelope(response, 400, "invalid")
    assert field in error["fields"]
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        {"HTTP_AUTHORIZATION": "Bearer sg_"},
        {"HTTP_AUTHORIZATION": "Bearer sg_\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000_x"},
        {"HTTP_AUTHORIZATION": "Bearer " + "x" * 10_000},
        {"HTTP_AUTHORIZATION": "Bearer sg_abcdefgh_\u00e9\u00e9"},
        {"HTTP_X_API_KEY": "\u0000"},
        {"HTTP_X_API_KEY": "sg_abcdefgh_"},
    ],
)
def test_odd_credentials_are_a_401(anon_client, headers):
    response = anon_client.get(SEND, **headers)
    assert_envelope(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_IDEMPOTENCY_KEY": "nul\u0000"},
        {"HTTP_IDEMPOTENCY_KEY": "caf\u00e9"},
        {"CONTENT_TYPE": "application/json; charset=nonsense"},
        {"CONTENT_TYPE": "application/json; charset=utf-16"},
        {"HTTP_ACCEPT": "text/html"},
        {"CONTENT_LENGTH": "-1"},
        {"CONTENT_LENGTH": "abc"},
    ],
)
def test_odd_headers_are_a_4xx_or_work(admin_client, headers):
    body = json.dumps({"to": "+15551234567", "body": "x"})
    kwargs = {"content_type": "application/json", **headers}
    content_type = kwargs.pop("CONTENT_TYPE", None) or kwargs.pop("content_type")
    kwargs.pop("content_type", None)
    response = admin_client.generic("POST", SEND, body, content_type=content_type, **kwargs)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert "error" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages/%00",
        "/api/v1/messages/msg_%00/cancel",
        "/api/v1/conversations/%00/messages",
        "/api/v1/messages?device_id=%00",
        "/api/v1/messages?cursor=%00",
        "/api/v1/messages?cursor=cD0lMDA%3D",  # p=%00
        "/api/v1/messages?limit=-5",
        "/api/v1/messages?limit=99999999999999999999",
        "/api/v1/conversations?cursor=cD1ub3RhZGF0ZQ%3D%3D",  # p=notadate
        "/api/v1/api-keys/%00",
    ],
)
def test_odd_paths_and_queries_are_never_a_5xx(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert "error" in response.json()
    response = admin_client.post(path)
    assert response.status_code < 500
