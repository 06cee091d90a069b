"""Phones that carry SMS for us: their SIMs, credentials, health and sending limits."""

from __future__ import annotations

from django.db import models

from smsgate.ids import new_dev_id

# Android asks the user to confirm once an app sends more than 30 segments in 60 s, and an
# unattended phone then sends nothing, so each SIM is paced just below that by default.
DEFAULT_SEGMENTS_PER_MINUTE = 29


class Device(models.Model):
    """An Android phone speaking SMSSync, MSync or the SMS Gateway for Android app.

    Credentials (the MSync bearer token and the SMSSync secret) are random strings shown once
    and stored as SHA-256 hashes; lookups go through the unique hash columns.
    Limits are per SIM and counted in segments.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_dev_id, editable=False)
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    token_hash = models.CharField(max_length=64, unique=True)
    smssync_secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    last_seen_at = models.DateTimeField(null=True, blank=True)
    online = models.BooleanField(default=False)
    # When `online` last flipped. A check-in sets it only when the device was offline, so the
    # one UPDATE that records the call also tells whether it brought the device back online.
    online_changed_at = models.DateTimeField(null=True, blank=True)
    battery_level = models.IntegerField(null=True, blank=True)
    signal_strength = models.IntegerField(null=True, blank=True)
    network_type = models.CharField(max_length=20, blank=True, default="")
    sim_state = models.CharField(max_length=40, blank=True, default="")
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    location_accuracy = models.FloatField(null=True, blank=True)
    location_at = models.DateTimeField(null=True, blank=True)

    limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, default=DEFAULT_SEGMENTS_PER_MINUTE
    )
    limit_per_hour = models.PositiveIntegerField(null=True, blank=True)
    limit_per_day = models.PositiveIntegerField(null=True, blank=True)

    # The SMS Gateway for Android app (docs/phones/sms-gateway-app.md): the private token the
    # app registers with, the device token it then calls with (both hashed, shown once), the
    # key that signs the webhooks it sends us (encrypted: we hand it to the phone), and what
    # the dashboard shows about it.
    app_private_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    app_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    app_signing_key_encrypted = models.TextField(blank=True, default="")
    app_version = models.CharField(max_length=60, blank=True, default="")
    stream_connected_at = models.DateTimeField(null=True, blank=True)
    stream_last_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["enabled", "online"], name="device_routable")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Sim(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sims")
    slot = models.PositiveSmallIntegerField()
    number = models.CharField(max_length=32, blank=True, default="")
    # Sends in a row this SIM reported failed (reset by a send that went out): a SIM whose
    # last few sends all failed (out of credit, barred) is the pool's last choice.
    failures_in_a_row = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["device", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["device", "slot"], name="sim_unique_slot_per_device")
        ]

    def __str__(self) -> str:
        return f"{self.device_id} SIM {self.slot} {self.number}".strip()


class PhoneSettings(models.Model):
    """The settings every app phone reads from `/settings` (one row): the groups of
    docs/phones/sms-gateway-app.md#settings, as integrators set them through the third-party
    API. Per-device values (the webhook signing key, the SSE-only channel) are added when a
    phone reads them, never stored here."""

    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "phone settings"

    @classmethod
    def current(cls) -> PhoneSettings:
        settings, _ = cls.objects.get_or_create(pk=1)
        return settings
