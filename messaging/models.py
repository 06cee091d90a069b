"""Messages, their status history, conversations, opt-outs, provider apps and the raw log."""

from __future__ import annotations

import uuid

from django.db import models

from smsgate.ids import new_app_id, new_cnv_id, new_msg_id, new_req_id


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    DISPATCHED = "dispatched", "Dispatched"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    RECEIVED = "received", "Received"


class Encoding(models.TextChoices):
    GSM7 = "GSM-7", "GSM-7"
    UCS2 = "UCS-2", "UCS-2"


class ProviderApp(models.Model):
    """A cloud number account (Twilio, Vonage, Africa's Talking, Agile Telecom).

    Credentials are encrypted at rest (smsgate.crypto) because we must use them again to call
    the provider; they are never returned by the API.
    """

    class Provider(models.TextChoices):
        TWILIO = "twilio", "Twilio"
        VONAGE = "vonage", "Vonage"
        AFRICASTALKING = "africastalking", "Africa's Talking"
        AGILETELECOM = "agiletelecom", "Agile Telecom"

    id = models.CharField(primary_key=True, max_length=40, default=new_app_id, editable=False)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    name = models.CharField(max_length=100)
    credentials_encrypted = models.TextField(blank=True, default="")
    numbers = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    # False for an app that only receives (no sending credentials, or a provider whose sending
    # is not implemented): routing never sends through it. Kept by providers.services whenever
    # the credentials change, since only the provider's module knows what sending needs.
    can_send = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider}, {self.id})"


