"""Wire formats of the phone apps: parsing only (no database), one module per protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

# Before this, a number is seconds since the epoch (it would be 1973 as milliseconds).
_MILLISECONDS_FROM = 10**11


class ProtocolError(Exception):
    """The request does not follow the protocol; answered with the protocol's failure shape."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def parse_epoch(value: Any) -> datetime | None:
    """Epoch seconds or milliseconds (number or digit string) → aware datetime, else None.

    SMSSync's docs say "UNIX timestamp" but the app sends milliseconds; accept both.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or not text.lstrip("-").replace(".", "", 1).isdigit():
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if number > _MILLISECONDS_FROM:
        number /= 1000
    try:
        stamp = datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return stamp if 1990 <= stamp.year <= 2200 else None


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (a naive one is UTC) or epoch seconds/milliseconds → aware datetime, else None."""
    stamp = parse_epoch(value)
    if stamp is not None or not isinstance(value, str):
        return stamp
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
