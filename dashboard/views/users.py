"""Dashboard logins (admin only): add staff and admins, deactivate and reactivate them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from dashboard import services
from dashboard.access import admin_required
from dashboard.views.common import render_page
from smsgate.errors import DomainError


def _render(request: HttpRequest, status: int = 200, **extra: object) -> HttpResponse:
    users = get_user_model().objects.order_by("-is_active", "username")
    context = {"users": users, **extra}
    return render_page(request, "dashboard/users.html", context, section="users", status=status)


@admin_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@admin_required
@require_POST
def user_create(request: HttpRequest) -> HttpResponse:
    username = request.POST.get("username", "")
    try:
        user = services.create_login(
            username=username,
            password=request.POST.get("password", ""),
            email=request.POST.get("email", "").strip()[:254],
            admin=request.POST.get("role") == "admin",
        )
    except DomainError as exc:
        return _render(request, exc.status_code, error=exc, username=username)
    messages.success(request, f"{user.get_username()} can now log in.")
    return redirect("dashboard:users")


@admin_required
@require_POST
def user_active(request: HttpRequest, user_id: int) -> HttpResponse:
    active = request.POST.get("active") == "1"
    try:
        user = services.set_login_active(user_id=user_id, active=active, acting_user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        state = "can log in again" if active else "can no longer log in"
        messages.success(request, f"{user.get_username()} {state}.")
    return redirect("dashboard:users")
