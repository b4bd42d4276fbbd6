"""Drawing helpers for the report's SVG charts: the frame, scales, axes and ticks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from segctl.report.text import esc

if TYPE_CHECKING:
    from segctl.report.figures import RunFigures

#: Series colours (Tableau 10).
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
WIDTH = 920


def svg_chart(
    key: str, height: int, parts: Sequence[str], label: str, *, width: int = WIDTH, extra: str = ""
) -> str:
    wide = " wide" if width == WIDTH else ""
    return (
        f'<svg class="chart{wide}{extra}" id="chart-{key}" role="img" aria-label="{esc(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        + "".join(parts)
        + "</svg>"
    )


def empty_note(message: str) -> str:
    return f'<p class="empty">{esc(message)}</p>'


def bar_extent(values: Sequence[float]) -> float:
    """The scale of a bar chart: the largest value, unless one towers over the rest (then
    1.5x the runner-up, and the outlier's bar is cut at the edge, its number written)."""
    ranked = sorted(values, reverse=True)
    if not ranked or ranked[0] <= 0:
        return 0.01
    if len(ranked) >= 3 and ranked[1] > 0 and ranked[0] > 4 * ranked[1]:
        return 1.5 * ranked[1]
    return ranked[0]


def nice_ticks(hi: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least ``hi`` (integers for small counts)."""
    if hi <= 0:
        return [0, 1]
    raw = hi / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(step, 1)
    top = math.ceil(hi / step) * step
    return [i * step for i in range(round(top / step) + 1)]


def linear_scale(hi: float, at_zero: float, at_hi: float) -> Callable[[float], float]:
    return lambda v: at_zero + (at_hi - at_zero) * (v / hi if hi else 0)


def band_scale(n: int, start: float, end: float) -> Callable[[int], float]:
    step = (end - start) / max(1, n)
    return lambda i: start + step * (i + 0.5)


def y_axis(ticks: Sequence[float], y: Callable[[float], float], x0: int, x1: int) -> list[str]:
    parts = []
    for tick in ticks:
        ty = y(tick)
        parts.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text x="{x0 - 6}" y="{ty + 4:.1f}" text-anchor="end">{_short(tick)}</text>')
    return parts


def x_labels(runs: Sequence[RunFigures], x: Callable[[int], float], y: float) -> list[str]:
    """Date labels under at most ~10 runs, the first and the last always."""
    every = max(1, math.ceil(len(runs) / 10))
    shown = list(range(0, len(runs), every))
    if shown[-1] != len(runs) - 1:
        if len(runs) - 1 - shown[-1] < every * 0.7 and len(shown) > 1:
            shown.pop()  # too close to the last run's label
        shown.append(len(runs) - 1)
    parts = []
    for i in shown:
        run = runs[i]
        parts.append(
            f'<text x="{x(i):.1f}" y="{y + 16:.1f}" text-anchor="middle">'
            f"{esc(run.as_of.strftime('%Y-%m-%d'))}</text>"
        )
        parts.append(
            f'<text x="{x(i):.1f}" y="{y + 29:.1f}" text-anchor="middle">run {run.run_id}</text>'
        )
    return parts


def blue_shade(value: float) -> str:
    """White (0) to dark blue (1)."""
    value = min(1.0, max(0.0, value))
    low, high = (247, 251, 255), (8, 69, 148)
    r, g, b = (round(lo + (hi - lo) * value) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"
