"""Webhook endpoints and the outbox.

Events are written in the transaction of the change that caused them (the signal receivers
below run inside `receive_inbound` / `record_status` / the heartbeat), with one Delivery per
subscribed endpoint; the broker is told after commit. Nothing here makes an HTTP request
except the explicit `send_test` and `retry_delivery` actions, so no webhook ever slows the
request that produced an event.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import logging
import secrets as secrets_module
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.sql import InsertQuery
from django.utils import timezone

from devices.models import Device
from messaging.models import Direction, Message
from smsgate import http
from smsgate.batch import batch_cached, batch_collect
from smsgate.crypto import decrypt_json, encrypt_json, random_token
from smsgate.errors import Conflict, InvalidInput, NotFound
from webhooks.formats import FORMATS, get_format
from webhooks.formats import email as email_format
from webhooks.formats.base import iso
from webhooks.models import (
    DEFAULT_EVENTS,
    SUBSCRIBABLE_EVENTS,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventType,
    Format,
)

log = logging.getLogger(__name__)

HISTORY_CHOICES = (0, 5, 10, 20, 50)
MAX_ATTEMPTS_LIMIT = 20
ROTATION_GRACE = timedelta(hours=24)
MAX_URL_CHARS = 2000
STATUS_EVENTS = {
    "sent": EventType.SMS_SENT,
    "delivered": EventType.SMS_DELIVERED,
    "failed": EventType.SMS_FAILED,
    "cancelled": EventType.SMS_CANCELLED,
}


# --- secrets ----------------------------------------------------------------------------------


def new_signing_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks: 24–64 bytes)."""
    return "whsec_" + base64.b64encode(secrets_module.token_bytes(32)).decode()


def _validated_secret(fmt: str, secret: Any) -> str | None:
    kind = get_format(fmt).secret_kind
    if secret is None or secret == "":
        if kind == "whsec":
            return new_signing_secret()
        if kind == "token":
            return random_token(24)
        return None
    if kind is None:
        raise InvalidInput("secret", f"The {fmt} format has no secret.")
    if not isinstance(secret, str) or len(secret) > 200:
        raise InvalidInput("secret", "The secret must be a string of at most 200 characters.")
    if kind == "whsec":
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not secret.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise InvalidInput(
                "secret", "A signing secret is whsec_ followed by base64 of 24 to 64 bytes."
            )
        return secret
    if len(secret) < 8 or not secret.isprintable() or not secret.isascii():
        raise InvalidInput("secret", "The secret must be at least 8 printable ASCII characters.")
    return secret


def _encrypt(secret: str | None) -> str:
    return encrypt_json({"secret": secret}) if secret else ""


