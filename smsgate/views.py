"""Health and metrics endpoints owned by the core package (plain Django views, no DRF)."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from smsgate import metrics
from smsgate.auth import find_api_key, key_from_headers, touch_last_used
from smsgate.celery import app as celery_app
from smsgate.errors import error_response
from smsgate.models import Role

log = logging.getLogger(__name__)

# A health check must answer fast when something is down, not after kombu's default retries.
BROKER_TIMEOUT_SECONDS = 2


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        log.warning("healthz: database check failed", exc_info=True)
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.connect_timeout = BROKER_TIMEOUT_SECONDS
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
            conn.default_channel  # noqa: B018  (opening a channel proves the broker answers)
        return True
    except Exception:
        log.warning("healthz: broker check failed", exc_info=True)
        return False


def _method_not_allowed(request: HttpRequest, allowed: str) -> HttpResponse:
    response = error_response(
        405, "method_not_allowed", f"Method {request.method!r} is not allowed here."
    )
    response["Allow"] = allowed
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database and the broker answer; 503 naming what does not (no auth)."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request, "GET, HEAD")
    parts = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(parts.values())
    body = {"status": "ok" if healthy else "error"}
    body.update({name: "ok" if ok else "unreachable" for name, ok in parts.items()})
    return JsonResponse(body, status=200 if healthy else 503)


def _address_allowed(address: str) -> bool:
    """Is the client in SMSGATE_METRICS_ALLOW (addresses or networks, e.g. 10.0.0.0/8)?"""
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.SMSGATE_METRICS_ALLOW:
        try:
            if client in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            log.warning("SMSGATE_METRICS_ALLOW: %r is not an address or network", entry)
    return False


def _metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    if _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return None
    plaintext = key_from_headers(request.META)
    key = find_api_key(plaintext) if plaintext else None
    if key is None:
        response = error_response(
            401,
            "not_authenticated",
            "Metrics need an admin API key, or a client address in SMSGATE_METRICS_ALLOW.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="smsgate"'
        return response
    touch_last_used(key)
    if key.role != Role.ADMIN:
        return error_response(403, "permission_denied", "Metrics need an admin API key.")
    return None


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: Prometheus text format, for an admin key or an allowed address."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request, "GET, HEAD")
    refusal = _metrics_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
