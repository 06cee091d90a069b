"""Waking app phones over their event streams (docs/phones/sms-gateway-app.md#events).

Any process (a web request, a Celery task) calls `notify_phones`; the event travels through
the channel layer to whichever ASGI process holds the phone's `GET /events` stream, after the
change that caused it commits. Phones that have no stream open pick the change up on their
next pull, so a lost event delays work and never loses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from smsgate.groups import send_to_groups

ALL_PHONES_GROUP = "phones"
EVENT_TYPE = "phone.event"  # handled by the stream consumer's `phone_event`

# The event names the app knows; any other name is an error in the app.
MESSAGE_ENQUEUED = "MessageEnqueued"
MESSAGE_CANCELLED = "MessageCancelled"
WEBHOOKS_UPDATED = "WebhooksUpdated"
SETTINGS_UPDATED = "SettingsUpdated"
MESSAGES_EXPORT_REQUESTED = "MessagesExportRequested"


def phone_group(device_id: str) -> str:
    return f"phone.{device_id}"


def notify_phones(
    event: str,
    data: dict[str, str] | None = None,
    *,
    device_ids: Iterable[str] | None = None,
) -> None:
    """Send `event` to these phones' streams (every app phone when `device_ids` is None) once
    the current transaction commits."""
    groups = (
        [ALL_PHONES_GROUP]
        if device_ids is None
        else sorted({phone_group(device_id) for device_id in device_ids})
    )
    if not groups:
        return
    message = {"type": EVENT_TYPE, "event": event, "data": data}
    transaction.on_commit(lambda: send_to_groups([(group, message) for group in groups]))
