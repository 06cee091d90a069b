"""Phones calling in: one statement authenticates a phone, records the call as its heartbeat
and reads what a poll needs (its SIMs and what each has sent in the pacing windows).

Every phone door (SMSSync, MSync, the SMS Gateway for Android app) starts here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from devices.models import Device, Sim
from devices.signals import device_health_changed
from messaging.models import Direction, Message, Status
from smsgate.crypto import hash_secret
from smsgate.rows import ModelColumns


@dataclass
class SimUsage:
    """A SIM with the segments it was handed in the pacing windows (minute, hour, day)."""

    slot: int
    number: str
    minute: int = 0
    hour: int = 0
    day: int = 0


@dataclass
class CheckIn:
    """A device that just called in: its row (after the call was recorded) and its SIMs."""

    device: Device
    sims: list[SimUsage] = field(default_factory=list)
    came_online: bool = False
    # This process's notes on the credential used (see _Hint); None for a bare CheckIn.
    hint: _Hint | None = None


_DEVICE_COLUMNS = [f.column for f in Device._meta.concrete_fields]
_DEVICE = ModelColumns(Device)  # the same columns, turned back into a Device


def _db_datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _sims_sql() -> str:
    """Each SIM of the device with the segments it was handed in the last minute, hour, day
    (three parameters: the start of each window)."""
    device, sim, message = Device._meta.db_table, Sim._meta.db_table, Message._meta.db_table
    usage = (
        f"(SELECT COALESCE(SUM(m.segments), 0) FROM {message} m WHERE m.device_id = s.device_id"  # noqa: S608
        " AND m.sim_slot = s.slot AND m.dispatched_at >= %s{})"
    )
    # A failed send is refunded: it used none of the SIM's hourly or daily allowance. The
    # minute window still counts it, as it paces what the phone actually attempted.
    refunded = usage.format(f" AND m.status <> '{Status.FAILED.value}'")
    windows = f"{usage.format('')}, {refunded}, {refunded}"
    if connection.vendor == "postgresql":
        return (
            f"(SELECT json_agg(json_build_array(s.slot, s.number, {windows})"  # noqa: S608
            f" ORDER BY s.slot) FROM {sim} s WHERE s.device_id = {device}.id)"
        )
    return (
        f"(SELECT json_group_array(json_array(s.slot, s.number, {windows}))"  # noqa: S608
        f" FROM (SELECT * FROM {sim} ORDER BY slot) s WHERE s.device_id = {device}.id)"
    )


def _checkin_sql(where: str) -> str:
    """One statement that authenticates a device, records the call and reads what a poll needs.

    `UPDATE … RETURNING` (PostgreSQL, SQLite ≥ 3.35) keeps a phone's poll within its query
    budget: the row lock it takes also serialises concurrent polls of one device, so the pacing
    counts read afterwards in the same transaction are exact. `online_changed_at` is set only
    when the device was offline, which is how the caller learns that this call brought it back.

    Only table and column names from the models are formatted in (S608 below); every value is
    a query parameter.
    """
    device = Device._meta.db_table
    columns = ", ".join(f"{device}.{c}" for c in _DEVICE_COLUMNS)
    return (
        f"UPDATE {device} SET last_seen_at = %s, online = %s,"  # noqa: S608
        " online_changed_at = CASE WHEN online THEN online_changed_at ELSE %s END"
        f" WHERE {where} RETURNING {columns}, {_sims_sql()} AS sims_json"
    )


# A device that polls all the time is recorded as seen at most once per SEEN_RESOLUTION
# seconds (per web process): the UPDATE (a new row version and a durable commit) is what a busy
# phone's empty poll costs most. The write is skipped only when the row read back says the
# device is online and was seen within the resolution, so every offline → online transition
# (and its device.online event) still comes from an UPDATE. The resolution stays far below
# SMSGATE_DEVICE_OFFLINE_AFTER: a device that keeps calling is never swept offline.
SEEN_RESOLUTION = 5.0
_HINTS_MAX = 10_000


@dataclass
class _Hint:
    """What this process last learnt about a credential's device (a hint, never the truth)."""

    written_at: float = 0.0  # time.monotonic() of this process's last check-in UPDATE
    # Its last poll here handed messages out; assumed for a first poll, so that a phone with
    # work waiting never pays for the idle-poll read on top of its claim.
    had_work: bool = True


