"""API keys: the create_api_key command and the admin-only REST API (docs/api.md#authentication-and-roles)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from smsgate.models import APIKey

pytestmark = pytest.mark.django_db


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_create_api_key_prints_only_the_key(capsys):
    out = StringIO()
    call_command("create_api_key", "--name", "billing", stdout=out)

    key = out.getvalue().strip()
    assert out.getvalue().count("\n") <= 1
    assert key.startswith("sg_") and " " not in key
    stored = APIKey.objects.get()
    assert (stored.name, stored.role) == ("billing", "admin")
    assert key not in stored.secret_hash
    assert client_for(key).get("/api/v1/api-keys").status_code == 200


def test_create_api_key_with_role_staff_makes_a_staff_key():
    out = StringIO()
    call_command("create_api_key", "--name", "front desk", "--role", "staff", stdout=out)

    key = out.getvalue().strip()
    assert APIKey.objects.get().role == "staff"
    assert client_for(key).get("/api/v1/messages").status_code == 200
    assert client_for(key).get("/api/v1/api-keys").status_code == 403


def test_create_api_key_refuses_an_unknown_role():
    with pytest.raises(Exception, match="invalid choice"):
        call_command("create_api_key", "--name", "x", "--role", "root", stdout=StringIO())
    assert not APIKey.objects.exists()


def test_creating_a_key_shows_it_once(admin_client):
    response = admin_client.post("/api/v1/api-keys", {"name": "crm", "role": "staff"})

    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith("sg_")
    assert (body["name"], body["role"]) == ("crm", "staff")
    assert body["id"].startswith("key_")
    assert body["key"].startswith(body["prefix"])
    assert body["revoked_at"] is None
    assert client_for(body["key"]).get("/api/v1/messages").status_code == 200


def test_the_role_defaults_to_admin(admin_client):
    assert admin_client.post("/api/v1/api-keys", {"name": "ops"}).json()["role"] == "admin"


@pytest.mark.parametrize(
    "payload", [{}, {"name": ""}, {"name": "x", "role": "root"}, {"name": "x" * 101}]
)
def test_a_bad_key_request_is_a_400(admin_client, payload):
    response = admin_client.post("/api/v1/api-keys", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]


def test_listing_never_shows_a_key(admin_client, admin_key):
    created = admin_client.post("/api/v1/api-keys", {"name": "crm"}).json()

    response = admin_client.get("/api/v1/api-keys")

    assert response.status_code == 200
    results = response.json()["results"]
    assert {r["id"] for r in results} == set(APIKey.objects.values_list("id", flat=True))
    assert all("key" not in r for r in results)
    assert created["key"] not in response.content.decode()
    assert admin_key not in response.content.decode()


def test_last_used_is_recorded(admin_client):
    admin_client.get("/api/v1/messages")
    assert APIKey.objects.get().last_used_at is not None


def test_revoking_a_key_stops_it_at_once(admin_client):
    created = admin_client.post("/api/v1/api-keys", {"name": "crm"}).json()
    theirs = client_for(created["key"])
    assert theirs.get("/api/v1/messages").status_code == 200

    response = admin_client.delete(f"/api/v1/api-keys/{created['id']}")

    assert response.status_code == 200
    assert response.json()["revoked_at"]
    assert theirs.get("/api/v1/messages").status_code == 401
    assert theirs.post("/api/v1/messages", {"to": "+15551234567", "body": "x"}).status_code == 401
    assert APIKey.objects.get(pk=created["id"]).revoked_at is not None


def test_revoking_twice_keeps_the_first_revocation_time(admin_client):
    created = admin_client.post("/api/v1/api-keys", {"name": "crm"}).json()
    first = admin_client.delete(f"/api/v1/api-keys/{created['id']}").json()
    second = admin_client.delete(f"/api/v1/api-keys/{created['id']}")
    assert second.status_code == 200
    assert second.json()["revoked_at"] == first["revoked_at"]


def test_revoking_an_unknown_key_is_a_404(admin_client):
    response = admin_client.delete("/api/v1/api-keys/key_nothere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_key_of_the_right_shape_with_a_wrong_secret_is_refused(admin_key):
    wrong = admin_key[:-4] + ("AAAA" if not admin_key.endswith("AAAA") else "BBBB")
    assert client_for(wrong).get("/api/v1/messages").status_code == 401
