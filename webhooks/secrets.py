"""Signing secrets of webhook endpoints: made, checked, encrypted at rest (we must sign with
them again), and the ones valid now (the previous one keeps signing for 24 h after a rotation,
docs/webhooks.md#standard-format-signed-json)."""

from __future__ import annotations

import base64
import binascii
import functools
import secrets as secrets_module
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from smsgate.crypto import decrypt_json, encrypt_json, random_token
from smsgate.errors import InvalidInput
from webhooks.formats import get_format
from webhooks.models import Endpoint

ROTATION_GRACE = timedelta(hours=24)


def new_signing_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks: 24–64 bytes)."""
    return "whsec_" + base64.b64encode(secrets_module.token_bytes(32)).decode()


def validated_secret(fmt: str, secret: Any) -> str | None:
    kind = get_format(fmt).secret_kind
    if secret is None or secret == "":
        if kind == "whsec":
            return new_signing_secret()
        if kind == "token":
            return random_token(24)
        return None
    if kind is None:
        raise InvalidInput("secret", f"The {fmt} format has no secret.")
    if not isinstance(secret, str) or len(secret) > 200:
        raise InvalidInput("secret", "The secret must be a string of at most 200 characters.")
    if kind == "whsec":
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not secret.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise InvalidInput(
                "secret", "A signing secret is whsec_ followed by base64 of 24 to 64 bytes."
            )
        return secret
    if len(secret) < 8 or not secret.isprintable() or not secret.isascii():
        raise InvalidInput("secret", "The secret must be at least 8 printable ASCII characters.")
    return secret


def encrypt_secret(secret: str | None) -> str:
    return encrypt_json({"secret": secret}) if secret else ""


@functools.lru_cache(maxsize=256)
def _decrypted(token: str) -> str:
    # A Fernet token always decrypts to the same secret, so a worker signing thousands of
    # deliveries to the same endpoints decrypts each secret once, not once per delivery.
    # Keyed by the ciphertext: a rotated secret is a new token and misses the cache.
    return str(decrypt_json(token).get("secret", ""))


def endpoint_secrets(endpoint: Endpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets to sign with: the current one, then the previous one during its grace."""
    now = now or timezone.now()
    found = [_decrypted(endpoint.secret_encrypted)] if endpoint.secret_encrypted else []
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(_decrypted(endpoint.previous_secret_encrypted))
    return [s for s in found if s]
