"""The report's charts, as inline SVG: sizes per segment, entered and exited per run, growth,
the overlap heatmap and deliveries per destination."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from segctl.report.figures import ReportData, RunFigures
from segctl.report.svg import (
    PALETTE,
    WIDTH,
    band_scale,
    bar_extent,
    blue_shade,
    empty_note,
    linear_scale,
    nice_ticks,
    svg_chart,
    x_labels,
    y_axis,
)
from segctl.report.text import esc, pct, stamp

if TYPE_CHECKING:
    from segctl.analytics import OverlapRow, StatsRow

STATUS_COLOURS = {
    "sent": "#2f9e44",
    "pending": "#f08c00",
    "held": "#ffd43b",
    "failed": "#e03131",
    "skipped": "#adb5bd",
}


def sizes_chart(data: ReportData) -> str:
    """Small multiples: a panel per segment with its name, description, size and change, and
    a line of its size at each shown run on a time axis common to all panels.

    One line per panel instead of one chart of many lines: past a handful of segments the lines
    of one chart tangle and their colours repeat. The axis is time, not run number, so that
    runs days apart are drawn days apart.
    """
    names = data.segments
    runs = data.runs
    if not names:
        return empty_note("No segment has been committed.")
    held = {h["segment"] for h in data.status.get("holds", [])}
    x = _time_scale([r.as_of for r in runs], PANEL_LEFT, PANEL_WIDTH - PANEL_RIGHT)
    panels = [
        _size_panel(index, name, runs, x, data.descriptions.get(name, ""), name in held)
        for index, name in enumerate(names)
    ]
    return '<div class="multiples" id="chart-sizes">' + "".join(panels) + "</div>"


PANEL_WIDTH, PANEL_HEIGHT = 280, 104
PANEL_LEFT, PANEL_RIGHT, PANEL_TOP, PANEL_BOTTOM = 40, 12, 8, 22


def _size_panel(
    index: int,
    name: str,
    runs: Sequence[RunFigures],
    x: Callable[[datetime], float],
    description: str,
    held: bool,
) -> str:
    sizes = [(run, run.segments[name].size) for run in runs if name in run.segments]
    hi = max((size for _, size in sizes), default=0)
    ticks = nice_ticks(hi, 2)
    y = linear_scale(ticks[-1], PANEL_HEIGHT - PANEL_BOTTOM, PANEL_TOP)
    right = PANEL_WIDTH - PANEL_RIGHT
    parts = y_axis([0, ticks[-1]], y, PANEL_LEFT, right)
    base = PANEL_HEIGHT - PANEL_BOTTOM
    first, last = runs[0].as_of, runs[-1].as_of
    for when, anchor in ((first, "start"), (last, "end")) if first != last else ((last, "middle"),):
        parts.append(
            f'<text x="{x(when):.1f}" y="{base + 16}" text-anchor="{anchor}">'
            f"{esc(when.strftime('%Y-%m-%d'))}</text>"
        )
    points = [(x(run.as_of), y(size), run, size) for run, size in sizes]
    colour = PALETTE[0]
    parts.append(f'<g data-series="s{index}" class="segment-line">')
    if len(points) > 1:
        parts.append(
            f'<polyline class="series" stroke="{colour}" points="'
            + " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
            + '"/>'
        )
    for px, py, run, size in points:
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}">'
            f"<title>{esc(name)}: {size:,} at run {run.run_id} ({esc(stamp(run.as_of))})</title>"
            "</circle>"
        )
    parts.append("</g>")
    svg = (
        f'<svg class="spark" role="img" aria-label="{esc(name)}: size per run" '
        f'viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" width="{PANEL_WIDTH}" '
        f'height="{PANEL_HEIGHT}">' + "".join(parts) + "</svg>"
    )
    now = f"{sizes[-1][1]:,}" if sizes else "not evaluated"
    change = ""
    if len(sizes) > 1:
        (start_run, start), (_, end) = sizes[0], sizes[-1]
        trend = "up" if end > start else "down" if end < start else "flat"
        since = f"{start:,} at run {start_run.run_id} ({stamp(start_run.as_of)}), {end:,} now"
        shown = _change(start, end)
        change = f'<span class="change {trend}" title="{esc(since)}">{shown}</span>'
    badge = (
        '<span class="badge held" title="exits held by the mass-exit guard: segctl push '
        f'--confirm {esc(name)}">held</span>'
        if held
        else ""
    )
    described = (
        f'<span class="description" title="{esc(description)}">{esc(description)}</span>'
        if description
        else '<span class="description none">no description</span>'
    )
    return (
        f'<figure class="panel" data-segment="{esc(name)}"><figcaption>'
        f'<span class="head"><span class="name" title="{esc(name)}">{esc(name)}</span>{badge}'
        f'<span class="size">{now}</span>{change}</span>{described}</figcaption>{svg}</figure>'
    )


def _change(start: int, end: int) -> str:
    """The change of a size as people read it: ``+8.2%``, ``+131x`` past tenfold, ``new``
    from zero."""
    if start == 0:
        return "new" if end else "0%"
    rate = (end - start) / start
    if rate >= 9:
        return f"{end / start:,.0f}x"
    return pct(rate, sign=True)


def _time_scale(
    moments: Sequence[datetime], start: float, end: float
) -> Callable[[datetime], float]:
    """Positions proportional to time between the first and last moment (one: the middle)."""
    first, last = min(moments), max(moments)
    span = (last - first).total_seconds()
    if span <= 0:
        return lambda _: (start + end) / 2
    return lambda when: start + (end - start) * (when - first).total_seconds() / span


def flows_chart(data: ReportData) -> str:
    """Entered (above) and exited (below) per run, summed over segments.

    A first run's members all count as entered; they are drawn apart (grey) and, when they
    would flatten every other bar, clipped with their number written on top.
    """
    runs = data.runs
    height, left, right, top, bottom = 260, 60, 16, 18, 40
    entered = [sum(s.entered for s in r.segments.values() if not s.first_run) for r in runs]
    initial = [sum(s.entered for s in r.segments.values() if s.first_run) for r in runs]
    exited = [sum(s.exited for s in r.segments.values()) for r in runs]
    real = max([*entered, *exited, 0])
    cap = max(initial, default=0)
    if real and cap > 3 * real:
        cap = math.ceil(real * 1.25)
    up = max([e + min(i, cap) for e, i in zip(entered, initial, strict=True)] + [0])
    down = max([*exited, 0])
    if up + down == 0:
        return svg_chart(
            "flows", 60, ['<text x="0" y="30">No entries or exits in this period.</text>'], ""
        )
    span = height - top - bottom
    scale = span / (up + down)
    zero = top + up * scale
    x = band_scale(len(runs), left, WIDTH - right)
    width = max(2.0, min(40.0, (WIDTH - left - right) / max(1, len(runs)) * 0.6))
    parts = [
        f'<line class="axis" x1="{left}" x2="{WIDTH - right}" y1="{zero:.1f}" y2="{zero:.1f}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">+{up:,}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">-{down:,}</text>',
    ]
    parts += x_labels(runs, x, height - bottom)
    for i, run in enumerate(runs):
        cx = x(i) - width / 2
        tip = _flow_tip(run)
        top_of = zero
        for value, cls in ((entered[i], "entered"), (min(initial[i], cap), "initial")):
            if value:
                h = value * scale
                top_of -= h
                parts.append(
                    f'<rect class="bar {cls}" x="{cx:.1f}" y="{top_of:.1f}" width="{width:.1f}" '
                    f'height="{h:.1f}"><title>{tip}</title></rect>'
                )
        if initial[i] > cap:
            parts.append(
                f'<text class="label" x="{cx:.1f}" y="{top_of - 3:.1f}">{initial[i]:,}</text>'
            )
        if exited[i]:
            parts.append(
                f'<rect class="bar exited" x="{cx:.1f}" y="{zero:.1f}" width="{width:.1f}" '
                f'height="{exited[i] * scale:.1f}"><title>{tip}</title></rect>'
            )
    keys = (
        '<div class="keys"><span style="--c:var(--enter)">entered</span>'
        '<span style="--c:var(--initial)">first run of a segment</span>'
        '<span style="--c:var(--exit)">exited</span></div>'
    )
    return svg_chart("flows", height, parts, "Entered and exited per run") + keys


def _flow_tip(run: RunFigures) -> str:
    lines = [f"run {run.run_id} ({stamp(run.as_of)}, {run.kind})"]
    for name, s in sorted(run.segments.items()):
        if s.entered or s.exited:
            first = " (first run)" if s.first_run else ""
            lines.append(f"{name}: +{s.entered:,} -{s.exited:,}{first}")
    return esc("\n".join(lines))


def growth_chart(stats: Sequence[StatsRow]) -> str:
    """A bar per segment: growth over the period, right for growth, left for shrinkage."""
    rows = sorted(stats, key=lambda s: (-(s.growth_rate or 0), s.segment))
    if not rows:
        return empty_note("No segment in the last run.")
    label, row_h, pad = 150, 20, 60
    height = len(rows) * row_h + 10
    width = WIDTH
    extent = bar_extent([abs(r.growth_rate) for r in rows if r.growth_rate is not None])
    mid = label + pad + (width - label - 2 * pad) / 2
    half = (width - label - 2 * pad) / 2
    parts = [f'<line class="axis" x1="{mid:.1f}" x2="{mid:.1f}" y1="0" y2="{height}"/>']
    for i, row in enumerate(rows):
        cy = i * row_h + 5
        parts.append(
            f'<text class="label" x="{label - 6}" y="{cy + 13}" text-anchor="end">'
            f"{esc(_clip(row.segment, 22))}</text>"
        )
        if row.growth_rate is None:
            parts.append(f'<text x="{mid + 4:.1f}" y="{cy + 13}">n/a</text>')
            continue
        w = min(abs(row.growth_rate), extent) / extent * half  # outliers end at the edge
        x0 = mid if row.growth_rate >= 0 else mid - w
        cls = "entered" if row.growth_rate >= 0 else "exited"
        text_x = mid + w + 4 if row.growth_rate >= 0 else mid - w - 4
        anchor = "start" if row.growth_rate >= 0 else "end"
        parts.append(
            f'<rect class="bar {cls}" x="{x0:.1f}" y="{cy + 2}" width="{max(w, 1):.1f}" '
            f'height="{row_h - 6}"><title>{esc(row.segment)}: {pct(row.growth_rate, sign=True)} '
            f"({row.size:,} members)</title></rect>"
        )
        parts.append(
            f'<text x="{text_x:.1f}" y="{cy + 13}" text-anchor="{anchor}">'
            f"{pct(row.growth_rate, sign=True)}</text>"
        )
    return svg_chart("growth", height, parts, "Growth per segment", width=width)


def heatmap(names: Sequence[str], pairs: Iterable[OverlapRow]) -> str:
    """Pairwise Jaccard index as a matrix of shaded cells."""
    if len(names) < 2:
        return empty_note("Overlap needs at least two segments.")
    index = {n: i for i, n in enumerate(names)}
    cells: dict[tuple[int, int], OverlapRow] = {}
    for pair in pairs:
        a, b = index[pair.a], index[pair.b]
        cells[(a, b)] = cells[(b, a)] = pair
    n = len(names)
    label = 150
    size = max(10, min(34, (WIDTH - 10 - label) // n))
    width = label + n * size + 10
    height = label - 40 + n * size + 10
    origin_y = label - 40
    parts = []
    for i, name in enumerate(names):
        cy = origin_y + i * size + size / 2 + 4
        parts.append(
            f'<text class="label" x="{label - 6}" y="{cy:.1f}" text-anchor="end">'
            f"{esc(_clip(name, 22))}</text>"
        )
        cx = label + i * size + size / 2
        parts.append(
            f'<text class="label" transform="translate({cx:.1f},{origin_y - 6}) rotate(-50)">'
            f"{esc(_clip(name, 16))}</text>"
        )
    for i in range(n):
        for j in range(n):
            x0, y0 = label + j * size, origin_y + i * size
            if i == j:
                value, tip = 1.0, f"{names[i]}"
            else:
                row = cells.get((i, j))
                value = (row.jaccard or 0.0) if row else 0.0
                tip = _overlap_tip(row) if row else f"{names[i]} / {names[j]}"
            shade = blue_shade(value)
            text = ""
            if size >= 26:
                light = " light" if value > 0.55 else ""
                text = (
                    f'<text class="{light.strip()}" x="{x0 + size / 2:.1f}" '
                    f'y="{y0 + size / 2 + 3:.1f}" text-anchor="middle">{value:.2f}</text>'
                )
            parts.append(
                f'<g class="cell"><rect x="{x0}" y="{y0}" width="{size - 1}" height="{size - 1}" '
                f'fill="{shade}"><title>{esc(tip)}</title></rect>{text}</g>'
            )
    return svg_chart("overlap", height, parts, "Overlap heatmap (Jaccard)", width=width)


def _overlap_tip(row: OverlapRow) -> str:
    return (
        f"{row.a} & {row.b}: {row.both:,} in both; jaccard {_num(row.jaccard)}; "
        f"{pct(row.pct_of_a)} of {row.a} ({row.size_a:,}), "
        f"{pct(row.pct_of_b)} of {row.b} ({row.size_b:,})"
    )


def destinations_chart(status: dict[str, Any]) -> str:
    """One stacked bar per destination: its actions and syncs by status."""
    totals: dict[str, dict[str, int]] = {}
    for row in status["deliveries"]:
        by_status = totals.setdefault(str(row["destination"]), {})
        by_status[row["status"]] = by_status.get(row["status"], 0) + int(row["count"])
    if not totals:
        return empty_note("Nothing has been queued for delivery (no actions or audiences ran).")
    label, row_h = 150, 24
    height = len(totals) * row_h + 10
    most = max(sum(v.values()) for v in totals.values())
    span = WIDTH - label - 120
    parts = []
    statuses: list[str] = []
    for i, (name, by_status) in enumerate(sorted(totals.items())):
        cy = i * row_h + 5
        parts.append(
            f'<text class="label" x="{label - 6}" y="{cy + 14}" text-anchor="end">'
            f"{esc(_clip(name, 22))}</text>"
        )
        x0 = float(label)
        for state in sorted(by_status, key=_status_order):
            count = by_status[state]
            if state not in statuses:
                statuses.append(state)
            w = count / most * span
            parts.append(
                f'<rect class="bar status" data-status="{esc(state)}" x="{x0:.1f}" y="{cy + 2}" '
                f'width="{max(w, 1):.1f}" height="{row_h - 8}" '
                f'fill="{STATUS_COLOURS.get(state, "#868e96")}">'
                f"<title>{esc(name)}: {count:,} {esc(state)}</title></rect>"
            )
            x0 += w
        summary = ", ".join(f"{by_status[s]:,} {s}" for s in sorted(by_status, key=_status_order))
        parts.append(f'<text x="{x0 + 6:.1f}" y="{cy + 14}">{esc(summary)}</text>')
    keys = "".join(
        f'<span style="--c:{STATUS_COLOURS.get(s, "#868e96")}">{esc(s)}</span>'
        for s in sorted(statuses, key=_status_order)
    )
    return (
        svg_chart("destinations", height, parts, "Deliveries per destination")
        + f'<div class="keys">{keys}</div>'
    )


def _status_order(state: str) -> tuple[int, str]:
    order = list(STATUS_COLOURS)
    return (order.index(state) if state in order else len(order), state)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
