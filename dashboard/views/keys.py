"""API keys (admin only): create (the key is shown once, on this response) and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import admin_required
from dashboard.views.common import render_page
from smsgate.models import APIKey, Role
from smsgate.services import create_api_key, revoke_api_key


def _render(request: HttpRequest, **extra: object) -> HttpResponse:
    context = {"keys": APIKey.objects.all(), "roles": Role.choices, **extra}
    status = 400 if extra.get("error") else 200
    return render_page(request, "dashboard/keys.html", context, section="keys", status=status)


@admin_required
@require_GET
def key_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@admin_required
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    role = request.POST.get("role", Role.STAFF)
    if not name or len(name) > 100:
        return _render(request, error="Give the key a name of at most 100 characters.", name=name)
    if role not in Role.values:
        return _render(request, error="Choose the role admin or staff.", name=name)
    issued = create_api_key(name=name, role=role)
    # Rendered, not redirected: the plaintext exists only in this response.
    response = _render(request, issued=issued)
    response["Cache-Control"] = "no-store"
    return response


@admin_required
@require_POST
def key_revoke(request: HttpRequest, key_id: str) -> HttpResponse:
    key = APIKey.objects.filter(pk=key_id).first()
    if key is None:
        messages.error(request, "There is no such key.")
    else:
        revoke_api_key(key_id=key.pk)
        messages.success(request, f"The key “{key.name}” is revoked; it no longer works.")
    return redirect("dashboard:keys")