def endpoint_secrets(endpoint: Endpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets to sign with: the current one, then the previous one during its grace."""
    now = now or timezone.now()
    found = [str(decrypt_json(endpoint.secret_encrypted).get("secret", ""))]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(str(decrypt_json(endpoint.previous_secret_encrypted).get("secret", "")))
    return [s for s in found if s]


# --- endpoint validation --------------------------------------------------------------------


def _validated_url(fmt: str, url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url", "A URL is required.")
    text: str = url.strip()
    if len(text) > MAX_URL_CHARS:
        raise InvalidInput("url", f"The URL is longer than {MAX_URL_CHARS} characters.")
    if fmt == Format.EMAIL:
        try:
            email_format.recipients(text)
        except ValueError as exc:
            raise InvalidInput("url", str(exc)) from None
        return text
    try:
        http.check_destination(text)
    except http.UnsafeDestination as exc:
        raise InvalidInput("url", f"This URL is refused: {exc}") from None
    except http.UnresolvableHost:
        # A name that does not resolve yet is accepted (DNS may follow); each delivery checks
        # the address again.
        pass
    except http.OutboundError as exc:
        raise InvalidInput("url", str(exc)) from None
    return text


def _validated_events(fmt: str, events: Any) -> list[str]:
    allowed = get_format(fmt).events
    if events is None:
        return [e for e in DEFAULT_EVENTS if e in allowed]
    if not isinstance(events, list) or not events:
        raise InvalidInput("events", "events must be a non-empty list of event types.")
    chosen: list[str] = []
    for name in events:
        if name not in SUBSCRIBABLE_EVENTS:
            raise InvalidInput("events", f"{name!r} is not an event type.")
        if name not in allowed:
            raise InvalidInput("events", f"The {fmt} format cannot carry {name} events.")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _validated_filters(filters: Any) -> dict[str, str]:
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise InvalidInput("filters", "filters must be an object with device_id and/or from.")
    unknown = set(filters) - {"device_id", "from"}
    if unknown:
        raise InvalidInput("filters", f"Unknown filter {sorted(unknown)[0]!r}.")
    clean: dict[str, str] = {}
    for key, value in filters.items():
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > 64:
            raise InvalidInput("filters", f"filters.{key} must be a string.")
        clean[key] = value.strip()
    return clean


def _validated_history(history: Any) -> int:
    if history is None:
        return 0
    if isinstance(history, bool) or history not in HISTORY_CHOICES:
        raise InvalidInput("history", "history must be one of 0, 5, 10, 20, 50.")
    return int(history)


def _validated_max_attempts(fmt: str, value: Any) -> int:
    if value is None:
        return get_format(fmt).max_attempts
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_ATTEMPTS_LIMIT
    ):
        raise InvalidInput("max_attempts", f"max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}.")
    return value


def _validated_format(fmt: Any) -> str:
    if fmt is None:
        return Format.STANDARD
    if fmt not in FORMATS:
        raise InvalidInput("format", f"format must be one of {', '.join(FORMATS)}.")
    return str(fmt)


# --- endpoints --------------------------------------------------------------------------------


def create_endpoint(
    *,
    url: Any,
    format: Any = None,
    events: Any = None,
    secret: Any = None,
    filters: Any = None,
    history: Any = None,
    max_attempts: Any = None,
    enabled: bool = True,
    endpoint_id: str | None = None,
) -> tuple[Endpoint, str | None]:
    """Create an endpoint; returns it with its secret in clear (shown to the caller once).

    `endpoint_id`: the caller's own id (the app's third-party API lets integrators name their
    webhooks, docs/thirdparty.md#webhooks); a new `whk_` id otherwise."""
    fmt = _validated_format(format)
    endpoint = Endpoint(
        **({"id": endpoint_id} if endpoint_id else {}),
        url=_validated_url(fmt, url),
        format=fmt,
        events=_validated_events(fmt, events),
        filters=_validated_filters(filters),
        history=_validated_history(history),
        max_attempts=_validated_max_attempts(fmt, max_attempts),
        enabled=bool(enabled),
    )
    plain = _validated_secret(fmt, secret)
    endpoint.secret_encrypted = _encrypt(plain)
    endpoint.save(force_insert=True)
    return endpoint, plain


def get_endpoint(endpoint_id: str) -> Endpoint:
    endpoint = Endpoint.objects.filter(pk=endpoint_id, internal=False).first()
    if endpoint is None:
        raise NotFound(f"There is no webhook {endpoint_id!r}.")
    return endpoint


def update_endpoint(*, endpoint_id: str, changes: dict[str, Any]) -> Endpoint:
    """Change what an endpoint receives. Re-enabling it clears the failure record and sends
    the deliveries that waited while it was disabled."""
    with transaction.atomic():
        endpoint = get_endpoint(endpoint_id)
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        fmt = endpoint.format
        if "format" in changes and changes["format"] != fmt:
            raise InvalidInput("format", "The format cannot be changed; create a new webhook.")
        if "url" in changes:
            endpoint.url = _validated_url(fmt, changes["url"])
        if "events" in changes:
            endpoint.events = _validated_events(fmt, changes["events"])
        if "filters" in changes:
            endpoint.filters = _validated_filters(changes["filters"])
        if "history" in changes:
            endpoint.history = _validated_history(changes["history"])
        if "max_attempts" in changes:
            endpoint.max_attempts = _validated_max_attempts(fmt, changes["max_attempts"])
        resumed: list[str] = []
        if "enabled" in changes:
            enable = bool(changes["enabled"])
            if enable and not endpoint.enabled:
                endpoint.disabled_reason = ""
                endpoint.failing_since = None
                resumed = _resume_waiting(endpoint)
            elif not enable and endpoint.enabled:
                endpoint.disabled_reason = "disabled by an admin"
            endpoint.enabled = enable
        endpoint.save()
        _enqueue_after_commit(resumed)
    return endpoint


def _resume_waiting(endpoint: Endpoint) -> list[str]:
    """Pending deliveries that waited for a disabled endpoint are due again now."""
    now = timezone.now()
    waiting = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    ids = list(waiting.values_list("pk", flat=True)[:10000])
    Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now, enqueued_at=now)
    return ids


