"""`chat`: the SMS Gateway Master shape, for chatbots (seeds: Gateway-Master two-way SMS).

Inbound SMS: `{"type": "incoming_sms", "sender", "message", "timestamp" (ms), "device_id",
"sim_slot", "conversation_history"}`, where the history holds the endpoint's `history` last
messages of the conversation, oldest first, this message last (the seed: "already contains
the current incoming message as its last entry"). Status events: `{"type": "sms_status",
"smsId", "status"}`. The endpoint's secret travels as `X-API-Key`.

A 2xx answer `{"sms_text": "…"}` asks us to text that back to the sender; the delivery
service sends it through the same device and SIM once the attempt is recorded.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from django.conf import settings

from messaging.models import Direction, Message, Status
from smsgate import jsonbody
from webhooks.formats.base import FormatSpec, Outcome, Target, is_2xx, parse_iso, post
from webhooks.models import SUBSCRIBABLE_EVENTS, Event

# Outbound messages that never left (or never will) are not part of what the contact saw.
_NOT_IN_HISTORY = [Status.SCHEDULED, Status.CANCELLED, Status.EXPIRED, Status.FAILED]
MAX_REPLY_CHARS = 1600


def _ms(value: Any) -> int | None:
    moment = parse_iso(value)
    return int(moment.timestamp() * 1000) if moment else None


def _message_ms(message: Message) -> int:
    if message.direction == Direction.INBOUND:
        moment = message.received_at or message.created_at
    else:
        moment = message.sent_at or message.created_at
    return int(moment.timestamp() * 1000)


def conversation_history(event: Event, size: int) -> list[dict[str, Any]]:
    """The last `size` messages of the conversation up to and including the event's message.

    Ids are time-ordered ULIDs, so `id <= current` is "up to this message" and stays the same
    on every retry even after later messages arrive.
    """
    if size <= 0 or event.message_id is None:
        return []
    current = Message.objects.filter(pk=event.message_id).only("conversation_id").first()
    if current is None:
        return []
    if current.conversation_id is None:
        rows = [Message.objects.get(pk=event.message_id)]
    else:
        rows = list(
            Message.objects.filter(conversation_id=current.conversation_id, id__lte=current.pk)
            .exclude(direction=Direction.OUTBOUND, status__in=_NOT_IN_HISTORY)
            .only("direction", "body", "received_at", "sent_at", "created_at")
            .order_by("-id")[:size]
        )
        rows.reverse()
    return [
        {
            "role": "in" if m.direction == Direction.INBOUND else "out",
            "message": m.body,
            "timestamp": _message_ms(m),
        }
        for m in rows
    ]


def render(
    event: Event, history: int, known_history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The chat payload; `known_history` is the history `prepare` read, if it ran."""
    data = event.data
    if event.type == "sms.received":
        return {
            "type": "incoming_sms",
            "sender": data.get("from"),
            "message": data.get("body"),
            "timestamp": _ms(data.get("receivedAt")),
            "device_id": data.get("deviceId") or data.get("appId"),
            "sim_slot": data.get("simSlot"),
            "conversation_history": (
                conversation_history(event, history) if known_history is None else known_history
            ),
        }
    if event.type.startswith("sms."):
        return {"type": "sms_status", "smsId": data.get("messageId"), "status": data.get("status")}
    if event.type.startswith("device."):
        return {
            "type": "device_status",
            "device_id": data.get("deviceId"),
            "status": "online" if data.get("online") else "offline",
        }
    return {"type": event.type, **data}


def reply_text(body: bytes) -> str | None:
    """The `sms_text` of an answer, or None (an empty or other answer asks for nothing)."""
    try:
        answer = jsonbody.loads(body)
    except ValueError:
        return None
    text = answer.get("sms_text") if isinstance(answer, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None
    return text[:MAX_REPLY_CHARS]


def prepare(target: Target) -> Target:
    """The conversation history, read before `deliver` (which may run on a pool thread)."""
    if target.event.type != "sms.received":
        return target
    history = conversation_history(target.event, target.endpoint.history)
    return replace(target, context={**target.context, "history": history})


def deliver(target: Target) -> Outcome:
    payload = render(target.event, target.endpoint.history, target.context.get("history"))
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if target.secrets:
        headers["X-API-Key"] = target.secrets[0]
    outcome, response = post(target, body=body, headers=headers)
    if response is None or not outcome.succeeded or target.event.type != "sms.received":
        return outcome
    text = reply_text(response.content) if is_2xx(response) else None
    return Outcome(True, status_code=outcome.status_code, excerpt=outcome.excerpt, reply_text=text)


SPEC = FormatSpec(
    name="chat",
    deliver=deliver,
    events=frozenset(SUBSCRIBABLE_EVENTS),
    max_attempts=8,
    timeout=lambda: float(settings.SMSGATE_WEBHOOKS_TIMEOUT),
    schedule=lambda: list(settings.SMSGATE_WEBHOOKS_RETRY_SCHEDULE),
    secret_kind="token",
    prepare=prepare,
)
