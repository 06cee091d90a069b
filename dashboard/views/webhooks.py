"""Webhooks (admin only): endpoints, their delivery log with every attempt, retry, replay and
test ping. State changes go through webhooks.services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import admin_required
from dashboard.views.common import paginate, render_page
from smsgate.errors import DomainError
from webhooks import services as webhooks
from webhooks.models import SUBSCRIBABLE_EVENTS, Attempt, Delivery, Endpoint, Format

REPLAY_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


def _render(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    context = {
        "endpoints": Endpoint.objects.filter(internal=False).order_by("-id"),
        "formats": Format.choices,
        "event_types": SUBSCRIBABLE_EVENTS,
        **extra,
    }
    return render_page(
        request, "dashboard/webhooks.html", context, section="webhooks", status=status
    )


@admin_required
@require_GET
def webhook_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@admin_required
@require_POST
def webhook_create(request: HttpRequest) -> HttpResponse:
    form: dict[str, Any] = {
        "url": request.POST.get("url", "").strip(),
        "format": request.POST.get("format", "standard"),
        "events": request.POST.getlist("events"),
    }
    try:
        endpoint, secret = webhooks.create_endpoint(**form)
    except DomainError as exc:
        return _render(request, exc.status_code, error=exc, form=form)
    response = _render(request, created=endpoint, secret=secret)
    response["Cache-Control"] = "no-store"  # the secret exists only in this response
    return response


@admin_required
@require_GET
def webhook_detail(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    try:
        endpoint = webhooks.get_endpoint(endpoint_id)
    except DomainError as exc:
        return _render(request, exc.status_code, error=exc)
    deliveries = (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("event", "event__message")
        .prefetch_related(Prefetch("attempts", queryset=Attempt.objects.order_by("at", "id")))
        .order_by("-id")
    )
    status = request.GET.get("status", "")
    if status:
        deliveries = deliveries.filter(status=status)
    context = {
        "endpoint": endpoint,
        "page": paginate(request, deliveries),
        "status": status,
        "windows": REPLAY_WINDOWS,
    }
    return render_page(request, "dashboard/webhook.html", context, section="webhooks")


def _back(endpoint_id: str) -> HttpResponse:
    return redirect("dashboard:webhook", endpoint_id=endpoint_id)


@admin_required
@require_POST
def webhook_toggle(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    enabled = request.POST.get("enabled") == "1"
    try:
        webhooks.update_endpoint(endpoint_id=endpoint_id, changes={"enabled": enabled})
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(endpoint_id)


@admin_required
@require_POST
def webhook_test(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    try:
        delivery = webhooks.send_test(endpoint_id=endpoint_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        outcome = "succeeded" if delivery.status == "succeeded" else "failed: see its attempt below"
        messages.info(request, f"Test ping {outcome}.")
    return _back(endpoint_id)


@admin_required
@require_POST
def webhook_replay(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    window = REPLAY_WINDOWS.get(request.POST.get("window", ""), REPLAY_WINDOWS["24h"])
    try:
        count = webhooks.replay_deliveries(endpoint_id=endpoint_id, since=timezone.now() - window)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"{count} deliver{'y' if count == 1 else 'ies'} queued again.")
    return _back(endpoint_id)


@admin_required
@require_POST
def delivery_retry(request: HttpRequest, delivery_id: str) -> HttpResponse:
    try:
        delivery = webhooks.retry_delivery(delivery_id=delivery_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        endpoint_id = Delivery.objects.filter(pk=delivery_id).values_list("endpoint_id", flat=True)
        return _back(endpoint_id[0]) if endpoint_id else redirect("dashboard:webhooks")
    messages.info(request, f"Delivery {delivery.pk} retried: {delivery.status}.")
    return _back(delivery.endpoint_id)
