"""MSync: smsgate's own JSON protocol for phone clients (docs/phones/msync.md). Parsing only."""

from __future__ import annotations

import math
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from phones.protocols import ProtocolError, parse_time
from smsgate import jsonbody

ACTIONS = ("incoming", "outgoing", "status", "location", "delivery")
MAX_BATCH = 500
MAX_POLL = 500
REPORT_STATUSES = ("sent", "delivered", "failed")


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise ProtocolError("The body is empty; send a JSON object with an `action`.")
    try:
        data = jsonbody.loads(body.decode("utf-8"))
    except jsonbody.TooDeep as exc:
        raise ProtocolError(str(exc)) from None
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("The body is not valid UTF-8 JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("The body must be a JSON object.")
    return data


def _str(value: Any, field: str, *, required: bool = True, max_length: int = 2000) -> str:
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"`{field}` must be a string.", field=field)
    text = str(value)
    if "\x00" in text:
        # No SMS carries a NUL character, and PostgreSQL text cannot store one.
        raise ProtocolError(f"`{field}` contains a NUL character.", field=field)
    if required and not text.strip():
        raise ProtocolError(f"`{field}` is required.", field=field)
    if len(text) > max_length:
        raise ProtocolError(f"`{field}` is longer than {max_length} characters.", field=field)
    return text


def _int(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"`{field}` must be a whole number from {low} to {high}.", field=field)
    return value


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"`{field}` must be a number.", field=field)
    if not low <= value <= high:
        raise ProtocolError(f"`{field}` must be between {low} and {high}.", field=field)
    return float(value)


def _time(value: Any, field: str) -> datetime:
    stamp = parse_time(value) if isinstance(value, str | int | float) else None
    if stamp is None:
        raise ProtocolError(f"`{field}` must be ISO-8601 or epoch milliseconds.", field=field)
    return stamp


def _slot(value: Any) -> int | None:
    """smsgate counts SIM slots from 1, here as everywhere (`outgoing` reports the same numbers).
    Android counts them from 0 and Salami's MSync app reports its first SIM as 0, so 0 is read
    as the first slot rather than refusing the whole batch."""
    slot = _int(value, "sim_slot", 0, 8)
    return 1 if slot == 0 else slot


@dataclass
class Incoming:
    from_number: str
    body: str
    received_at: datetime
    sim_slot: int | None
    source_id: str


def parse_incoming(data: dict[str, Any]) -> list[Incoming]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProtocolError("`messages` must be a non-empty list.", field="messages")
    if len(messages) > MAX_BATCH:
        raise ProtocolError(f"At most {MAX_BATCH} messages per batch.", field="messages")
    parsed = []
    for item in messages:
        if not isinstance(item, dict):
            raise ProtocolError("Each message must be an object.", field="messages")
        parsed.append(
            Incoming(
                from_number=_str(item.get("from"), "from", max_length=64).strip(),
                body=_str(item.get("message"), "message", max_length=10000),
                received_at=_time(item.get("timestamp"), "timestamp"),
                sim_slot=_slot(item.get("sim_slot")),
                source_id=_str(item.get("id"), "id", required=False, max_length=100).strip(),
            )
        )
    return parsed


def parse_limit(data: dict[str, Any], default: int) -> int:
    limit = _int(data.get("limit"), "limit", 0, MAX_POLL)
    return default if limit is None else limit


def parse_status(data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "battery_level" in data:
        values["battery_level"] = _int(data["battery_level"], "battery_level", 0, 100)
    if "signal_strength" in data:
        values["signal_strength"] = _int(data["signal_strength"], "signal_strength", -200, 200)
    for key, length in (("network_type", 20), ("sim_state", 40)):
        if key in data:
            values[key] = _str(data[key], key, required=False, max_length=length)
    return values


def parse_location(data: dict[str, Any]) -> tuple[float, float, float | None]:
    latitude = _number(data.get("latitude"), "latitude", -90, 90)
    longitude = _number(data.get("longitude"), "longitude", -180, 180)
    accuracy = data.get("accuracy")
    return (
        latitude,
        longitude,
        None if accuracy is None else _number(accuracy, "accuracy", 0, 10**7),
    )


@dataclass
class Report:
    uuid: uuidlib.UUID
    status: str
    at: datetime | None
    error: str


def parse_delivery(data: dict[str, Any]) -> list[Report]:
    reports = data.get("reports")
    if not isinstance(reports, list) or len(reports) > MAX_BATCH:
        raise ProtocolError(f"`reports` must be a list of at most {MAX_BATCH}.", field="reports")
    parsed = []
    for item in reports:
        if not isinstance(item, dict):
            raise ProtocolError("Each report must be an object.", field="reports")
        try:
            message_uuid = uuidlib.UUID(_str(item.get("uuid"), "uuid", max_length=64))
        except ValueError:
            raise ProtocolError("`uuid` is not a message uuid.", field="uuid") from None
        status = item.get("status")
        if status not in REPORT_STATUSES:
            raise ProtocolError(
                "`status` must be one of " + ", ".join(REPORT_STATUSES) + ".", field="status"
            )
        stamp = item.get("timestamp")
        parsed.append(
            Report(
                uuid=message_uuid,
                status=status,
                at=None if stamp is None else _time(stamp, "timestamp"),
                error=_str(item.get("error"), "error", required=False, max_length=500),
            )
        )
    return parsed
