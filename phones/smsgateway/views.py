"""The mobile API the app calls under /api/mobile/v1 (docs/phones/sms-gateway-app.md).

Thin: authenticate (every call is the device's heartbeat), parse (wire.py), call a service,
shape the answer. All answers are JSON with camelCase fields.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from devices.models import Device, PhoneSettings
from devices.pairing import server_url
from phones import checkin as checkins
from phones.checkin import check_in_by_app_token
from phones.smsgateway import services, wire
from phones.smsgateway.door import Reply, app_version, bearer, check_in, refuse, serve

BASE_PATH = "/api/mobile/v1"
# The events whose webhooks bring the phone's news back to smsgate (hooks.py).
HOOK_EVENTS = (
    "sms:received",
    "sms:data-received",
    "sms:sent",
    "sms:delivered",
    "sms:failed",
    "sms:cancelled",
    "system:ping",
    "app:started",
)
_UNKNOWN_TOKEN = "The device token is not valid."


def _register(request: HttpRequest, body: bytes) -> Reply:
    registration = wire.parse_registration(body)
    registered = services.register(
        private_token=bearer(request),
        name=registration.name,
        sims=registration.sims,
        app_version=app_version(request),
    )
    if registered is None:
        return refuse(401, "Register with the private token shown when the phone was paired.")
    check_in_by_app_token(registered.token)
    device = registered.device
    return Reply(
        201,
        # `login` is what the app shows as its account; smsgate keeps no per-phone password:
        # integrators use an smsgate API key (docs/phones/sms-gateway-app.md#credentials).
        {"id": device.pk, "token": registered.token, "login": device.pk, "password": None},
        detail="registered",
        device_id=device.pk,
    )


def _patch_device(request: HttpRequest, body: bytes) -> Reply:
    checkin = check_in(request)
    if checkin is None:
        return refuse(401, _UNKNOWN_TOKEN)
    device = checkin.device
    patch = wire.parse_device_patch(body)
    if patch.device_id != device.pk:
        return refuse(403, "`id` is not the device of this token.", device.pk)
    services.update_device(device=device, sims=patch.sims, app_version=app_version(request))
    return Reply(204, detail="device updated", device_id=device.pk)


def _device_json(device: Device) -> dict[str, Any]:
    return {
        "id": device.pk,
        "name": device.name,
        "createdAt": wire.format_time(device.created_at),
        "updatedAt": wire.format_time(device.updated_at),
        "lastSeen": wire.format_time(device.last_seen_at),
    }


def _get_device(request: HttpRequest, body: bytes) -> Reply:
    # Auth is optional here: the app asks for its external address before it has a token.
    checkin = check_in(request)
    device = checkin.device if checkin else None
    return Reply(
        body={
            "device": _device_json(device) if device else None,
            "externalIp": request.META.get("REMOTE_ADDR", ""),
        },
        device_id=device.pk if device else None,
    )


@csrf_exempt
def device(request: HttpRequest) -> HttpResponse:
    return serve(request, {"POST": _register, "PATCH": _patch_device, "GET": _get_device})


def _messages(request: HttpRequest, body: bytes) -> Reply:
    order = wire.parse_order(request.GET.get("order"))
    # Most pulls find nothing: as an idle MSync poll, they are answered from one read of the
    # device (nothing queued, check-in not due) and one of its unreported hand-outs, with no
    # transaction and no lock (docs/phones/sms-gateway-app.md#hand-out).
    idle = checkins.idle_poll_check_in(app_token=bearer(request))
    if idle is not None and not services.has_reoffers(idle.device):
        return Reply(body=[], detail="0 handed out", device_id=idle.device.pk)
    with transaction.atomic():
        # Locked: the claim's pacing counts are read under the device row's lock.
        checkin = check_in(request, lock=True)
        if checkin is None:
            return refuse(401, _UNKNOWN_TOKEN)
        messages = services.hand_out(checkin, order=order)
    return Reply(
        body=[wire.pending_message(m) for m in messages],
        detail=f"{len(messages)} handed out",
        device_id=checkin.device.pk,
    )


def _patch_messages(request: HttpRequest, body: bytes) -> Reply:
    checkin = check_in(request)
    if checkin is None:
        return refuse(401, _UNKNOWN_TOKEN)
    items = wire.parse_state_items(body)
    changed = services.apply_states(device=checkin.device, items=items, via="PATCH /message")
    return Reply(204, detail=f"{len(items)} states, {changed} changes", device_id=checkin.device.pk)


@csrf_exempt
def message(request: HttpRequest) -> HttpResponse:
    return serve(request, {"GET": _messages, "PATCH": _patch_messages})


def hook_id(event: str) -> str:
    return "smsgate-" + event.replace(":", "-")


def _webhooks(request: HttpRequest, body: bytes) -> Reply:
    checkin = check_in(request)
    if checkin is None:
        return refuse(401, _UNKNOWN_TOKEN)
    base = server_url(request) + BASE_PATH
    hooks = [
        {
            "id": hook_id(event),
            "deviceId": checkin.device.pk,
            "url": f"{base}/webhooks/{event}",
            "event": event,
        }
        for event in HOOK_EVENTS
    ]
    return Reply(body=hooks, device_id=checkin.device.pk)


@csrf_exempt
def webhooks(request: HttpRequest) -> HttpResponse:
    return serve(request, {"GET": _webhooks})


def _group(values: dict[str, Any], name: str) -> dict[str, Any]:
    group = values.get(name)
    return dict(group) if isinstance(group, dict) else {}


def _settings(request: HttpRequest, body: bytes) -> Reply:
    checkin = check_in(request)
    if checkin is None:
        return refuse(401, _UNKNOWN_TOKEN)
    values: dict[str, Any] = dict(PhoneSettings.current().values or {})
    # Per device, never stored in PhoneSettings (docs/phones/sms-gateway-app.md#settings): the
    # key that signs the phone's webhooks to us, and no Google push (smsgate has none).
    values["webhooks"] = {
        **_group(values, "webhooks"),
        "signing_key": services.signing_key(checkin.device),
    }
    values["gateway"] = {**_group(values, "gateway"), "notification_channel": "SSE_ONLY"}
    return Reply(body=values, device_id=checkin.device.pk)


@csrf_exempt
def phone_settings(request: HttpRequest) -> HttpResponse:
    return serve(request, {"GET": _settings})