class RoutingPolicy(models.Model):
    """The routing policy admins edit (one row, docs/routing.md#the-routing-policy). Until an
    admin saves it, the environment's defaults apply; once saved, this row wins."""

    fallback_app = models.ForeignKey(
        ProviderApp, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reroute_after = models.PositiveIntegerField()
    max_attempts = models.PositiveSmallIntegerField()
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "routing policy"


class Conversation(models.Model):
    """One per contact number. Remembers the line (device+SIM or provider app) that last talked
    with the contact, so replies come from the number the contact knows (sticky sender)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_cnv_id, editable=False)
    phone = models.CharField(max_length=32, unique=True)
    device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sim_slot = models.PositiveSmallIntegerField(null=True, blank=True)
    app = models.ForeignKey(
        ProviderApp, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unread = models.PositiveIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.phone


class Message(models.Model):
    """An SMS in either direction.

    Outbound life cycle (docs/api.md#message-statuses); a status never moves backwards, and late or
    out-of-order reports are recorded as events without being applied::

        scheduled ──► queued ──► dispatched ──► sent ──► delivered
            │           │            │           │
            │           │            └───────────┴──► failed   (reason)
            ├───────────┴──► cancelled   (by the API or dashboard, before dispatch)
            └───────────┴──► expired     (expires_at passed before dispatch)
        queued ──► failed                (provider refused it permanently)

    Inbound messages are created as `received` and never change status.
    `dedup_key` is unique: a retried delivery from a phone or provider hits the constraint
    instead of creating a second message (never check-then-insert).
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_msg_id, editable=False)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.TextField(blank=True, default="")

    from_number = models.CharField(max_length=64, blank=True, default="")
    # 255: an encrypted recipient of the app (ciphertext, docs/thirdparty.md) is ~90 characters.
    to_number = models.CharField(max_length=255, blank=True, default="")
    body = models.TextField()
    encoding = models.CharField(max_length=5, choices=Encoding.choices, default=Encoding.GSM7)
    segments = models.PositiveIntegerField(default=1)

    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    device = models.ForeignKey(
        "devices.Device",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    sim_slot = models.PositiveSmallIntegerField(null=True, blank=True)
    app = models.ForeignKey(
        ProviderApp, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    source = models.CharField(max_length=20, blank=True, default="api")
    metadata = models.JSONField(default=dict, blank=True)

    send_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    dedup_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    provider_message_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    stale = models.BooleanField(default=False)
    send_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Routing (docs/routing.md): a pinned message (the caller named its device or app and did
    # not ask for failover) never moves; the lines it already tried ("dev_…:1", "app_…") are
    # not tried again, and their count is bounded by the policy's max_attempts; `routed_at`
    # is when it was last put on a line, from which reroute_after is counted.
    pinned = models.BooleanField(default=False)
    lines_tried = models.JSONField(default=list, blank=True)
    routed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "device", "id"], name="message_queue"),
            models.Index(fields=["conversation", "id"], name="message_thread"),
            models.Index(fields=["direction", "id"], name="message_direction"),
            models.Index(fields=["to_number", "id"], name="message_to"),
            models.Index(fields=["from_number", "id"], name="message_from"),
            # Per-SIM pacing counts what each device was handed in the last minute/hour/day.
            models.Index(fields=["device", "sim_slot", "dispatched_at"], name="message_pacing"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.direction} {self.status}"

    @property
    def contact(self) -> str:
        return self.from_number if self.direction == Direction.INBOUND else self.to_number


# An event is a status the message took (or was reported), or a move to another line.
REROUTED = "rerouted"
EVENT_KINDS = [*Status.choices, (REROUTED, "Rerouted")]


class MessageEvent(models.Model):
    """The history of a message's status, including reports that were not applied, and its
    moves from line to line (`rerouted`, detail "<from line> → <to line>: <why>")."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=12, choices=EVENT_KINDS)
    at = models.DateTimeField()
    detail = models.TextField(blank=True, default="")
    applied = models.BooleanField(default=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.message_id} {self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class OptOut(models.Model):
    """A number that asked not to be texted; nothing is sent to it until it opts in again."""

    phone = models.CharField(primary_key=True, max_length=32)
    at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=20, default="api")

    class Meta:
        ordering = ["-at"]
        verbose_name = "opt-out"

    def __str__(self) -> str:
        return self.phone

    @classmethod
    def lists(cls, phone: str) -> bool:
        """Whether `phone` is on the suppression list (the one check every sender uses)."""
        return cls.objects.filter(phone=phone).exists()


class InboundRequest(models.Model):
    """Every request a phone or provider sent, stored raw before it is interpreted.

    Kept even when the request is then rejected, so nothing sent to us is ever lost and
    admins can see why something was refused. Secrets are removed from the headers; the body is
    kept as bytes (it may not be valid UTF-8, and PostgreSQL text cannot hold NUL).
    """

    class Outcome(models.TextChoices):
        RECEIVED = "received", "Received"
        ACCEPTED = "accepted", "Accepted"
        DUPLICATE = "duplicate", "Duplicate"
        REJECTED = "rejected", "Rejected"
        ERROR = "error", "Error"

    id = models.CharField(primary_key=True, max_length=40, default=new_req_id, editable=False)
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=20)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    query = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict)
    body = models.BinaryField(blank=True, default=b"")
    body_truncated = models.BooleanField(default=False)
    remote_addr = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RECEIVED)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.TextField(blank=True, default="")
    device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    app = models.ForeignKey(
        ProviderApp, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["source", "id"], name="inbound_request_source")]

    def __str__(self) -> str:
        return f"{self.id} {self.source} {self.method} {self.outcome}"


class IdempotencyRecord(models.Model):
    """The first response to a request sent with an `Idempotency-Key` (kept ≥ 24 h)."""

    principal = models.CharField(max_length=60)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"


class ProviderMessagePart(models.Model):
    """One part of a long SMS a provider delivers as separate requests (Vonage `concat`).

    Parts wait here until all `total` of them arrived; the assembled message is then stored
    once and every part points at it. `part_id` is the provider's id of the part, unique per
    app, so a provider's retry of a part is recognised. The carrier's reference (`ref`) is
    small and gets reused, so parts only group while they are not yet assembled.
    """

    app = models.ForeignKey(ProviderApp, on_delete=models.CASCADE, related_name="+")
    part_id = models.CharField(max_length=100)
    sender = models.CharField(max_length=64)
    ref = models.CharField(max_length=64)
    part = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    body = models.TextField(blank=True, default="")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app", "part_id"], name="provider_part_unique_id")
        ]
        indexes = [
            models.Index(fields=["app", "sender", "ref", "total"], name="provider_part_group")
        ]

    def __str__(self) -> str:
        return f"{self.app_id} {self.sender} ref {self.ref} part {self.part}/{self.total}"
