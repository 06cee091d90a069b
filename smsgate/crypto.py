"""Secrets at rest: one-way hashes for credentials we only compare, encryption for ones we use.

API keys, device tokens and SMSSync secrets are high-entropy random strings, so a single
SHA-256 is enough (no password stretching needed) and lets us look them up by hash. Provider
credentials must be used again (to call Twilio), so they are encrypted with a key derived from
SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def random_token(nbytes: int = 24) -> str:
    """A URL-safe random token that never starts with "-".

    A leading dash reads as an option to command-line tools (`simulate_device --token -x…`,
    shell scripts), which made about one pairing in 64 unusable there; redrawing costs a
    sixty-fourth of one character's entropy.
    """
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


def _fernet() -> Fernet:
    key = hashlib.sha256(f"smsgate-credentials:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_json(value: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return dict(json.loads(_fernet().decrypt(token.encode())))
    except InvalidToken as exc:
        raise RuntimeError(
            "stored credentials cannot be decrypted: was SECRET_KEY changed?"
        ) from exc
