"""API-key authentication and the two roles (docs/api.md#authentication-and-roles).

Integrators send `Authorization: Bearer <key>` or `X-API-Key: <key>`. Dashboard pages calling
the API use their session (with CSRF). Either way the view sees a `Principal` with a role.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from smsgate.crypto import hash_secret
from smsgate.models import APIKey, Role
from smsgate.rows import ModelColumns

# Writing last_used_at on every call would add a write to every request; a minute is precise
# enough for "is this key still in use?".
LAST_USED_PRECISION = timedelta(seconds=60)


@dataclass
class Principal:
    """Who is calling: an API key or a dashboard user, with the role that decides access."""

    role: str
    api_key: APIKey | None = None
    user: AbstractBaseUser | AnonymousUser | None = None
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def pk(self) -> str:
        if self.api_key is not None:
            return self.api_key.pk
        return f"user:{getattr(self.user, 'pk', '')}"

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"api_key:{self.api_key.pk}"
        return f"user:{getattr(self.user, 'pk', '')}"


def role_of_user(user: Any) -> str:
    return Role.ADMIN if getattr(user, "is_superuser", False) else Role.STAFF


def key_from_headers(meta: dict[str, Any]) -> str | None:
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = meta.get("HTTP_X_API_KEY", "").strip()
    return value or None


# `sg_<8 letters/digits>_<url-safe secret>`; anything else is refused before the database sees
# it (a NUL byte in a lookup is an error on PostgreSQL).
_KEY_SHAPE = re.compile(r"sg_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{1,200}")


_KEY = ModelColumns(APIKey)
_KEY_SQL = (
    f'SELECT {_KEY.select("k")} FROM "{APIKey._meta.db_table}" k'  # noqa: S608
    " WHERE k.prefix = %s AND k.revoked_at IS NULL"
)


def find_api_key(plaintext: str) -> APIKey | None:
    if not _KEY_SHAPE.fullmatch(plaintext):
        return None
    prefix, secret = plaintext[3:11], plaintext[12:]
    # Read on every request, revoked or not as the database says now (no copy to go stale);
    # written out because the ORM compiled the lookup for longer than it ran.
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL, [prefix])
        row = cursor.fetchone()
    key = _KEY.load(row) if row is not None else None
    if key is None or not hmac.compare_digest(hash_secret(secret), key.secret_hash):
        return None
    return key


def touch_last_used(key: APIKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


class APIKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, APIKey] | None:
        plaintext = key_from_headers(request.META)
        if plaintext is None:
            return None
        key = find_api_key(plaintext)
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid or was revoked.")
        touch_last_used(key)
        return Principal(role=key.role, api_key=key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="smsgate"'


class DashboardSessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's own JavaScript calls the API with the logged-in session (CSRF-checked)."""

    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        return Principal(role=role_of_user(user), user=user), None


class IsAdmin(permissions.BasePermission):
    message = "This needs an admin API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, Principal):
            raise exceptions.NotAuthenticated("An API key is required.")
        return principal.is_admin


class IsStaffOrAdmin(permissions.BasePermission):
    """Staff may send and read messages and conversations; everything else is admin-only."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, Principal):
            raise exceptions.NotAuthenticated("An API key is required.")
        return principal.role in (Role.ADMIN, Role.STAFF)


class APIKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI document (and the docs' Authorize button) describes API keys."""

    target_class = APIKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer sg_…` (or `X-API-Key: sg_…`).",
        }


class DashboardSessionScheme(OpenApiAuthenticationExtension):
    target_class = DashboardSessionAuthentication
    name = "dashboardSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
