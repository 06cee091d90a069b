"""The app's wire shapes: parsing what it sends, shaping what it reads
(docs/phones/sms-gateway-app.md). Parsing only: nothing here touches the database.

Everything the phone sends is checked here, so that bad input becomes a WireError (a 400)
and never a 500 further down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.services import MAX_SIM_SLOT
from messaging.models import Message
from smsgate import jsonbody
from smsgate.errors import DomainError
from smsgate.phones import to_e164

# The app's message states (its ProcessingState enum).
STATES = ("Pending", "Cancelling", "Cancelled", "Processed", "Sent", "Delivered", "Failed")
MAX_NAME = 100  # Device.name; the app sends MANUFACTURER/PRODUCT (≤ 128 on its side)
MAX_STATE_ITEMS = 500
MAX_REASON = 500

# What the third-party API stores in Message.metadata["app"] for the phone to read back
# (docs/thirdparty.md#messages); absent on messages sent any other way (plain text, delivery
# report wanted, not encrypted, priority 0).
META_APP = "app"


class WireError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_json(body: bytes) -> Any:
    if not body:
        raise WireError("The body must be JSON.")
    try:
        # Bounded nesting: thousands of `[` would be a RecursionError, a 500 (smsgate/jsonbody.py).
        return jsonbody.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("The body is not valid JSON.") from exc


def _text(value: Any, name: str, *, limit: int, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise WireError(f"`{name}` must be a string.")
    return value.replace("\x00", "")[:limit]


@dataclass
class SimCard:
    """A SIM as the app reports it. `slot` is smsgate's 1-based slot, the app's `simNumber`
    (its `slotIndex` + 1), which is also what its messages and webhooks call `simNumber`."""

    slot: int
    number: str  # "" when unknown or masked


def _sim_number(raw: Any) -> str:
    # The app masks all but the last 4 characters with `*`: a masked number tells us nothing
    # and must never replace a number we know.
    if not isinstance(raw, str) or not raw or "*" in raw:
        return ""
    try:
        return to_e164(raw[:32], field="simCards")
    except DomainError:
        return ""


def parse_sim_cards(value: Any) -> list[SimCard] | None:
    """None when the field is absent (keep the SIMs we have)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_SIM_SLOT:
        raise WireError(f"`simCards` must be a list of at most {MAX_SIM_SLOT} SIM cards.")
    cards: dict[int, SimCard] = {}
    for item in value:
        if not isinstance(item, dict):
            raise WireError("Each SIM card must be an object.")
        slot = item.get("simNumber")
        if slot is None and isinstance(item.get("slotIndex"), int):
            slot = item["slotIndex"] + 1
        if not isinstance(slot, int) or isinstance(slot, bool) or not 1 <= slot <= MAX_SIM_SLOT:
            raise WireError(f"`simNumber` must be between 1 and {MAX_SIM_SLOT}.")
        cards[slot] = SimCard(slot=slot, number=_sim_number(item.get("phoneNumber")))
    return [cards[slot] for slot in sorted(cards)]


@dataclass
class Registration:
    name: str
    sims: list[SimCard] | None


def parse_registration(body: bytes) -> Registration:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise WireError("The body must be a JSON object.")
    name = _text(data.get("name"), "name", limit=MAX_NAME) or "SMS Gateway for Android"
    return Registration(name=name, sims=parse_sim_cards(data.get("simCards")))


@dataclass
class DevicePatch:
    device_id: str
    sims: list[SimCard] | None


def parse_device_patch(body: bytes) -> DevicePatch:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise WireError("The body must be a JSON object.")
    return DevicePatch(
        device_id=_text(data.get("id"), "id", limit=40, required=True),
        sims=parse_sim_cards(data.get("simCards")),
    )


def parse_time(value: Any) -> datetime | None:
    """The app's `2026-12-03T08:00:00.123+00:00`; a time without zone is read as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value.strip()[:40])
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


@dataclass
class StateItem:
    message_id: str
    state: str
    reason: str = ""
    at: datetime | None = None


def parse_state_items(body: bytes) -> list[StateItem]:
    data = parse_json(body)
    if not isinstance(data, list) or len(data) > MAX_STATE_ITEMS:
        raise WireError(f"The body must be a list of at most {MAX_STATE_ITEMS} message states.")
    items = []
    for raw in data:
        if not isinstance(raw, dict):
            raise WireError("Each message state must be an object.")
        state = raw.get("state")
        if state not in STATES:
            raise WireError("`state` must be one of " + ", ".join(STATES) + ".")
        recipients = raw.get("recipients")
        errors = [
            r["error"]
            for r in (recipients if isinstance(recipients, list) else [])
            if isinstance(r, dict) and isinstance(r.get("error"), str) and r["error"]
        ]
        states = raw.get("states")
        items.append(
            StateItem(
                message_id=_text(raw.get("id"), "id", limit=40, required=True),
                state=state,
                reason="; ".join(dict.fromkeys(errors)).replace("\x00", "")[:MAX_REASON],
                at=parse_time(states.get(state)) if isinstance(states, dict) else None,
            )
        )
    return items


@dataclass
class Envelope:
    """A webhook the phone sent: `{"id", "webhookId", "event", "deviceId", "payload"}`."""

    event: str
    device_id: str
    event_id: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


def parse_envelope(body: bytes) -> Envelope:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise WireError("The body must be a JSON object.")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise WireError("`payload` must be an object.")
    return Envelope(
        event=_text(data.get("event"), "event", limit=40, required=True),
        device_id=_text(data.get("deviceId"), "deviceId", limit=40, required=True),
        event_id=_text(data.get("id"), "id", limit=100),
        payload=payload,
    )


def payload_text(payload: dict[str, Any], name: str, *, limit: int = 1600) -> str:
    return _text(payload.get(name), name, limit=limit)


def payload_sim(payload: dict[str, Any]) -> int | None:
    sim = payload.get("simNumber")
    if isinstance(sim, int) and not isinstance(sim, bool) and 1 <= sim <= MAX_SIM_SLOT:
        return sim
    return None


def format_time(value: datetime | None) -> str | None:
    """Milliseconds and an offset: the app's Gson reads `yyyy-MM-dd'T'HH:mm:ss.SSSXXX`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


_ORDER = re.compile(r"^(lifo|fifo)$")


def parse_order(value: str | None) -> str:
    if not value:
        return "lifo"
    if not _ORDER.match(value):
        raise WireError("`order` must be lifo or fifo.")
    return value


def pending_message(message: Message) -> dict[str, Any]:
    """A handed-out message as the app reads it (its GatewayApi.Message): a data SMS as
    `dataMessage` (base64 body and port), anything else as `textMessage`."""
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    app = metadata.get(META_APP)
    app = app if isinstance(app, dict) else {}
    port = app.get("dataPort")
    content: dict[str, Any] = (
        {"dataMessage": {"data": message.body, "port": port}}
        if isinstance(port, int)
        else {"message": message.body, "textMessage": {"text": message.body}}
    )
    priority = app.get("priority")
    return {
        "id": message.pk,
        **content,
        "phoneNumbers": [message.to_number],
        "simNumber": message.sim_slot,
        "withDeliveryReport": bool(app.get("withDeliveryReport", True)),
        "isEncrypted": bool(app.get("isEncrypted", False)),
        "priority": priority if isinstance(priority, int) else 0,
        "ttl": None,
        "validUntil": format_time(message.expires_at),
        "scheduleAt": None,
        "state": "Pending",
        "createdAt": format_time(message.created_at),
    }
