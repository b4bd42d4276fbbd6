"""Figures over committed runs: history, stats, overlap. All computed in the state database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from segctl.errors import UsageError
from segctl.state import StateStore
from segctl.state.queries import Overlap, evaluated_segments, segment_history, unknown_segment


@dataclass(frozen=True)
class HistoryRow:
    run_id: int
    as_of: datetime
    size: int
    entered: int
    exited: int
    definition_changed: bool


def history(store: StateStore, segment: str) -> list[HistoryRow]:
    """Size, entered and exited of a segment at every committed run that evaluated it."""
    rows = segment_history(store, segment)
    if not rows:
        raise unknown_segment(segment, store.known_segments(), "has no committed run yet")
    return [HistoryRow(*row) for row in rows]


@dataclass(frozen=True)
class StatsRow:
    segment: str
    size: int
    entered: int
    exited: int
    growth_rate: float | None  # (size now - size at the period's start) / size at the start
    since: datetime | None  # the run the growth is measured from


def stats(store: StateStore, segments: list[str] | None, days: int) -> list[StatsRow]:
    """Per segment: current size, entered/exited in the last ``days`` days, growth rate,
    all measured from the same run (``since``): the last one before the period, else the
    period's first (whose own members then count as its start, not as entered), so that the
    size then plus those who entered less those who exited is the size now."""
    last = store.last_run()
    if last is None:
        raise UsageError("no committed run yet: run `segctl run` first")
    start = last.as_of - timedelta(days=days)
    names = segments or evaluated_segments(store, last.run_id)
    out = []
    for name in names:
        rows = history(store, name)
        in_period = [r for r in rows if r.as_of > start]
        before = [r for r in rows if r.as_of <= start]
        base = before[-1] if before else (in_period[0] if in_period else None)
        after = [r for r in in_period if base is None or r.run_id > base.run_id]
        current = rows[-1]
        growth = None
        if base is not None and base.size and base is not current:
            growth = (current.size - base.size) / base.size
        out.append(
            StatsRow(
                name,
                current.size,
                sum(r.entered for r in after),
                sum(r.exited for r in after),
                growth,
                base.as_of if base else None,
            )
        )
    return out


@dataclass(frozen=True)
class OverlapRow:
    a: str
    b: str
    size_a: int
    size_b: int
    both: int
    pct_of_a: float | None
    pct_of_b: float | None
    jaccard: float | None


def overlap(
    store: StateStore, segments: list[str], run_id: int | None = None
) -> tuple[list[OverlapRow], list[str]]:
    """Pairwise overlap of segments at a committed run, and the persons in all of them (a
    segment named twice counts once)."""
    segments = list(dict.fromkeys(segments))
    if len(segments) < 2:
        raise UsageError("overlap needs at least two different segments")
    run = store.run(run_id) if run_id is not None else store.last_run()
    if run is None:
        raise UsageError("no committed run yet: run `segctl run` first")
    known = set(evaluated_segments(store, run.run_id))
    for name in segments:
        if name not in known:
            raise unknown_segment(name, known, f"was not part of run {run.run_id}")
    members = Overlap(store, run.run_id, segments)
    sizes, pairs = members.sizes(), members.pairs()
    rows = []
    for i, a in enumerate(segments):
        for b in segments[i + 1 :]:
            both = pairs.get((min(a, b), max(a, b)), 0)
            size_a, size_b = sizes.get(a, 0), sizes.get(b, 0)
            union = size_a + size_b - both
            rows.append(
                OverlapRow(
                    a,
                    b,
                    size_a,
                    size_b,
                    both,
                    _ratio(both, size_a),
                    _ratio(both, size_b),
                    _ratio(both, union),
                )
            )
    in_all = members.in_all()
    return rows, in_all


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def as_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    from dataclasses import asdict

    return [asdict(r) for r in rows]
