"""Small presentation helpers for the dashboard's templates."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from messaging.models import Message, Status

register = template.Library()

# (section, url name, label): a page is listed once its view exists.
ADMIN_PAGES = (
    ("devices", "dashboard:devices", "Devices"),
    ("apps", "dashboard:apps", "Providers"),
    ("routing", "dashboard:routing", "Routing"),
    ("webhooks", "dashboard:webhooks", "Webhooks"),
    ("rules", "dashboard:rules", "Rules"),
    ("logs", "dashboard:logs", "Logs"),
    ("keys", "dashboard:keys", "API keys"),
    ("users", "dashboard:users", "Users"),
)

# status → (symbol, words for screen readers and the tooltip)
TICKS = {
    Status.SCHEDULED: ("◷", "Scheduled"),
    Status.QUEUED: ("◷", "Queued: waiting for a phone or provider"),
    Status.DISPATCHED: ("✓", "Dispatched: handed to the phone"),
    Status.SENT: ("✓", "Sent"),
    Status.DELIVERED: ("✓✓", "Delivered"),
    Status.FAILED: ("✕", "Failed"),
    Status.CANCELLED: ("⊘", "Cancelled"),
    Status.EXPIRED: ("⊘", "Expired before it was sent"),
    Status.RECEIVED: ("", "Received"),
}


@register.filter
def admin_pages(_: object) -> list[tuple[str, str, str]]:
    pages = []
    for section, name, label in ADMIN_PAGES:
        try:
            reverse(name)
        except NoReverseMatch:
            continue
        pages.append((section, name, label))
    return pages


@register.filter
def tick_symbol(message: Message) -> str:
    return TICKS.get(Status(message.status), ("?", ""))[0] if message.status else ""


@register.filter
def tick_label(message: Message) -> str:
    label = TICKS.get(Status(message.status), ("", message.status))[1]
    if message.reason and message.status in (Status.FAILED, Status.CANCELLED, Status.EXPIRED):
        return f"{label}: {message.reason}"
    return label


@register.filter
def line_of(message: Message) -> str:
    """Which of our lines carried the message: the phone and SIM, or the provider app."""
    if message.device_id and message.device is not None:
        sim = f" · SIM {message.sim_slot}" if message.sim_slot else ""
        return f"{message.device.name}{sim}"
    if message.app_id and message.app is not None:
        return message.app.name
    return ""


@register.filter
def last_attempt(delivery: Any) -> Any:
    """The delivery's latest attempt, from its prefetched attempts (no query of its own)."""
    attempts = list(delivery.attempts.all())
    return attempts[-1] if attempts else None