def delete_endpoint(*, endpoint_id: str) -> None:
    with transaction.atomic():
        get_endpoint(endpoint_id).delete()


def rotate_secret(*, endpoint_id: str, secret: Any = None) -> tuple[Endpoint, str]:
    """A new secret; the previous one keeps signing (or being sent) for 24 h alongside it."""
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=get_endpoint(endpoint_id).pk)
        if get_format(endpoint.format).secret_kind is None:
            raise InvalidInput("secret", f"The {endpoint.format} format has no secret.")
        plain = _validated_secret(endpoint.format, secret)
        assert plain is not None
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
        endpoint.secret_encrypted = _encrypt(plain)
        endpoint.save(
            update_fields=[
                "previous_secret_encrypted",
                "previous_secret_expires_at",
                "secret_encrypted",
                "updated_at",
            ]
        )
    return endpoint, plain


# --- the outbox -----------------------------------------------------------------------------


def _line(message: Message) -> dict[str, Any]:
    if message.app_id:
        return {"appId": message.app_id}
    return {"deviceId": message.device_id}


def message_event_data(message: Message, event_type: str) -> dict[str, Any]:
    """The `data` of the standard format (docs/webhooks.md#standard-format-signed-json), a snapshot of the message now."""
    data: dict[str, Any] = {
        "messageId": message.pk,
        **_line(message),
        "simSlot": message.sim_slot,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
    }
    if event_type == EventType.SMS_RECEIVED:
        data["receivedAt"] = iso(message.received_at or message.created_at)
    else:
        data.update(
            status=message.status,
            error=(message.reason or None) if event_type == EventType.SMS_FAILED else None,
            sentAt=iso(message.sent_at),
            deliveredAt=iso(message.delivered_at),
        )
    data["metadata"] = message.metadata or {}
    return data


def _matches(endpoint: Endpoint, *, line: str | None, contact: str | None) -> bool:
    filters = endpoint.filters or {}
    wanted_line = filters.get("device_id")
    if wanted_line and wanted_line != line:
        return False
    wanted_contact = filters.get("from")
    if wanted_contact and contact is not None:
        return fnmatch.fnmatchcase(contact, wanted_contact)
    return not wanted_contact or contact is None


def _enabled_endpoints() -> list[Endpoint]:
    return list(
        Endpoint.objects.filter(enabled=True, internal=False).only(
            "id", "events", "filters", "max_attempts", "format"
        )
    )


def _subscribers(event_type: str, *, line: str | None, contact: str | None) -> list[Endpoint]:
    # The events list is a small JSON array on a small table; filtering in Python keeps this
    # one indexed query on every database, and one per batch of inbound messages (an MSync
    # upload of 500 would otherwise read the same endpoints 500 times).
    endpoints = batch_cached("webhooks.enabled_endpoints", _enabled_endpoints)
    return [
        e for e in endpoints if event_type in e.events and _matches(e, line=line, contact=contact)
    ]


