"""What the one outbound HTTP client (`smsgate.http`) puts on the wire and hands back.

smsgate used to send through requests; it now drives libcurl (requests' session machinery, and
then urllib3's and http.client's header handling, were most of the CPU of a webhook delivery). Receivers and callers must not see the
difference, so this module encodes a request the way requests did (its default headers, form
encoding of pairs, JSON bodies, Basic auth, credentials in the URL) and hands the answer back
as the `requests.Response` callers read (status, headers, text, json(), content).
"""

from __future__ import annotations

import json as _json
from base64 import b64encode
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import unquote, urlencode, urlsplit

from requests import Response
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_ACCEPT_ENCODING, get_encoding_from_headers

__all__ = ["Outgoing", "host_header", "outgoing", "response_from"]


def default_headers(user_agent: str) -> dict[str, tuple[str, str]]:
    """The headers requests sent by default (receivers saw them before), by lower-case name."""
    return {
        "user-agent": ("User-Agent", user_agent),
        "accept-encoding": ("Accept-Encoding", DEFAULT_ACCEPT_ENCODING),
        "accept": ("Accept", "*/*"),
        "connection": ("Connection", "keep-alive"),
    }


class Outgoing(NamedTuple):
    target: str  # path and query: the connection is to the checked address, not the URL
    body: bytes | None
    headers: dict[str, str]


def host_header(scheme: str, host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


def form(data: Any) -> bytes:
    """Pairs (a mapping or a list of pairs) as application/x-www-form-urlencoded, the way
    requests encodes them: a list value repeats its key, a None value is left out."""
    pairs = data.items() if isinstance(data, Mapping) else data
    flat: list[tuple[Any, Any]] = []
    for key, values in pairs:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        flat.extend((key, value) for value in values if value is not None)
    return urlencode(flat).encode("ascii")


def basic_auth(username: str, password: str) -> str:
    # Latin-1, as requests encodes it (RFC 7617's historical default).
    token = b64encode(f"{username}:{password}".encode("latin-1")).decode("ascii")
    return f"Basic {token}"


def outgoing(
    url: str,
    defaults: Mapping[str, tuple[str, str]],
    host: str,
    headers: Mapping[str, str] | None,
    data: Any,
    json: Any,
    auth: tuple[str, str] | None,
) -> Outgoing:
    """The request target, body and headers of a request to `url`, as requests built them.

    `data` goes out as is when bytes (a webhook format's signed body must reach the receiver
    byte for byte), as UTF-8 when str, form-encoded when pairs; `json` (used only without
    `data`) as JSON; `auth`, or credentials in the URL, as Basic auth. `host` is the Host
    header. ValueError when `json` cannot be encoded (NaN, say)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Header names are case-insensitive: a caller's `content-type` replaces ours.
    merged = dict(defaults)
    merged["host"] = ("Host", host)
    for name, value in (headers or {}).items():
        merged[name.lower()] = (name, value)
    body: bytes | None = None
    content_type: str | None = None
    if not data and json is not None:
        body = _json.dumps(json, allow_nan=False).encode("utf-8")
        content_type = "application/json"
    elif data:
        if isinstance(data, bytes):
            body = data
        elif isinstance(data, str):
            body = data.encode("utf-8")
        else:
            body = form(data)
            content_type = "application/x-www-form-urlencoded"
    if content_type is not None and "content-type" not in merged:
        merged["content-type"] = ("Content-Type", content_type)
    if auth is None and parts.username is not None and parts.password is not None:
        url_auth = (unquote(parts.username), unquote(parts.password))
        auth = url_auth if any(url_auth) else None
    if auth is not None:
        merged["authorization"] = ("Authorization", basic_auth(*auth))
    return Outgoing(target, body, dict(merged.values()))


def response_from(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    content: bytes,
    url: str,
    elapsed: float,
) -> Response:
    """The answer as the requests.Response callers read; `content` is the body already read
    (decoded and bounded), `headers` joins repeated names with ", " as requests did, and the
    encoding is guessed from Content-Type as requests does."""
    response = Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    response.encoding = get_encoding_from_headers(response.headers)
    response.reason = reason
    response.url = url
    response.elapsed = timedelta(seconds=elapsed)
    response._content = content
    response._content_consumed = True
    return response
