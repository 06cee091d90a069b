"""What the app's third-party API changes for the whole fleet (docs/thirdparty.md): webhooks
(smsgate endpoints in the `app` format), the phones' settings, and inbox refreshes. Each change
tells the app phones after it commits."""

from __future__ import annotations

import copy
from typing import Any

from django.db import transaction

from devices import wake
from devices.models import PhoneSettings
from smsgate.errors import Conflict, InvalidInput, NotFound
from thirdparty.services import ID_SHAPE, MAX_ID_CHARS, parse_time
from webhooks import services as webhooks
from webhooks.formats.app import APP_EVENTS
from webhooks.models import Endpoint, EventType, Format

# --- webhooks -------------------------------------------------------------------------------

EVENTS_OF_APP: dict[str, list[str]] = {
    "sms:received": [EventType.SMS_RECEIVED],
    "sms:sent": [EventType.SMS_SENT],
    "sms:delivered": [EventType.SMS_DELIVERED],
    "sms:failed": [EventType.SMS_FAILED],
    "sms:cancelled": [EventType.SMS_CANCELLED],
    "system:ping": [EventType.DEVICE_ONLINE, EventType.DEVICE_OFFLINE],
}
# The app's other events (data SMS, MMS, app start, batches) come from the phone itself;
# smsgate has no such events to deliver.
APP_ONLY_EVENTS = {
    "sms:data-received",
    "mms:received",
    "mms:downloaded",
    "app:started",
    "sms:batch:received",
    "sms:batch:data-received",
    "mms:batch:received",
    "mms:batch:downloaded",
}


def webhook_body(endpoint: Endpoint) -> dict[str, Any]:
    first = endpoint.events[0] if endpoint.events else ""
    return {
        "id": endpoint.pk,
        "deviceId": (endpoint.filters or {}).get("device_id") or None,
        "url": endpoint.url,
        "event": APP_EVENTS.get(first, first),
    }


def list_webhooks() -> list[Endpoint]:
    return list(Endpoint.objects.filter(format=Format.APP, internal=False).order_by("created_at"))


def save_webhook(body: Any) -> Endpoint:
    """Create, or replace the one with this id (the app's upsert)."""
    if not isinstance(body, dict):
        raise InvalidInput("url", "The body must be a JSON object.")
    event = body.get("event")
    if not isinstance(event, str):
        raise InvalidInput("event", f"event must be one of {', '.join(EVENTS_OF_APP)}.")
    if event in APP_ONLY_EVENTS:
        raise InvalidInput("event", f"smsgate does not deliver {event} events.")
    if event not in EVENTS_OF_APP:
        raise InvalidInput("event", f"event must be one of {', '.join(EVENTS_OF_APP)}.")
    webhook_id = body.get("id") or None
    if webhook_id is not None and (
        not isinstance(webhook_id, str) or not ID_SHAPE.fullmatch(webhook_id)
    ):
        raise InvalidInput("id", f"id must be 1 to {MAX_ID_CHARS} URL-safe characters.")
    device_id = body.get("deviceId")
    if device_id is not None and not isinstance(device_id, str):
        raise InvalidInput("deviceId", "deviceId must be a device id.")
    filters = {"device_id": device_id} if device_id else {}
    with transaction.atomic():
        existing = Endpoint.objects.filter(pk=webhook_id).first() if webhook_id else None
        if existing is not None and (existing.format != Format.APP or existing.internal):
            raise Conflict(f"The id {webhook_id!r} belongs to another smsgate webhook.")
        if existing is not None:
            endpoint = webhooks.update_endpoint(
                endpoint_id=existing.pk,
                changes={
                    "url": body.get("url"),
                    "events": EVENTS_OF_APP[event],
                    "filters": filters,
                },
            )
        else:
            endpoint, _ = webhooks.create_endpoint(
                url=body.get("url"),
                format=Format.APP,
                events=EVENTS_OF_APP[event],
                filters=filters,
                endpoint_id=webhook_id,
            )
        wake.notify_phones(wake.WEBHOOKS_UPDATED)
    return endpoint


def delete_webhook(webhook_id: str) -> None:
    with transaction.atomic():
        if not Endpoint.objects.filter(pk=webhook_id, format=Format.APP, internal=False).exists():
            raise NotFound(f"There is no webhook {webhook_id!r}.")
        webhooks.delete_endpoint(endpoint_id=webhook_id)
        wake.notify_phones(wake.WEBHOOKS_UPDATED)


