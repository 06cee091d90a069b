"""Opaque, prefixed, time-sortable ids (`msg_01j…`): ULIDs, so newest-first is id order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def id_before(prefix: str, moment: datetime) -> str:
    """An id that sorts after every id made before `moment` and before every later one (its
    time part alone), so old rows are found through the primary key index."""
    return f"{prefix}_{str(ULID.from_timestamp(moment.timestamp()))[:10].lower()}"


def _make(prefix: str) -> Callable[[], str]:
    def generate() -> str:
        return new_id(prefix)

    generate.__name__ = f"new_{prefix}_id"
    generate.__qualname__ = generate.__name__
    return generate


# Module-level callables so migrations can reference them by import path.
new_msg_id = _make("msg")
new_evt_id = _make("evt")
new_cnv_id = _make("cnv")
new_dev_id = _make("dev")
new_app_id = _make("app")
new_whk_id = _make("whk")
new_dlv_id = _make("dlv")
new_rule_id = _make("rule")
new_key_id = _make("key")
new_req_id = _make("req")
new_mev_id = _make("mev")
