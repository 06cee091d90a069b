"""Which status changes are allowed: a status never moves backwards (docs/api.md#message-statuses)."""

from __future__ import annotations

from messaging.models import Status

_RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 1,
    Status.DISPATCHED: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
}
TERMINAL = frozenset({Status.DELIVERED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})
CANCELLABLE = frozenset({Status.SCHEDULED, Status.QUEUED})
# Only what is still on our side can expire or be cancelled; once a phone or provider has the
# message, only its reports decide.
EXPIRABLE = CANCELLABLE


def can_transition(current: str, target: str) -> bool:
    if current == target or current in TERMINAL or current == Status.RECEIVED:
        return False
    if target in (Status.CANCELLED, Status.EXPIRED):
        return current in CANCELLABLE
    if target == Status.FAILED:
        return True
    if target not in _RANK or current not in _RANK:
        return False
    return _RANK[Status(target)] > _RANK[Status(current)]
