"""The app's third-party API (docs/thirdparty.md): authenticate, parse, call a service, shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.models import Device, PhoneSettings
from devices.services import delete_device
from messaging.models import Direction, Message
from smsgate.errors import InvalidInput, NotFound, api_exception_handler
from thirdparty import fleet, services, wire
from thirdparty.auth import (
    AppAuthentication,
    AppPrincipal,
    HasScope,
    issue_token,
    principal_of_jwt,
    revoke,
    validated_token_request,
)

MAX_LIMIT = 100


def app_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """smsgate's errors in the app's shape: `{"message", "code", "data"}`."""
    response = api_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "error" in response.data:
        error = response.data["error"]
        body: dict[str, Any] = {"message": error["message"], "code": error["code"]}
        if error.get("fields"):
            body["data"] = error["fields"]
        response.data = body
    return response


class AppView(APIView):
    # Not in smsgate's OpenAPI document: this is the app's API, described by the app's own
    # documentation and docs/thirdparty.md, with its own error shape.
    schema = None
    authentication_classes = [AppAuthentication]
    permission_classes = [HasScope]
    scopes: dict[str, str] = {}

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return app_exception_handler


def _principal(request: Request) -> AppPrincipal:
    assert isinstance(request.user, AppPrincipal)
    return request.user


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes")


def _state_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(body, status=status)


class MessagesView(AppView):
    scopes = {"GET": "messages:list", "POST": "messages:send"}

    def post(self, request: Request) -> Response:
        app_message = services.send(services.parse_send(request.data))
        fresh = services.find_app_message(app_message.pk)
        assert fresh is not None
        response = _state_response(wire.app_message_state(fresh), status=202)
        response["Location"] = reverse("thirdparty:message", args=[app_message.pk])
        return response

    def get(self, request: Request) -> Response:
        limit = self._number(request, "limit", 50, 1, MAX_LIMIT)
        offset = self._number(request, "offset", 0, 0, 10**9)
        queryset = self._filtered(request)
        total = queryset.count()
        page = list(
            queryset.select_related("app_recipient__app_message").prefetch_related("events")[
                offset : offset + limit
            ]
        )
        content = _flag(request, "includeContent", False)
        # The page's app messages with all their recipients, in one go (no query per row).
        linked = {m.app_recipient.app_message_id for m in page if hasattr(m, "app_recipient")}
        app_messages = services.find_app_messages(linked)
        bodies = []
        for message in page:
            found = (
                app_messages.get(message.app_recipient.app_message_id)
                if hasattr(message, "app_recipient")
                else None
            )
            if found is not None:
                bodies.append(wire.app_message_state(found, include_content=content))
            else:
                bodies.append(wire.message_state(message, include_content=content))
        return Response(bodies, headers={"X-Total-Count": str(total)})

    @staticmethod
    def _number(request: Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise InvalidInput(name, f"{name} must be a whole number from {low} to {high}.")
        return int(raw)

    @staticmethod
    def _filtered(request: Request) -> QuerySet[Message]:
        # Every outbound smsgate message, a multi-recipient app message once (its first).
        queryset = Message.objects.filter(direction=Direction.OUTBOUND).exclude(
            app_recipient__position__gt=0
        )
        params = request.query_params
        since = services.parse_time(params.get("from"), "from")
        until = services.parse_time(params.get("to"), "to")
        if since is not None:
            queryset = queryset.filter(created_at__gte=since)
        if until is not None:
            queryset = queryset.filter(created_at__lt=until)
        state = params.get("state")
        if state is not None:
            if state not in wire.STATUSES_OF_STATE:
                raise InvalidInput(
                    "state", f"state must be one of {', '.join(wire.STATUSES_OF_STATE)}."
                )
            queryset = queryset.filter(status__in=wire.STATUSES_OF_STATE[state])
        if params.get("deviceId"):
            queryset = queryset.filter(device_id=params["deviceId"])
        ascending = params.get("sort") == "created_at"
        order = ("created_at", "id") if ascending else ("-created_at", "-id")
        return queryset.order_by(*order)


def _state_of_id(message_id: str) -> dict[str, Any]:
    app_message = services.find_app_message(message_id)
    if app_message is not None:
        return wire.app_message_state(app_message)
    message = Message.objects.prefetch_related("events").filter(pk=message_id).first()
    if message is None or message.direction != Direction.OUTBOUND:
        raise NotFound(f"There is no message {message_id!r}.")
    link = getattr(message, "app_recipient", None)
    if link is not None:
        found = services.find_app_message(link.app_message_id)
        assert found is not None
        return wire.app_message_state(found)
    return wire.message_state(message)


class MessageView(AppView):
    scopes = {"GET": "messages:read", "DELETE": "messages:cancel"}

    def get(self, request: Request, message_id: str) -> Response:
        return Response(_state_of_id(message_id))

    def delete(self, request: Request, message_id: str) -> Response:
        services.cancel(message_id)
        return Response(_state_of_id(message_id))


class DevicesView(AppView):
    scopes = {"GET": "devices:list"}

    def get(self, request: Request) -> Response:
        devices = Device.objects.prefetch_related("sims").order_by("created_at", "id")
        return Response([wire.device_body(d) for d in devices])


class DeviceView(AppView):
    scopes = {"DELETE": "devices:delete"}

    def delete(self, request: Request, device_id: str) -> Response:
        delete_device(device_id=device_id)
        return Response(status=204)


class WebhooksView(AppView):
    scopes = {"GET": "webhooks:list", "POST": "webhooks:write"}

    def get(self, request: Request) -> Response:
        return Response([fleet.webhook_body(e) for e in fleet.list_webhooks()])

    def post(self, request: Request) -> Response:
        endpoint = fleet.save_webhook(request.data)
        return Response(fleet.webhook_body(endpoint), status=201)


class WebhookView(AppView):
    scopes = {"DELETE": "webhooks:delete"}

    def delete(self, request: Request, webhook_id: str) -> Response:
        fleet.delete_webhook(webhook_id)
        return Response(status=204)


class SettingsView(AppView):
    scopes = {"GET": "settings:read", "PUT": "settings:write", "PATCH": "settings:write"}

    def get(self, request: Request) -> Response:
        return Response(fleet.readable_settings(PhoneSettings.current().values or {}))

    def put(self, request: Request) -> Response:
        return Response(fleet.update_settings(request.data, replace=True))

    def patch(self, request: Request) -> Response:
        return Response(fleet.update_settings(request.data, replace=False))


class InboxRefreshView(AppView):
    scopes = {"POST": "inbox:refresh"}

    def post(self, request: Request) -> Response:
        fleet.request_inbox_export(request.data)
        return Response(status=202)


def _token_body(token: Any) -> dict[str, Any]:
    # The Go server answers snake_case; the Python client 4.3.3 reads camelCase: both.
    expires = wire.app_time(token.expires_at)
    return {
        "id": token.jti,
        "token_type": "Bearer",
        "tokenType": "Bearer",
        "access_token": token.access_token,
        "accessToken": token.access_token,
        "refresh_token": token.refresh_token,
        "refreshToken": token.refresh_token,
        "expires_at": expires,
        "expiresAt": expires,
    }


class TokenView(AppView):
    scopes = {"POST": "tokens:manage"}

    def post(self, request: Request) -> Response:
        principal = _principal(request)
        scopes, ttl = validated_token_request(request.data, principal)
        assert principal.api_key is not None
        return Response(
            _token_body(issue_token(key=principal.api_key, scopes=scopes, ttl=ttl)), 201
        )


class TokenRefreshView(AppView):
    """`Authorization: Bearer <refresh token>`: a new pair; the old pair is revoked."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.NotAuthenticated("A refresh token is required.")
        principal, claims = principal_of_jwt(token.strip(), kind="refresh")
        assert principal.api_key is not None
        revoke(str(claims["jti"]))
        raw_ttl = claims.get("ttl")
        ttl = raw_ttl if isinstance(raw_ttl, int) else 3600
        issued = issue_token(key=principal.api_key, scopes=sorted(principal.scopes), ttl=ttl)
        return Response(_token_body(issued), 201)


class TokenRevokeView(AppView):
    scopes = {"DELETE": "tokens:manage"}

    def delete(self, request: Request, jti: str) -> Response:
        revoke(jti)
        return Response(status=204)
