"""The loop guard: one budget of automated replies per number, shared by every automated sender.

Rules, the built-in STOP/START/HELP texts and a chat webhook's `sms_text` answers (including a
rule's forward to a chat receiver) all count against the same SMSGATE_AUTOREPLY_LIMIT replies to
one number per hour. Counting only one kind would let two of them, or our bot and the other
side's, answer each other forever.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from messaging.models import Conversation, Direction, Message

# The `source` of every message we send without a person asking for it.
AUTOMATED_SOURCES = ("automation", "chat")


def autoreply_limit() -> int:
    return int(getattr(settings, "SMSGATE_AUTOREPLY_LIMIT", 5))


def suppression_detail() -> str:
    return f"loop guard: {autoreply_limit()} automated replies to this number in the last hour"


def replies_left(phone: str, *, lock: bool = False) -> int:
    """How many more automated replies `phone` may get this hour.

    `lock` takes the number's conversation row first, so two replies decided at once (two
    webhook workers) count each other; the inbound transaction already holds that row.
    """
    if lock:
        list(Conversation.objects.select_for_update().filter(phone=phone).values_list("pk"))
    since = timezone.now() - timedelta(hours=1)
    sent = Message.objects.filter(
        to_number=phone,
        direction=Direction.OUTBOUND,
        source__in=AUTOMATED_SOURCES,
        created_at__gte=since,
    ).count()
    return autoreply_limit() - sent
