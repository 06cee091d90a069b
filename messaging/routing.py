"""Which line an outbound message goes out on: the app or device the sender named, the line
that last talked with the contact (sticky sender), or the pool of online phones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from devices.models import Device, Sim
from messaging.models import Conversation, Message, ProviderApp, Status
from smsgate.errors import InvalidInput, Refused


@dataclass(frozen=True)
class Route:
    device: Device | None = None
    sim: Sim | None = None
    app: ProviderApp | None = None

    @property
    def sim_slot(self) -> int | None:
        return self.sim.slot if self.sim else None

    @property
    def from_number(self) -> str:
        if self.sim is not None:
            return self.sim.number
        if self.app is not None and self.app.numbers:
            return str(self.app.numbers[0])
        return ""


def _device_unavailable(message: str) -> Refused:
    return Refused(message, code="device_unavailable")


def explicit_device_route(device_id: str, sim_slot: int | None) -> Route:
    sims = list(Sim.objects.select_related("device").filter(device_id=device_id))
    device = sims[0].device if sims else Device.objects.filter(pk=device_id).first()
    if device is None:
        raise _device_unavailable(f"There is no device {device_id!r}.")
    if not device.enabled:
        raise _device_unavailable(f"Device {device_id!r} is disabled.")
    if sim_slot is None:
        return Route(device=device, sim=sims[0] if sims else None)
    for sim in sims:
        if sim.slot == sim_slot:
            return Route(device=device, sim=sim)
    if not sims:
        return Route(device=device, sim=Sim(device=device, slot=sim_slot))
    raise InvalidInput("sim_slot", f"Device {device_id!r} has no SIM in slot {sim_slot}.")


def sticky_route(conversation: Conversation | None) -> Route | None:
    """The line that last talked with this contact, when it can still send."""
    if conversation is None:
        return None
    if conversation.device_id and conversation.device and conversation.device.enabled:
        sims = Sim.objects.filter(device_id=conversation.device_id)
        if conversation.sim_slot is not None:
            sims = sims.filter(slot=conversation.sim_slot)
        sim = sims.order_by("slot").first()
        if sim is None and conversation.sim_slot is not None:
            # The SIM row was removed since; the phone still knows its slot.
            sim = Sim(device=conversation.device, slot=conversation.sim_slot)
        return Route(device=conversation.device, sim=sim)
    app = conversation.app if conversation.app_id else None
    # An app that only receives is no line to reply on: the pool carries the reply instead.
    if app is not None and app.enabled and app.can_send:
        return Route(app=app)
    return None


# What "no limit" counts as when SIMs are ordered by the budget they have left.
_UNLIMITED = 2**31 - 1


def _segments_since(start: datetime, *, refund_failed: bool) -> Coalesce:
    """The segments the SIM of the outer row was handed since `start`, as a subquery."""
    handed = Message.objects.filter(
        device_id=OuterRef("device_id"), sim_slot=OuterRef("slot"), dispatched_at__gte=start
    )
    if refund_failed:
        # A failed send is refunded, as the phone's own pacing does.
        handed = handed.exclude(status=Status.FAILED)
    total = handed.order_by().values("device_id").annotate(n=Sum("segments")).values("n")
    return Coalesce(Subquery(total), 0)


def _left(limit: str, used: Coalesce) -> Coalesce:
    """What a limit leaves (never below 0); no limit is the most of all."""
    return Coalesce(Greatest(F(limit) - used, Value(0)), Value(_UNLIMITED))


def pool_route() -> Route:
    """An online enabled device's SIM with the most budget left (day, then minute), the least
    recently seen first on ties. A SIM that has used its budget is chosen only when every SIM
    has; none online leaves the message in the shared queue, where the first device to poll
    claims it (limits hold messages in the queue rather than refusing them)."""
    now = timezone.now()
    # One query on the hot path however many devices there are: each SIM with its device and
    # what it has left, best first; a device without SIMs only when no online device has one.
    sim = (
        Sim.objects.select_related("device")
        .filter(device__enabled=True, device__online=True)
        .annotate(
            day_left=_left(
                "device__limit_per_day",
                _segments_since(now - timedelta(days=1), refund_failed=True),
            ),
            minute_left=_left(
                "device__limit_per_minute",
                _segments_since(now - timedelta(minutes=1), refund_failed=False),
            ),
        )
        .order_by("-day_left", "-minute_left", "device__last_seen_at", "device_id", "slot")
        .first()
    )
    if sim is not None:
        return Route(device=sim.device, sim=sim)
    device = Device.objects.filter(enabled=True, online=True).order_by("last_seen_at").first()
    return Route(device=device) if device is not None else Route()


def choose_route(
    *,
    device_id: str | None,
    sim_slot: int | None,
    app_id: str | None,
    conversation: Conversation | None,
    pool: Callable[[], Route] = pool_route,
    explicit: Callable[[str, int | None], Route] = explicit_device_route,
) -> Route:
    if app_id:
        app = ProviderApp.objects.filter(pk=app_id).first()
        if app is None or not app.enabled:
            raise Refused(f"There is no enabled provider app {app_id!r}.", code="app_unavailable")
        if not app.can_send:
            raise _cannot_send(app)
        return Route(app=app)
    if device_id:
        return explicit(device_id, sim_slot)
    sticky = sticky_route(conversation)
    if sticky is not None and (sim_slot is None or sticky.sim_slot == sim_slot):
        return sticky
    return pool()


# --- apps that only receive -----------------------------------------------------------------


def _cannot_send(app: ProviderApp, more: str = "") -> Refused:
    return Refused(
        f"Provider app {app.pk} ({app.name}) only receives messages: it has no sending "
        f"credentials or its provider cannot send{more}.",
        code="app_cannot_send",
    )


def other_line_available() -> bool:
    """Whether a message no app is named for can go out: an enabled phone takes it from the
    pool (or the shared queue), or else the fallback app if it can send."""
    if Device.objects.filter(enabled=True).exists():
        return True
    fallback_id = settings.SMSGATE_FALLBACK_APP_ID
    if not fallback_id:
        return False
    fallback = ProviderApp.objects.filter(pk=fallback_id, enabled=True).first()
    return fallback is not None and fallback.can_send


def reply_app_id(app_id: str | None) -> str | None:
    """The app a reply to a message that came in on `app_id` is pinned to: that app when it
    can send; None when it only receives, so routing picks another line. Refused (nothing is
    written) when it only receives and no other line can carry the reply."""
    if not app_id:
        return None
    app = ProviderApp.objects.filter(pk=app_id).first()
    if app is None or app.can_send:
        return app_id
    if other_line_available():
        return None
    raise _cannot_send(app, ", and no phone can send the reply")
