"""Geometry for the home page's inline SVG charts (rendered by templates, no chart library)."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.queries import DayCount, DeviceRate

WIDTH, HEIGHT = 900, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 36, 8, 12, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    series: str  # "in" | "out"
    label: str


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


@dataclass(frozen=True)
class DailyChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[DayLabel]
    baseline: float
    total_in: int
    total_out: int

    @property
    def empty(self) -> bool:
        return self.total_in == 0 and self.total_out == 0


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 × 10ⁿ)."""
    if value <= 4:
        return 4
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude * 4 >= value:
                return step * magnitude * 4
        magnitude *= 10


def daily_chart(days: list[DayCount]) -> DailyChart:
    top = _nice_max(max([max(d.inbound, d.outbound) for d in days] or [0]))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    baseline = PAD_TOP + plot_h
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.36
    bars: list[Bar] = []
    labels: list[DayLabel] = []
    for i, d in enumerate(days):
        left = PAD_LEFT + i * slot + slot * 0.12
        for j, (series, value) in enumerate((("in", d.inbound), ("out", d.outbound))):
            h = plot_h * value / top
            bars.append(
                Bar(
                    x=round(left + j * bar_w, 1),
                    y=round(baseline - h, 1),
                    width=round(bar_w, 1),
                    height=round(h, 1),
                    value=value,
                    series=series,
                    label=f"{d.day:%b %-d}: {value} {'received' if series == 'in' else 'sent'}",
                )
            )
        if i % 2 == 0 or len(days) <= 7:
            labels.append(DayLabel(x=round(PAD_LEFT + (i + 0.5) * slot, 1), text=f"{d.day:%-d %b}"))
    ticks = [Tick(y=round(baseline - plot_h * k / 4, 1), value=top * k // 4) for k in range(5)]
    return DailyChart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        ticks=ticks,
        labels=labels,
        baseline=baseline,
        total_in=sum(d.inbound for d in days),
        total_out=sum(d.outbound for d in days),
    )


@dataclass(frozen=True)
class RateRow:
    y: float
    width: float
    name: str
    percent: str
    detail: str


@dataclass(frozen=True)
class RateChart:
    width: int
    height: int
    bar_x: int
    bar_max: int
    rows: list[RateRow]


def rate_chart(rates: list[DeviceRate]) -> RateChart:
    bar_x, bar_max, row_h = 150, 400, 28
    rows = []
    for i, r in enumerate(rates):
        rate = r.rate or 0.0
        rows.append(
            RateRow(
                y=8 + i * row_h,
                width=round(bar_max * rate, 1),
                name=r.name[:22],
                percent=f"{rate * 100:.0f}%",
                detail=f"{r.name}: {r.delivered} of {r.finished} delivered",
            )
        )
    return RateChart(
        width=bar_x + bar_max + 60,
        height=16 + len(rows) * row_h,
        bar_x=bar_x,
        bar_max=bar_max,
        rows=rows,
    )
