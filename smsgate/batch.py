"""Work shared by the messages of one batch (an MSync upload of up to 500 messages).

`pipeline.inbound.receive` runs automation and webhooks once per message; without help each
step repeats per message what is the same for the whole batch (reading the rules and the
subscribed webhook endpoints, publishing to the broker). Inside `batch_scope()` a step can read
such a thing once (`batch_cached`) and hand work to be done once when the batch is complete
(`batch_collect`). Outside a scope both behave exactly as a direct call, so a step works the
same whoever calls it.

The scope lives inside the caller's transaction: nothing read through it outlives the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class _Scope:
    def __init__(self) -> None:
        self.cached: dict[str, Any] = {}
        self.collected: dict[str, tuple[Callable[[list[Any]], None], list[Any]]] = {}


_current: ContextVar[_Scope | None] = ContextVar("smsgate_batch_scope", default=None)


@contextmanager
def batch_scope() -> Iterator[None]:
    """One batch: cached reads are shared, collected work is flushed once on a clean exit.

    On an exception nothing is flushed: the caller's transaction is rolling back, and the
    work (e.g. publishing deliveries) belongs to rows that will not exist. A nested scope is
    part of the outer one.
    """
    if _current.get() is not None:
        yield
        return
    scope = _Scope()
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)
    for flush, items in scope.collected.values():
        flush(items)


def batch_cached(key: str, load: Callable[[], T]) -> T:
    scope = _current.get()
    if scope is None:
        return load()
    if key not in scope.cached:
        scope.cached[key] = load()
    return scope.cached[key]  # type: ignore[no-any-return]


def batch_collect(key: str, items: list[Any], flush: Callable[[list[Any]], None]) -> None:
    """`flush(items)` now, or once with everything collected under `key` at the end of the
    batch."""
    scope = _current.get()
    if scope is None:
        flush(list(items))
        return
    scope.collected.setdefault(key, (flush, []))[1].extend(items)