class _Outbox:
    """Events of brand-new messages and their deliveries, written together at the end of the
    batch: two INSERTs for an MSync upload instead of two per message."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.deliveries: list[Delivery] = []
        self.flush_registered = False

    def add(self, event: Event, deliveries: list[Delivery]) -> None:
        self.events.append(event)
        self.deliveries.extend(deliveries)
        if not self.flush_registered:
            self.flush_registered = True
            # Outside a batch this writes at once; inside, once when the batch is complete.
            batch_collect("webhooks.outbox", [self], _write_outboxes)

    def write(self) -> None:
        events, deliveries = self.events, self.deliveries
        self.events, self.deliveries = [], []
        # Bounded so one statement stays far below PostgreSQL's 65,535 parameters.
        if events and deliveries and connection.vendor == "postgresql" and len(deliveries) <= 1000:
            _insert_together(events, deliveries)
        else:
            if events:
                Event.objects.bulk_create(events)
            if deliveries:
                Delivery.objects.bulk_create(deliveries)
        _enqueue_after_commit([d.pk for d in deliveries])


def _insert_sql(model: Any, objs: list[Any]) -> tuple[str, tuple[Any, ...]]:
    query = InsertQuery(model)
    query.insert_values(list(model._meta.concrete_fields), objs)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return sql, tuple(params)


def _insert_together(events: list[Event], deliveries: list[Delivery]) -> None:
    """The events and their deliveries in one statement (a data-modifying WITH, PostgreSQL):
    one round trip fewer per batch. The deliveries' foreign keys are checked at commit."""
    event_sql, event_params = _insert_sql(Event, events)
    delivery_sql, delivery_params = _insert_sql(Delivery, deliveries)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH inserted_events AS ({event_sql}) {delivery_sql}",
            event_params + delivery_params,
        )


def _write_outboxes(outboxes: list[_Outbox]) -> None:
    for outbox in outboxes:
        outbox.write()


# The events of a message this request created or queued, by type, kept on the Message
# instance every receiver of the same signal shares (the automation `forward` action runs
# before the subscriptions and may have created the event already).
_EVENTS_ATTR = "_webhook_events"


def _events_of(message: Message) -> dict[str, tuple[Event, _Outbox | None]]:
    known: dict[str, tuple[Event, _Outbox | None]] = message.__dict__.setdefault(_EVENTS_ATTR, {})
    return known


def _event_for_message(message: Message, event_type: str) -> tuple[Event, bool]:
    """The message's event of that type, and whether it was created just now."""
    queued = _events_of(message).get(event_type)
    if queued is not None and queued[1] is not None:
        # Queued in this batch and not written yet: write the batch's outbox now, so the
        # lookup below finds the event and its deliveries.
        queued[1].write()
    event = Event.objects.filter(message=message, type=event_type).first()
    if event is not None:
        return event, False
    event = Event.objects.create(
        type=event_type, message=message, data=message_event_data(message, event_type)
    )
    _events_of(message)[event_type] = (event, None)
    return event, True


def _add_deliveries(
    event: Event, endpoints: Iterable[Endpoint], *, fresh: bool = False
) -> list[str]:
    """One Delivery per endpoint that does not have one for this event yet; returns new ids.

    `fresh`: the event was created in this transaction just now, so it has no deliveries.
    """
    endpoints = list(endpoints)
    if not endpoints:
        return []
    existing: set[str] = set()
    if not fresh:
        existing = set(
            Delivery.objects.filter(event=event, endpoint__in=endpoints).values_list(
                "endpoint_id", flat=True
            )
        )
    rows = _new_deliveries(event, [e for e in endpoints if e.pk not in existing])
    Delivery.objects.bulk_create(rows)
    return [row.pk for row in rows]


def _new_deliveries(event: Event, endpoints: list[Endpoint]) -> list[Delivery]:
    now = timezone.now()
    return [
        Delivery(
            event=event,
            endpoint=e,
            round_attempts=e.max_attempts,
            next_attempt_at=now,
            enqueued_at=now,
        )
        for e in endpoints
    ]


