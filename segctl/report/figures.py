"""The report's figures, read through the library: :func:`collect` builds :class:`ReportData`
(sizes, entered and exited per run, growth over a period, overlap at the last run, destination
status) from a project's committed state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from segctl import analytics
from segctl.analytics import OverlapRow, StatsRow
from segctl.errors import SegctlError, UsageError
from segctl.state.queries import run_segments_since
from segctl.timeutil import now_utc

if TYPE_CHECKING:
    from segctl.project import Project

#: The heatmap shows at most this many segments (the largest at the last run).
MAX_HEATMAP = 30


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
        for row in run_segments_since(store, shown[0].run_id):
            if row.run_id in figures:
                figures[row.run_id][row.segment] = SegmentFigures(
                    row.size, row.entered, row.exited, row.first_run
                )
        stats = analytics.stats(store, None, days)
        largest = sorted(stats, key=lambda s: (-s.size, s.segment))[:MAX_HEATMAP]
        overlap_segments = sorted(s.segment for s in largest)
        pairs: list[OverlapRow] = []
        if len(overlap_segments) >= 2:
            pairs, _ = analytics.overlap(store, overlap_segments, runs[-1].run_id)
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
