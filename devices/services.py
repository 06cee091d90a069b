"""State changes of devices: registration, credentials, health, heartbeats.

The API, the dashboard, the phone endpoints and the beat tasks all call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.models import Device, Sim
from devices.signals import device_health_changed
from smsgate.crypto import hash_secret, random_token
from smsgate.errors import InvalidInput, NotFound
from smsgate.phones import to_e164

MAX_SIM_SLOT = 8


@dataclass
class Credentials:
    """Plaintext credentials of a device: returned once (creation, rotation), never stored.

    `app_private_token` is what the SMS Gateway for Android app registers with
    (docs/phones/sms-gateway-app.md): the user types it into the app, so it is shorter than
    the MSync token while still 144 random bits.
    """

    device: Device
    token: str
    smssync_secret: str
    app_private_token: str


def _new_credentials() -> tuple[str, str, str]:
    return random_token(24), random_token(18), random_token(18)


def _validated_sims(sims: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    seen: set[int] = set()
    result: list[tuple[int, str]] = []
    for sim in sims:
        slot = sim.get("slot")
        if not isinstance(slot, int) or isinstance(slot, bool) or not 1 <= slot <= MAX_SIM_SLOT:
            raise InvalidInput("sims", f"Each SIM needs a slot between 1 and {MAX_SIM_SLOT}.")
        if slot in seen:
            raise InvalidInput("sims", f"SIM slot {slot} is given twice.")
        seen.add(slot)
        raw = sim.get("number") or ""
        result.append((slot, to_e164(raw, field="sims") if raw else ""))
    return result


def register_device(
    *,
    name: str,
    sims: Sequence[dict[str, Any]] = (),
    limits: dict[str, int | None] | None = None,
) -> Credentials:
    """Create a device with its SIMs and fresh credentials (shown to the caller once).

    A device without SIMs given gets slot 1 with an unknown number: every phone has at least
    one SIM, and pacing and routing work per SIM.
    """
    slots = _validated_sims(sims) or [(1, "")]
    token, secret, private_token = _new_credentials()
    with transaction.atomic():
        device = Device(name=name, token_hash=hash_secret(token))
        device.smssync_secret_hash = hash_secret(secret)
        device.app_private_token_hash = hash_secret(private_token)
        for key, value in (limits or {}).items():
            setattr(device, f"limit_{key}", value)
        device.save(force_insert=True)
        Sim.objects.bulk_create(Sim(device=device, slot=s, number=n) for s, n in slots)
    return Credentials(
        device=device, token=token, smssync_secret=secret, app_private_token=private_token
    )


def rotate_credentials(*, device_id: str) -> Credentials:
    """New token, secret and app private token; the old ones stop working with this commit.

    The app's device token goes too (`app_token_hash` cleared): it was handed out in exchange
    for the old private token, so keeping it would let the phone holding the old credentials,
    the one rotation is meant to shut out, carry on. The app answers the next 401 by
    registering again, which needs the new private token.
    """
    token, secret, private_token = _new_credentials()
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(pk=device_id).first()
        if device is None:
            raise NotFound(f"There is no device {device_id!r}.")
        device.token_hash = hash_secret(token)
        device.smssync_secret_hash = hash_secret(secret)
        device.app_private_token_hash = hash_secret(private_token)
        device.app_token_hash = None
        device.save(
            update_fields=[
                "token_hash",
                "smssync_secret_hash",
                "app_private_token_hash",
                "app_token_hash",
                "updated_at",
            ]
        )
    return Credentials(
        device=device, token=token, smssync_secret=secret, app_private_token=private_token
    )


def update_device(
    *,
    device_id: str,
    name: str | None = None,
    enabled: bool | None = None,
    limits: dict[str, int | None] | None = None,
    sims: Sequence[dict[str, Any]] | None = None,
) -> Device:
    """Change what an admin may change; `sims` replaces the SIM list (at least one)."""
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(pk=device_id).first()
        if device is None:
            raise NotFound(f"There is no device {device_id!r}.")
        fields = ["updated_at"]
        if name is not None:
            device.name = name
            fields.append("name")
        if enabled is not None:
            device.enabled = enabled
            fields.append("enabled")
        for key, value in (limits or {}).items():
            setattr(device, f"limit_{key}", value)
            fields.append(f"limit_{key}")
        device.save(update_fields=fields)
        if sims is not None:
            slots = _validated_sims(sims)
            if not slots:
                raise InvalidInput("sims", "A device needs at least one SIM.")
            Sim.objects.filter(device=device).exclude(slot__in=[s for s, _ in slots]).delete()
            for slot, number in slots:
                Sim.objects.update_or_create(device=device, slot=slot, defaults={"number": number})
    return device


def delete_device(*, device_id: str) -> None:
    with transaction.atomic():
        deleted, _ = Device.objects.filter(pk=device_id).delete()
    if not deleted:
        raise NotFound(f"There is no device {device_id!r}.")


# --- health -----------------------------------------------------------------------------------


def update_health(*, device: Device, values: dict[str, Any]) -> None:
    """Battery, signal, network and SIM state as the phone reports them (partial updates)."""
    if values:
        Device.objects.filter(pk=device.pk).update(**values, updated_at=timezone.now())


def update_location(
    *, device: Device, latitude: float, longitude: float, accuracy: float | None
) -> None:
    Device.objects.filter(pk=device.pk).update(
        latitude=latitude,
        longitude=longitude,
        location_accuracy=accuracy,
        location_at=timezone.now(),
        updated_at=timezone.now(),
    )


def mark_offline_devices() -> int:
    """Devices silent for SMSGATE_DEVICE_OFFLINE_AFTER seconds go offline (one event each).

    Each flip is a conditional update, so a device that called in meanwhile, or a second run
    of this sweep, changes nothing.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SMSGATE_DEVICE_OFFLINE_AFTER)
    candidates = list(
        Device.objects.filter(online=True)
        .exclude(last_seen_at__gte=cutoff)
        .values_list("pk", flat=True)[:1000]
    )
    flipped = 0
    for pk in candidates:
        with transaction.atomic():
            changed = (
                Device.objects.filter(pk=pk, online=True)
                .exclude(last_seen_at__gte=cutoff)
                .update(online=False, online_changed_at=now)
            )
            if changed:
                device = Device.objects.get(pk=pk)
                device_health_changed.send(sender=Device, device=device, online=False)
                flipped += 1
    return flipped
