"""Load generation and the shape of a figure, shared by the bench's phases (bench/run.py,
bench/app_phones.py)."""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Request = tuple[str, str, bytes | None, dict[str, str]]


@dataclass
class Load:
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def hammer(
    port: int,
    make: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float | None = None,
    total: int | None = None,
    check: Callable[[int, bytes], bool] | None = None,
) -> Load:
    """Closed-loop load: `concurrency` keep-alive connections, each sending its next request as
    soon as the previous answer is read, until `seconds` pass or `total` requests are made."""
    result = Load()
    counter = itertools.count()
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds if seconds else float("inf")

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        ok = errors = 0
        first = ""
        while True:
            i = next(counter)
            if (total is not None and i >= total) or time.perf_counter() >= deadline:
                break
            method, path, body, headers = make(i)
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                good = 200 <= response.status < 300 and (check is None or check(i, data))
                if not good and not first:
                    first = f"{response.status} {data[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                good = False
                first = first or repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - t0)
            if good:
                ok += 1
            else:
                errors += 1
        conn.close()
        with lock:
            result.ok += ok
            result.errors += errors
            result.latencies.extend(mine)
            result.first_error = result.first_error or first

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - start
    return result


def row(
    value: float,
    unit: str,
    baseline: str | None,
    base: float | None,
    target: float | None,
    higher_is_better: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One figure: its value, its ratio to its baseline and whether it met its target."""
    ratio = value / base if base else None
    met = None
    if target is not None:
        measured = ratio if ratio is not None else value
        met = measured >= target if higher_is_better else measured <= target
    return {
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
        "higher_is_better": higher_is_better,
        **extra,
    }
