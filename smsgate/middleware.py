from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from smsgate.errors import error_response, html_error, is_api_path

logger = logging.getLogger(__name__)

# Phone and provider endpoints read the (truncated) body themselves so that even an oversized
# request is kept in the raw inbound log before it is refused: SMSSync/MSync and providers under
# /api/sms/, the SMS Gateway for Android app under /api/mobile/ (docs/phones/sms-gateway-app.md).
RAW_LOGGED_PREFIXES = ("/api/sms/", "/api/mobile/")


class BodySizeLimitMiddleware:
    """413 in the error envelope for bodies over SMSGATE_MAX_BODY_BYTES."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(RAW_LOGGED_PREFIXES):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.SMSGATE_MAX_BODY_BYTES:
                return error_response(
                    413,
                    "body_too_large",
                    f"The body is larger than {settings.SMSGATE_MAX_BODY_BYTES} bytes.",
                )
        return self.get_response(request)


class RejectNulMiddleware:
    """400 for a NUL character in the path or query string.

    Every `<str:pk>` route and query filter would otherwise pass it to PostgreSQL, which cannot
    hold NUL in text and answers with an error (a 500). Phone and provider endpoints keep such
    requests in the raw log and deal with them themselves.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(RAW_LOGGED_PREFIXES):
            query = request.META.get("QUERY_STRING", "")
            if "\x00" in request.path or "\x00" in query or "%00" in query:
                return error_response(
                    400, "invalid", "The address contains a NUL character, which is not allowed."
                )
        return self.get_response(request)


# How long a client should wait before trying again while the database is unreachable: about
# what a PostgreSQL restart or failover takes.
DATABASE_RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    """503 with Retry-After, not 500, when the database cannot be reached.

    A connection refused, cut or timed out (and SQLite's "database is locked") surfaces as
    OperationalError/InterfaceError. It is an outage, not a bug: phones, providers and
    integrators should retry later, and a 503 with Retry-After says exactly that. Nothing was
    acknowledged, so nothing is lost; the error is still logged with its traceback.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database unavailable: %s %s", request.method, request.path, exc_info=True)
        message = "The database is unavailable; try again shortly."
        response: HttpResponse
        if is_api_path(request.path):
            response = error_response(503, "unavailable", message)
        else:
            response = html_error(request, 503, "Service unavailable", message)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
