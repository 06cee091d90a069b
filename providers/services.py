"""State changes for cloud providers: apps, provider reports, long-message parts, fallback.

Like `messaging.services`, each function owns its transaction and schedules broker work with
transaction.on_commit. Storing an inbound SMS itself is `messaging.services.receive_inbound`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.inbox import InboundResult, InboundSMS
from messaging.models import (
    Message,
    ProviderApp,
    ProviderMessagePart,
    Status,
)
from messaging.services import record_status
from pipeline.inbound import receive_one as receive_inbound
from providers import get_provider
from smsgate.crypto import decrypt_json, encrypt_json
from smsgate.errors import InvalidInput, NotFound
from smsgate.phones import to_e164

logger = logging.getLogger(__name__)

MAX_NUMBERS = 100
# How long a message stored with missing parts still adopts a part that arrives late.
LATE_PART_WINDOW = timedelta(hours=24)


# --- apps -------------------------------------------------------------------------------------


def credentials_of(app: ProviderApp) -> dict[str, str]:
    return {str(k): str(v) for k, v in decrypt_json(app.credentials_encrypted).items()}


def clean_numbers(numbers: Any) -> list[str]:
    """E.164 numbers, or short codes (3–8 digits, as Africa's Talking uses), without repeats."""
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise InvalidInput("numbers", "numbers must be a list of phone numbers.")
    if len(numbers) > MAX_NUMBERS:
        raise InvalidInput("numbers", f"At most {MAX_NUMBERS} numbers per app.")
    cleaned: list[str] = []
    for raw in numbers:
        text = raw.strip()
        number = text if text.isdigit() and 3 <= len(text) <= 8 else to_e164(text, field="numbers")
        if number not in cleaned:
            cleaned.append(number)
    return cleaned


def create_provider_app(
    *,
    provider: str,
    name: str,
    credentials: dict[str, Any],
    numbers: list[str] | None = None,
    enabled: bool = True,
) -> ProviderApp:
    cleaned = get_provider(provider).validate_credentials(credentials)
    app = ProviderApp(
        provider=provider,
        name=name,
        credentials_encrypted=encrypt_json(cleaned),
        can_send=get_provider(provider).can_send(cleaned),
        numbers=clean_numbers(numbers or []),
        enabled=enabled,
    )
    with transaction.atomic():
        app.save(force_insert=True)
    return app


def update_provider_app(*, app_id: str, **changes: Any) -> ProviderApp:
    """Change name, numbers, enabled and/or credentials.

    Credentials are merged into the stored ones (rotating the auth token needs only the new
    token); a key given as null or "" removes an optional credential.
    """
    with transaction.atomic():
        app = ProviderApp.objects.select_for_update().filter(pk=app_id).first()
        if app is None:
            raise NotFound(f"There is no provider app {app_id!r}.")
        fields = ["updated_at"]
        if "provider" in changes and changes["provider"] != app.provider:
            raise InvalidInput("provider", "The provider of an app cannot be changed.")
        if "name" in changes:
            app.name = changes["name"]
            fields.append("name")
        if "enabled" in changes:
            app.enabled = changes["enabled"]
            fields.append("enabled")
        if "numbers" in changes:
            app.numbers = clean_numbers(changes["numbers"])
            fields.append("numbers")
        if "credentials" in changes:
            update = changes["credentials"]
            if not isinstance(update, dict):
                raise InvalidInput("credentials", "credentials must be an object.")
            merged: dict[str, Any] = {**credentials_of(app), **update}
            cleaned = get_provider(app.provider).validate_credentials(merged)
            app.credentials_encrypted = encrypt_json(cleaned)
            app.can_send = get_provider(app.provider).can_send(cleaned)
            fields += ["credentials_encrypted", "can_send"]
        app.save(update_fields=fields)
    return app


def delete_provider_app(*, app_id: str) -> None:
    with transaction.atomic():
        deleted, _ = ProviderApp.objects.filter(pk=app_id).delete()
    if not deleted:
        raise NotFound(f"There is no provider app {app_id!r}.")


# --- inbound ----------------------------------------------------------------------------------


def take_replies_for_twiml(app: ProviderApp, replies: Iterable[Message]) -> list[Message]:
    """Mark this app's queued replies as sent in the answer itself; returns those to render.

    Must run in the transaction that stored the inbound message (see the Twilio module).
    """
    taken = []
    for reply in replies:
        if reply.app_id != app.pk or reply.status != Status.QUEUED:
            continue
        if record_status(message_id=reply.pk, status=Status.SENT, detail="sent as TwiML reply"):
            taken.append(reply)
    return taken


def receive_concat_part(
    *,
    sms: InboundSMS,
    ref: str,
    part: int,
    total: int,
    part_id: str,
) -> tuple[InboundResult | None, bool]:
    """Store one part of a long message; once all parts are in, store the whole message once.

    Returns (the result when this part completed the message, whether the part was a
    duplicate). Parts of one app are handled one at a time (a lock on the app row), so two
    parts arriving together cannot both conclude that the other is still missing.
    """
    assert sms.app is not None
    group = {"app": sms.app, "sender": sms.from_number[:64], "ref": ref[:64], "total": total}
    with transaction.atomic():
        ProviderApp.objects.select_for_update().filter(pk=sms.app.pk).first()
        # A part arriving after its message was stored incomplete belongs to that message
        # (kept with it, not stored again), unless that message already has this part.
        late_for = (
            ProviderMessagePart.objects.filter(
                **group,
                message__metadata__incomplete=True,
                created_at__gte=timezone.now() - LATE_PART_WINDOW,
            )
            .exclude(message__isnull=True)
            .values_list("message_id", flat=True)
            .first()
        )
        if (
            late_for
            and ProviderMessagePart.objects.filter(**group, message_id=late_for, part=part).exists()
        ):
            late_for = None
        try:
            with transaction.atomic():
                ProviderMessagePart.objects.create(
                    **group, part_id=part_id[:100], part=part, body=sms.body, message_id=late_for
                )
        except IntegrityError:
            return None, True
        if late_for:
            return None, True
        waiting = list(
            ProviderMessagePart.objects.filter(
                app=sms.app,
                sender=sms.from_number[:64],
                ref=ref[:64],
                total=total,
                message__isnull=True,
            ).order_by("part", "id")
        )
        by_number = {p.part: p for p in reversed(waiting)}
        if any(n not in by_number for n in range(1, total + 1)):
            return None, False
        ordered = [by_number[n] for n in range(1, total + 1)]
        whole = replace(
            sms,
            body="".join(p.body for p in ordered),
            # The first part's provider id names the whole message, so a message rebuilt
            # again (a late retry of every part) is still recognised as the same one.
            source_id=f"concat:{ordered[0].part_id}",
            metadata={**sms.metadata, "parts": [p.part_id for p in ordered]},
        )
        result = receive_inbound(whole)
        ProviderMessagePart.objects.filter(pk__in=[p.pk for p in ordered]).update(
            message=result.message
        )
    return result, False


def store_incomplete_parts(*, older_than: timedelta) -> int:
    """Store long messages whose missing parts never came, with the gaps marked, so nothing a
    provider delivered stays invisible. Returns how many messages were stored."""
    cutoff = timezone.now() - older_than
    groups = (
        ProviderMessagePart.objects.filter(message__isnull=True, created_at__lte=cutoff)
        .values("app_id", "sender", "ref", "total")
        .distinct()[:200]
    )
    stored = 0
    for group in list(groups):
        with transaction.atomic():
            app = ProviderApp.objects.select_for_update().filter(pk=group["app_id"]).first()
            parts = list(
                ProviderMessagePart.objects.filter(message__isnull=True, **group).order_by(
                    "part", "id"
                )
            )
            if app is None or not parts:
                continue
            by_number = {p.part: p for p in reversed(parts)}
            body = "".join(
                by_number[n].body if n in by_number else f"[part {n} missing]"
                for n in range(1, group["total"] + 1)
            )
            first = parts[0]
            result = receive_inbound(
                InboundSMS(
                    from_number=first.sender,
                    body=body,
                    source=app.provider,
                    app=app,
                    source_id=f"concat:{first.part_id}",
                    received_at=first.created_at,
                    metadata={"parts": [p.part_id for p in parts], "incomplete": True},
                )
            )
            ProviderMessagePart.objects.filter(pk__in=[p.pk for p in parts]).update(
                message=result.message
            )
            stored += 1
    return stored


# --- outbound ---------------------------------------------------------------------------------
