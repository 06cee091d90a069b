"""The routing policy (docs/routing.md#the-routing-policy): the fallback provider app, how long
a message waits on a line that cannot send before it moves, how many lines it may try, and the
quiet hours. The environment gives the defaults; once an admin saves the policy, the saved row
wins (`GET|PUT /api/v1/routing`, the dashboard's Routing page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from messaging.models import ProviderApp, RoutingPolicy
from smsgate.errors import InvalidInput

MAX_REROUTE_AFTER = 7 * 24 * 3600
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class QuietHours:
    """A daily window, in the recipient's local time, when broadcasts are held. `start` after
    `end` (21:00–08:00) spans midnight; the window includes `start` and excludes `end`."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, local: datetime) -> datetime:
        """The end of the window `local` (an aware local time inside it) is in."""
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}


@dataclass(frozen=True)
class Policy:
    fallback_app_id: str | None
    reroute_after: int
    max_attempts: int
    quiet_hours: QuietHours | None
    saved: bool  # False: the environment's defaults (no admin saved a policy yet)

    def as_json(self) -> dict[str, Any]:
        return {
            "fallback_app_id": self.fallback_app_id,
            "reroute_after": self.reroute_after,
            "max_attempts": self.max_attempts,
            "quiet_hours": self.quiet_hours.as_json() if self.quiet_hours else None,
        }


def _from_environment() -> Policy:
    return Policy(
        fallback_app_id=settings.SMSGATE_FALLBACK_APP_ID or None,
        reroute_after=settings.SMSGATE_REROUTE_AFTER,
        max_attempts=max(settings.SMSGATE_MAX_ROUTE_ATTEMPTS, 1),
        quiet_hours=None,
        saved=False,
    )


def _from_row(row: RoutingPolicy) -> Policy:
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None:
        quiet = QuietHours(start=row.quiet_start, end=row.quiet_end)
    return Policy(
        fallback_app_id=row.fallback_app_id,
        reroute_after=row.reroute_after,
        max_attempts=row.max_attempts,
        quiet_hours=quiet,
        saved=True,
    )


def current_policy() -> Policy:
    row = RoutingPolicy.objects.order_by("pk").first()
    return _from_row(row) if row is not None else _from_environment()


def fallback_app(policy: Policy | None = None) -> ProviderApp | None:
    """The policy's fallback app when it is enabled and can send."""
    app_id = (policy or current_policy()).fallback_app_id
    if not app_id:
        return None
    return ProviderApp.objects.filter(pk=app_id, enabled=True, can_send=True).first()


# --- validation -------------------------------------------------------------------------------

_UNSET: Any = object()


def _clock(field: str, value: Any) -> time:
    if isinstance(value, str):
        try:
            parsed = datetime.strptime(value.strip(), "%H:%M")
        except ValueError:
            pass
        else:
            return parsed.time()
    raise InvalidInput(field, f"{field} must be a time of day as HH:MM (24-hour), e.g. 21:00.")


def parse_quiet_hours(value: Any) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise InvalidInput(
            "quiet_hours", 'quiet_hours must be null or {"start": "HH:MM", "end": "HH:MM"}.'
        )
    start = _clock("quiet_hours.start", value["start"])
    end = _clock("quiet_hours.end", value["end"])
    if start == end:
        raise InvalidInput("quiet_hours", "quiet_hours must start and end at different times.")
    return QuietHours(start=start, end=end)


def _whole(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field, f"{field} must be a whole number from {low} to {high}.")
    return value


def _app(value: Any) -> ProviderApp | None:
    if value is None or value == "":
        return None
    # A NUL in a lookup is an error on PostgreSQL (a 500), and no id is longer than the column.
    is_id = isinstance(value, str) and "\x00" not in value and len(value) <= 40
    app = ProviderApp.objects.filter(pk=value).first() if is_id else None
    if app is None:
        raise InvalidInput("fallback_app_id", f"There is no provider app {value!r}.")
    if not app.can_send:
        raise InvalidInput(
            "fallback_app_id",
            f"Provider app {app.pk} ({app.name}) only receives messages: it cannot be the "
            "fallback.",
        )
    return app


def update_policy(
    *,
    fallback_app_id: Any = _UNSET,
    reroute_after: Any = _UNSET,
    max_attempts: Any = _UNSET,
    quiet_hours: Any = _UNSET,
) -> Policy:
    """Save the policy; a field left out keeps its current value (the environment's default
    until the policy was first saved). Everything is checked before anything is written."""
    current = current_policy()
    app = (
        _app(fallback_app_id)
        if fallback_app_id is not _UNSET
        else ProviderApp.objects.filter(pk=current.fallback_app_id).first()
    )
    after = (
        _whole("reroute_after", reroute_after, 0, MAX_REROUTE_AFTER)
        if reroute_after is not _UNSET
        else current.reroute_after
    )
    attempts = (
        _whole("max_attempts", max_attempts, 1, MAX_ATTEMPTS)
        if max_attempts is not _UNSET
        else current.max_attempts
    )
    quiet = parse_quiet_hours(quiet_hours) if quiet_hours is not _UNSET else current.quiet_hours
    with transaction.atomic():
        row = RoutingPolicy.objects.select_for_update().order_by("pk").first() or RoutingPolicy()
        row.fallback_app = app
        row.reroute_after = after
        row.max_attempts = attempts
        row.quiet_start = quiet.start if quiet else None
        row.quiet_end = quiet.end if quiet else None
        row.save()
    return _from_row(row)