_hints: dict[tuple[Any, ...], _Hint] = {}


def _hint(params: list[Any]) -> _Hint:
    key = tuple(params)
    hint = _hints.get(key)
    if hint is None:
        if len(_hints) >= _HINTS_MAX:
            _hints.clear()
        hint = _hints[key] = _Hint()
    return hint


def _seen_resolution() -> timedelta:
    return timedelta(seconds=min(SEEN_RESOLUTION, settings.SMSGATE_DEVICE_OFFLINE_AFTER / 10))


def _peek_sql(where: str, *, lock: bool) -> str:
    """The check-in's read without its write: the device, its SIMs' pacing counts and whether any
    message is waiting for it (the same conditions as `phones.queue.claim`)."""
    device = Device._meta.db_table
    message = Message._meta.db_table
    columns = ", ".join(f"{device}.{c}" for c in _DEVICE_COLUMNS)
    waiting = (
        f"EXISTS (SELECT 1 FROM {message} w WHERE w.direction = %s AND w.status = %s"  # noqa: S608
        f" AND (w.device_id = {device}.id OR (w.device_id IS NULL AND w.app_id IS NULL))"
        " AND (w.send_at IS NULL OR w.send_at <= %s)"
        " AND (w.expires_at IS NULL OR w.expires_at > %s))"
    )
    suffix = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    return (
        f"SELECT {columns}, {_sims_sql()} AS sims_json, {waiting} AS waiting"  # noqa: S608
        f" FROM {device} WHERE {where}{suffix}"
    )


def _windows(now: datetime) -> list[Any]:
    return [
        _db_datetime(now - timedelta(minutes=1)),
        _db_datetime(now - timedelta(hours=1)),
        _db_datetime(now - timedelta(days=1)),
    ]


def _from_row(row: Sequence[Any]) -> tuple[Device, list[SimUsage]]:
    device = _DEVICE.load(row)
    assert device is not None  # the row is the device's own
    raw_sims = row[len(_DEVICE_COLUMNS)]
    if isinstance(raw_sims, str | bytes):
        raw_sims = json.loads(raw_sims)
    sims = [
        SimUsage(slot=int(s[0]), number=s[1] or "", minute=s[2], hour=s[3], day=s[4])
        for s in raw_sims or []
    ]
    return device, sims


def _fresh(device: Device, now: datetime) -> bool:
    """Online and seen within the resolution: recording this call would change nothing that
    matters (no transition, last_seen_at off by less than the resolution)."""
    return (
        device.online
        and device.last_seen_at is not None
        and device.last_seen_at >= now - _seen_resolution()
    )


def _peek(where: str, params: list[Any], now: datetime, *, lock: bool) -> tuple[Any, ...] | None:
    stamp = _db_datetime(now)
    all_params = [*_windows(now), Direction.OUTBOUND.value, Status.QUEUED.value, stamp, stamp]
    all_params += params
    with connection.cursor() as cursor:
        cursor.execute(_peek_sql(where, lock=lock), all_params)
        row = cursor.fetchone()
    return None if row is None else tuple(row)


def _check_in(where: str, params: list[Any], *, lock: bool = True) -> CheckIn | None:
    now = timezone.now()
    hint = _hint(params)
    if time.monotonic() - hint.written_at < _seen_resolution().total_seconds():
        # Seen a moment ago through this process: read (and lock, as the UPDATE would, when
        # the caller paces a claim) instead of writing, unless the row says the write is due.
        row = _peek(where, params, now, lock=lock and connection.in_atomic_block)
        if row is None:
            return None
        device, sims = _from_row(row)
        if _fresh(device, now):
            return CheckIn(device=device, sims=sims, hint=hint)
    return _record_check_in(where, params, now, hint)


