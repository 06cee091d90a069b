"""SMSSync (ushahidi/SMSSync 3.x) as the Android app really speaks it (docs/phones/smssync.md).

Quirks handled here: the body may be form-encoded, JSON (all values strings) or XML sent with a
JSON content type, so the format is told from the body itself; `sent_timestamp` is in
milliseconds although the docs say seconds; after a "Test integration" run the app appends that
test's parameters to later GET URLs with a second `?`, which ends up inside the `secret` value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from phones.protocols import ProtocolError, parse_epoch
from smsgate import jsonbody

FIELDS = ("secret", "from", "message", "sent_timestamp", "sent_to", "message_id", "device_id")

# What the app's "Test integration" button posts; it only checks that we answer with a payload.
TEST_FROM = "+000000000000"
TEST_MESSAGE = "Test Message From SMSSync Integration"

MAX_LIST = 1000


@dataclass
class IncomingSMS:
    secret: str
    from_number: str
    message: str
    sent_timestamp: str
    sent_to: str
    message_id: str
    device_id: str

    @property
    def is_integration_test(self) -> bool:
        return self.from_number == TEST_FROM and self.message == TEST_MESSAGE


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("The body is not UTF-8 text.") from None


def _flat_fields(body: bytes) -> dict[str, Any]:
    text = _text(body).strip()
    if not text:
        return {}
    if text.startswith(("{", "[")):
        try:
            data = jsonbody.loads(text)
        except jsonbody.TooDeep as exc:
            raise ProtocolError(str(exc)) from None
        except ValueError:
            raise ProtocolError("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ProtocolError("The JSON body must be an object.")
        return data
    if text.startswith("<"):
        # The app's XML format (sent as application/json, a bug in the app). ElementTree never
        # fetches external entities, and the body is at most SMSGATE_MAX_BODY_BYTES.
        try:
            root = ElementTree.fromstring(text)  # noqa: S314
        except ElementTree.ParseError:
            raise ProtocolError("The body is not valid XML.") from None
        return {child.tag: (child.text or "") for child in root}
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=100))
    except ValueError:
        raise ProtocolError("The body is not a form.") from None


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ProtocolError(f"`{key}` must be a string.", field=key)
    text = str(value)
    if "\x00" in text:
        # No SMS carries a NUL character, and PostgreSQL text cannot store one.
        raise ProtocolError(f"`{key}` contains a NUL character.", field=key)
    return text


def parse_incoming(body: bytes) -> IncomingSMS:
    data = _flat_fields(body)
    sms = IncomingSMS(
        secret=_string(data, "secret"),
        from_number=_string(data, "from").strip(),
        message=_string(data, "message"),
        sent_timestamp=_string(data, "sent_timestamp"),
        sent_to=_string(data, "sent_to").strip(),
        message_id=_string(data, "message_id").strip()[:100],
        device_id=_string(data, "device_id").strip()[:100],
    )
    if not sms.from_number:
        raise ProtocolError("`from` is missing.", field="from")
    if len(sms.from_number) > 64 or len(sms.sent_to) > 64:
        raise ProtocolError("`from` and `sent_to` are at most 64 characters.", field="from")
    if not sms.message:
        raise ProtocolError("`message` is missing.", field="message")
    return sms


def query_secret(raw: str) -> str:
    """The `secret` query parameter, without what a stale "Test integration" run appended."""
    return raw.split("?", 1)[0]


def _json_object(body: bytes) -> dict[str, Any]:
    text = _text(body).strip()
    if not text:
        return {}
    try:
        data = jsonbody.loads(text)
    except jsonbody.TooDeep as exc:
        raise ProtocolError(str(exc)) from None
    except ValueError:
        raise ProtocolError("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("The JSON body must be an object.")
    return data


def _string_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise ProtocolError(f"`{key}` must be a list of at most {MAX_LIST} items.", field=key)
    if not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"`{key}` must hold strings.", field=key)
    return value


def parse_queued_uuids(body: bytes) -> list[str]:
    """`task=sent`: `{"queued_messages": [uuids]}`."""
    return _string_list(_json_object(body), "queued_messages")


@dataclass
class MessageResult:
    uuid: str
    sent_result_code: int | None
    sent_result_message: str
    delivered_result_code: int | None
    raw: dict[str, Any]

    def describe(self) -> str:
        """The result as a person reads it in a message's events ("sent (result code -1),
        delivered"), rather than the dict the app posted."""
        sent = self.sent_result_code in (None, 0, -1)  # Android's RESULT_OK is -1
        text = "sent" if sent else "failed"
        if self.sent_result_code is not None:
            text += f" (result code {self.sent_result_code})"
        if self.sent_result_message and not sent:
            text += f": {self.sent_result_message}"
        if self.delivered_result_code == -1:
            text += ", delivered"
        elif self.delivered_result_code is not None:
            text += f", delivery report code {self.delivered_result_code}"
        return text


def _code(entry: dict[str, Any], key: str) -> int | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ProtocolError(f"`{key}` must be a number.", field=key)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"`{key}` must be a number.", field=key) from None


def parse_message_results(body: bytes) -> list[MessageResult]:
    """`POST task=result`: `{"message_result": [{uuid, sent_result_code, …}]}`."""
    entries = _json_object(body).get("message_result", [])
    if not isinstance(entries, list) or len(entries) > MAX_LIST:
        raise ProtocolError("`message_result` must be a list.", field="message_result")
    results = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("uuid"), str):
            raise ProtocolError("Each `message_result` needs a `uuid`.", field="message_result")
        message = entry.get("sent_result_message")
        results.append(
            MessageResult(
                uuid=entry["uuid"],
                sent_result_code=_code(entry, "sent_result_code"),
                sent_result_message=message if isinstance(message, str) else "",
                delivered_result_code=_code(entry, "delivered_result_code"),
                raw=entry,
            )
        )
    return results


def received_at(sms: IncomingSMS) -> Any:
    return parse_epoch(sms.sent_timestamp)