def _publish(delivery_ids: list[str]) -> None:
    from smsgate.celery import app
    from webhooks.tasks import deliver_webhook

    # One broker connection for all of them rather than one checkout per message, and one
    # pipelined round trip to Redis per 1,000 commands (kombu's publish batch) rather than
    # one per task: an MSync batch of 100 messages with 2 endpoints publishes 200 tasks.
    with app.producer_or_acquire() as producer, producer.batch():
        for pk in delivery_ids:
            deliver_webhook.apply_async((pk,), producer=producer)


def _publish_after_commit(delivery_ids: list[str]) -> None:
    # robust: a broker that is down must not turn a committed inbound message into an error;
    # the beat sweep publishes these deliveries later. A named function, not a partial: Django
    # logs a robust callback's failure by its __qualname__, which a partial lacks (that turned
    # the logged failure into a 500 after commit).
    def publish() -> None:
        _publish(delivery_ids)

    transaction.on_commit(publish, robust=True)


def _enqueue_after_commit(delivery_ids: list[str]) -> None:
    if not delivery_ids:
        return
    # Within a batch of inbound messages, published once for the whole batch.
    batch_collect("webhooks.publish", delivery_ids, _publish_after_commit)


def record_message_event(
    message: Message, event_type: str, *, new_message: bool = False
) -> list[str]:
    """Store the event and its deliveries for every subscribed endpoint (inside the caller's
    transaction); returns the new delivery ids, enqueued after commit.

    `new_message`: the message was created in this transaction just now, so it has no event
    yet unless this request made one: no lookup, and inside a batch the rows are written with
    the batch's others (one INSERT of events and one of deliveries per batch).
    """
    contact = message.from_number if message.direction == Direction.INBOUND else message.to_number
    endpoints = _subscribers(event_type, line=message.device_id or message.app_id, contact=contact)
    if not endpoints:
        return []
    if new_message and event_type not in _events_of(message):
        event = Event(
            type=event_type, message=message, data=message_event_data(message, event_type)
        )
        deliveries = _new_deliveries(event, endpoints)
        outbox = batch_cached("webhooks.outbox", _Outbox)
        _events_of(message)[event_type] = (event, outbox)
        outbox.add(event, deliveries)
        return [d.pk for d in deliveries]
    event, fresh = _event_for_message(message, event_type)
    ids = _add_deliveries(event, endpoints, fresh=fresh)
    _enqueue_after_commit(ids)
    return ids


def record_device_event(device: Device, online: bool) -> list[str]:
    event_type = EventType.DEVICE_ONLINE if online else EventType.DEVICE_OFFLINE
    endpoints = _subscribers(event_type, line=device.pk, contact=None)
    if not endpoints:
        return []
    event = Event.objects.create(
        type=event_type,
        data={
            "deviceId": device.pk,
            "name": device.name,
            "online": online,
            "lastSeenAt": iso(device.last_seen_at),
        },
    )
    ids = _add_deliveries(event, endpoints, fresh=True)
    _enqueue_after_commit(ids)
    return ids


def _internal_endpoint(url: str, fmt: str) -> Endpoint:
    """The hidden endpoint holding an automation rule's ad-hoc forward URL."""
    found = Endpoint.objects.filter(internal=True, url=url, format=fmt).first()
    if found is not None:
        return found
    endpoint = Endpoint(
        url=url,
        format=fmt,
        events=[EventType.SMS_RECEIVED.value],
        max_attempts=get_format(fmt).max_attempts,
        internal=True,
    )
    endpoint.secret_encrypted = _encrypt(_validated_secret(fmt, None))
    endpoint.save(force_insert=True)
    return endpoint


