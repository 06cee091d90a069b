"""Devices (admin only): health, queue and pacing, pairing by QR or with the SMS Gateway for
Android app, rotation, enable/disable.
State changes go through devices.services; this module only parses and renders."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import admin_required
from dashboard.views.common import render_page
from devices import services as devices
from devices.models import Device, Sim
from devices.pairing import pairing_for, text_qr_url
from messaging.models import Status
from smsgate.errors import DomainError


def _devices() -> list[Device]:
    return list(
        Device.objects.annotate(
            queued_count=Count("messages", filter=Q(messages__status=Status.QUEUED)),
            stale_count=Count(
                "messages", filter=Q(messages__status=Status.DISPATCHED, messages__stale=True)
            ),
        )
        .prefetch_related(Prefetch("sims", queryset=Sim.objects.order_by("slot")))
        .order_by("name", "id")
    )


def _render(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    context = {"devices": _devices(), **extra}
    return render_page(request, "dashboard/devices.html", context, section="devices", status=status)


def _app_card(app: dict[str, str]) -> dict[str, Any]:
    """The app card's extras: a QR of each value, which a phone's camera turns into text to
    paste (the app has no scanner, and its Private Token field is a password field), and
    whether the URL is plain HTTP to another host, which the app's release build refuses."""
    url = urlsplit(app["server_url"])
    return {
        **app,
        "server_qr_url": text_qr_url(app["server_url"]),
        "token_qr_url": text_qr_url(app["private_token"]),
        "needs_insecure_build": url.scheme == "http" and url.hostname != "127.0.0.1",
    }


def _issued(request: HttpRequest, credentials: devices.Credentials, title: str) -> HttpResponse:
    pairing = pairing_for(
        device_id=credentials.device.pk,
        token=credentials.token,
        app_private_token=credentials.app_private_token,
        request=request,
    )
    response = _render(
        request,
        issued=credentials,
        pairing=pairing,
        app=_app_card(pairing["payload"]["app"]),
        issued_title=title,
    )
    response["Cache-Control"] = "no-store"  # the credentials exist only in this response
    return response


@admin_required
@require_GET
def device_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@admin_required
@require_POST
def device_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    sims = [
        {"slot": slot, "number": request.POST.get(f"sim{slot}", "").strip()}
        for slot in (1, 2)
        if slot == 1 or request.POST.get(f"sim{slot}", "").strip()
    ]
    if not name or len(name) > 100:
        return _render(request, 400, error="Give the phone a name of at most 100 characters.")
    try:
        credentials = devices.register_device(name=name, sims=sims)
    except DomainError as exc:
        return _render(request, exc.status_code, error=exc.message, name=name)
    return _issued(request, credentials, f"“{name}” is ready to pair")


@admin_required
@require_POST
def device_rotate(request: HttpRequest, device_id: str) -> HttpResponse:
    try:
        credentials = devices.rotate_credentials(device_id=device_id)
    except DomainError as exc:
        return _render(request, exc.status_code, error=exc.message)
    return _issued(
        request, credentials, f"New credentials for “{credentials.device.name}”: pair it again"
    )


@admin_required
@require_POST
def device_toggle(request: HttpRequest, device_id: str) -> HttpResponse:
    enabled = request.POST.get("enabled") == "1"
    try:
        device = devices.update_device(device_id=device_id, enabled=enabled)
    except DomainError as exc:
        return _render(request, exc.status_code, error=exc.message)
    messages.success(
        request,
        f"“{device.name}” is {'enabled' if enabled else 'disabled: it sends nothing until enabled'}.",
    )
    return redirect("dashboard:devices")
