"""Provider apps (admin only): list with receive URLs, create, edit, enable/disable, delete.

Every write goes through the API's serializers and `providers.services`, so the page
accepts and refuses exactly what `/api/v1/apps` does. Credentials go in and never come out:
no page renders a stored (or just submitted) credential value, only which keys are set.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework import serializers

from dashboard.access import admin_required
from dashboard.views.common import render_page
from messaging.models import ProviderApp
from providers import get_provider
from providers import services as apps
from providers.serializers import AppCreateSerializer, AppSerializer, AppUpdateSerializer
from smsgate.errors import DomainError

_NUMBER_SEPARATORS = re.compile(r"[\s,;]+")


def _provider_forms() -> list[dict[str, Any]]:
    """Each provider with the credential keys its module accepts: those receiving needs
    (required) first, then those sending needs (all or none), then the optional ones."""
    forms = []
    for value, label in ProviderApp.Provider.choices:
        provider = get_provider(value)
        keys = dict.fromkeys(
            (
                *provider.inbound_credentials,
                *provider.send_credentials,
                *provider.optional_credentials,
            )
        )
        fields = [(key, key in provider.inbound_credentials) for key in keys]
        forms.append({"value": value, "label": label, "fields": fields})
    return forms


def _numbers(request: HttpRequest) -> list[str]:
    return [n for n in _NUMBER_SEPARATORS.split(request.POST.get("numbers", "")) if n]


def _credentials(request: HttpRequest, provider: str) -> dict[str, str]:
    """The credential fields filled in for this provider; empty ones are left out, so the
    provider's own validation says which are required (and an edit keeps what is stored)."""
    prefix = f"cred-{provider}-"
    return {
        key[len(prefix) :]: value
        for key in request.POST
        if key.startswith(prefix) and (value := request.POST.get(key, "").strip())
    }


def _describe(errors: Any) -> str:
    """One sentence from a serializer's or service's per-field errors."""
    if isinstance(errors, dict):
        parts = []
        for field, problem in errors.items():
            detail = _describe(problem)
            parts.append(f"{field}: {detail}" if field != "non_field_errors" else detail)
        return "; ".join(parts)
    if isinstance(errors, list):
        return " ".join(_describe(e) for e in errors)
    return str(errors)


def _rows(request: HttpRequest) -> list[dict[str, Any]]:
    apps_list = ProviderApp.objects.all()
    return list(AppSerializer(apps_list, many=True, context={"request": request}).data)


def _render(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    context = {"apps": _rows(request), "providers": _provider_forms(), **extra}
    return render_page(request, "dashboard/apps.html", context, section="apps", status=status)


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        raise DomainError(_describe(serializer.errors), fields=dict(serializer.errors))
    return dict(serializer.validated_data)


@admin_required
@require_GET
def app_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@admin_required
@require_POST
def app_create(request: HttpRequest) -> HttpResponse:
    provider = request.POST.get("provider", "")
    form = {"provider": provider, "name": request.POST.get("name", "").strip()}
    numbers = _numbers(request)
    data = {
        **form,
        "numbers": numbers,
        "credentials": _credentials(request, provider),
        "enabled": request.POST.get("enabled", "1") == "1",
    }
    try:
        app = apps.create_provider_app(**_valid(AppCreateSerializer(data=data)))
    except DomainError as exc:
        # The credential values are not put back into the form: they are typed again.
        form["numbers"] = "\n".join(numbers)
        return _render(request, exc.status_code, error=exc.message, form=form)
    keys = ", ".join(sorted(apps.credentials_of(app))) or "none"
    messages.success(
        request,
        f"App “{app.name}” created. Credentials stored: {keys}. "
        "They are never shown again; paste its receive URL into the provider's console.",
    )
    return redirect("dashboard:apps")


@admin_required
@require_http_methods(["GET", "POST"])
def app_edit(request: HttpRequest, app_id: str) -> HttpResponse:
    app = ProviderApp.objects.filter(pk=app_id).first()
    if app is None:
        messages.error(request, "There is no such provider app.")
        return redirect("dashboard:apps")
    row = AppSerializer(app, context={"request": request}).data
    provider = next(p for p in _provider_forms() if p["value"] == app.provider)
    context: dict[str, Any] = {"app": row, "provider": provider}
    if request.method == "POST":
        data: dict[str, Any] = {
            "name": request.POST.get("name", "").strip(),
            "numbers": _numbers(request),
        }
        credentials = _credentials(request, app.provider)
        if credentials:
            data["credentials"] = credentials
        try:
            app = apps.update_provider_app(app_id=app.pk, **_valid(AppUpdateSerializer(data=data)))
        except DomainError as exc:
            context["error"] = exc.message
            context["form"] = {"name": data["name"], "numbers": "\n".join(data["numbers"])}
            return render_page(
                request, "dashboard/app_edit.html", context, section="apps", status=exc.status_code
            )
        messages.success(request, f"App “{app.name}” saved.")
        return redirect("dashboard:apps")
    context["form"] = {"name": row["name"], "numbers": "\n".join(row["numbers"])}
    return render_page(request, "dashboard/app_edit.html", context, section="apps")


@admin_required
@require_POST
def app_toggle(request: HttpRequest, app_id: str) -> HttpResponse:
    enabled = request.POST.get("enabled") == "1"
    try:
        app = apps.update_provider_app(
            app_id=app_id, **_valid(AppUpdateSerializer(data={"enabled": enabled}))
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:apps")
    state = "enabled" if enabled else "disabled: it neither sends nor receives until enabled"
    messages.success(request, f"App “{app.name}” is {state}.")
    return redirect("dashboard:apps")


@admin_required
@require_POST
def app_delete(request: HttpRequest, app_id: str) -> HttpResponse:
    app = ProviderApp.objects.filter(pk=app_id).first()
    try:
        apps.delete_provider_app(app_id=app_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:apps")
    name = app.name if app is not None else app_id
    messages.success(request, f"App “{name}” deleted; its receive URL no longer answers.")
    return redirect("dashboard:apps")
