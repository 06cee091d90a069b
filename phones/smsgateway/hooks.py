"""The webhooks the app sends back to smsgate (docs/phones/sms-gateway-app.md#webhooks):
received SMS, reports on the messages it sends, its health and its SIMs.

The phone has no upload endpoint: everything it learns leaves it as a signed webhook to the
URLs `GET /webhooks` listed. Each request is logged raw first; the envelope names the device,
whose key must have signed the body (`X-Signature` = hex HMAC-SHA256(key, body +
`X-Timestamp`)) before anything is stored. The app retries every answer that is not 2xx (up
to `webhooks.retry_count` times, re-signing each attempt with a fresh timestamp), so an event
we do not use is acknowledged with a 202 rather than refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from devices import services as device_services
from devices.models import Device, Sim
from messaging.services import InboundSMS, receive_inbound_batch
from phones.checkin import check_in_by_app_device
from phones.smsgateway import services, wire
from phones.smsgateway.door import Outcome, Reply, refuse, serve
from smsgate.phones import normalize_sender, region_of

# Every attempt is signed when it is sent, so a genuine request is always fresh; an hour
# leaves room for a phone clock that drifted. An old signed request replayed is refused
# (and would change nothing anyway: inbound dedup, statuses never move backwards).
TIMESTAMP_TOLERANCE = 3600


def signature_for(key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def _verify(request: HttpRequest, body: bytes, device: Device) -> Reply | None:
    """None when the device's key signed this body; else the refusal."""
    signature = request.headers.get("X-Signature", "").strip().lower()
    timestamp = request.headers.get("X-Timestamp", "").strip()
    if not signature or not timestamp:
        return refuse(401, "Sign the webhook: X-Signature and X-Timestamp are required.")
    key = services.signing_key(device)
    if not key or not hmac.compare_digest(signature_for(key, body, timestamp), signature):
        return refuse(403, "X-Signature does not match the body.", device.pk)
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TIMESTAMP_TOLERANCE:
        return refuse(403, "X-Timestamp is too far from the server's clock.", device.pk)
    return None


def _received(device: Device, envelope: wire.Envelope) -> Reply:
    payload = envelope.payload
    data = envelope.event == "sms:data-received"
    body = wire.payload_text(payload, "data" if data else "message", limit=10_000)
    sender = wire.payload_text(payload, "sender", limit=64) or wire.payload_text(
        payload, "phoneNumber", limit=64
    )
    if not sender:
        return refuse(400, "`payload.sender` is required.", device.pk)
    slot = wire.payload_sim(payload)
    to_number = ""
    if slot is not None:
        to_number = (
            Sim.objects.filter(device=device, slot=slot).values_list("number", flat=True).first()
            or ""
        )
    received_at = wire.parse_time(payload.get("receivedAt"))
    metadata: dict[str, Any] = {"app_message_id": wire.payload_text(payload, "messageId")}
    if data:
        metadata["data_message"] = True
    inbound = InboundSMS(
        from_number=normalize_sender(sender, region=region_of(to_number)),
        body=body,
        source="smsgateway",
        to_number=to_number,
        # Whole seconds: the same SMS re-sent by an inbox export carries its time at another
        # precision, and the time is part of the dedup key.
        received_at=received_at.replace(microsecond=0) if received_at else None,
        device=device,
        sim_slot=slot,
        # No source id on purpose: the app's `messageId` is a 32-bit hashCode() of the SMS
        # (so two SMS can share one) and an export re-sends an SMS under another id. Content
        # + time (sender, received time, text) is the key that holds for both cases; the
        # app's id is kept in metadata.
        source_id="",
        metadata=metadata,
    )
    [result] = receive_inbound_batch([inbound])
    return Reply(
        body={"id": result.message.pk},
        outcome=Outcome.ACCEPTED if result.created else Outcome.DUPLICATE,
        detail=f"message {result.message.pk}",
        device_id=device.pk,
    )


_REPORTS = {
    "sms:sent": ("Sent", "sentAt"),
    "sms:delivered": ("Delivered", "deliveredAt"),
    "sms:failed": ("Failed", "failedAt"),
    "sms:cancelled": ("Cancelled", "cancelledAt"),
}


def _report(device: Device, envelope: wire.Envelope) -> Reply:
    state, stamp = _REPORTS[envelope.event]
    payload = envelope.payload
    message_id = wire.payload_text(payload, "messageId", limit=40)
    if not message_id:
        return refuse(400, "`payload.messageId` is required.", device.pk)
    item = wire.StateItem(
        message_id=message_id,
        state=state,
        reason=wire.payload_text(payload, "reason", limit=wire.MAX_REASON),
        at=wire.parse_time(payload.get(stamp)),
    )
    changed = services.apply_states(device=device, items=[item], via=envelope.event)
    return Reply(body={}, detail=f"{message_id}: {state}, {changed} changes", device_id=device.pk)


def _ping(device: Device, envelope: wire.Envelope) -> Reply:
    health = envelope.payload.get("health")
    checks = health.get("checks") if isinstance(health, dict) else None
    level = checks.get("battery:level") if isinstance(checks, dict) else None
    value = level.get("observedValue") if isinstance(level, dict) else None
    values: dict[str, Any] = {}
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
        values["battery_level"] = int(value)
    device_services.update_health(device=device, values=values)
    return Reply(body={}, detail="ping", device_id=device.pk)


def _started(device: Device, envelope: wire.Envelope) -> Reply:
    sims = wire.parse_sim_cards(envelope.payload.get("simCards"))
    services.update_device(device=device, sims=sims, app_version="")
    return Reply(body={}, detail="app started", device_id=device.pk)


_EVENTS: dict[str, Callable[[Device, wire.Envelope], Reply]] = {
    "sms:received": _received,
    "sms:data-received": _received,
    **dict.fromkeys(_REPORTS, _report),
    "system:ping": _ping,
    "app:started": _started,
}


def _receive(request: HttpRequest, body: bytes, event: str) -> Reply:
    envelope = wire.parse_envelope(body)
    device = Device.objects.filter(pk=envelope.device_id).exclude(app_token_hash=None).first()
    if device is None:
        return refuse(401, "`deviceId` is not a registered app phone.")
    refusal = _verify(request, body, device)
    if refusal is not None:
        return refusal
    if envelope.event != event:
        return refuse(400, f"This URL takes {event!r} events.", device.pk)
    handler = _EVENTS.get(event)
    with transaction.atomic():
        check_in_by_app_device(device.pk)  # a signed webhook is a heartbeat too
        if handler is None:
            # The app retries anything but a 2xx: an event smsgate has no use for (MMS) is
            # acknowledged and dropped, or the phone would resend it retry_count times.
            return Reply(202, {}, Outcome.ACCEPTED, f"{event}: not used by smsgate", device.pk)
        return handler(device, envelope)


@csrf_exempt
def receive(request: HttpRequest, event: str) -> HttpResponse:
    return serve(request, {"POST": lambda r, body: _receive(r, body, event)})
