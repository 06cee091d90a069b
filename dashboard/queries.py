"""Reads behind the dashboard's pages (no writes here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from devices.models import Device, Sim
from messaging.models import (
    Conversation,
    Direction,
    InboundRequest,
    Message,
    OptOut,
    ProviderApp,
    Status,
)
from messaging.routing import FAILING_AFTER, segments_since

THREAD_LIMIT = 200


def unread_total() -> int:
    return int(Conversation.objects.aggregate(n=Sum("unread"))["n"] or 0)


def list_conversations(*, search: str = "", device_id: str = "") -> QuerySet[Conversation]:
    """Newest first; `search` matches the number or any message's text."""
    qs = Conversation.objects.select_related("last_message", "device", "app").order_by(
        "-updated_at", "-id"
    )
    search = search.strip()
    if search:
        digits = search.replace(" ", "").replace("-", "")
        matching = Message.objects.filter(body__icontains=search).values("conversation_id")
        qs = qs.filter(Q(phone__icontains=digits) | Q(pk__in=matching))
    if device_id:
        qs = qs.filter(device_id=device_id)
    return qs


def get_conversation(conversation_id: str) -> Conversation | None:
    """The conversation with its line, and `opted_out_at` (when the contact opted out, or
    None), so the thread can say so before the user types, without a query of its own."""
    opted_out = OptOut.objects.filter(phone=OuterRef("phone")).values("at")[:1]
    return (
        Conversation.objects.select_related("last_message", "device", "app")
        .annotate(opted_out_at=Subquery(opted_out))
        .filter(pk=conversation_id)
        .first()
    )


def thread_messages(conversation: Conversation) -> list[Message]:
    """The latest THREAD_LIMIT messages, oldest first (ids are time-sortable ULIDs)."""
    latest = list(
        Message.objects.filter(conversation=conversation)
        .select_related("device", "app")
        .order_by("-id")[:THREAD_LIMIT]
    )
    latest.reverse()
    attach_route_trails(latest)
    return latest


def get_thread_message(conversation_id: str, message_id: str) -> Message | None:
    message = (
        Message.objects.select_related("device", "app")
        .filter(pk=message_id, conversation_id=conversation_id)
        .first()
    )
    if message is not None:
        attach_route_trails([message])
    return message


def attach_route_trails(messages: list[Message]) -> None:
    """`route_trail` on each message that moved (docs/routing.md#re-routing): the names of the
    lines it tried, oldest first. Two queries for the lot (phones, apps), none when nothing
    moved."""
    tried = {key for m in messages for key in m.lines_tried}
    if not tried:
        return
    device_ids = {key.partition(":")[0] for key in tried if key.startswith("dev_")}
    names: dict[str, str] = dict(Device.objects.filter(pk__in=device_ids).values_list("id", "name"))
    names.update(ProviderApp.objects.filter(pk__in=tried).values_list("id", "name"))
    for message in messages:
        trail = []
        for key in message.lines_tried:
            device_id, _, slot = key.partition(":")
            name = names.get(device_id, device_id)
            trail.append(f"{name} · SIM {slot}" if slot else name)
        message.route_trail = trail  # type: ignore[attr-defined]


def devices_for_filter() -> list[Device]:
    return list(Device.objects.only("id", "name").order_by("name", "id"))


# --- home charts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: date
    inbound: int
    outbound: int


@dataclass(frozen=True)
class DeviceRate:
    device_id: str
    name: str
    delivered: int
    finished: int  # sent + delivered + failed: messages whose fate the phone reported

    @property
    def rate(self) -> float | None:
        return self.delivered / self.finished if self.finished else None


def daily_counts(days: int = 14) -> list[DayCount]:
    """Messages in and out per UTC day, the last `days` days including today (zeros kept)."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        Message.objects.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day", "direction")
        .annotate(n=Count("id"))
    )
    counts: dict[tuple[date, str], int] = {(r["day"], r["direction"]): r["n"] for r in rows}
    return [
        DayCount(
            day=d,
            inbound=counts.get((d, Direction.INBOUND), 0),
            outbound=counts.get((d, Direction.OUTBOUND), 0),
        )
        for d in (start + timedelta(days=i) for i in range(days))
    ]


def device_delivery_rates(days: int = 14) -> list[DeviceRate]:
    since = timezone.now() - timedelta(days=days)
    finished = [Status.SENT, Status.DELIVERED, Status.FAILED]
    rows = (
        Message.objects.filter(
            direction=Direction.OUTBOUND,
            created_at__gte=since,
            device__isnull=False,
            status__in=finished,
        )
        .values("device_id", "device__name")
        .annotate(
            delivered=Count("id", filter=Q(status=Status.DELIVERED)),
            finished=Count("id"),
        )
        .order_by("device__name", "device_id")
    )
    return [
        DeviceRate(
            device_id=r["device_id"],
            name=r["device__name"],
            delivered=r["delivered"],
            finished=r["finished"],
        )
        for r in rows
    ]


# --- raw log ----------------------------------------------------------------------------------


def list_inbound_requests(*, source: str = "", outcome: str = "") -> QuerySet[InboundRequest]:
    qs = InboundRequest.objects.defer("body", "headers").order_by("-id")
    if source:
        qs = qs.filter(source=source)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs


# The sources the phone and provider endpoints log under (listing them from the table would scan
# the whole log on every page view).
INBOUND_SOURCES = ("smssync", "msync", "twilio", "vonage", "africastalking", "agiletelecom")


# --- routing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneLine:
    """A phone SIM as routing sees it today. `used_today` is None for a phone with no SIM known
    (its sends are not counted per SIM)."""

    device: Device
    slot: int | None
    number: str
    used_today: int | None
    failures_in_a_row: int

    @property
    def is_failing(self) -> bool:
        """Whether the pool tries this SIM last (its recent sends all failed)."""
        return self.failures_in_a_row >= FAILING_AFTER

    @property
    def left_today(self) -> int | None:
        """Segments the day's limit still allows (None: no limit, or nothing to count by)."""
        limit = self.device.limit_per_day
        if limit is None or self.used_today is None:
            return None
        return max(limit - self.used_today, 0)


def list_phone_lines() -> list[PhoneLine]:
    """Every SIM of an enabled phone, online or not, with the segments it was handed in the
    last 24 hours counted as pool routing counts them (failed sends refunded); then enabled
    phones with no SIM known. Two queries however many phones there are."""
    since = timezone.now() - timedelta(days=1)
    sims = (
        Sim.objects.select_related("device")
        .filter(device__enabled=True)
        .annotate(used_today=segments_since(since, refund_failed=True))
        .order_by("device__name", "device_id", "slot")
    )
    lines = [
        PhoneLine(
            device=sim.device,
            slot=sim.slot,
            number=sim.number,
            used_today=sim.used_today,
            failures_in_a_row=sim.failures_in_a_row,
        )
        for sim in sims
    ]
    bare = Device.objects.filter(enabled=True, sims__isnull=True).order_by("name", "id")
    lines.extend(
        PhoneLine(device=d, slot=None, number="", used_today=None, failures_in_a_row=0)
        for d in bare
    )
    return lines


def list_sending_apps() -> list[ProviderApp]:
    """Provider apps that are lines: enabled, with what their provider needs to send."""
    return list(ProviderApp.objects.filter(enabled=True, can_send=True).order_by("name", "id"))
