"""What the SMS Gateway for Android app changes (docs/phones/sms-gateway-app.md): its
registration and SIMs, the hand-out of queued messages with its re-offers, the states it
reports, and its event stream's times. Messages change only through `messaging.services`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from devices.models import Device, Sim
from messaging.models import Direction, Message, MessageEvent, Status
from messaging.status import TERMINAL
from phones.checkin import CheckIn
from phones.queue import claim
from phones.smsgateway.wire import SimCard, StateItem
from pipeline.reports import StatusReport, apply_report
from smsgate.crypto import decrypt_json, encrypt_json, hash_secret, random_token

# The detail of the `dispatched` event a hand-out writes: how a re-offer finds the messages
# this door handed out (and not, say, an MSync poll of the same device).
HANDOUT_DETAIL = "handed to the SMS Gateway for Android app"
# Every state the phone reports is an event whose detail starts with this: once one exists
# the phone has the message and it is no longer offered.
REPORT_PREFIX = "SMS Gateway for Android:"
MAX_HANDOUT = 100

# The app's states → smsgate statuses. Pending/Processed/Cancelling only say the phone has
# the message: recorded as a (not applied) `dispatched` event that stops the re-offers.
STATE_STATUS = {
    "Pending": Status.DISPATCHED,
    "Processed": Status.DISPATCHED,
    "Cancelling": Status.DISPATCHED,
    "Sent": Status.SENT,
    "Delivered": Status.DELIVERED,
    "Failed": Status.FAILED,
    "Cancelled": Status.CANCELLED,
}


@dataclass
class Registered:
    device: Device
    token: str  # the new device token, shown once


def _sync_sims(device: Device, sims: Sequence[SimCard] | None) -> None:
    """The app's SIM list becomes the device's slots. A masked or missing number keeps the
    number we know; an empty list (no phone permission on the phone) keeps the SIMs."""
    if not sims:
        return
    known = {sim.slot: sim for sim in Sim.objects.filter(device=device)}
    Sim.objects.filter(device=device).exclude(slot__in=[c.slot for c in sims]).delete()
    for card in sims:
        sim = known.get(card.slot)
        if sim is None:
            Sim.objects.create(device=device, slot=card.slot, number=card.number)
        elif card.number and card.number != sim.number:
            sim.number = card.number
            sim.save(update_fields=["number"])


def register(
    *, private_token: str, name: str, sims: Sequence[SimCard] | None, app_version: str
) -> Registered | None:
    """The app registers with the pairing's private token: a new device token (the previous
    one stops working), the same device id. None when no device has that private token (the
    lookup is by its hash in a unique column, so nothing leaks about a near guess)."""
    if not private_token:
        return None
    token = random_token(24)
    with transaction.atomic():
        device = (
            Device.objects.select_for_update()
            .filter(app_private_token_hash=hash_secret(private_token))
            .first()
        )
        if device is None:
            return None
        device.app_token_hash = hash_secret(token)
        device.name = name
        fields = ["app_token_hash", "name", "updated_at"]
        if app_version:
            device.app_version = app_version
            fields.append("app_version")
        if not device.app_signing_key_encrypted:
            # Generated once: the phone keeps signing with it across re-registrations.
            device.app_signing_key_encrypted = encrypt_json({"key": random_token(32)})
            fields.append("app_signing_key_encrypted")
        device.save(update_fields=fields)
        _sync_sims(device, sims)
    return Registered(device=device, token=token)


def update_device(*, device: Device, sims: Sequence[SimCard] | None, app_version: str) -> None:
    with transaction.atomic():
        if app_version and app_version != device.app_version:
            Device.objects.filter(pk=device.pk).update(app_version=app_version)
        _sync_sims(device, sims)


def signing_key(device: Device) -> str:
    return str(decrypt_json(device.app_signing_key_encrypted).get("key", ""))


# --- hand-out ---------------------------------------------------------------------------------


def _reoffered(device: Device, *, limit: int) -> list[Message]:
    """Messages this door handed to the device that the phone has not reported on yet: the
    app skips ids it already has, so offering them again is safe, and it is how a message
    whose first answer was lost still reaches the phone."""
    handed = MessageEvent.objects.filter(
        message=OuterRef("pk"), status=Status.DISPATCHED, detail=HANDOUT_DETAIL
    )
    reported = MessageEvent.objects.filter(message=OuterRef("pk"), detail__startswith=REPORT_PREFIX)
    return list(
        Message.objects.filter(
            device_id=device.pk, direction=Direction.OUTBOUND, status=Status.DISPATCHED
        )
        .filter(Exists(handed))
        .exclude(Exists(reported))
        .order_by("id")[:limit]
    )


def has_reoffers(device: Device) -> bool:
    return bool(_reoffered(device, limit=1))


def hand_out(checkin: CheckIn, *, order: str, limit: int = MAX_HANDOUT) -> list[Message]:
    """The device's pending messages: the re-offers, then new claims (phones.queue.claim: the
    same claim, pacing and opt-out check as an MSync poll). Must run in the check-in's
    transaction (lock=True). Claims are always oldest first; `order` only orders the answer."""
    messages = _reoffered(checkin.device, limit=limit)
    messages += claim(checkin, limit=limit - len(messages), detail=HANDOUT_DETAIL)
    messages.sort(key=lambda m: m.pk, reverse=order == "lifo")
    return messages


def _news(current: str, reported: str) -> bool:
    """Whether a report can tell us anything: the same state twice (a PATCH and the webhook
    of the same send) or a report on a finished message is not recorded again."""
    if current in TERMINAL:
        return False
    if reported == Status.DISPATCHED:
        return current == Status.DISPATCHED  # the phone's acknowledgement (stops re-offers)
    return current != reported


def _report(
    message: Message, status: str, detail: str, *, reason: str, at: datetime | None
) -> bool:
    report = StatusReport(status=status, detail=detail, reason=reason, at=at, message_id=message.pk)
    return apply_report(report).applied


def apply_states(*, device: Device, items: Sequence[StateItem], via: str) -> int:
    """The phone's reports on messages it was handed; ids of other devices or unknown ids are
    ignored. Returns how many changed a status."""
    ids = {item.message_id for item in items}
    messages = {
        m.pk: m
        for m in Message.objects.filter(
            pk__in=ids, device_id=device.pk, direction=Direction.OUTBOUND
        )
        # A message still waiting on our side was never handed to the phone: nothing it
        # says about that id can be about our message.
        .exclude(status__in=[Status.SCHEDULED, Status.QUEUED])
        .only("id", "status")
    }
    changed = 0
    for item in items:
        message = messages.get(item.message_id)
        status = STATE_STATUS[item.state]
        if message is None or not _news(message.status, status):
            continue
        detail = f"{REPORT_PREFIX} {item.state} ({via})"
        reason = item.reason or ("failed on the phone" if status == Status.FAILED else "")
        moved = _report(message, status, detail, reason=reason, at=item.at)
        if not moved and status == Status.CANCELLED:
            # smsgate cannot cancel a message a phone already has (docs/api.md#message-statuses),
            # but the phone says it never sent it: failed, so that it does not hang dispatched.
            status = Status.FAILED
            reason = item.reason or "cancelled on the phone"
            moved = _report(message, status, detail, reason=reason, at=item.at)
        if moved:
            message.status = status
            changed += 1
    return changed


# --- the event stream -------------------------------------------------------------------------


def stream_opened(*, device_id: str) -> datetime:
    now = timezone.now()
    Device.objects.filter(pk=device_id).update(stream_connected_at=now)
    return now


def stream_event_sent(*, device_id: str) -> None:
    Device.objects.filter(pk=device_id).update(stream_last_event_at=timezone.now())


def stream_closed(*, device_id: str, opened_at: datetime) -> None:
    """Clears the "connected since" time unless a newer stream of the phone (a reconnect, maybe
    on another process) set its own meanwhile; the last event time stays for the dashboard."""
    Device.objects.filter(pk=device_id, stream_connected_at=opened_at).update(
        stream_connected_at=None
    )
