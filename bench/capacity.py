"""The highest inbound rate this machine carries with inbound → webhook p99 within 1 s.

A fixed-rate run (bench/run.py `latency_run`) at a rate the machine cannot sustain shows only
a growing backlog; this steps the rate up from one the machine surely carries, a factor at a
time, until p99 passes the bound, a delivery is lost or the server no longer takes in the
rate it is offered. The figure is the last rate that passed: a lower bound within one factor
of the real capacity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.load import row

BOUND_S = 1.0
# Below this share of the offered rate taken in, the server is refusing or queueing requests.
TAKEN_IN = 0.95

RunAt = Callable[[float, int], dict[str, Any]]


def passes(result: dict[str, Any], rate: float) -> bool:
    return bool(
        result["p99_ms"] <= BOUND_S * 1000
        and result["lost"] == 0
        and result["accepted_rate"] >= TAKEN_IN * rate
    )


def highest_rate(
    run_at: RunAt, *, start: float, factor: float, ceiling: float, target: float
) -> dict[str, Any]:
    """`run_at(rate, id_offset)` runs one step and returns its latency row."""
    steps: list[dict[str, Any]] = []
    passed = 0.0
    rate = start
    while rate <= ceiling:
        result = run_at(rate, 20_000_000 + 1_000_000 * len(steps))
        ok = passes(result, rate)
        steps.append(
            {
                "rate": rate,
                "p99_ms": result["p99_ms"],
                "accepted_rate": result["accepted_rate"],
                "lost": result["lost"],
                "passed": ok,
            }
        )
        if not ok:
            break
        passed = rate
        rate = round(rate * factor)
    return row(passed, "SMS/s", None, None, target, steps=steps, bound_ms=BOUND_S * 1000)


def describe(result: dict[str, Any]) -> str:
    steps = ", ".join(
        f"{s['rate']:g}/s p99 {s['p99_ms']:.0f} ms{'' if s['passed'] else ' ✗'}"
        for s in result["steps"]
    )
    return f"{result['value']:g} SMS/s ({steps})"
