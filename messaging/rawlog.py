"""The raw inbound log: every request from a phone or provider is stored before it is parsed.

Endpoints call `log_request` first thing, then `finish` with the outcome. The log row is written
in its own transaction (autocommit), so it survives even when processing the request then
fails and rolls back.

`finish` may also be called inside the work's transaction, just before it commits: the outcome
then commits with the work, one durable commit fewer per request. Endpoints still call `finish`
once more after the transaction, which writes nothing when the same outcome already committed
and records it when the work rolled back (taking the in-transaction record with it).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest

from messaging.models import InboundRequest
from smsgate.statements import insert_sql, update_by_pk


def max_body_bytes() -> int:
    """Bodies up to SMSGATE_MAX_BODY_BYTES are kept in full (an MSync batch of 500 long UCS-2
    messages is close to 5 MB); a larger one is logged truncated to it and refused (413)."""
    return int(settings.SMSGATE_MAX_BODY_BYTES)


_SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})
_SECRET_FIELDS = ("secret", "token", "password", "sig", "api_key", "auth_token")


def _text(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; the body (bytes) keeps the original.
    return value.replace("\x00", "\ufffd")


def _headers_without_secrets(request: HttpRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            headers[name] = f"{scheme} [removed]".strip()
        else:
            headers[name] = _text(value[:2000])
    return headers


def _query_without_secrets(request: HttpRequest) -> str:
    # Parsed from the raw query string, not request.GET: Django refuses a query with more than
    # DATA_UPLOAD_MAX_NUMBER_FIELDS fields, and even such a request must reach the log.
    raw = str(request.META.get("QUERY_STRING", ""))[:8000]
    parts = []
    for key, value in parse_qsl(raw, keep_blank_values=True):
        shown = "[removed]" if key.lower() in _SECRET_FIELDS else value
        parts.append(f"{key}={shown}")
    return _text("&".join(parts)[:4000])


def read_body(request: HttpRequest) -> tuple[bytes, bool]:
    """The body, read up to the size limit so a huge upload cannot exhaust memory.

    Returns (body, too_large).
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = max_body_bytes()
    if length > limit:
        return request.read(limit), True
    body = request.body
    return body, len(body) > limit


def log_request(request: HttpRequest, *, source: str) -> tuple[InboundRequest, bytes, bool]:
    """Store the request as received; returns the log row, the body and whether it was too large."""
    body, too_large = read_body(request)
    entry = InboundRequest(
        source=source,
        method=(request.method or "")[:10],
        path=_text(request.path[:500]),
        query=_query_without_secrets(request),
        headers=_headers_without_secrets(request),
        body=body[: max_body_bytes()],
        body_truncated=too_large,
        remote_addr=(request.META.get("REMOTE_ADDR") or "")[:64],
    )
    # Every request a phone or provider sends is logged first: built once, not compiled anew.
    sql, params = insert_sql(InboundRequest, [entry])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return entry, body, too_large


def finish(
    entry: InboundRequest,
    *,
    outcome: str,
    status_code: int,
    detail: str = "",
    device_id: str | None = None,
    app_id: str | None = None,
) -> None:
    """Record what became of a logged request (one UPDATE, none when already recorded).

    Inside a transaction the record is durable only once that transaction commits; until then
    a later call with the same outcome writes it again, so a rollback cannot lose it.
    """
    fields: dict[str, object] = {
        "outcome": outcome,
        "status_code": status_code,
        "detail": detail[:2000],
    }
    if device_id:
        fields["device_id"] = device_id
    if app_id:
        fields["app_id"] = app_id
    if getattr(entry, "_recorded", None) == fields:
        return
    current = transaction.get_connection()
    if current.in_atomic_block and current.needs_rollback:
        return  # the work is rolling back; the caller records the outcome after it
    update_by_pk(InboundRequest, entry.pk, fields)

    def recorded() -> None:
        entry._recorded = fields  # type: ignore[attr-defined]

    # Outside a transaction this runs at once; inside, only if the transaction commits.
    transaction.on_commit(recorded)
