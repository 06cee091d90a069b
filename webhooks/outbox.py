"""The outbox: webhook events written in the transaction of the change that caused them, with
one Delivery per subscribed endpoint; the broker is told after commit (webhooks/publish.py).

`pipeline.inbound` records `sms.received`, the status receivers (webhooks/receivers.py) the
status events, the heartbeat receivers device events, automation's forward action an ad-hoc
delivery. Nothing here makes an HTTP request, so no webhook ever slows the request that
produced an event.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from devices.models import Device
from messaging.models import Direction, Message
from smsgate.batch import batch_cached, batch_collect
from smsgate.errors import InvalidInput, NotFound
from smsgate.statements import insert_sql
from webhooks.formats import get_format
from webhooks.formats.base import iso
from webhooks.models import Delivery, Endpoint, Event, EventType
from webhooks.publish import enqueue_after_commit
from webhooks.secrets import encrypt_secret, validated_secret
from webhooks.services import validated_format, validated_url
from webhooks.versions import ENDPOINTS, VersionedCache

# The events of a message this request created or queued, by type, kept on the Message
# instance every step of the pipeline shares (the automation `forward` action runs
# before the subscriptions and may have created the event already).
_EVENTS_ATTR = "_webhook_events"

STATUS_EVENTS = {
    "sent": EventType.SMS_SENT,
    "delivered": EventType.SMS_DELIVERED,
    "failed": EventType.SMS_FAILED,
    "cancelled": EventType.SMS_CANCELLED,
}


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


def _matches(endpoint: Subscriber, *, line: str | None, contact: str | None) -> bool:
    filters = endpoint.filters
    wanted_line = filters.get("device_id")
    if wanted_line and wanted_line != line:
        return False
    wanted_contact = filters.get("from")
    if wanted_contact and contact is not None:
        return fnmatch.fnmatchcase(contact, wanted_contact)
    return not wanted_contact or contact is None


@dataclass(frozen=True)
class Subscriber:
    """What the outbox needs of an enabled endpoint, kept in every process's memory."""

    pk: str
    events: frozenset[str]
    filters: dict[str, str]
    max_attempts: int

    @classmethod
    def of(cls, endpoint: Endpoint) -> Subscriber:
        return cls(
            pk=endpoint.pk,
            events=frozenset(endpoint.events or ()),
            filters=dict(endpoint.filters or {}),
            max_attempts=endpoint.max_attempts,
        )


def _enabled_endpoints() -> list[Subscriber]:
    rows = Endpoint.objects.filter(enabled=True, internal=False).only(
        "id", "events", "filters", "max_attempts"
    )
    return [Subscriber.of(e) for e in rows]


# The enabled endpoints, read again only when an endpoint changed (webhooks/versions.py):
# a disabled or deleted endpoint is out of every process's copy at the next batch after the
# change commits.
_endpoints = VersionedCache(ENDPOINTS, _enabled_endpoints)


def _subscribers(event_type: str, *, line: str | None, contact: str | None) -> list[Subscriber]:
    # The events list is a small JSON array on a small table; filtering in Python keeps the
    # version check the only statement (one per batch: an MSync upload of 500 would otherwise
    # check it 500 times).
    endpoints = batch_cached("webhooks.enabled_endpoints", _endpoints.get)
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
        enqueue_after_commit([d.pk for d in deliveries])


def _insert_together(events: list[Event], deliveries: list[Delivery]) -> None:
    """The events and their deliveries in one statement (a data-modifying WITH, PostgreSQL):
    one round trip fewer per batch. The deliveries' foreign keys are checked at commit."""
    event_sql, event_params = insert_sql(Event, events)
    delivery_sql, delivery_params = insert_sql(Delivery, deliveries)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH inserted_events AS ({event_sql}) {delivery_sql}",
            event_params + delivery_params,
        )


def _write_outboxes(outboxes: list[_Outbox]) -> None:
    for outbox in outboxes:
        outbox.write()


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
    event: Event, endpoints: Iterable[Endpoint | Subscriber], *, fresh: bool = False
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
            Delivery.objects.filter(
                event=event, endpoint_id__in=[e.pk for e in endpoints]
            ).values_list("endpoint_id", flat=True)
        )
    rows = _new_deliveries(event, [e for e in endpoints if e.pk not in existing])
    Delivery.objects.bulk_create(rows)
    return [row.pk for row in rows]


def _new_deliveries(event: Event, endpoints: Sequence[Endpoint | Subscriber]) -> list[Delivery]:
    now = timezone.now()
    return [
        Delivery(
            event=event,
            endpoint_id=e.pk,
            round_attempts=e.max_attempts,
            next_attempt_at=now,
            enqueued_at=now,
        )
        for e in endpoints
    ]


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
    enqueue_after_commit(ids)
    return ids


def record_reroute(message: Message, *, from_line: str, to_line: str, why: str) -> list[str]:
    """An `sms.rerouted` event for each move (a message may move more than once, so unlike
    status events there is one event per move, never looked up)."""
    endpoints = _subscribers(
        EventType.SMS_REROUTED, line=message.device_id or message.app_id, contact=message.to_number
    )
    if not endpoints:
        return []
    data = message_event_data(message, EventType.SMS_REROUTED)
    data.update(status="rerouted", rerouted={"from": from_line, "to": to_line, "reason": why})
    event = Event.objects.create(type=EventType.SMS_REROUTED, message=message, data=data)
    ids = _add_deliveries(event, endpoints, fresh=True)
    enqueue_after_commit(ids)
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
    enqueue_after_commit(ids)
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
    endpoint.secret_encrypted = encrypt_secret(validated_secret(fmt, None))
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
        fmt = validated_format(format)
        endpoint = _internal_endpoint(validated_url(fmt, url), fmt)
    else:
        raise InvalidInput("webhook_id", "A forward needs a webhook_id or a url.")
    event, fresh = _event_for_message(message, EventType.SMS_RECEIVED)
    enqueue_after_commit(_add_deliveries(event, [endpoint], fresh=fresh))
