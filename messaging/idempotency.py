"""`Idempotency-Key` (docs/api.md#idempotency): the same key and body replay the first response (200);
the same key with another body is a 409. Records are kept SMSGATE_IDEMPOTENCY_TTL_HOURS.

Keys belong to the caller (one API key, or one dashboard user): two integrators may use the
same key without seeing each other's responses.

The record is written in the same transaction as what the request created, after it: either
both commit or neither does. Two concurrent requests with one key both find no record and both
run; the second INSERT then hits the unique key (PostgreSQL makes it wait for the first
transaction), its transaction rolls back with everything it created, and it answers with the
first one's response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from messaging.models import IdempotencyRecord
from smsgate.auth import Principal
from smsgate.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 255


def _request_hash(request: Request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.path}\n{canonical}".encode()).hexdigest()


def _valid_key(key: str) -> str:
    # Printable ASCII only: a NUL byte cannot be stored in PostgreSQL text and would be a 500.
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise InvalidInput(
            "Idempotency-Key", f"Use 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    return key


def _replay(principal: str, key: str, request_hash: str) -> Response | None:
    existing = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
    if existing is None:
        return None
    if existing.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
        )
    response = Response(existing.response, status=status.HTTP_200_OK)
    response["Idempotent-Replayed"] = "true"
    return response


def run_idempotently(request: Request, run: Callable[[], Response]) -> Response:
    # From META, as request.headers would read it: the headers mapping, built only for this,
    # cost more than the rest of this function on a send without a key.
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is None:
        return run()
    key = _valid_key(key)
    principal = request.user
    assert isinstance(principal, Principal)
    request_hash = _request_hash(request)
    replay = _replay(principal.label, key, request_hash)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            response = run()
            if not status.is_success(response.status_code):
                # Refusals are not remembered: the caller may retry once the cause is fixed.
                return response
            IdempotencyRecord.objects.create(
                principal=principal.label,
                key=key,
                request_hash=request_hash,
                status_code=response.status_code,
                response=response.data,
            )
    except IntegrityError:
        # A concurrent request with the same key committed first; ours was rolled back.
        replay = _replay(principal.label, key, request_hash)
        if replay is None:
            raise
        return replay
    return response
