"""The report's page: one HTML document with the charts, tables, stylesheet and script inline.

The page loads nothing: its Content-Security-Policy forbids every fetch and admits only the
script by hash. Every string that comes from the user or a platform goes through
:func:`~segctl.report.text.esc`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from segctl.report.charts import (
    destinations_chart,
    flows_chart,
    growth_chart,
    heatmap,
    sizes_chart,
)
from segctl.report.figures import MAX_HEATMAP, ReportData
from segctl.report.text import esc, pct, stamp

if TYPE_CHECKING:
    from segctl.analytics import StatsRow


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
        f"<h1>segctl report: {esc(data.title)}</h1>",
        f"<p>Last run {last.run_id} as of {esc(stamp(last.as_of))} &middot; period: the last "
        f"{data.days} day(s), {len(data.runs)} of {data.total_runs} run(s) shown &middot; "
        f"generated {esc(stamp(data.generated_at))}</p>",
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
        f"<footer>segctl {esc(_version())} &middot; this file needs no network to open.</footer>",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>segctl report: {esc(data.title)}</title>",
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
        f'<div class="label">{esc(label)}</div></div>'
        for label, value, cls in cards
    ]
    return '<div class="cards">' + "".join(items) + "</div>"


def _section(title: str, hint: str, content: str, key: str) -> str:
    return (
        f'<section id="{key}"><h2>{esc(title)}</h2><p class="hint">{esc(hint)}</p>'
        f"{content}</section>"
    )


def _stats_table(stats: Sequence[StatsRow]) -> str:
    rows = [
        [
            esc(s.segment),
            f"{s.size:,}",
            f"+{s.entered:,}" if s.entered else "0",
            f"-{s.exited:,}" if s.exited else "0",
            pct(s.growth_rate, sign=True),
            esc(stamp(s.since)),
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
                        esc(str(d["destination"])),
                        esc(d["kind"]),
                        f'<span class="status-{esc(d["status"])}">{esc(d["status"])}</span>',
                        f"{int(d['count']):,}",
                        f'<span class="error">{esc(d["last_error"] or "")}</span>',
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
                        esc(a["destination"]),
                        esc(a["audience"]),
                        esc(stamp(a["last_sync_at"])),
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
                        esc(h["segment"]),
                        str(h["run_id"]),
                        esc(h["reason"]),
                        f"<code>segctl push --confirm {esc(h['segment'])}</code>",
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
                    esc(r["kind"]),
                    esc(stamp(r["as_of"])),
                    esc(stamp(r["finished_at"])),
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
        f'<th class="num">{esc(c)}</th>' if i in right else f"<th>{esc(c)}</th>"
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


def _meter(rate: Any) -> str:
    if rate is None:
        return ""
    share = min(1.0, max(0.0, float(rate)))
    return f'<span class="meter"><i style="width:{share * 100:.0f}%"></i></span>{pct(share)}'


def _count(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _version() -> str:
    from segctl.version import __version__

    return __version__
