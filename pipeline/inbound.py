"""Everything an inbound SMS causes, in order, whichever door it came through.

    door (parsed records) ─> receive():
        1. store each SMS once (dedup), upsert the contact's conversation     messaging.inbox
        2. for each new message:
           a. STOP / START / HELP (opt-outs), then the rules; replies queued  automation
           b. the `sms.received` webhook event and its deliveries (outbox)    webhooks
        3. after commit: the live inbox update                                messaging.live
        4. back to the door: each result, with the replies it may hand out
           in its own answer (SMSSync payload; TwiML through `hand_out`)

Everything in 1–2 commits or rolls back together, so a retry of a request that failed
halfway is stored and answered as if it were the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import transaction

from automation.engine import run_automation
from messaging import inbox, live
from messaging.inbox import InboundResult, InboundSMS
from messaging.models import Message
from smsgate.batch import batch_scope
from webhooks.outbox import record_message_event

HandOut = Callable[[list[Message]], list[Message]]


def receive(batch: Sequence[InboundSMS], *, hand_out: HandOut | None = None) -> list[InboundResult]:
    """Store and act on inbound SMS (one, or an MSync batch of up to 500); results in input
    order. A duplicate returns the original message with created=False and causes nothing.

    `hand_out` is the door's way to carry automation's replies in its own answer (TwiML): it
    runs in the transaction, so a reply it marks sent is never also sent after commit; the
    result's `replies` are then the ones it took.
    """
    if not batch:
        return []
    # No savepoint of its own: nothing in here catches an error, and a savepoint costs two
    # statements on a path phones hit for every message. A door that holds a transaction
    # already (a phone's poll) nests in it.
    with transaction.atomic(savepoint=False):
        results = inbox.store(batch)
        created = [result for result in results if result.created]
        # One scope for the batch: the steps read what is the same for every message once
        # (the rules, the webhook endpoints).
        with batch_scope():
            for result in created:
                run_automation(message=result.message, replies=result.replies)
                if hand_out is not None:
                    result.replies = hand_out(result.replies)
                record_message_event(result.message, "sms.received", new_message=True)
        live.announce_created([result.message for result in created])
    return results


def receive_one(sms: InboundSMS, *, hand_out: HandOut | None = None) -> InboundResult:
    """`receive` for a single SMS."""
    return receive([sms], hand_out=hand_out)[0]
