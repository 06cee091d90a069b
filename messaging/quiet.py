"""Quiet hours in the recipient's time zone (docs/routing.md#quiet-hours): whether a message the
caller asked to respect them is held, and until when.

The zone comes from the number (its country and area, `phonenumbers.timezone`). A number that
spans several zones (a +1 800 toll-free number, a Russian mobile) is judged by the latest local
time among them, the zone furthest ahead: it reaches the morning last and the night first, so
no recipient of that number is woken by the rule. A number whose zone is unknown is never held:
we cannot tell its night from its day, and holding it would delay it for nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.utils import timezone
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number

from messaging.models import Direction, Message
from messaging.policy import QuietHours, current_policy
from smsgate.ids import id_before

# A message to a contact who texted us within this long is a reply: it is never held.
REPLY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Hold:
    """A message held for quiet hours: sent at `until` (UTC), the window's end in `zone`."""

    until: datetime
    local_end: datetime
    zone: str

    @property
    def detail(self) -> str:
        return (
            f"held for quiet hours until {self.local_end:%H:%M} {self.zone} "
            f"({self.until:%Y-%m-%d %H:%M} UTC)"
        )


@lru_cache(maxsize=4096)
def recipient_zones(phone: str) -> tuple[ZoneInfo, ...]:
    """The time zones of an E.164 number, in phonenumbers' (alphabetical) order; none when
    unknown."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return ()
    zones = []
    for name in time_zones_for_number(number):
        if name == UNKNOWN_TIMEZONE:
            continue
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            # A zone phonenumbers knows and this machine's tz database does not: judging by the
            # others beats refusing the number.
            continue
    return tuple(zones)


def latest_zone(phone: str, moment: datetime) -> ZoneInfo | None:
    """The number's zone furthest ahead at `moment` (ties: the first by name)."""
    zones = recipient_zones(phone)
    if not zones:
        return None
    return max(zones, key=lambda zone: moment.astimezone(zone).utcoffset() or timedelta(0))


def hold_for(phone: str, window: QuietHours, moment: datetime) -> Hold | None:
    """The hold of a message to `phone` judged at `moment`, or None when it may go."""
    zone = latest_zone(phone, moment)
    if zone is None:
        return None
    local = moment.astimezone(zone)
    if not window.contains(local.time()):
        return None
    local_end = window.ends_after(local)
    return Hold(until=local_end.astimezone(UTC), local_end=local_end, zone=zone.key)


def replied_recently(phones: Collection[str], moment: datetime) -> set[str]:
    """The phones among `phones` whose last inbound message came within REPLY_WINDOW before
    `moment`: one query, through the (from_number, id) index (ids sort by time)."""
    if not phones:
        return set()
    cutoff = moment - REPLY_WINDOW
    return set(
        Message.objects.filter(
            direction=Direction.INBOUND,
            from_number__in=list(phones),
            pk__gte=id_before("msg", cutoff),
            created_at__gte=cutoff,
        )
        .order_by()
        .values_list("from_number", flat=True)
        .distinct()
    )


class QuietHoursCheck:
    """What one send or one bulk send needs to hold messages: the policy's window (read at the
    first `hold`, so a send that does not respect quiet hours never reads it), the moment judged
    (the caller's `send_at` when later than now, else now), and who replied recently (read
    once, and only when some recipient falls in the window)."""

    def __init__(
        self, *, recipients: Collection[str] = (), send_at: datetime | None = None
    ) -> None:
        now = timezone.now()
        self.moment = send_at if send_at is not None and send_at > now else now
        self._recipients = recipients
        self._replied: set[str] | None = None

    @cached_property
    def window(self) -> QuietHours | None:
        return current_policy().quiet_hours

    def hold(self, phone: str) -> Hold | None:
        window = self.window
        if window is None:
            return None
        held = hold_for(phone, window, self.moment)
        if held is None:
            return None
        if self._replied is None:
            # Everyone this send holds, so a bulk send asks once for all of them.
            recipients = self._recipients or (phone,)
            held_phones = [p for p in recipients if hold_for(p, window, self.moment)]
            self._replied = replied_recently(held_phones, self.moment)
        return None if phone in self._replied else held


@dataclass(frozen=True)
class HeldSummary:
    """What a broadcast's preview says about quiet hours: how many recipients would be held
    now, until what local time, and the latest of their release times."""

    window: QuietHours
    held: int
    latest: datetime | None

    @property
    def end(self) -> time:
        return self.window.end


def summarize_holds(recipients: Collection[str]) -> HeldSummary | None:
    """Who of `recipients` a send now would hold; None when the policy sets no quiet hours."""
    check = QuietHoursCheck(recipients=recipients)
    if check.window is None:
        return None
    holds = [h for h in (check.hold(p) for p in recipients) if h is not None]
    latest = max((h.until for h in holds), default=None)
    return HeldSummary(window=check.window, held=len(holds), latest=latest)
