"""One error envelope for every API error (docs/api.md#errors).

`{"error": {"code": "<snake_case>", "message": "<sentence>", "fields": {...}}}`

Services raise `DomainError`s; the DRF exception handler below turns those and DRF's own
exceptions (validation, auth, throttling, 404, 405, 415) into the envelope, so a view never
builds an error body by hand.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A refusal a service can explain: carries the HTTP status and the contract's code."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.fields = fields or {}


class InvalidInput(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, fields={field: [message]})


class Refused(DomainError):
    """Valid input the platform will not act on (422), e.g. `recipient_opted_out`."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(
    status_code: int, code: str, message: str, fields: dict[str, Any] | None = None
) -> JsonResponse:
    """The envelope for plain Django views (protocol endpoints, middleware, handlers)."""
    return JsonResponse(error_body(code, message, fields), status=status_code)


_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "refused",
    429: "rate_limited",
}


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key == "non_field_errors" else f"{key}: {inner}"
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, RecursionError):
        # The JSON parser recurses once per nesting level: "[[[[…" a few thousand deep is bad
        # input, not a server error.
        exc = exceptions.ParseError("The JSON body is nested too deeply.")
    elif isinstance(exc, DjangoValidationError):
        # A model field refusing a value the serializer let through: still bad input.
        exc = exceptions.ValidationError(exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        message = "The request is not valid: " + _first_message(fields)
        code = "invalid"
        if isinstance(detail, dict) and set(detail) == {"non_field_errors"}:
            fields = {}
            message = _first_message(detail)
        response.data = error_body(code, message, fields)
    else:
        code = _CODES.get(response.status_code) or exc.default_code
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            # DRF answers 403 when no authenticator offers a challenge; credentials that are
            # missing or wrong are a 401 for integrators.
            response.status_code = status.HTTP_401_UNAUTHORIZED
            code = "not_authenticated"
            response["WWW-Authenticate"] = 'Bearer realm="smsgate"'
        response.data = error_body(code, _first_message(exc.detail))
    return response


# Integrators and phones always get the JSON envelope; people in a browser get a page.
API_PATH_PREFIXES = ("/api/", "/v1/", "/healthz", "/metrics")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


def html_error(request: HttpRequest, status_code: int, title: str, message: str) -> HttpResponse:
    # Rendered without the request context: an error page must not fail on what failed (a
    # broken session, a database that is down).
    body: str
    try:
        body = loader.render_to_string(
            "errors/error.html", {"status_code": status_code, "title": title, "message": message}
        )
    except Exception:  # the error page itself must never raise
        body = f"<h1>{status_code} {title}</h1><p>{message}</p>"
    return HttpResponse(body, status=status_code, content_type="text/html; charset=utf-8")


def json_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return html_error(request, 404, "Not found", "There is nothing at this address.")
    return error_response(404, "not_found", "There is nothing at this address.")


def json_500(request: HttpRequest) -> HttpResponse:
    if not is_api_path(request.path):
        return html_error(
            request, 500, "Server error", "Something went wrong on our side; it was logged."
        )
    return error_response(500, "server_error", "Something went wrong on our side; it was logged.")


def json_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return html_error(request, 400, "Bad request", "The request could not be understood.")
    return error_response(400, "bad_request", "The request could not be understood.")


def json_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return html_error(request, 403, "Forbidden", "You are not allowed to open this page.")
    return error_response(403, "permission_denied", "You are not allowed to do this.")
