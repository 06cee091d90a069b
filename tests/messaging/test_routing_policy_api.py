"""`GET|PUT /api/v1/routing`: the routing policy over HTTP. The environment's defaults until an
admin saves it; partial saves; every refusal is a 400 in the error envelope that writes
nothing; admin only."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from messaging.models import RoutingPolicy
from tests.factories import ProviderAppFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/routing"
SAVED = {
    "fallback_app_id": None,
    "reroute_after": 300,
    "max_attempts": 4,
    "quiet_hours": {"start": "21:00", "end": "08:00"},
}


@pytest.fixture
def env_defaults(settings: Any) -> None:
    settings.SMSGATE_FALLBACK_APP_ID = ""
    settings.SMSGATE_REROUTE_AFTER = 90
    settings.SMSGATE_MAX_ROUTE_ATTEMPTS = 2


def test_get_answers_the_environment_defaults_until_saved(
    admin_client: APIClient, env_defaults: None, settings: Any
) -> None:
    app = ProviderAppFactory(can_send=True)
    settings.SMSGATE_FALLBACK_APP_ID = app.pk

    response = admin_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "fallback_app_id": app.pk,
        "reroute_after": 90,
        "max_attempts": 2,
        "quiet_hours": None,
    }
    assert not RoutingPolicy.objects.exists()


def test_put_saves_and_get_reads_it_back(admin_client: APIClient, env_defaults: None) -> None:
    app = ProviderAppFactory(can_send=True)
    body = {**SAVED, "fallback_app_id": app.pk}

    response = admin_client.put(URL, body, format="json")

    assert response.status_code == 200
    assert response.json() == body
    assert admin_client.get(URL).json() == body
    row = RoutingPolicy.objects.get()
    assert (row.fallback_app_id, row.reroute_after, row.max_attempts) == (app.pk, 300, 4)
    assert row.quiet_start.strftime("%H:%M") == "21:00"


def test_a_partial_put_keeps_the_fields_left_out(
    admin_client: APIClient, env_defaults: None
) -> None:
    admin_client.put(URL, SAVED, format="json")

    response = admin_client.put(URL, {"max_attempts": 6}, format="json")

    assert response.status_code == 200
    assert response.json() == {**SAVED, "max_attempts": 6}


def test_a_first_partial_put_starts_from_the_environment_defaults(
    admin_client: APIClient, env_defaults: None
) -> None:
    response = admin_client.put(URL, {"quiet_hours": {"start": "22:30", "end": "07:00"}})

    assert response.json() == {
        "fallback_app_id": None,
        "reroute_after": 90,
        "max_attempts": 2,
        "quiet_hours": {"start": "22:30", "end": "07:00"},
    }


def test_null_turns_quiet_hours_and_the_fallback_off(admin_client: APIClient) -> None:
    app = ProviderAppFactory(can_send=True)
    admin_client.put(URL, {**SAVED, "fallback_app_id": app.pk}, format="json")

    response = admin_client.put(URL, {"fallback_app_id": None, "quiet_hours": None}, format="json")

    assert response.status_code == 200
    assert response.json()["fallback_app_id"] is None
    assert response.json()["quiet_hours"] is None


INVALID = [
    ({"reroute_after": -1}, "reroute_after"),
    ({"reroute_after": "120"}, "reroute_after"),
    ({"reroute_after": 1.5}, "reroute_after"),
    ({"reroute_after": True}, "reroute_after"),
    ({"reroute_after": 7 * 24 * 3600 + 1}, "reroute_after"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_attempts": 11}, "max_attempts"),
    ({"max_attempts": None}, "max_attempts"),
    ({"fallback_app_id": "app_nothere"}, "fallback_app_id"),
    ({"fallback_app_id": "app_\x00"}, "fallback_app_id"),
    ({"fallback_app_id": "a" * 5000}, "fallback_app_id"),
    ({"fallback_app_id": 12}, "fallback_app_id"),
    ({"quiet_hours": "21:00-08:00"}, "quiet_hours"),
    ({"quiet_hours": {"start": "21:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "21:00", "end": "08:00", "zone": "UTC"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "21:00", "end": 8}}, "quiet_hours.end"),
    ({"quiet_hours": {"start": "08:00", "end": "08:00"}}, "quiet_hours"),
    ({"max_attempts": 5, "colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), INVALID, ids=lambda v: repr(v)[:40])
def test_an_invalid_field_is_a_400_naming_it_and_nothing_changes(
    admin_client: APIClient, change: dict[str, Any], field: str
) -> None:
    admin_client.put(URL, SAVED, format="json")
    # Valid changes next to the invalid one must not be saved either.
    body = {"reroute_after": 5, "max_attempts": 9, **change}

    response = admin_client.put(URL, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert admin_client.get(URL).json() == SAVED


def test_a_receive_only_app_is_refused_as_the_fallback(admin_client: APIClient) -> None:
    app = ProviderAppFactory(can_send=False, name="Inbound only")

    response = admin_client.put(URL, {"fallback_app_id": app.pk}, format="json")

    assert response.status_code == 400
    assert "only receives" in response.json()["error"]["fields"]["fallback_app_id"][0]
    assert not RoutingPolicy.objects.exists()


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"max_attempts"', b"null", b"3"])
def test_a_body_that_is_not_a_json_object_is_a_400(admin_client: APIClient, body: bytes) -> None:
    response = admin_client.put(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert not RoutingPolicy.objects.exists()


def test_a_form_body_is_a_415(admin_client: APIClient) -> None:
    response = admin_client.put(
        URL, "max_attempts=2", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert not RoutingPolicy.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_staff_keys_are_refused_with_a_403(staff_client: APIClient, method: str) -> None:
    response = getattr(staff_client, method)(URL, {"max_attempts": 2}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not RoutingPolicy.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_no_key_is_a_401(anon_client: APIClient, method: str) -> None:
    response = getattr(anon_client, method)(URL, {"max_attempts": 2}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not RoutingPolicy.objects.exists()


def test_other_methods_are_a_405(admin_client: APIClient) -> None:
    assert admin_client.patch(URL, {"max_attempts": 2}, format="json").status_code == 405
    assert admin_client.delete(URL).status_code == 405


def test_the_openapi_document_describes_both_operations(anon_client: APIClient) -> None:
    document = anon_client.get("/api/schema/?format=json").json()
    item = document["paths"][URL]

    assert set(item) >= {"get", "put"}
    assert item["get"]["tags"] == item["put"]["tags"] == ["routing"]
    assert item["put"]["summary"]
