"""Dashboard personas: a logged-in admin, a logged-in staff member, and an anonymous visitor."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("ada", "ada@example.org", "correct horse battery")


@pytest.fixture
def staff_user(db: None) -> User:
    return User.objects.create_user("sam", "sam@example.org", "correct horse battery")


@pytest.fixture
def admin_web(admin_user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    return client


@pytest.fixture
def staff_web(staff_user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    return client


@pytest.fixture
def anon_web() -> Client:
    return Client(enforce_csrf_checks=True)


def csrf_post(client: Client, url: str, data: dict[str, object] | None = None, **extra: object):  # type: ignore[no-untyped-def]
    """POST as a browser would: with the CSRF token the page's form carries."""
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": token}, **extra)
