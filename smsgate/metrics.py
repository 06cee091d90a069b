"""The registry behind `GET /metrics` (docs/api.md#health-metrics-and-api-docs), in Prometheus text format.

Apps add what they know with `register_collector`: a callable returning metric families, or a
prometheus_client `Collector`. Collectors read the database at scrape time rather than keeping
in-process counters: the database is the truth, and every web node then reports the same
numbers (a counter in one gunicorn worker is invisible to the others).

    from prometheus_client.core import GaugeMetricFamily
    from smsgate.metrics import register_collector

    def collect_deliveries():
        family = GaugeMetricFamily("smsgate_webhook_deliveries", "…", labels=["status"])
        ...
        yield family

    register_collector(collect_deliveries)   # e.g. from AppConfig.ready()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

CollectFunction = Callable[[], Iterable[Metric]]


class _GuardedCollector(Collector):
    """One app's collector; if it fails (a table missing, a query error), the scrape still
    answers with everyone else's metrics and the failure is logged."""

    def __init__(self, name: str, collect: CollectFunction) -> None:
        self.name = name
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._collect())
        except Exception:
            log.exception("metrics collector %s failed", self.name)
            return iter(())
        return iter(metrics)


# auto_describe stays off: collectors are only called at scrape time, never at registration
# (which runs in AppConfig.ready(), before the database may be reachable).
_registry = CollectorRegistry(auto_describe=False)
_collectors: dict[str, _GuardedCollector] = {}
_lock = threading.Lock()


def _collect_function(collector: Any) -> CollectFunction:
    # prometheus_client's Collector is a Protocol (not runtime-checkable): duck-type it.
    collect = getattr(collector, "collect", None)
    if callable(collect):
        return collect  # type: ignore[no-any-return]
    if callable(collector):
        return collector  # type: ignore[no-any-return]
    raise TypeError(f"{collector!r} is neither a Collector nor a callable")


def _name_of(collector: Any) -> str:
    target = collector if hasattr(collector, "__qualname__") else type(collector)
    return f"{target.__module__}.{target.__qualname__}"


def register_collector(collector: Collector | CollectFunction, *, name: str | None = None) -> None:
    """Add a collector to /metrics. Registering the same name again replaces it (so a module
    imported twice, or reloaded in tests, does not report its metrics twice)."""
    key = name or _name_of(collector)
    guarded = _GuardedCollector(key, _collect_function(collector))
    with _lock:
        previous = _collectors.pop(key, None)
        if previous is not None:
            _registry.unregister(previous)
        _registry.register(guarded)
        _collectors[key] = guarded


def unregister_collector(name: str) -> None:
    with _lock:
        previous = _collectors.pop(name, None)
        if previous is not None:
            _registry.unregister(previous)


def render() -> bytes:
    """The current metrics in the Prometheus text exposition format."""
    return generate_latest(_registry)
