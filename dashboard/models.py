"""Broadcasts: one text sent to many recipients from the dashboard, with its progress."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from messaging.models import Message


class Broadcast(models.Model):
    """A dashboard bulk send. Its messages are ordinary messages (the same queue, limits and
    reports as the API's); this row only remembers which ones belong together and which
    recipients were left out before sending (opted out, unparseable, refused)."""

    body = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # [{"to": "+1…", "code": "recipient_opted_out", "message": "…"}]
    skipped = models.JSONField(default=list, blank=True)
    messages = models.ManyToManyField(Message, related_name="+", blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"broadcast {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"