def _record_check_in(where: str, params: list[Any], now: datetime, hint: _Hint) -> CheckIn | None:
    stamp = _db_datetime(now)
    sql = _checkin_sql(where)
    all_params = [stamp, True, stamp, *params, *_windows(now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        row = cursor.fetchone()
    if row is None:
        return None
    hint.written_at = time.monotonic()
    device, sims = _from_row(row)
    came_online = device.online_changed_at == now
    if came_online:
        device_health_changed.send(sender=Device, device=device, online=True)
    return CheckIn(device=device, sims=sims, came_online=came_online, hint=hint)


def idle_poll_check_in(
    *, token: str = "", device_id: str | None = None, secret: str = "", app_token: str = ""
) -> CheckIn | None:
    """A poll's check-in when it can be answered "nothing for you" without a transaction.

    The same credentials as check_in_by_token (token, optionally with the device id),
    check_in_by_secret (secret) or check_in_by_app_token (app_token). One read: the device, and whether any message waits for it.
    Returns None, and the caller takes the full path (check-in and claim in a transaction),
    when the credentials match no device, when a message may be waiting, when the check-in is
    due to be written (offline, or not seen within the resolution) or when this device's last
    poll here handed messages out (a busy queue: the read would only add a statement).
    """
    params: list[Any]
    if token and device_id is None:
        where, params = "token_hash = %s", [hash_secret(token)]
    elif token:
        where, params = "id = %s AND token_hash = %s", [device_id, hash_secret(token)]
    elif secret:
        where, params = "smssync_secret_hash = %s", [hash_secret(secret)]
    elif app_token:
        where, params = "app_token_hash = %s", [hash_secret(app_token)]
    else:
        return None
    hint = _hint(params)
    if hint.had_work:
        return None
    now = timezone.now()
    row = _peek(where, params, now, lock=False)
    if row is None or row[-1]:
        return None
    device, sims = _from_row(row)
    if not _fresh(device, now):
        return None
    return CheckIn(device=device, sims=sims, hint=hint)


def note_poll(checkin: CheckIn, *, handed_out: int) -> None:
    """Remember whether this poll handed messages out (see idle_poll_check_in)."""
    if checkin.hint is not None:
        checkin.hint.had_work = handed_out > 0


def check_in_by_token(
    token: str, *, device_id: str | None = None, lock: bool = True
) -> CheckIn | None:
    """The device holding `token` (and, when given, having id `device_id`), recorded as seen.

    Must run inside the caller's transaction; with `lock` the device row stays locked until it
    ends, which a poll that claims messages needs (its pacing counts must be exact). A phone
    uploading messages or reports claims nothing and passes `lock=False`: holding the row for
    its whole transaction would make every upload of one phone wait for the previous one
    (that serialisation was the bound of the SMSSync ingest benchmark). The check-in UPDATE,
    when due, still locks the row; it runs at most once per SEEN_RESOLUTION per process.
    Lookup is by the SHA-256 of the token in a unique column, so the comparison happens in the
    database index and leaks nothing about how close a guess was.
    """
    if not token:
        return None
    if device_id is None:
        return _check_in("token_hash = %s", [hash_secret(token)], lock=lock)
    return _check_in("id = %s AND token_hash = %s", [device_id, hash_secret(token)], lock=lock)


def check_in_by_app_token(token: str, *, lock: bool = False) -> CheckIn | None:
    """As check_in_by_token, by the SMS Gateway for Android app's device token (every call of
    the app's mobile API is its heartbeat: docs/phones/sms-gateway-app.md)."""
    if not token:
        return None
    return _check_in("app_token_hash = %s", [hash_secret(token)], lock=lock)


def check_in_by_app_device(device_id: str) -> CheckIn | None:
    """An app phone's signed webhook (its signature already verified) as its heartbeat."""
    return _check_in("id = %s AND app_token_hash IS NOT NULL", [device_id], lock=False)


def check_in_by_secret(secret: str, *, lock: bool = True) -> CheckIn | None:
    """As check_in_by_token, by the SMSSync secret."""
    if not secret:
        return None
    return _check_in("smssync_secret_hash = %s", [hash_secret(secret)], lock=lock)


def parse_basic_auth(header: str) -> tuple[str, str] | None:
    """`Basic base64(device_id:token)` → (device_id, token); anything else → None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        return None
    return user, password


def secret_belongs_to(device: Device, secret: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), device.smssync_secret_hash)
