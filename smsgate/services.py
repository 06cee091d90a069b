"""State changes owned by the core package: API keys."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from smsgate.crypto import hash_secret, random_token
from smsgate.models import APIKey, Role


@dataclass(frozen=True)
class IssuedKey:
    api_key: APIKey
    plaintext: str  # shown once, never stored


def create_api_key(*, name: str, role: str = Role.ADMIN) -> IssuedKey:
    if role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}")
    prefix = random_token(6).replace("-", "x").replace("_", "y")[:8]
    secret = random_token(24)
    with transaction.atomic():
        key = APIKey.objects.create(
            name=name, role=role, prefix=prefix, secret_hash=hash_secret(secret)
        )
    return IssuedKey(api_key=key, plaintext=f"sg_{prefix}_{secret}")


def revoke_api_key(*, key_id: str) -> APIKey:
    with transaction.atomic():
        key = APIKey.objects.select_for_update().get(pk=key_id)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    return key
