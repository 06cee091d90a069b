"""Hooks other apps plug into, so `messaging` never imports automation or webhooks.

Both signals are sent inside the transaction that made the change: receivers write their rows
(replies, opt-outs, webhook events and deliveries) atomically with it and schedule broker work
with transaction.on_commit. Receivers run in INSTALLED_APPS order, so automation (which may
opt a number out or queue a reply) runs before webhooks records the events.
"""

from django.dispatch import Signal

# sender=Message; kwargs: message (the new inbound Message), replies (list[Message] a receiver
# may append automated replies to; SMSSync and TwiML return them in the same response).
message_received = Signal()

# sender=Message; kwargs: message, previous (str status), status (str), detail (str).
message_status_changed = Signal()

# sender=Message; kwargs: message (a new outbound Message, queued or scheduled).
message_queued = Signal()
