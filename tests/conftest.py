"""Shared fixtures: API clients for each persona, and the real services when CI provides them."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from smsgate.services import create_api_key
from tests.budgets import is_postgres


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that need the real servers skip on the embedded defaults, and fail in CI."""
    in_ci = os.environ.get("CI") == "true"
    for item in items:
        if "postgres" in item.keywords and not is_postgres():
            if in_ci:
                raise pytest.UsageError("CI=true but DATABASE_URL is not PostgreSQL")
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "redis" in item.keywords and not settings.REDIS_URL:
            if in_ci:
                raise pytest.UsageError("CI=true but REDIS_URL is not set")
            item.add_marker(pytest.mark.skip(reason="needs Redis (set REDIS_URL)"))


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters must not leak from one test into the next. (The rules and webhook
    endpoints kept in memory need no clearing: their version lives in the database, which every
    test rolls back or flushes.)"""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def admin_key(db: None) -> str:
    return create_api_key(name="admin test key", role="admin").plaintext


@pytest.fixture
def staff_key(db: None) -> str:
    return create_api_key(name="staff test key", role="staff").plaintext


@pytest.fixture
def admin_client(admin_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    return client


@pytest.fixture
def staff_client(staff_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=staff_key)
    return client


@pytest.fixture
def bad_key_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sg_nothere_notavalidsecretatall")
    return client
