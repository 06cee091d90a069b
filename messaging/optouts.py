"""The suppression list: numbers that asked not to be texted (docs/automation.md#opt-outs).

`send_message` refuses an opted-out recipient (422 `recipient_opted_out`), so the API, the
dashboard, bulk sends and automation all honour the list through that one check. Opting out
also cancels what is still waiting in the queue for the number: "nothing" includes messages
queued a minute before the STOP arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from messaging.models import Direction, Message, OptOut, Status
from messaging.services import record_status
from smsgate.errors import NotFound
from smsgate.phones import to_e164


@dataclass(frozen=True)
class OptOutResult:
    opt_out: OptOut
    created: bool
    cancelled: int = 0


def opt_out(phone: str, source: str = "api", *, keep: Sequence[str] = ()) -> OptOutResult:
    """Put `phone` on the suppression list; `created` is False when it already was.

    Safe under concurrency: two STOPs at once insert one row, and only one caller sees
    created=True (which is what sends exactly one confirmation). Messages still waiting to be
    sent to the number are cancelled, except those in `keep` (automation's own confirmation,
    queued by the same rule just before).
    """
    number = to_e164(phone, field="phone")
    with transaction.atomic():
        try:
            with transaction.atomic():
                entry = OptOut.objects.create(phone=number, source=source[:20])
        except IntegrityError:
            # Already on the list (or another request put it there a moment ago).
            existing = OptOut.objects.filter(phone=number).first()
            return OptOutResult(
                opt_out=existing or OptOut(phone=number, source=source), created=False
            )
        waiting = list(
            Message.objects.filter(
                direction=Direction.OUTBOUND,
                to_number=number,
                status__in=(Status.QUEUED, Status.SCHEDULED),
            )
            .exclude(pk__in=list(keep))
            .values_list("pk", flat=True)
        )
        for message_id in waiting:
            cancel_for_opt_out(message_id)
    return OptOutResult(opt_out=entry, created=True, cancelled=len(waiting))


def opt_in(phone: str) -> bool:
    """Take `phone` off the suppression list; False when it was not on it."""
    number = to_e164(phone, field="phone")
    with transaction.atomic():
        deleted, _ = OptOut.objects.filter(phone=number).delete()
    return deleted > 0


def remove_opt_out(phone: str) -> None:
    """The API's DELETE: like opt_in, but a number that is not on the list is a 404."""
    if not opt_in(phone):
        raise NotFound(f"{to_e164(phone, field='phone')} is not on the opt-out list.")


def cancel_for_opt_out(message_id: str) -> bool:
    """Cancel one waiting message because its recipient is on the list (events and webhooks
    follow, as for any cancellation)."""
    return record_status(
        message_id=message_id,
        status=Status.CANCELLED,
        detail="recipient opted out",
        reason="recipient_opted_out",
    )


def recipient_is_opted_out() -> Exists:
    """An annotation for a Message query: whether its recipient is on the list, read in the same
    statement as the rows (the hand-out re-check then costs no query)."""
    return Exists(OptOut.objects.filter(phone=OuterRef("to_number")))


def held_back(message: Message, *, opted_out: bool) -> bool:
    """Whether a message about to be handed to a phone or a provider must not go.

    The list is read again at hand-out because a STOP can commit while a send is being queued
    (after that send read the list, before the STOP's sweep could see the new message); such a
    message must still never leave. Automation's opt-out confirmation is the one exception.
    """
    if not opted_out:
        return False
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    automation = metadata.get("automation")
    confirmation = isinstance(automation, dict) and automation.get("confirmation") is True
    return not (message.source == "automation" and confirmation)
