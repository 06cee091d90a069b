"""State changes of webhook endpoints (create, update, rotate, delete) and the hand actions on
deliveries (retry, replay, test). Events themselves are recorded by webhooks/outbox.py.

Nothing here makes an HTTP request except the explicit `send_test` and `retry_delivery`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from smsgate import http
from smsgate.errors import Conflict, InvalidInput, NotFound
from webhooks.delivery import attempt_delivery
from webhooks.formats import FORMATS, get_format
from webhooks.formats import email as email_format
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
from webhooks.publish import enqueue_after_commit
from webhooks.secrets import ROTATION_GRACE, encrypt_secret, validated_secret

log = logging.getLogger(__name__)

HISTORY_CHOICES = (0, 5, 10, 20, 50)
MAX_ATTEMPTS_LIMIT = 20
MAX_URL_CHARS = 2000


# --- secrets ----------------------------------------------------------------------------------


# --- endpoint validation --------------------------------------------------------------------


def validated_url(fmt: str, url: Any) -> str:
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


def validated_format(fmt: Any) -> str:
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
    fmt = validated_format(format)
    endpoint = Endpoint(
        **({"id": endpoint_id} if endpoint_id else {}),
        url=validated_url(fmt, url),
        format=fmt,
        events=_validated_events(fmt, events),
        filters=_validated_filters(filters),
        history=_validated_history(history),
        max_attempts=_validated_max_attempts(fmt, max_attempts),
        enabled=bool(enabled),
    )
    plain = validated_secret(fmt, secret)
    endpoint.secret_encrypted = encrypt_secret(plain)
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
            endpoint.url = validated_url(fmt, changes["url"])
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
        enqueue_after_commit(resumed)
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
        plain = validated_secret(endpoint.format, secret)
        assert plain is not None
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
        endpoint.secret_encrypted = encrypt_secret(plain)
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
            enqueue_after_commit(ids)
    return count


def send_test(*, endpoint_id: str) -> Delivery:
    """A `ping` event to this endpoint only, attempted now (also when it is disabled)."""
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
