"""The automation log's record of automated replies held back by the loop guard
(messaging/loopguard.py) that did not come from a rule: a chat webhook's `sms_text` answer.

webhooks, below automation, announces such a reply with its `reply_suppressed` signal; this
module keeps it in the same log as the rules' hits, so admins see every held-back reply in one
place (docs/automation.md#loop-guard).
"""

from __future__ import annotations

from typing import Any

from automation.models import RuleHit
from messaging.loopguard import suppression_detail
from messaging.models import Message


def on_reply_suppressed(sender: Any, signal: Any = None, **kwargs: Any) -> None:
    record_suppressed_reply(**kwargs)


def record_suppressed_reply(
    *, phone: str, message: Message | None, name: str, text: str, **extra: Any
) -> None:
    """Log a held-back reply where the automation log keeps them (a suppressed hit), for an
    automated sender that is not a rule."""
    RuleHit.objects.create(
        rule=None,
        rule_name=name[:100],
        message=message,
        phone=phone,
        actions=[
            {
                "type": "reply",
                "status": "suppressed",
                "detail": suppression_detail(),
                "text": text,
                **extra,
            }
        ],
        suppressed=True,
    )
