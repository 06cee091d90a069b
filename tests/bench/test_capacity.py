"""The stepped search for the highest rate with inbound → webhook p99 within 1 s."""

from __future__ import annotations

from typing import Any

from bench import capacity


def fake_machine(p99_ms_at: dict[float, float], taken_in: float = 1.0) -> Any:
    offsets: list[int] = []

    def run_at(rate: float, offset: int) -> dict[str, Any]:
        offsets.append(offset)
        return {"p99_ms": p99_ms_at[rate], "lost": 0, "accepted_rate": rate * taken_in}

    run_at.offsets = offsets  # type: ignore[attr-defined]
    return run_at


def test_the_figure_is_the_last_rate_whose_p99_stayed_within_the_bound():
    run_at = fake_machine({20: 80, 28: 120, 39: 400, 55: 2500})

    result = capacity.highest_rate(run_at, start=20, factor=1.4, ceiling=1000, target=100)

    assert result["value"] == 39
    assert [s["rate"] for s in result["steps"]] == [20, 28, 39, 55]
    assert result["met"] is False
    assert len(set(run_at.offsets)) == 4  # each step sends messages of its own


def test_a_rate_the_server_does_not_take_in_fails_whatever_its_p99():
    run_at = fake_machine({20: 50, 28: 50}, taken_in=0.8)

    result = capacity.highest_rate(run_at, start=20, factor=1.4, ceiling=1000, target=100)

    assert result["value"] == 0 and len(result["steps"]) == 1
