"""Who may open which page (docs/dashboard.md#logging-in-and-roles).

Staff (any active user) work the inbox, send and run broadcasts; admins (superusers) also manage
devices, webhooks, rules, API keys and read the raw inbound log. A staff member opening an admin
page gets a 403, not a redirect to the login page: they are logged in, just not allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse

from smsgate.auth import role_of_user
from smsgate.models import Role

View = Callable[..., HttpResponse]


def is_admin(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and role_of_user(user) == Role.ADMIN)


def _refuse_nul(request: HttpRequest) -> None:
    """A NUL in a form field would reach PostgreSQL (which cannot store it) through some
    service: refuse it up front as a bad request (400)."""
    if request.method == "POST" and any(
        "\x00" in value for _, values in request.POST.lists() for value in values
    ):
        raise SuspiciousOperation("A form field contains a NUL character.")


def staff_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_active:
            raise PermissionDenied
        _refuse_nul(request)
        return view(request, *args, **kwargs)

    return wrapped


def admin_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_admin(request.user):
            raise PermissionDenied
        _refuse_nul(request)
        return view(request, *args, **kwargs)

    return wrapped
