"""Charts as geometry for inline SVG, computed on the server (no script, no library): a
member's balance over time as a step line, and points issued vs. redeemed per month as paired
bars. Pure functions over integers; the templates draw what these return."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 12, 28  # margins for the axes' labels
TICKS = 4


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    at: int  # pixel on its axis
    label: str


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    zero: int  # the y pixel of value 0
    y_ticks: list[Tick]
    x_ticks: list[Tick]


class LineChart(msgspec.Struct, frozen=True, kw_only=True):
    frame: Frame
    path: str  # an SVG path: a step line through the values
    last: int  # the latest value, for the label


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    series: int  # 0, 1, …: which colour
    x: int
    y: int
    width: int
    height: int
    value: int
    label: str  # what a tooltip says


class BarChart(msgspec.Struct, frozen=True, kw_only=True):
    frame: Frame
    bars: list[Bar]


def nice_step(span: int) -> int:
    """The smallest 1, 2 or 5 × 10^k at least `span` / TICKS (at least 1)."""
    rough = max(-(-span // TICKS), 1)
    magnitude = 1
    while magnitude * 10 <= rough:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= rough:
            return factor * magnitude
    raise AssertionError("unreachable: 10 × magnitude > rough")


class Scale(msgspec.Struct, frozen=True, kw_only=True):
    """Values `low..high` onto pixels `bottom..top` (higher values higher up)."""

    low: int
    high: int
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @classmethod
    def around(cls, values: Sequence[int]) -> Scale:
        low, high = min(0, *values), max(0, *values)
        step = nice_step(high - low)
        low = (low // step) * step
        high = -(-high // step) * step
        return cls(low=low, high=max(high, low + step))

    def y(self, value: int) -> int:
        return self.top + (self.high - value) * (self.bottom - self.top) // (self.high - self.low)

    def ticks(self, label: Callable[[int], str]) -> list[Tick]:
        step = nice_step(self.high - self.low)
        return [Tick(at=self.y(v), label=label(v)) for v in range(self.low, self.high + 1, step)]


def balance_line(
    steps: Sequence[tuple[datetime, int]],
    until: datetime,
    day_label: Callable[[datetime], str],
) -> LineChart | None:
    """The balance after each (instant, balance) step, held until the next one and up to
    `until`; None when there is nothing to draw."""
    if not steps:
        return None
    start = int(steps[0][0].timestamp())
    end = max(int(until.timestamp()), int(steps[-1][0].timestamp()), start + 1)
    scale = Scale.around([balance for _, balance in steps])

    def x(seconds: int) -> int:
        return LEFT + (seconds - start) * (WIDTH - RIGHT - LEFT) // (end - start)

    parts = [f"M {LEFT} {scale.y(0)}"]
    for instant, balance in steps:
        parts.append(f"H {x(int(instant.timestamp()))} V {scale.y(balance)}")
    parts.append(f"H {WIDTH - RIGHT}")
    x_ticks = []
    for i in range(TICKS + 1):
        seconds = start + (end - start) * i // TICKS
        x_ticks.append(
            Tick(at=x(seconds), label=day_label(datetime.fromtimestamp(seconds, until.tzinfo)))
        )
    frame = Frame(zero=scale.y(0), y_ticks=scale.ticks(lambda v: f"{v:,}"), x_ticks=x_ticks)
    return LineChart(frame=frame, path=" ".join(parts), last=steps[-1][1])


def grouped_bars(
    groups: Sequence[tuple[str, Sequence[int]]],
    series_names: Sequence[str],
) -> BarChart:
    """One group of bars per (label, values), one bar per series; negative values hang below
    zero (a month whose refunds outweigh its accruals)."""
    scale = Scale.around([v for _, values in groups for v in values] or [0])
    slot = (WIDTH - RIGHT - LEFT) // max(len(groups), 1)
    per_group = max(len(series_names), 1)
    bar_width = max((slot * 3 // 4) // per_group, 1)
    bars, x_ticks = [], []
    for g, (label, values) in enumerate(groups):
        first = LEFT + g * slot + (slot - bar_width * per_group) // 2
        x_ticks.append(Tick(at=LEFT + g * slot + slot // 2, label=label))
        for s, value in enumerate(values):
            top, bottom = sorted((scale.y(value), scale.y(0)))
            bars.append(
                Bar(
                    series=s,
                    x=first + s * bar_width,
                    y=top,
                    width=bar_width,
                    height=max(bottom - top, 1 if value else 0),
                    value=value,
                    label=f"{label} {series_names[s]}: {value:,}",
                )
            )
    frame = Frame(zero=scale.y(0), y_ticks=scale.ticks(lambda v: f"{v:,}"), x_ticks=x_ticks)
    return BarChart(frame=frame, bars=bars)