# --- settings -------------------------------------------------------------------------------

# Each group's keys and the type each takes (docs/thirdparty.md#settings).
_STR, _INT, _BOOL = str, int, bool
SETTINGS_SCHEMA: dict[str, dict[str, type]] = {
    "encryption": {"passphrase": _STR},
    "gateway": {"notification_channel": _STR},
    "messages": {
        "send_interval_min": _INT,
        "send_interval_max": _INT,
        "limit_period": _STR,
        "limit_value": _INT,
        "sim_selection_mode": _STR,
        "log_lifetime_days": _INT,
        "processing_order": _STR,
    },
    "ping": {"interval_seconds": _INT},
    "logs": {"lifetime_days": _INT},
    "webhooks": {"internet_required": _BOOL, "retry_count": _INT, "signing_key": _STR},
}
# Never answered back: the phones' passphrase and the key smsgate signs webhooks with.
WRITE_ONLY = {("encryption", "passphrase"), ("webhooks", "signing_key")}
CHOICES = {
    ("gateway", "notification_channel"): {"AUTO", "SSE_ONLY"},
    ("messages", "limit_period"): {"Disabled", "PerMinute", "PerHour", "PerDay"},
    ("messages", "sim_selection_mode"): {"OSDefault", "RoundRobin", "Random"},
    ("messages", "processing_order"): {"LIFO", "FIFO"},
}


def _check_setting(group: str, key: str, kind: type, value: Any) -> None:
    name = f"{group}.{key}"
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise InvalidInput(group, f"{name} must be a {kind.__name__}.")
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 10**9:
        raise InvalidInput(group, f"{name} is out of range.")
    if isinstance(value, str) and (len(value) > 256 or not value.isprintable()):
        raise InvalidInput(group, f"{name} must be printable and at most 256 characters.")


def _validated_settings(body: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidInput("settings", "The body must be an object of settings groups.")
    clean: dict[str, dict[str, Any]] = {}
    for group, values in body.items():
        if group not in SETTINGS_SCHEMA:
            raise InvalidInput(group, f"{group!r} is not a settings group.")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise InvalidInput(group, f"{group} must be an object.")
        for key, value in values.items():
            kind = SETTINGS_SCHEMA[group].get(key)
            if kind is None:
                raise InvalidInput(group, f"{group}.{key} is not a setting smsgate keeps.")
            if value is None:
                continue
            _check_setting(group, key, kind, value)
            allowed = CHOICES.get((group, key))
            if allowed and value not in allowed:
                raise InvalidInput(group, f"{group}.{key} must be one of {sorted(allowed)}.")
            clean.setdefault(group, {})[key] = value
    return clean


def readable_settings(values: dict[str, Any]) -> dict[str, Any]:
    shown = {
        group: {k: v for k, v in keys.items() if (group, k) not in WRITE_ONLY}
        for group, keys in values.items()
        if isinstance(keys, dict)
    }
    return shown


def update_settings(body: Any, *, replace: bool) -> dict[str, Any]:
    """PUT replaces every group (the write-only secrets stay unless given); PATCH merges."""
    changes = _validated_settings(body)
    with transaction.atomic():
        row = PhoneSettings.current()
        row = PhoneSettings.objects.select_for_update().get(pk=row.pk)
        old = copy.deepcopy(row.values or {})
        new: dict[str, Any] = {} if replace else copy.deepcopy(old)
        if replace:
            for group, key in WRITE_ONLY:
                if key in old.get(group, {}):
                    new.setdefault(group, {})[key] = old[group][key]
        for group, keys in changes.items():
            new.setdefault(group, {}).update(keys)
        row.values = new
        row.save(update_fields=["values", "updated_at"])
        wake.notify_phones(wake.SETTINGS_UPDATED)
    return readable_settings(new)


def request_inbox_export(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidInput("since", "The body must be a JSON object.")
    since = parse_time(body.get("since"), "since")
    until = parse_time(body.get("until"), "until")
    if since is None or until is None or since > until:
        raise InvalidInput("since", "since and until are required, since before until.")
    device_id = body.get("deviceId")
    if device_id is not None and not isinstance(device_id, str):
        raise InvalidInput("deviceId", "deviceId must be a device id.")
    data = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "messageTypes": "SMS",
        "triggerWebhooks": "true",
    }
    wake.notify_phones(
        wake.MESSAGES_EXPORT_REQUESTED, data, device_ids=[device_id] if device_id else None
    )
