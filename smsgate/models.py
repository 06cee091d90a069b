"""Integrator credentials. Everything else lives in the apps."""

from __future__ import annotations

from django.db import models

from smsgate.ids import new_key_id


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    STAFF = "staff", "Staff"


class APIKey(models.Model):
    """An integrator's key: `sg_<prefix>_<secret>`; shown once, stored as prefix + SHA-256.

    Revoked keys stay (with `revoked_at`) so the dashboard can show who used what.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_key_id, editable=False)
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ADMIN)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (sg_{self.prefix}_…, {self.role})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
