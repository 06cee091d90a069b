"""Messages handed to phones: what happens when a phone never reports on them."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.models import Message, Status


def flag_stale_dispatches() -> int:
    """Dispatched messages without any report after SMSGATE_DISPATCH_TIMEOUT are flagged.

    They are never re-sent automatically: the phone may have sent them and only lost the
    report, and a silent re-send would text the recipient twice.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.SMSGATE_DISPATCH_TIMEOUT)
    with transaction.atomic():
        return Message.objects.filter(
            status=Status.DISPATCHED, stale=False, dispatched_at__lt=cutoff
        ).update(stale=True)