def enqueue_forward(
    *,
    message: Message,
    endpoint_id: str | None = None,
    url: str | None = None,
    format: str = "standard",
) -> None:
    """Called inside the inbound transaction by the automation `forward` action: an Event
    ("sms.received") with a Delivery to that endpoint, or to an ad-hoc URL with that format.

    Subscriptions of the same message share the event, so an endpoint that is both
    subscribed and forwarded to receives it once. A disabled endpoint keeps the delivery
    until it is enabled again.
    """
    if endpoint_id:
        endpoint = Endpoint.objects.filter(pk=endpoint_id, internal=False).first()
        if endpoint is None:
            raise NotFound(f"There is no webhook {endpoint_id!r} to forward to.")
    elif url:
        fmt = _validated_format(format)
        endpoint = _internal_endpoint(_validated_url(fmt, url), fmt)
    else:
        raise InvalidInput("webhook_id", "A forward needs a webhook_id or a url.")
    event, fresh = _event_for_message(message, EventType.SMS_RECEIVED)
    _enqueue_after_commit(_add_deliveries(event, [endpoint], fresh=fresh))


# --- hand actions on deliveries -----------------------------------------------------------


def get_delivery(delivery_id: str) -> Delivery:
    delivery = (
        Delivery.objects.select_related("event", "endpoint")
        .filter(pk=delivery_id, endpoint__internal=False)
        .first()
    )
    if delivery is None:
        raise NotFound(f"There is no delivery {delivery_id!r}.")
    return delivery


def _start_round(queryset: Any, *, attempts: int | None, now: datetime) -> int:
    """Make finished deliveries pending again for a new round of attempts."""
    from django.db.models import F

    updates: dict[str, Any] = {
        "status": DeliveryStatus.PENDING,
        "round_base": F("attempts_made"),
        "next_attempt_at": now,
        "lease_until": None,
        "enqueued_at": now,
        "completed_at": None,
    }
    if attempts is not None:
        updates["round_attempts"] = attempts
    return int(queryset.exclude(status=DeliveryStatus.PENDING).update(**updates))


def retry_delivery(*, delivery_id: str) -> Delivery:
    """One attempt now, whatever the delivery's state, unless an attempt is in flight."""
    from webhooks.delivery import attempt_delivery

    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=get_delivery(delivery_id).pk)
        row = delivery.get()
        if row.lease_until is not None and row.lease_until > now:
            raise Conflict("An attempt of this delivery is in progress.", code="in_progress")
        if row.status == DeliveryStatus.PENDING:
            # Pulled forward; the attempt keeps the rest of its round.
            delivery.update(next_attempt_at=now, enqueued_at=None)
        else:
            _start_round(delivery, attempts=1, now=now)
    attempt_delivery(delivery_id=delivery_id, force=True)
    return get_delivery(delivery_id)


def replay_deliveries(*, endpoint_id: str, since: datetime) -> int:
    """Every finished delivery of the endpoint since `since` gets a new full round."""
    endpoint = get_endpoint(endpoint_id)
    now = timezone.now()
    with transaction.atomic():
        chosen = Delivery.objects.filter(endpoint=endpoint, created_at__gte=since).exclude(
            status=DeliveryStatus.PENDING
        )
        ids = list(chosen.values_list("pk", flat=True)[:10000])
        count = _start_round(
            Delivery.objects.filter(pk__in=ids), attempts=endpoint.max_attempts, now=now
        )
        if endpoint.enabled:
            _enqueue_after_commit(ids)
    return count


def send_test(*, endpoint_id: str) -> Delivery:
    """A `ping` event to this endpoint only, attempted now (also when it is disabled)."""
    from webhooks.delivery import attempt_delivery

    endpoint = get_endpoint(endpoint_id)
    with transaction.atomic():
        event = Event.objects.create(
            type=EventType.PING,
            data={
                "endpointId": endpoint.pk,
                "message": "This is a test event from smsgate.",
                "success": True,
            },
        )
        now = timezone.now()
        delivery = Delivery.objects.create(
            event=event, endpoint=endpoint, round_attempts=1, next_attempt_at=now
        )
    attempt_delivery(delivery_id=delivery.pk, force=True)
    return get_delivery(delivery.pk)
