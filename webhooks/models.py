"""Webhook endpoints and the outbox: events, one delivery per endpoint, one row per attempt."""

from __future__ import annotations

from django.db import models

from smsgate.ids import new_dlv_id, new_evt_id, new_whk_id


class EventType(models.TextChoices):
    SMS_RECEIVED = "sms.received", "SMS received"
    SMS_SENT = "sms.sent", "SMS sent"
    SMS_DELIVERED = "sms.delivered", "SMS delivered"
    SMS_FAILED = "sms.failed", "SMS failed"
    SMS_CANCELLED = "sms.cancelled", "SMS cancelled"
    SMS_REROUTED = "sms.rerouted", "SMS re-routed"
    DEVICE_OFFLINE = "device.offline", "Device offline"
    DEVICE_ONLINE = "device.online", "Device online"
    PING = "ping", "Test ping"


SUBSCRIBABLE_EVENTS = [t.value for t in EventType if t != EventType.PING]
# What an endpoint gets when it names no events: cancellations (added for the app's
# `sms:cancelled`, docs/thirdparty.md#webhooks) and moves to another line
# (docs/routing.md#re-routing) only when asked for, so older receivers see no new types.
DEFAULT_EVENTS = [
    t for t in SUBSCRIBABLE_EVENTS if t not in (EventType.SMS_CANCELLED, EventType.SMS_REROUTED)
]


class Format(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks (signed JSON)"
    CHAT = "chat", "Chat (Gateway-Master style, with replies)"
    FORM = "form", "Form post (Agile Telecom style, +OK)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email (mailto:)"
    APP = "app", "SMS Gateway for Android app envelope (signed)"


class Endpoint(models.Model):
    """Where events go, in which format.

    Secrets are encrypted rather than hashed: we sign (standard) or send (chat `X-API-Key`)
    with them on every attempt. After a rotation the previous secret keeps signing, next to
    the new one, until `previous_secret_expires_at` (24 h), so receivers can switch over.

    `internal` endpoints hold the ad-hoc URLs of automation `forward` actions; they never
    appear in the API and receive nothing but those forwards.

    `failing_since` is the time of the first failed attempt with no success since; an
    endpoint failing for 5 days is disabled (Svix's rule), as is one answering 410 Gone.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_whk_id, editable=False)
    url = models.CharField(max_length=2000)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.STANDARD)
    events = models.JSONField(default=list)
    filters = models.JSONField(default=dict, blank=True)
    history = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=8)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True, default="")
    secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["enabled", "internal"], name="webhook_endpoint_active")]

    def __str__(self) -> str:
        return f"{self.id} {self.format} {self.url}"


class Event(models.Model):
    """Something that happened, with the `data` of the standard format (a snapshot taken in
    the transaction of the change, so every retry and every format renders the same facts).

    One event per (message, type): the automation `forward` action and the subscriptions of
    the same inbound message share it, so an endpoint gets it once. Except `sms.rerouted`: a
    message may move more than once (phone → phone → fallback app), one event per move.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_evt_id, editable=False)
    type = models.CharField(max_length=20, choices=EventType.choices)
    data = models.JSONField(default=dict)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "type"],
                condition=models.Q(message__isnull=False) & ~models.Q(type="sms.rerouted"),
                name="webhook_event_unique_per_message",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event for one endpoint. This row is the truth; the broker only carries reminders.

    Life cycle::

        pending ──attempt ok──► succeeded
           │  ▲
           │  └─ attempt failed, attempts left: next_attempt_at = now + schedule (+ jitter)
           └──── attempt failed, none left, or 410 Gone ──► failed
        succeeded / failed ──retry or replay by hand──► pending

    A worker claims the row with a conditional update that sets `lease_until`; a second
    worker (a duplicate broker message) finds the lease and does nothing. A worker killed
    mid-attempt leaves an expired lease, which the beat sweep re-enqueues. `enqueued_at` is
    when a broker message was last published for this row (null: none expected), so the
    sweep can tell a lost message from one merely waiting in the queue.

    `round_base` and `round_attempts` describe the current round: attempts made before it
    (by earlier rounds) and attempts allowed in it. A hand retry is a round of one.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_dlv_id, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts_made = models.PositiveIntegerField(default=0)
    round_base = models.PositiveIntegerField(default=0)
    round_attempts = models.PositiveIntegerField(default=8)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhook_delivery_unique_per_endpoint"
            )
        ]
        indexes = [
            models.Index(fields=["endpoint", "id"], name="webhook_delivery_endpoint"),
            # The sweep scans pending rows only (a partial index stays small).
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class Attempt(models.Model):
    """One try at a delivery. Written when the attempt starts (so a worker killed mid-attempt
    leaves a trace) and completed with its outcome; `duration_ms` null means it never ended."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S} {self.status_code}"


class ConfigVersion(models.Model):
    """The version of a configuration that processes keep in memory (webhooks/versions.py):
    the webhook endpoints (`webhooks.endpoints`) and the automation rules (`automation.rules`).

    Database triggers (migrations `webhooks.0003`, `automation.0002`) replace `token` with a
    new random value in the same statement as any change to those tables, whoever makes it
    (a service, the admin, the delivery worker disabling an endpoint, a shell), so a change and
    its new version commit or roll back together. A random token, not a counter: after a rolled
    back change, or a deleted row, a counter could come back to a value a process already holds
    for other contents. It lives here because webhooks is the lowest app that keeps such a
    configuration; automation, above it, uses it too.
    """

    name = models.CharField(primary_key=True, max_length=40)
    token = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.name} {self.token}"
