"""``segctl report``: one self-contained HTML file about the committed runs.

:func:`collect` reads the figures from the state (sizes, entered and exited per run, growth over
a period, overlap at the last run, destination status); :func:`render` turns them into a page
whose charts are SVG drawn here, with the stylesheet and a small script inlined. The page loads
nothing: its Content-Security-Policy forbids every fetch and admits only the script by hash.
Every string that comes from the user or a platform goes through :func:`html.escape`.

>>> html = render(collect(Project.load("."), days=30))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

from segctl.errors import SegctlError, UsageError

if TYPE_CHECKING:
    from segctl.analytics import OverlapRow, StatsRow
    from segctl.project import Project

#: Series colours (Tableau 10); past ten segments the lines are also dashed.
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
DASHES = ("", "6 3", "2 3", "8 3 2 3")
STATUS_COLOURS = {
    "sent": "#2f9e44",
    "pending": "#f08c00",
    "held": "#ffd43b",
    "failed": "#e03131",
    "skipped": "#adb5bd",
}
#: The heatmap shows at most this many segments (the largest at the last run).
MAX_HEATMAP = 30
WIDTH = 920


@dataclass(frozen=True)
class SegmentFigures:
    size: int
    entered: int
    exited: int
    first_run: bool  # the segment's first committed run: everyone "entered"


@dataclass(frozen=True)
class RunFigures:
    run_id: int
    kind: str
    as_of: datetime
    segments: dict[str, SegmentFigures]


@dataclass(frozen=True)
class ReportData:
    """What the report shows; built by :func:`collect`, drawn by :func:`render`."""

    title: str
    generated_at: datetime
    days: int
    runs: list[RunFigures]  # the period's runs, and the last run before it (the baseline)
    total_runs: int
    stats: list[StatsRow]
    overlap_segments: list[str]
    overlap: list[OverlapRow]
    status: dict[str, Any]  # Project.status(), holds limited to segments with exits to hold
    descriptions: dict[str, str] = field(default_factory=dict)  # segment -> its description

    @property
    def segments(self) -> list[str]:
        """Every segment seen in the shown runs, in name order."""
        return sorted({name for run in self.runs for name in run.segments})


def collect(project: Project, *, days: int = 30, wait: float = 10.0) -> ReportData:
    """Read the report's figures from the project's committed state.

    Args:
        project: the project.
        days: the period: runs whose as_of lies within ``days`` days of the last run's (plus
            the run before them, which growth is measured from), as ``segctl stats --days``.
        wait: seconds to wait for a run holding the state.

    Raises:
        UsageError: nothing has been committed yet.
    """
    from segctl import analytics
    from segctl.state import S

    if days < 1:
        raise UsageError(f"--days {days}: the period must be at least one day")
    with project.state(wait=wait) as store:
        runs = store.runs()
        if not runs:
            raise UsageError("no committed run yet: run `segctl run` first")
        start = runs[-1].as_of - timedelta(days=days)
        before = [r for r in runs if r.as_of <= start]
        shown = before[-1:] + [r for r in runs if r.as_of > start]
        figures: dict[int, dict[str, SegmentFigures]] = {r.run_id: {} for r in shown}
        for run_id, segment, size, entered, exited, first in store.rows(
            f"""SELECT run_id, segment, size, entered, exited, first_run
                FROM {S}.run_segments WHERE run_id >= ? ORDER BY run_id, segment""",
            [shown[0].run_id],
        ):
            if run_id in figures:
                figures[run_id][segment] = SegmentFigures(size, entered, exited, first)
        stats = analytics.stats(store, None, days)
        largest = sorted(stats, key=lambda s: (-s.size, s.segment))[:MAX_HEATMAP]
        overlap_segments = sorted(s.segment for s in largest)
        pairs: list[OverlapRow] = []
        if len(overlap_segments) >= 2:
            pairs, _ = analytics.overlap(store, overlap_segments, runs[-1].run_id)
    from segctl.timeutil import now_utc

    status = project.status(wait=wait)
    descriptions: dict[str, str] = {}
    try:
        segments = project.definitions.segments
    except SegctlError:
        segments = None  # the state still reports; without descriptions, and holds as recorded
    if segments is not None:
        descriptions = {n: s.description for n, s in segments.items() if s.description}
        # A segment with no exit actions and no audiences has nothing to hold: a hold recorded
        # for it is no hold, and the report must not raise the alarm over it.
        status["holds"] = [
            h
            for h in status["holds"]
            if h["segment"] not in segments
            or segments[h["segment"]].on_exit
            or segments[h["segment"]].audiences
        ]
    return ReportData(
        title=project.root.resolve().name,
        generated_at=now_utc().replace(microsecond=0),
        days=days,
        runs=[RunFigures(r.run_id, r.kind, r.as_of, figures[r.run_id]) for r in shown],
        total_runs=len(runs),
        stats=stats,
        overlap_segments=overlap_segments,
        overlap=pairs,
        status=status,
        descriptions=descriptions,
    )


# ---- the page ---------------------------------------------------------------------------


@cache
def _asset(name: str) -> str:
    return (resources.files("segctl") / "report_assets" / name).read_text(encoding="utf-8")


def render(data: ReportData) -> str:
    """The report as one HTML document (no external resources)."""
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    last = data.runs[-1]
    body = [
        "<header>",
        f"<h1>segctl report: {_e(data.title)}</h1>",
        f"<p>Last run {last.run_id} as of {_e(_when(last.as_of))} &middot; period: the last "
        f"{data.days} day(s), {len(data.runs)} of {data.total_runs} run(s) shown &middot; "
        f"generated {_e(_when(data.generated_at))}</p>",
        "</header>",
        _cards(data),
        _section(
            "Segment sizes",
            "Members at each committed run, one panel per segment on a common time axis (each "
            "with its own scale: read the shape, then the numbers). Points are runs; hover one "
            "for its figures.",
            sizes_chart(data),
            "sizes",
        ),
        _section(
            "Entered and exited per run",
            "All segments together: entries above the line, exits below. Grey: the members "
            "of a segment's first run (everyone counts as entered then).",
            flows_chart(data),
            "flows",
        ),
        _section(
            f"Growth over {data.days} day(s)",
            "Size now against the size at the period's start (segctl stats).",
            growth_chart(data.stats) + _stats_table(data.stats),
            "growth",
        ),
        _section(
            "Overlap",
            f"Jaccard index (shared members / members of either) at run {last.run_id}"
            + (f"; the {MAX_HEATMAP} largest segments." if len(data.stats) > MAX_HEATMAP else "."),
            heatmap(data.overlap_segments, data.overlap),
            "overlap",
        ),
        _section(
            "Destinations",
            "Actions and audience syncs by status; audiences' last sync and the figures the "
            "platform returned (segctl status).",
            destinations_chart(data.status) + _status_tables(data.status),
            "destinations",
        ),
        f"<footer>segctl {_e(_version())} &middot; this file needs no network to open.</footer>",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_e(policy)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>segctl report: {_e(data.title)}</title>",
            f"<style>\n{_asset('report.css')}</style>",
            "</head>",
            "<body>",
            *body,
            f"<script>{script}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _cards(data: ReportData) -> str:
    last = data.runs[-1]
    counts: dict[str, int] = {}
    for row in data.status["deliveries"]:
        counts[row["status"]] = counts.get(row["status"], 0) + int(row["count"])
    cards = [
        ("segments", f"{len(last.segments):,}", ""),
        ("memberships", f"{sum(s.size for s in last.segments.values()):,}", ""),
        ("entered (last run)", f"{sum(s.entered for s in last.segments.values()):,}", ""),
        ("exited (last run)", f"{sum(s.exited for s in last.segments.values()):,}", ""),
        ("pending deliveries", f"{counts.get('pending', 0):,}", "warn"),
        ("failed deliveries", f"{counts.get('failed', 0):,}", "bad"),
    ]
    if data.status["holds"]:
        cards.append(("held segments", f"{len(data.status['holds']):,}", "warn"))
    items = [
        f'<div class="card {cls if value != "0" else ""}"><div class="value">{value}</div>'
        f'<div class="label">{_e(label)}</div></div>'
        for label, value, cls in cards
    ]
    return '<div class="cards">' + "".join(items) + "</div>"


def _section(title: str, hint: str, content: str, key: str) -> str:
    return (
        f'<section id="{key}"><h2>{_e(title)}</h2><p class="hint">{_e(hint)}</p>{content}</section>'
    )


# ---- charts -----------------------------------------------------------------------------


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
        return _empty("No segment has been committed.")
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
    ticks = _ticks(hi, 2)
    y = _linear(ticks[-1], PANEL_HEIGHT - PANEL_BOTTOM, PANEL_TOP)
    right = PANEL_WIDTH - PANEL_RIGHT
    parts = _y_axis([0, ticks[-1]], y, PANEL_LEFT, right)
    base = PANEL_HEIGHT - PANEL_BOTTOM
    first, last = runs[0].as_of, runs[-1].as_of
    for when, anchor in ((first, "start"), (last, "end")) if first != last else ((last, "middle"),):
        parts.append(
            f'<text x="{x(when):.1f}" y="{base + 16}" text-anchor="{anchor}">'
            f"{_e(when.strftime('%Y-%m-%d'))}</text>"
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
            f"<title>{_e(name)}: {size:,} at run {run.run_id} ({_e(_when(run.as_of))})</title>"
            "</circle>"
        )
    parts.append("</g>")
    svg = (
        f'<svg class="spark" role="img" aria-label="{_e(name)}: size per run" '
        f'viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" width="{PANEL_WIDTH}" '
        f'height="{PANEL_HEIGHT}">' + "".join(parts) + "</svg>"
    )
    now = f"{sizes[-1][1]:,}" if sizes else "not evaluated"
    change = ""
    if len(sizes) > 1:
        (start_run, start), (_, end) = sizes[0], sizes[-1]
        trend = "up" if end > start else "down" if end < start else "flat"
        since = f"{start:,} at run {start_run.run_id} ({_when(start_run.as_of)}), {end:,} now"
        shown = _change(start, end)
        change = f'<span class="change {trend}" title="{_e(since)}">{shown}</span>'
    badge = (
        '<span class="badge held" title="exits held by the mass-exit guard: segctl push '
        f'--confirm {_e(name)}">held</span>'
        if held
        else ""
    )
    described = (
        f'<span class="description" title="{_e(description)}">{_e(description)}</span>'
        if description
        else '<span class="description none">no description</span>'
    )
    return (
        f'<figure class="panel" data-segment="{_e(name)}"><figcaption>'
        f'<span class="head"><span class="name" title="{_e(name)}">{_e(name)}</span>{badge}'
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
    return _pct(rate, sign=True)


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
        return _svg(
            "flows", 60, ['<text x="0" y="30">No entries or exits in this period.</text>'], ""
        )
    span = height - top - bottom
    scale = span / (up + down)
    zero = top + up * scale
    x = _band(len(runs), left, WIDTH - right)
    width = max(2.0, min(40.0, (WIDTH - left - right) / max(1, len(runs)) * 0.6))
    parts = [
        f'<line class="axis" x1="{left}" x2="{WIDTH - right}" y1="{zero:.1f}" y2="{zero:.1f}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">+{up:,}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">-{down:,}</text>',
    ]
    parts += _x_labels(runs, x, height - bottom)
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
    return _svg("flows", height, parts, "Entered and exited per run") + keys


def _flow_tip(run: RunFigures) -> str:
    lines = [f"run {run.run_id} ({_when(run.as_of)}, {run.kind})"]
    for name, s in sorted(run.segments.items()):
        if s.entered or s.exited:
            first = " (first run)" if s.first_run else ""
            lines.append(f"{name}: +{s.entered:,} -{s.exited:,}{first}")
    return _e("\n".join(lines))


def growth_chart(stats: Sequence[StatsRow]) -> str:
    """A bar per segment: growth over the period, right for growth, left for shrinkage."""
    rows = sorted(stats, key=lambda s: (-(s.growth_rate or 0), s.segment))
    if not rows:
        return _empty("No segment in the last run.")
    label, row_h, pad = 150, 20, 60
    height = len(rows) * row_h + 10
    width = WIDTH
    extent = _extent([abs(r.growth_rate) for r in rows if r.growth_rate is not None])
    mid = label + pad + (width - label - 2 * pad) / 2
    half = (width - label - 2 * pad) / 2
    parts = [f'<line class="axis" x1="{mid:.1f}" x2="{mid:.1f}" y1="0" y2="{height}"/>']
    for i, row in enumerate(rows):
        cy = i * row_h + 5
        parts.append(
            f'<text class="label" x="{label - 6}" y="{cy + 13}" text-anchor="end">'
            f"{_e(_clip(row.segment, 22))}</text>"
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
            f'height="{row_h - 6}"><title>{_e(row.segment)}: {_pct(row.growth_rate, sign=True)} '
            f"({row.size:,} members)</title></rect>"
        )
        parts.append(
            f'<text x="{text_x:.1f}" y="{cy + 13}" text-anchor="{anchor}">'
            f"{_pct(row.growth_rate, sign=True)}</text>"
        )
    return _svg("growth", height, parts, "Growth per segment", width=width)


def heatmap(names: Sequence[str], pairs: Iterable[OverlapRow]) -> str:
    """Pairwise Jaccard index as a matrix of shaded cells."""
    if len(names) < 2:
        return _empty("Overlap needs at least two segments.")
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
            f"{_e(_clip(name, 22))}</text>"
        )
        cx = label + i * size + size / 2
        parts.append(
            f'<text class="label" transform="translate({cx:.1f},{origin_y - 6}) rotate(-50)">'
            f"{_e(_clip(name, 16))}</text>"
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
            shade = _blue(value)
            text = ""
            if size >= 26:
                light = " light" if value > 0.55 else ""
                text = (
                    f'<text class="{light.strip()}" x="{x0 + size / 2:.1f}" '
                    f'y="{y0 + size / 2 + 3:.1f}" text-anchor="middle">{value:.2f}</text>'
                )
            parts.append(
                f'<g class="cell"><rect x="{x0}" y="{y0}" width="{size - 1}" height="{size - 1}" '
                f'fill="{shade}"><title>{_e(tip)}</title></rect>{text}</g>'
            )
    return _svg("overlap", height, parts, "Overlap heatmap (Jaccard)", width=width)


def _overlap_tip(row: OverlapRow) -> str:
    return (
        f"{row.a} & {row.b}: {row.both:,} in both; jaccard {_num(row.jaccard)}; "
        f"{_pct(row.pct_of_a)} of {row.a} ({row.size_a:,}), "
        f"{_pct(row.pct_of_b)} of {row.b} ({row.size_b:,})"
    )


def destinations_chart(status: dict[str, Any]) -> str:
    """One stacked bar per destination: its actions and syncs by status."""
    totals: dict[str, dict[str, int]] = {}
    for row in status["deliveries"]:
        by_status = totals.setdefault(str(row["destination"]), {})
        by_status[row["status"]] = by_status.get(row["status"], 0) + int(row["count"])
    if not totals:
        return _empty("Nothing has been queued for delivery (no actions or audiences ran).")
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
            f"{_e(_clip(name, 22))}</text>"
        )
        x0 = float(label)
        for state in sorted(by_status, key=_status_order):
            count = by_status[state]
            if state not in statuses:
                statuses.append(state)
            w = count / most * span
            parts.append(
                f'<rect class="bar status" data-status="{_e(state)}" x="{x0:.1f}" y="{cy + 2}" '
                f'width="{max(w, 1):.1f}" height="{row_h - 8}" '
                f'fill="{STATUS_COLOURS.get(state, "#868e96")}">'
                f"<title>{_e(name)}: {count:,} {_e(state)}</title></rect>"
            )
            x0 += w
        summary = ", ".join(f"{by_status[s]:,} {s}" for s in sorted(by_status, key=_status_order))
        parts.append(f'<text x="{x0 + 6:.1f}" y="{cy + 14}">{_e(summary)}</text>')
    keys = "".join(
        f'<span style="--c:{STATUS_COLOURS.get(s, "#868e96")}">{_e(s)}</span>'
        for s in sorted(statuses, key=_status_order)
    )
    return (
        _svg("destinations", height, parts, "Deliveries per destination")
        + f'<div class="keys">{keys}</div>'
    )


def _status_order(state: str) -> tuple[int, str]:
    order = list(STATUS_COLOURS)
    return (order.index(state) if state in order else len(order), state)


# ---- tables -----------------------------------------------------------------------------


def _stats_table(stats: Sequence[StatsRow]) -> str:
    rows = [
        [
            _e(s.segment),
            f"{s.size:,}",
            f"+{s.entered:,}" if s.entered else "0",
            f"-{s.exited:,}" if s.exited else "0",
            _pct(s.growth_rate, sign=True),
            _e(_when(s.since)),
        ]
        for s in stats
    ]
    return _table(
        ["segment", "size", "entered", "exited", "growth", "since"], rows, numeric=(1, 2, 3, 4)
    )


def _status_tables(status: dict[str, Any]) -> str:
    out = []
    problems = [d for d in status["deliveries"] if d["status"] != "sent"]
    if problems:
        out.append("<h3>Not delivered</h3>")
        out.append(
            _table(
                ["destination", "kind", "status", "count", "last error"],
                [
                    [
                        _e(str(d["destination"])),
                        _e(d["kind"]),
                        f'<span class="status-{_e(d["status"])}">{_e(d["status"])}</span>',
                        f"{int(d['count']):,}",
                        f'<span class="error">{_e(d["last_error"] or "")}</span>',
                    ]
                    for d in problems
                ],
                numeric=(3,),
            )
        )
    if status["audiences"]:
        out.append("<h3>Audiences</h3>")
        out.append(
            _table(
                ["destination", "audience", "last sync", "synced", "received", "invalid", "match"],
                [
                    [
                        _e(a["destination"]),
                        _e(a["audience"]),
                        _e(_when(a["last_sync_at"])),
                        f"{int(a['synced_members'] or 0):,}",
                        _count(a["received"]),
                        _count(a["invalid"]),
                        _meter(a["match_rate"]),
                    ]
                    for a in status["audiences"]
                ],
                numeric=(3, 4, 5),
            )
        )
    if status["holds"]:
        out.append("<h3>Held exits</h3>")
        out.append(
            _table(
                ["segment", "run", "reason", "release with"],
                [
                    [
                        _e(h["segment"]),
                        str(h["run_id"]),
                        _e(h["reason"]),
                        f"<code>segctl push --confirm {_e(h['segment'])}</code>",
                    ]
                    for h in status["holds"]
                ],
            )
        )
    out.append("<h3>Last runs</h3>")
    out.append(
        _table(
            ["run", "kind", "as of", "finished"],
            [
                [
                    str(r["run_id"]),
                    _e(r["kind"]),
                    _e(_when(r["as_of"])),
                    _e(_when(r["finished_at"])),
                ]
                for r in status["runs"]
            ],
        )
    )
    return "".join(out)


def _table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], numeric: Iterable[int] = ()
) -> str:
    """An HTML table; ``rows`` hold HTML already escaped by the caller."""
    right = set(numeric)
    head = "".join(
        f'<th class="num">{_e(c)}</th>' if i in right else f"<th>{_e(c)}</th>"
        for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{v}</td>' if i in right else f"<td>{v}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---- drawing helpers --------------------------------------------------------------------


def _svg(
    key: str, height: int, parts: Sequence[str], label: str, *, width: int = WIDTH, extra: str = ""
) -> str:
    wide = " wide" if width == WIDTH else ""
    return (
        f'<svg class="chart{wide}{extra}" id="chart-{key}" role="img" aria-label="{_e(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        + "".join(parts)
        + "</svg>"
    )


def _empty(message: str) -> str:
    return f'<p class="empty">{_e(message)}</p>'


def _extent(values: Sequence[float]) -> float:
    """The scale of a bar chart: the largest value, unless one towers over the rest (then
    1.5x the runner-up, and the outlier's bar is cut at the edge, its number written)."""
    ranked = sorted(values, reverse=True)
    if not ranked or ranked[0] <= 0:
        return 0.01
    if len(ranked) >= 3 and ranked[1] > 0 and ranked[0] > 4 * ranked[1]:
        return 1.5 * ranked[1]
    return ranked[0]


def _ticks(hi: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least ``hi`` (integers for small counts)."""
    if hi <= 0:
        return [0, 1]
    raw = hi / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(step, 1)
    top = math.ceil(hi / step) * step
    return [i * step for i in range(round(top / step) + 1)]


def _linear(hi: float, at_zero: float, at_hi: float) -> Callable[[float], float]:
    return lambda v: at_zero + (at_hi - at_zero) * (v / hi if hi else 0)


def _band(n: int, start: float, end: float) -> Callable[[int], float]:
    step = (end - start) / max(1, n)
    return lambda i: start + step * (i + 0.5)


def _y_axis(ticks: Sequence[float], y: Callable[[float], float], x0: int, x1: int) -> list[str]:
    parts = []
    for tick in ticks:
        ty = y(tick)
        parts.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text x="{x0 - 6}" y="{ty + 4:.1f}" text-anchor="end">{_short(tick)}</text>')
    return parts


def _x_labels(runs: Sequence[RunFigures], x: Callable[[int], float], y: float) -> list[str]:
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
            f"{_e(run.as_of.strftime('%Y-%m-%d'))}</text>"
        )
        parts.append(
            f'<text x="{x(i):.1f}" y="{y + 29:.1f}" text-anchor="middle">run {run.run_id}</text>'
        )
    return parts


def _style(index: int) -> tuple[str, str]:
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


def _blue(value: float) -> str:
    """White (0) to dark blue (1)."""
    value = min(1.0, max(0.0, value))
    low, high = (247, 251, 255), (8, 69, 148)
    r, g, b = (round(lo + (hi - lo) * value) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _meter(rate: Any) -> str:
    if rate is None:
        return ""
    share = min(1.0, max(0.0, float(rate)))
    return f'<span class="meter"><i style="width:{share * 100:.0f}%"></i></span>{_pct(share)}'


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%MZ") if moment else ""


def _pct(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.1f}%" if sign else f"{value * 100:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _count(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _version() -> str:
    from segctl.version import __version__

    return __version__
