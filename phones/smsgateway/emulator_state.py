"""What the app emulator knows and records: outcomes, SIMs, waits, messages, exchanges.

Kept apart from the phone's behaviour in `emulator.py` (docs/phones/README.md, "The app
emulator").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENERIC_FAILURE = "Send result: RESULT_ERROR_GENERIC_FAILURE (Generic failure cause)"
STREAM_EVENTS = {
    "MessageEnqueued",
    "WebhooksUpdated",
    "SettingsUpdated",
    "MessageCancelled",
    "MessagesExportRequested",
}
KNOWN_WEBHOOK_EVENTS = {
    "sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping",
    "sms:data-received", "mms:received", "mms:downloaded", "app:started", "sms:cancelled",
}  # fmt: skip


class AppHttpError(Exception):
    """A non-2xx answer: the app's Ktor client runs with `expectSuccess = true`."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: HTTP {status} {body[:200]}")
        self.status = status


@dataclass(frozen=True)
class Outcome:
    """What the radio does with one recipient: sent (then delivered or no report) or failed."""

    sent: bool = True
    delivered: bool = True
    error: str = GENERIC_FAILURE


DELIVERED = Outcome()
NO_REPORT = Outcome(delivered=False)


def failed(error: str = GENERIC_FAILURE) -> Outcome:
    return Outcome(sent=False, delivered=False, error=error)


@dataclass(frozen=True)
class Sim:
    slot_index: int
    phone_number: str | None = None
    carrier_name: str | None = None
    iccid: str | None = None
    subscription_id: int | None = None

    @property
    def sim_number(self) -> int:
        return self.slot_index + 1

    def card(self, *, redact: bool) -> dict[str, Any]:
        # /device masks all but the last 4 characters ("****" when shorter); app:started does not.
        def masked(value: str | None) -> str | None:
            if value is None or not redact:
                return value
            return "*" * (len(value) - 4) + value[-4:] if len(value) > 4 else "****"

        return {
            "slotIndex": self.slot_index,
            "simNumber": self.sim_number,
            "phoneNumber": masked(self.phone_number),
            "carrierName": masked(self.carrier_name),
            "iccid": masked(self.iccid),
        }


@dataclass(frozen=True)
class Delays:
    """The app's waits, in seconds; tests shrink them."""

    reconnect: tuple[float, float, float] = (5.0, 30.0, 60.0)
    # WorkManager's exponential backoff from its 10 s minimum (SendStateWorker).
    patch_retry: float = 10.0
    # The webhook queue's backoff: 5 s × 2^(n−1) before retry n.
    webhook_retry: float = 5.0
    connect_timeout: float = 10.0
    stream_read_timeout: float = 3600.0

    def reconnect_after(self, failures: int) -> float:
        """SSEManager.scheduleReconnect: 5 s, then 30 s after 5 failures, 60 s after 10."""
        first, after_five, after_ten = self.reconnect
        return after_ten if failures > 10 else after_five if failures > 5 else first


@dataclass
class Exchange:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    status: int | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class StreamEvent:
    name: str | None
    data: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class LocalMessage:
    id: str
    text: str
    sim_number: int
    with_delivery_report: bool
    recipients: dict[str, tuple[str, str | None]]
    states: dict[str, datetime] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """`MessageWithRecipients.state`: the message's state from its recipients'."""
        states = [s for s, _ in self.recipients.values()]
        for state in ("Pending", "Cancelling", "Cancelled", "Processed"):
            if state in states:
                return state
        if all(s == "Failed" for s in states):
            return "Failed"
        if all(s == "Delivered" for s in states):
            return "Delivered"
        return "Sent"


@dataclass
class Received:
    message_id: str
    sender: str
    text: str
    sim: Sim
    received_at: datetime

    def payload(self, received_at: str) -> dict[str, Any]:
        """`SmsEventPayload.SmsReceived` in Gson's order: its own fields, then the common ones."""
        return {
            "message": self.text,
            "receivedAt": received_at,
            "messageId": self.message_id,
            "sender": self.sender,
            "recipient": self.sim.phone_number,
            "simNumber": self.sim.sim_number,
            "phoneNumber": self.sender,
        }


_SETTING_CHOICES = {
    ("gateway", "notification_channel"): {"AUTO", "SSE_ONLY"},
    ("messages", "limit_period"): {"Disabled", "PerMinute", "Per30Minutes", "PerHour", "PerDay"},
    ("messages", "sim_selection_mode"): {"OSDefault", "RoundRobin", "Random"},
    ("messages", "processing_order"): {"LIFO", "FIFO"},
}
_SETTING_MINIMUMS = {
    ("messages", "send_interval_min"): None,
    ("messages", "send_interval_max"): None,
    ("messages", "limit_value"): 0,
    ("messages", "log_lifetime_days"): 1,
    ("webhooks", "retry_count"): 1,
    ("ping", "interval_seconds"): None,
}


def setting_problem(group: str, values: Any) -> str | None:
    """Why the app's importer of this settings group would throw, if it would.

    The app imports `/settings` group by group and stops at the first group that throws, so the
    groups after a bad value are never applied (SettingsService.update).
    """
    if not isinstance(values, dict):
        return "not an object"
    for key, value in values.items():
        if value is None:
            continue
        choices = _SETTING_CHOICES.get((group, key))
        if choices is not None and str(value) not in choices:
            return f"{key}: {value!r} is not one of {sorted(choices)}"
        if (group, key) == ("gateway", "cloud_url") and not str(value).startswith("https://"):
            return "cloud_url must start with https://"
        if (group, key) in _SETTING_MINIMUMS:
            try:
                number = int(float(str(value)))
            except ValueError:
                return f"{key}: {value!r} is not a number"
            minimum = _SETTING_MINIMUMS[(group, key)]
            if minimum is not None and number < minimum:
                return f"{key} must be >= {minimum}"
    return None
