"""What the app's third-party API keeps beside smsgate's own rows (docs/thirdparty.md)."""

from __future__ import annotations

from django.db import models


class AppMessage(models.Model):
    """A message as the app's client sent it: one id for up to 100 recipients, each of which
    is an ordinary smsgate message (or a refusal, kept as the recipient's error)."""

    id = models.CharField(primary_key=True, max_length=36)
    is_encrypted = models.BooleanField(default=False)
    with_delivery_report = models.BooleanField(default=True)
    priority = models.SmallIntegerField(default=0)
    device_id = models.CharField(max_length=40, blank=True, default="")
    sim_number = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return self.id


class AppRecipient(models.Model):
    """One recipient of an `AppMessage`: its smsgate message, or why it has none."""

    app_message = models.ForeignKey(AppMessage, on_delete=models.CASCADE, related_name="recipients")
    position = models.PositiveSmallIntegerField()
    phone_number = models.CharField(max_length=255)
    message = models.OneToOneField(
        "messaging.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="app_recipient",
    )
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["app_message", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["app_message", "position"], name="app_recipient_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.app_message_id} #{self.position}"


class RevokedToken(models.Model):
    """A JWT id revoked before it expired (`DELETE /auth/token/{jti}`, or a used refresh
    token). Kept until `expires_at`, after which the token is refused anyway."""

    jti = models.CharField(primary_key=True, max_length=64)
    revoked_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.jti
