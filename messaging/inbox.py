"""The inbox: storing inbound SMS exactly once, whatever door they came through.

`pipeline.inbound.receive` calls `store` inside its transaction and runs the next steps
(automation, webhooks, live updates) on what it returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone

from devices.models import Device
from messaging.conversations import insert_new, point_conversation_at
from messaging.encoding import segment_info
from messaging.models import Conversation, Direction, Message, ProviderApp, Status
from smsgate.ids import new_cnv_id
from smsgate.rows import rows_where_in


@dataclass
class InboundSMS:
    """An SMS as any source reports it, already parsed from its wire format."""

    from_number: str
    body: str
    source: str  # "smssync", "msync", "twilio", ...
    to_number: str = ""
    received_at: datetime | None = None
    device: Device | None = None
    sim_slot: int | None = None
    app: ProviderApp | None = None
    source_id: str = ""  # the sender's own id for the message (SMSSync message_id, MessageSid…)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class InboundResult:
    message: Message
    created: bool
    replies: list[Message] = field(default_factory=list)


def dedup_key_for(sms: InboundSMS) -> str:
    """Same line + same source id, or same line + sender + timestamp + text, is one message."""
    owner = sms.device.pk if sms.device else (sms.app.pk if sms.app else sms.source)
    if sms.source_id:
        return f"{owner}:id:{sms.source_id}"[:200]
    stamp = sms.received_at.isoformat() if sms.received_at else ""
    digest = hashlib.sha256(f"{sms.from_number}\x00{stamp}\x00{sms.body}".encode()).hexdigest()
    return f"{owner}:h:{digest}"


def store(batch: Sequence[InboundSMS]) -> list[InboundResult]:
    """Store each SMS exactly once, in the caller's transaction; results in input order.

    A duplicate (a phone's or provider's retry: same line and source id, or same line, sender,
    time and text) gets the original message back with created=False. One INSERT … ON
    CONFLICT DO NOTHING for all messages tells new rows from retries by what it RETURNs (no
    savepoint per message), then one write per touched conversation.
    """
    if not batch:
        return []
    phones = {sms.from_number for sms in batch}
    known = {c.phone: c for c in rows_where_in(Conversation, "phone", sorted(phones))}
    fresh_ids = {phone: new_cnv_id() for phone in phones if phone not in known}
    messages: list[Message] = []
    for sms in batch:
        info = segment_info(sms.body)
        conversation = known.get(sms.from_number)
        messages.append(
            Message(
                direction=Direction.INBOUND,
                status=Status.RECEIVED,
                from_number=sms.from_number,
                to_number=sms.to_number,
                body=sms.body,
                encoding=info.encoding,
                segments=info.segments,
                device=sms.device,
                sim_slot=sms.sim_slot,
                app=sms.app,
                source=sms.source,
                metadata=sms.metadata,
                received_at=sms.received_at or timezone.now(),
                dedup_key=dedup_key_for(sms),
                provider_message_id=sms.source_id[:100],
                conversation_id=conversation.pk if conversation else fresh_ids[sms.from_number],
            )
        )
    stored = insert_new(Message, messages)
    created = [m for m in messages if m.pk in stored]
    originals: dict[str, Message] = {}
    if len(created) < len(messages):
        duplicate_keys = [m.dedup_key for m in messages if m.pk not in stored]
        originals = {
            m.dedup_key or "": m for m in Message.objects.filter(dedup_key__in=duplicate_keys)
        }

    by_phone: dict[str, list[Message]] = {}
    for message in created:
        by_phone.setdefault(message.from_number, []).append(message)
    new_conversations = []
    for phone, group in by_phone.items():
        last = group[-1]
        line = {"device_id": last.device_id, "sim_slot": last.sim_slot, "app_id": last.app_id}
        if phone in known:
            Conversation.objects.filter(pk=known[phone].pk).update(
                last_message_id=last.pk,
                updated_at=timezone.now(),
                unread=F("unread") + len(group),
                **line,
            )
        else:
            new_conversations.append(
                Conversation(
                    id=fresh_ids[phone],
                    phone=phone,
                    last_message_id=last.pk,
                    unread=len(group),
                    **line,
                )
            )
    if new_conversations:
        # Another request may have created one of these contacts since we looked: our
        # messages then join the conversation that won.
        inserted = insert_new(Conversation, new_conversations)
        lost = [c for c in new_conversations if c.pk not in inserted]
        if lost:
            _adopt_lost_conversations(lost, by_phone)
        # The next steps get the conversations this transaction created, as they are (no
        # one else can see them yet): automation's tag action need not read them back.
        for conversation in new_conversations:
            if conversation.pk in inserted:
                for message in by_phone[conversation.phone]:
                    message.conversation = conversation

    results: list[InboundResult] = []
    for message in messages:
        if message.pk in stored:
            results.append(InboundResult(message=message, created=True))
        else:
            original = originals.get(message.dedup_key or "", message)
            results.append(InboundResult(message=original, created=False))
    return results


def _adopt_lost_conversations(
    attempted: list[Conversation], by_phone: dict[str, list[Message]]
) -> None:
    for conversation in attempted:
        winner = Conversation.objects.get(phone=conversation.phone)
        group = by_phone[conversation.phone]
        Message.objects.filter(pk__in=[m.pk for m in group]).update(conversation=winner)
        for message in group:
            message.conversation_id = winner.pk
        point_conversation_at(group[-1], winner, unread_increment=len(group))
