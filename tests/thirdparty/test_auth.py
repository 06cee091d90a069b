"""Who may call the third-party API: Basic and Bearer API keys by role, JWT scopes, open
health checks, the rate limit."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from smsgate.models import APIKey
from tests.thirdparty.conftest import BASE, basic

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Basic " + "bm90LWJhc2U2NA", 401),
        (basic("sg_nothere_notavalidsecretatall"), 401),
        ("Bearer sg_nothere_notavalidsecretatall", 401),
        ("Bearer not.a.jwt", 401),
        ("Token whatever", 401),
    ],
)
def test_missing_or_wrong_credentials_are_401(header: str | None, status: int) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(BASE + "/messages")
    assert response.status_code == status
    assert set(response.json()) >= {"message", "code"}


@pytest.mark.parametrize(
    ("method", "path", "staff_status"),
    [
        ("get", "/messages", 200),
        ("get", "/devices", 403),
        ("head", "/devices", 403),
        ("head", "/settings", 403),
        ("get", "/webhooks", 403),
        ("post", "/webhooks", 403),
        ("delete", "/webhooks/x", 403),
        ("get", "/settings", 403),
        ("patch", "/settings", 403),
        ("put", "/settings", 403),
        ("delete", "/devices/x", 403),
        ("post", "/inbox/refresh", 403),
    ],
)
def test_staff_keys_send_and_read_while_the_rest_is_admin(
    staff_key: str, method: str, path: str, staff_status: int
) -> None:
    for header in (basic(staff_key), f"Bearer {staff_key}"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = getattr(client, method)(BASE + path, {}, format="json")
        assert response.status_code == staff_status, response.content


def test_a_staff_key_cannot_mint_an_admin_scope(staff_api: APIClient) -> None:
    response = staff_api.post(BASE + "/auth/token", {"scopes": ["settings:write"]}, format="json")
    assert response.status_code == 403
    ok = staff_api.post(BASE + "/auth/token", {"scopes": ["messages:send"]}, format="json")
    assert ok.status_code == 201
    body = ok.json()
    # The Go server's snake_case and the Python client's camelCase, with the same values.
    for snake, camel in (
        ("access_token", "accessToken"),
        ("refresh_token", "refreshToken"),
        ("token_type", "tokenType"),
        ("expires_at", "expiresAt"),
    ):
        assert body[snake] == body[camel]
    assert body["token_type"] == "Bearer" and body["expires_at"].endswith("+00:00")


def test_a_token_of_a_revoked_key_stops_working(admin_api: APIClient, admin_key: str) -> None:
    token = admin_api.post(BASE + "/auth/token", {"scopes": ["devices:list"]}, format="json")
    access = token.json()["access_token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get(BASE + "/devices").status_code == 200
    APIKey.objects.update(revoked_at=timezone.now())
    assert client.get(BASE + "/devices").status_code == 401


def test_the_health_endpoints_are_open() -> None:
    for path in ("/health", "/health/live", "/health/ready", "/health/startup"):
        response = APIClient().get(BASE + path)
        assert response.status_code == 200
        assert response.json()["status"] == "pass"


def test_the_rate_limit_applies_here_too(admin_api: APIClient, settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "2/min"},
    }
    codes = [admin_api.get(BASE + "/messages").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
