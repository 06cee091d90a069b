"""Who calls the third-party API and what they may do (docs/thirdparty.md#authentication).

Three ways in: `Basic <any login>:<API key>` (how the app's client sends a login and a
password), `Bearer <API key>`, and `Bearer <JWT>` issued by `POST /auth/token`. An API key
may do what its role allows (staff: messages; admin: everything); a JWT only what its scopes
say, and never more than the key that issued it may still do.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from smsgate.auth import Principal, find_api_key, touch_last_used
from smsgate.errors import InvalidInput
from smsgate.models import APIKey, Role
from thirdparty.models import RevokedToken

STAFF_SCOPES = frozenset(
    {
        "messages:send",
        "messages:read",
        "messages:list",
        "messages:cancel",
        "messages:export",
        "inbox:list",
        "tokens:manage",
    }
)
ADMIN_SCOPES = STAFF_SCOPES | {
    "devices:list",
    "devices:delete",
    "webhooks:list",
    "webhooks:write",
    "webhooks:delete",
    "settings:read",
    "settings:write",
    "inbox:refresh",
    "logs:read",
}
ALL_SCOPE = "all:any"
ALGORITHM = "HS256"
ISSUER = "smsgate"
DEFAULT_TTL = 3600
MAX_TTL = 365 * 24 * 3600
REFRESH_TTL = 30 * 24 * 3600


@dataclass
class AppPrincipal(Principal):
    """An API key's principal, narrowed to a JWT's scopes when it came with one."""

    scopes: frozenset[str] = field(default_factory=frozenset)
    jti: str | None = None


def scopes_of_role(role: str) -> frozenset[str]:
    return ADMIN_SCOPES if role == Role.ADMIN else STAFF_SCOPES


def _jwt_key() -> bytes:
    # A key of its own, derived from SECRET_KEY, so a JWT is no signature of anything else.
    return salted_hmac(
        "thirdparty.jwt", "signing key", secret=settings.SECRET_KEY, algorithm="sha256"
    ).digest()


@dataclass(frozen=True)
class IssuedToken:
    jti: str
    access_token: str
    refresh_token: str
    expires_at: datetime


def issue_token(*, key: APIKey, scopes: list[str], ttl: int) -> IssuedToken:
    now = timezone.now()
    jti = uuid.uuid4().hex
    expires_at = now + timedelta(seconds=ttl)
    common = {"iss": ISSUER, "sub": key.pk, "jti": jti, "iat": int(now.timestamp())}
    access = {**common, "typ": "access", "scopes": scopes, "exp": int(expires_at.timestamp())}
    refresh = {
        **common,
        "typ": "refresh",
        "scopes": scopes,
        "ttl": ttl,
        "exp": int((now + timedelta(seconds=REFRESH_TTL)).timestamp()),
    }
    return IssuedToken(
        jti=jti,
        access_token=jwt.encode(access, _jwt_key(), algorithm=ALGORITHM),
        refresh_token=jwt.encode(refresh, _jwt_key(), algorithm=ALGORITHM),
        expires_at=expires_at.replace(microsecond=0),
    )


def validated_token_request(body: Any, principal: AppPrincipal) -> tuple[list[str], int]:
    if not isinstance(body, dict):
        raise InvalidInput("scopes", "The body must be a JSON object with scopes.")
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise InvalidInput("scopes", "scopes must be a non-empty list of scope names.")
    ttl = body.get("ttl")
    if ttl is None or (type(ttl) is int and ttl == 0):
        ttl = DEFAULT_TTL  # the Go server's reading of an absent or zero ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise InvalidInput("ttl", f"ttl must be a number of seconds from 1 to {MAX_TTL}.")
    allowed = principal.scopes
    wanted = list(dict.fromkeys(scopes))
    if ALL_SCOPE in wanted:
        wanted = sorted(allowed)
    unknown = [s for s in wanted if s not in ADMIN_SCOPES]
    if unknown:
        raise InvalidInput("scopes", f"Unknown scope {unknown[0]!r}.")
    beyond = [s for s in wanted if s not in allowed]
    if beyond:
        raise exceptions.PermissionDenied(f"This key may not grant the scope {beyond[0]!r}.")
    return wanted, ttl


def revoke(jti: str, *, expires_at: datetime | None = None) -> None:
    RevokedToken.objects.get_or_create(
        jti=jti[:64],
        defaults={"expires_at": expires_at or timezone.now() + timedelta(seconds=REFRESH_TTL)},
    )


def _decode(token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _jwt_key(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "jti", "sub", "typ"]},
        )
    except jwt.PyJWTError:
        raise exceptions.AuthenticationFailed("The token is not valid or has expired.") from None
    if RevokedToken.objects.filter(jti=str(claims["jti"])[:64]).exists():
        raise exceptions.AuthenticationFailed("The token was revoked.")
    return claims


def _principal_of_key(key: APIKey) -> AppPrincipal:
    touch_last_used(key)
    return AppPrincipal(role=key.role, api_key=key, scopes=scopes_of_role(key.role))


def principal_of_jwt(token: str, *, kind: str) -> tuple[AppPrincipal, dict[str, Any]]:
    claims = _decode(token)
    if claims.get("typ") != kind:
        raise exceptions.AuthenticationFailed(f"This is not an {kind} token.")
    key = APIKey.objects.filter(pk=str(claims["sub"]), revoked_at__isnull=True).first()
    if key is None:
        raise exceptions.AuthenticationFailed("The key that issued this token was revoked.")
    raw = claims.get("scopes")
    granted = frozenset(s for s in raw if isinstance(s, str)) if isinstance(raw, list) else set()
    principal = _principal_of_key(key)
    principal.scopes = frozenset(granted) & scopes_of_role(key.role)
    principal.jti = str(claims["jti"])
    return principal, claims


def _basic_password(value: str) -> str | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _login, sep, password = decoded.partition(":")
    return password if sep else None


class AppAuthentication(authentication.BaseAuthentication):
    """Basic (any login, an API key as password), Bearer API key, or Bearer access JWT."""

    def authenticate(self, request: Request) -> tuple[AppPrincipal, None] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            password = _basic_password(value)
            key = find_api_key(password) if password else None
            if key is None:
                raise exceptions.AuthenticationFailed("The login or password is not valid.")
            return _principal_of_key(key), None
        if scheme == "bearer" and value.strip():
            token = value.strip()
            if token.startswith("sg_"):
                key = find_api_key(token)
                if key is None:
                    raise exceptions.AuthenticationFailed(
                        "The API key is not valid or was revoked."
                    )
                return _principal_of_key(key), None
            principal, _ = principal_of_jwt(token, kind="access")
            return principal, None
        return None

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="smsgate"'


class HasScope(permissions.BasePermission):
    """The view's `scope` (one per method, `scopes = {"GET": ..., "POST": ...}`) must be
    granted to the caller."""

    message = "This needs a key or token with the scope for it."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, AppPrincipal):
            raise exceptions.NotAuthenticated("Credentials are required.")
        # HEAD runs the GET handler, so it needs the GET scope.
        method = "GET" if request.method == "HEAD" else request.method or ""
        needed = getattr(view, "scopes", {}).get(method, None)
        if needed is None:
            return True
        self.message = f"This needs the scope {needed}."
        return needed in principal.scopes
