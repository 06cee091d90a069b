"""Dashboard logins: admins add staff and admins, and deactivate them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.dashboard.conftest import csrf_post

pytestmark = pytest.mark.django_db

GOOD = "a long enough passphrase"


@pytest.mark.parametrize(("role", "superuser"), [("staff", False), ("admin", True)])
def test_admins_add_staff_and_admins(admin_web: Client, role: str, superuser: bool) -> None:
    response = csrf_post(
        admin_web, "/users/new/", {"username": "kim", "password": GOOD, "role": role}
    )
    assert response.status_code == 302
    user = User.objects.get(username="kim")
    assert (user.is_superuser, user.is_active) == (superuser, True)
    assert Client().login(username="kim", password=GOOD)


@pytest.mark.parametrize(
    ("username", "password"), [("", GOOD), ("kim", "short"), ("kim", "password"), ("ada", GOOD)]
)
def test_bad_logins_are_refused_inline(admin_web: Client, username: str, password: str) -> None:
    response = csrf_post(admin_web, "/users/new/", {"username": username, "password": password})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    assert User.objects.count() == 1


def test_a_deactivated_login_is_logged_out_and_cannot_log_in(
    admin_web: Client, staff_user: User, staff_web: Client
) -> None:
    assert staff_web.get("/inbox/").status_code == 200
    csrf_post(admin_web, f"/users/{staff_user.pk}/active/", {"active": "0"})
    assert staff_web.get("/inbox/").status_code == 302
    assert not Client().login(username="sam", password="correct horse battery")
    csrf_post(admin_web, f"/users/{staff_user.pk}/active/", {"active": "1"})
    assert Client().login(username="sam", password="correct horse battery")


def test_an_admin_cannot_deactivate_themselves(admin_web: Client, admin_user: User) -> None:
    csrf_post(admin_web, f"/users/{admin_user.pk}/active/", {"active": "0"})
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_staff_cannot_manage_users(staff_web: Client) -> None:
    assert staff_web.get("/users/").status_code == 403
    response = csrf_post(staff_web, "/users/new/", {"username": "x", "password": GOOD})
    assert response.status_code == 403
