"""The plug-in points of messaging: apps above it subscribe, so messaging never imports them.

Both are sent inside the transaction that made the change, from many services (the API, the
dashboard, phone and provider reports, beat tasks): receivers write their rows atomically with
it and schedule broker work with transaction.on_commit.

- `message_status_changed`: webhooks records the status events; providers sends a message
  released to its app (scheduled or held back).
- `message_queued`: providers sends a new message routed to a provider app (phones pull theirs).
- `message_rerouted`: a message moved to another line (messaging.rerouting): webhooks records
  `sms.rerouted`; providers sends it when the new line is a provider app.

Inbound messages have no signal: `pipeline.inbound.receive` calls each step explicitly.
"""

from django.dispatch import Signal

# sender=Message; kwargs: message, previous (str status), status (str), detail (str).
message_status_changed = Signal()

# sender=Message; kwargs: message (a new outbound Message, queued or scheduled).
message_queued = Signal()

# sender=Message; kwargs: message (queued on its new line), from_line, to_line, why (str each).
message_rerouted = Signal()
