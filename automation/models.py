"""Keyword rules admins edit without code, and the log of what they did."""

from __future__ import annotations

from django.db import models

from smsgate.ids import new_id, new_rule_id


def new_hit_id() -> str:
    return new_id("hit")


class Rule(models.Model):
    """One automation rule (docs/automation.md#rules).

    `match` holds the conditions (`keywords`, `contains`, `regex`, `sender`, `device_id`; all
    given must hold) and `actions` the ordered list of things to do; both are validated by
    `automation.rules.validate_rule` before they are stored, so the engine can trust them.
    Rules run in ascending `priority`, ties by creation.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_rule_id, editable=False)
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=100)
    match = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list)
    stop = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class RuleHit(models.Model):
    """A rule (or a built-in compliance keyword) that matched one inbound message.

    `actions` records each action's outcome in order:
    `{"type", "status": "done" | "suppressed" | "skipped" | "failed", "detail", "message_id"?}`.
    `suppressed` is set when any action was held back (loop guard, opted-out recipient), so the
    log can be filtered for them.
    """

    class Builtin(models.TextChoices):
        NONE = "", "Rule"
        STOP = "stop", "STOP"
        START = "start", "START"
        HELP = "help", "HELP"

    id = models.CharField(primary_key=True, max_length=40, default=new_hit_id, editable=False)
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="hits"
    )
    # Kept as text so the log still reads right after a rule is renamed or deleted.
    rule_name = models.CharField(max_length=100)
    builtin = models.CharField(max_length=10, choices=Builtin.choices, blank=True, default="")
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    phone = models.CharField(max_length=64)
    actions = models.JSONField(default=list)
    suppressed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["rule", "id"], name="rulehit_rule"),
            models.Index(fields=["phone", "id"], name="rulehit_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.rule_name} {self.phone}"
