"""/healthz, the OpenAPI document and the self-hosted API docs (docs/api.md#health-metrics-and-api-docs)."""

from __future__ import annotations

import re

import pytest
from django.db import connections
from django.urls import get_resolver
from drf_spectacular.validation import validate_schema

from smsgate.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_without_auth(anon_client):
    response = anon_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_names_an_unreachable_broker(anon_client, monkeypatch):
    # A closed port on loopback: nothing listens on port 1.
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = anon_client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "unreachable"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_healthz_names_an_unreachable_database(anon_client, monkeypatch):
    # Point the connection at a closed port, as when the server is down. (SQLite's in-memory
    # test database cannot be closed and reopened elsewhere, hence PostgreSQL only.)
    default = connections["default"]
    broken = {**default.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}
    default.close()
    monkeypatch.setattr(default, "settings_dict", broken)
    try:
        response = anon_client.get("/healthz")
    finally:
        default.close()

    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert response.json()["status"] == "error"


def test_healthz_answers_head_and_refuses_post(anon_client):
    assert anon_client.head("/healthz").status_code == 200
    response = anon_client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def _schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(anon_client):
    schema = _schema(anon_client)
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def _shape(path: str) -> str:
    """A path with its parameters blanked: "/api/v1/messages/<str:pk>" → "/api/v1/messages/{}"."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def _api_routes() -> set[str]:
    """Every REST route of the project, as OpenAPI paths ("/api/v1/messages/{pk}")."""
    routes: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, prefix + str(p.pattern))
                continue
            view = getattr(p.callback, "cls", None)
            if view is None or getattr(view, "schema", True) is None:
                continue
            if "drf_spectacular" in view.__module__:
                continue
            route = "/" + prefix + str(p.pattern)
            routes.add(_shape(route))

    walk(get_resolver().url_patterns, "")
    return routes


def test_the_schema_documents_every_rest_endpoint(anon_client):
    paths = {_shape(p) for p in _schema(anon_client)["paths"]}
    for path in [
        "/api/v1/messages",
        "/api/v1/messages/{}",
        "/api/v1/messages/{}/cancel",
        "/api/v1/conversations",
        "/api/v1/conversations/{}/messages",
        "/v1/sms/send",
        "/api/v1/send",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{}",
    ]:
        assert path in paths
    missing = _api_routes() - paths
    assert not missing, f"REST routes missing from the schema: {sorted(missing)}"


def test_the_schema_describes_api_key_auth(anon_client):
    schemes = _schema(anon_client)["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["apiKey"]["description"],
    }


def test_the_docs_and_every_asset_are_served_locally_without_debug(anon_client, settings):
    settings.DEBUG = False
    response = anon_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "external asset"
    assert "cdn" not in html.lower()
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html)
    assert len(assets) >= 3
    for asset in assets:
        fetched = anon_client.get(asset)
        assert fetched.status_code == 200, asset
        body = b"".join(fetched.streaming_content) if fetched.streaming else fetched.content
        assert body, asset
