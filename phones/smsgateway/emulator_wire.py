"""Wire details of the SMS Gateway for Android app, as its emulator reproduces them.

Each helper mirrors one behaviour of the app (v1.68.0; docs/phones/README.md, "The app
emulator") that a server has to accept byte for byte: Gson's JSON (nulls left out, HTML
characters escaped), Java's `SimpleDateFormat` timestamps, Java `hashCode` message ids for
received SMS, NanoID ids, the SSE reader of OkHttp and the HMAC signature of webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import requests

APP_VERSION = "1.68.0"
# The app's Ktor clients (API and webhooks) send "<applicationId>/<versionName>"; the SSE stream
# is opened by a bare OkHttp 4.10.0 client, which sends OkHttp's own User-Agent.
USER_AGENT = f"me.capcom.smsgateway/{APP_VERSION}"
SSE_USER_AGENT = "okhttp/4.10.0"

NANOID_ALPHABET = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Gson's default HtmlSafe mode writes these as \uXXXX escapes; the webhook signature covers the
# escaped text, so a server must verify the raw body, never a re-serialisation of it.
_GSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "=": "\\u003d",
    "'": "\\u0027",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def nanoid(size: int = 21) -> str:
    return "".join(secrets.choice(NANOID_ALPHABET) for _ in range(size))


def _drop_nulls(value: Any) -> Any:
    # Gson is built without serializeNulls(): a null field is left out, never sent as null
    # (so the registration body has no "pushToken" key at all when there is no push token).
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def gson_dumps(value: Any) -> str:
    text = json.dumps(_drop_nulls(value), ensure_ascii=False, separators=(",", ":"))
    for char, escape in _GSON_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def app_timestamp(moment: datetime, tz: tzinfo = UTC) -> str:
    """`yyyy-MM-dd'T'HH:mm:ss.SSSXXX` in the phone's zone: Java writes "Z" for a zero offset."""
    local = moment.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    offset = local.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def java_string_hash(text: str) -> int:
    """Java `String.hashCode`: over UTF-16 code units, in 32-bit signed arithmetic."""
    data = text.encode("utf-16-be")
    result = 0
    for i in range(0, len(data), 2):
        result = _int32(31 * result + (data[i] << 8 | data[i + 1]))
    return result


def received_message_id(
    address: str, received_ms: int, subscription_id: int | None, text: str
) -> str:
    """The `messageId` of `sms:received`: `InboxMessage.Text.hashCode().toUInt().toString(16)`.

    The hash mixes the sender address, the SMS time in milliseconds (`Date.hashCode`), the
    subscription id and the text, so two identical texts from one sender at the same second
    share an id: the app's own docs say it is not unique.
    """
    date_hash = _int32(received_ms ^ (received_ms >> 32))
    result = java_string_hash(address)
    result = _int32(31 * result + date_hash)
    result = _int32(31 * result + (subscription_id or 0))
    result = _int32(31 * result + java_string_hash(text))
    return format(result & 0xFFFFFFFF, "x")


def health_payload() -> dict[str, Any]:
    """`HealthResponse` as Gson writes it: version, releaseId, then status and checks."""
    failed = {
        "status": "pass",
        "observedValue": 0,
        "observedUnit": "messages",
        "description": "Failed messages for last hour",
    }
    return {
        "version": APP_VERSION,
        "releaseId": 1,
        "status": "pass",
        "checks": {"messages:failed": failed},
    }


def sign(body: str, timestamp: str, key: str) -> str:
    return hmac.new(key.encode(), (body + timestamp).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SseEvent:
    name: str | None
    data: str
    id: str | None


class SseReader:
    """OkHttp's ServerSentEventReader: fields per line, an event on each blank line.

    Lines starting with ":" are comments (the server's ":keepalive"); "data" lines are joined
    with newlines; a block without any data line dispatches nothing; one leading space after the
    colon is dropped; "retry" is read and ignored by the app.
    """

    def __init__(self) -> None:
        self.comments: list[str] = []
        self._name: str | None = None
        self._id: str | None = None
        self._data: list[str] | None = None

    def feed(self, line: str) -> Iterator[SseEvent]:
        if line == "":
            if self._data is not None:
                yield SseEvent(self._name, "\n".join(self._data), self._id)
            self._name, self._data = None, None
            return
        if line.startswith(":"):
            self.comments.append(line[1:])
            return
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data = [*(self._data or []), value]
        elif field == "event":
            # An empty name is an unknown event to the app, unlike a missing one.
            self._name = value
        elif field == "id":
            self._id = value


def shutdown(response: requests.Response) -> None:
    """Unblock a thread reading the stream by shutting its socket down.

    Closing the response from another thread would wait for the reader's lock; a shut-down
    socket makes the blocked read return end-of-stream instead.
    """
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
