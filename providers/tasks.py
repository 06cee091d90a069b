"""Sending through cloud providers.

A queued message routed to a provider app (explicit `app_id`, a sticky conversation, an
automation reply on a provider number, or a move by messaging.rerouting — the policy's fallback
app) is sent by `send_via_provider`. The
message row is the truth: `send_attempts` and `next_attempt_at` carry the retry state, the
task claims the row with a conditional update (a duplicate run is a no-op), and a beat sweep
re-enqueues due messages, so a lost broker message only delays a send.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.dispatch import receiver
from django.utils import timezone

from messaging.models import Direction, Message, MessageEvent, Status
from messaging.optouts import cancel_for_opt_out, held_back, recipient_is_opted_out
from messaging.rerouting import reroute_failed
from messaging.services import record_status
from messaging.signals import message_queued, message_rerouted, message_status_changed
from providers import get_provider
from providers.base import PermanentSendError, SendError, SendRequest
from providers.services import (
    credentials_of,
    store_incomplete_parts,
)
from smsgate.celery import register_periodic_task

logger = logging.getLogger(__name__)

# While one worker talks to the provider, no other may claim the message; longer than the
# HTTP client's timeout, so only a worker that died leaves a claim to expire.
CLAIM_LEASE = timedelta(minutes=2)
# Waits after the 1st, 2nd… failed attempt (the last one repeats), before jitter.
BACKOFF = (30, 120, 600, 1800, 3600)
MAX_RETRY_AFTER = 3600
# A message queued this long without a task having claimed it lost its on-commit enqueue.
LOST_AFTER = timedelta(seconds=60)
# Vonage sends every part within seconds; an hour later a missing part is not coming.
INCOMPLETE_AFTER = timedelta(hours=1)


def schedule_provider_send(message_id: str, countdown: float | None = None) -> None:
    """Enqueue the send once the surrounding transaction commits."""
    transaction.on_commit(lambda: send_via_provider.apply_async((message_id,), countdown=countdown))


# messaging queues and releases messages from many services and knows no provider; these two
# receivers are how a message routed to a provider app gets sent (phones pull theirs).
@receiver(message_queued, dispatch_uid="provider_tasks.send_queued_app_message")
def _send_queued_app_message(sender: Any, message: Message, **kwargs: Any) -> None:
    if message.app_id and message.status == Status.QUEUED:
        schedule_provider_send(message.pk)


@receiver(message_rerouted, dispatch_uid="provider_tasks.send_rerouted_app_message")
def _send_rerouted_app_message(sender: Any, message: Message, **kwargs: Any) -> None:
    if message.app_id and message.status == Status.QUEUED:
        schedule_provider_send(message.pk)


@receiver(message_status_changed, dispatch_uid="provider_tasks.send_released_app_message")
def _send_released_app_message(
    sender: Any, message: Message, previous: str, status: str, **kwargs: Any
) -> None:
    if message.app_id and status == Status.QUEUED and previous == Status.SCHEDULED:
        schedule_provider_send(message.pk)


def _backoff(attempt: int, retry_after: float | None) -> float:
    wait = float(BACKOFF[min(attempt, len(BACKOFF)) - 1])
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return wait * random.uniform(1.0, 1.2)


def _claim(message_id: str) -> Message | None:
    now = timezone.now()
    claimed = (
        Message.objects.filter(
            pk=message_id,
            direction=Direction.OUTBOUND,
            status=Status.QUEUED,
            app__isnull=False,
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(send_attempts=F("send_attempts") + 1, next_attempt_at=now + CLAIM_LEASE)
    )
    if not claimed:
        return None
    # The opt-out list is read with the row (see messaging.optouts.held_back).
    return (
        Message.objects.select_related("app")
        .annotate(recipient_opted_out=recipient_is_opted_out())
        .get(pk=message_id)
    )


@shared_task(name="messaging.send_via_provider")
def send_via_provider(message_id: str) -> str:
    """One attempt to hand a queued message to its provider app; returns what happened."""
    message = _claim(message_id)
    if message is None:
        return "not due"
    if held_back(message, opted_out=getattr(message, "recipient_opted_out", False)):
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
            cancel_for_opt_out(message.pk)
        return "recipient opted out"
    app = message.app
    assert app is not None
    provider = get_provider(app.provider)
    try:
        if not app.enabled:
            raise PermanentSendError(f"The provider app {app.pk} is disabled.")
        result = provider.send(
            SendRequest(
                app=app,
                credentials=credentials_of(app),
                message=message,
                callback_url=provider.callback_url(app, message),
            )
        )
    except SendError as exc:
        return _failed_attempt(message, exc)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            provider_message_id=result.provider_message_id[:100], next_attempt_at=None
        )
        record_status(message_id=message.pk, status=Status.SENT, detail=result.detail)
    return "sent"


def _moved_elsewhere(message_id: str, exc: SendError) -> bool:
    """A temporary provider error (or a permanent one that blames the account, such as no
    balance) moves an unpinned message to another line, when one is left (docs/routing.md)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update().filter(pk=message_id, status=Status.QUEUED).first()
        )
        if message is None:
            return False
        return reroute_failed(message, exc.reason, retryable=True if not exc.permanent else None)


def _failed_attempt(message: Message, exc: SendError) -> str:
    attempt = message.send_attempts
    if _moved_elsewhere(message.pk, exc):
        return "rerouted"
    if exc.permanent or attempt >= settings.SMSGATE_PROVIDER_MAX_ATTEMPTS:
        reason = exc.reason if exc.permanent else f"gave up after {attempt} attempts: {exc.reason}"
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
            record_status(message_id=message.pk, status=Status.FAILED, reason=reason)
        return "failed"
    wait = _backoff(attempt, exc.retry_after)
    next_at = timezone.now() + timedelta(seconds=wait)
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, status=Status.QUEUED).update(
            next_attempt_at=next_at
        )
        if updated:
            MessageEvent.objects.create(
                message=message,
                status=Status.QUEUED,
                at=timezone.now(),
                detail=f"attempt {attempt} failed ({exc.reason}); next attempt at "
                f"{next_at:%Y-%m-%d %H:%M:%S} UTC",
                applied=False,
            )
            schedule_provider_send(message.pk, countdown=wait)
    return "retrying"


@shared_task(name="messaging.sweep_provider_sends")
def sweep_provider_sends() -> dict[str, int]:
    """Enqueue provider sends that are due again, or whose enqueue was lost."""
    now = timezone.now()
    due = list(
        Message.objects.filter(
            direction=Direction.OUTBOUND, status=Status.QUEUED, app__isnull=False
        )
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(next_attempt_at__isnull=True, updated_at__lte=now - LOST_AFTER)
        )
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        send_via_provider.delay(pk)
    return {"enqueued": len(due)}


@shared_task(name="messaging.store_incomplete_long_messages")
def store_incomplete_long_messages() -> dict[str, int]:
    """Long messages still missing parts after an hour are stored with the gaps marked."""
    return {"stored": store_incomplete_parts(older_than=INCOMPLETE_AFTER)}


register_periodic_task(
    "store-incomplete-long-messages",
    "messaging.store_incomplete_long_messages",
    timedelta(minutes=5),
)
register_periodic_task(
    "sweep-provider-sends", "messaging.sweep_provider_sends", timedelta(seconds=30)
)
