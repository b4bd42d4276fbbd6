"""What the library's calls return: an evaluation, a run, a diff, a preview.

Each result has a ``to_dict`` with the SPEC's JSON document where the CLI prints one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from segctl import diff
from segctl.errors import UsageError
from segctl.timeutil import iso

if TYPE_CHECKING:
    import polars as pl

    from segctl.delivery.model import Report
    from segctl.delivery.plan import PlanRow
    from segctl.diff import Change, SegmentDiff
    from segctl.engine.duckdb import DuckDBEngine

__all__ = [
    "DiffResult",
    "EvaluationResult",
    "Preview",
    "RunResult",
    "polars_frame",
    "segment_dicts",
]


@dataclass(frozen=True)
class Preview:
    """What ``segctl preview`` shows: the size and the first members with person columns."""

    name: str
    as_of: datetime
    size: int
    sample: pl.DataFrame


@dataclass
class EvaluationResult:
    """Memberships computed at one ``as_of``, kept in the engine's result table until the
    next evaluation of the same project replaces it."""

    engine: DuckDBEngine
    as_of: datetime
    segments: list[str]
    changes: dict[str, Change]
    #: What the user should know about this evaluation (stale data...); also in to_dict.
    warnings: list[str] = field(default_factory=list)

    def members(self, name: str) -> pl.DataFrame:
        """The members of one segment: a DataFrame with a sorted ``person_id`` column."""
        if name not in self.segments:
            raise UsageError(f"segment '{name}' was not evaluated")
        return polars_frame(self.engine.arrow(diff.result_members_query(self.segments, name)))

    def memberships(self) -> pl.DataFrame:
        """Every (segment, person_id) pair, sorted."""
        return polars_frame(self.engine.arrow(diff.memberships_query(self.segments)))

    def sizes(self) -> pl.DataFrame:
        """``segment, size, entered, exited`` per evaluated segment."""
        import polars as pl

        return pl.DataFrame(
            self.size_rows(),
            schema={
                "segment": pl.Utf8,
                "size": pl.Int64,
                "entered": pl.Int64,
                "exited": pl.Int64,
            },
            orient="row",
        )

    def size_rows(self) -> list[tuple[str, int, int, int]]:
        return [
            (n, c.size, c.entered, c.exited)
            for n, c in ((n, self.changes[n]) for n in self.segments)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's ``evaluate --format json`` document (plus ``warnings``: what the data
        views left out, stale data)."""
        return {
            "as_of": iso(self.as_of),
            "segments": segment_dicts(self.segments, self.changes),
            "warnings": list(self.warnings),  # additive to the SPEC's shape
        }


def segment_dicts(names: list[str], changes: dict[str, Change]) -> list[dict[str, Any]]:
    """``name, size, entered, exited`` of each named segment, as the JSON documents list them."""
    return [
        {
            "name": n,
            "size": changes[n].size,
            "entered": changes[n].entered,
            "exited": changes[n].exited,
        }
        for n in names
    ]


@dataclass
class RunResult:
    """A committed (or, with dry_run, planned) run."""

    run_id: int | None
    as_of: datetime
    changes: dict[str, Change]
    dry_run: bool = False
    deliveries: dict[str, Any] = field(
        default_factory=lambda: {"sent": 0, "failed": 0, "pending": 0, "held": []}
    )
    report: Report | None = None
    plan: list[PlanRow] | None = None
    warnings: list[str] = field(default_factory=list)  # data left out, stale data
    #: Why the run evaluated in full (said on stderr), None when incremental or asked for.
    full_reason: str | None = None
    incremental: bool = False
    persons_evaluated: int = 0  # persons the run evaluated (D for an incremental run)
    #: The last committed run, run again at its as_of: not evaluated, its figures reported
    #: and what was pending delivered.
    again: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's ``run --format json`` document (plus ``warnings``)."""
        document: dict[str, Any] = {
            "run_id": self.run_id,
            "as_of": iso(self.as_of),
            "segments": segment_dicts(sorted(self.changes), self.changes),
            "deliveries": dict(self.deliveries),
            "warnings": list(self.warnings),  # additive to the SPEC's shape
        }
        if self.plan is not None:
            document["plan"] = [row.to_dict() for row in self.plan]
        return document


@dataclass
class DiffResult:
    """Who entered and exited each segment between two committed runs."""

    from_run: int
    to_run: int
    segments: list[SegmentDiff]

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's ``diff --format json`` document."""
        return {
            "from_run": self.from_run,
            "to_run": self.to_run,
            "segments": [
                {"name": d.name, "entered": d.entered, "exited": d.exited} for d in self.segments
            ],
        }

    @property
    def has_changes(self) -> bool:
        return any(d.entered or d.exited for d in self.segments)


def polars_frame(table: Any) -> pl.DataFrame:
    """An Arrow table as a polars DataFrame."""
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
