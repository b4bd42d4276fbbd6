"""The public entry point: a :class:`Project` loads its configuration and definitions and
evaluates, compiles or describes segments. The CLI is a thin shell over this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot

from segctl.config import Config, find_project, load_config
from segctl.definitions.loader import Definitions, load_features, load_segments
from segctl.definitions.model import ListCondition, Schema, segment_conditions
from segctl.definitions.source import Problems
from segctl.definitions.values import ValueProblem, parse_timestamp
from segctl.errors import DefinitionError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from segctl.compiler.plan import PlanContext
    from segctl.engine.duckdb import DuckDBEngine

DIALECTS = ("duckdb", "spark", "postgres", "bigquery", "snowflake", "trino")
RESULT_TABLE = "segctl_result"


def parse_as_of(value: str | datetime | None, config: Config | None = None) -> datetime:
    """An evaluation time as a naive UTC datetime (default: now).

    ISO-8601 text; values without an offset are UTC; a bare date is midnight in the project
    timezone.
    """
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    tz = config.tz if config else UTC
    try:
        return parse_timestamp(value, tz)  # type: ignore[arg-type]
    except ValueProblem as exc:
        raise UsageError(f"--as-of: {exc}") from None


def iso(moment: datetime) -> str:
    """A naive UTC datetime as ISO-8601 with a Z."""
    return moment.replace(tzinfo=None).isoformat() + "Z"


class Project:
    """A segctl project: ``segctl.yaml``, its segments, features and data."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def load(cls, path: str | Path | None = None, *,
             environ: dict[str, str] | None = None) -> Project:
        """Load the project in ``path`` (a folder or its segctl.yaml; default: cwd).

        >>> project = Project.load("examples/demo")  # doctest: +SKIP
        """
        return cls(load_config(find_project(path), environ))

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def engine(self) -> DuckDBEngine:
        from segctl.engine.duckdb import DuckDBEngine

        return DuckDBEngine(self.config)

    @property
    def schema(self) -> Schema:
        return self.engine.schema()

    @cached_property
    def definitions(self) -> Definitions:
        """Segments and features, validated against the data schema (raises DefinitionError
        with every problem found)."""
        schema = self.schema
        problems = Problems()
        features_file = self.config.features_file
        features = load_features(
            features_file,
            self.config.display(features_file) if features_file else "",
            schema, self.config.tz, self.root, problems,
        )
        segments = load_segments(self.config.segments_dir, self.root, schema, features,
                                 self.config.tz, problems)
        problems.raise_if_any()
        return Definitions(segments, features)

    def validate(self, *, check_data: bool = True) -> Definitions:
        """Check config, segments and features against the data schema, and (by default)
        the data itself: unique person ids, parseable timestamps, list files."""
        definitions = self.definitions
        if check_data:
            self.engine.check_persons()
            self.engine.check_timestamps()
            self._register_lists(list(definitions.segments))
        return definitions

    def segment_names(self, names: list[str] | None = None) -> list[str]:
        """The named segments (all by default), checked to exist, in dependency order."""
        segments = self.definitions.segments
        if not names:
            return list(segments)
        from segctl.definitions.source import did_you_mean

        for name in names:
            if name not in segments:
                raise UsageError(f"unknown segment '{name}'{did_you_mean(name, segments)}")
        wanted = set(names)
        return [n for n in segments if n in wanted]

    def _register_lists(self, names: list[str]) -> dict[str, str]:
        lists = [
            c for n in names for dep in self.definitions.dependencies(n)
            for c in segment_conditions(self.definitions.segments[dep])
            if isinstance(c, ListCondition)
        ]
        return self.engine.register_lists(lists)

    def _context(self, names: list[str], as_of: datetime) -> PlanContext:
        from segctl.compiler.plan import PlanContext

        return PlanContext(self.schema, as_of, self.config.timezone, self._register_lists(names))

    def evaluate(self, segments: list[str] | None = None,
                 as_of: str | datetime | None = None) -> EvaluationResult:
        """Compute memberships of the named segments (all by default) at ``as_of``.

        >>> result = project.evaluate(as_of="2026-11-17T00:00:00Z")  # doctest: +SKIP
        >>> result.sizes()  # doctest: +SKIP
        """
        from segctl.compiler.plan import PlanBuilder

        moment = parse_as_of(as_of, self.config)
        names = self.segment_names(segments)
        self.engine.check_persons()
        builder = PlanBuilder(self.definitions, self._context(names, moment))
        self.engine.create_table(RESULT_TABLE, builder.segments_query(names))
        return EvaluationResult(self, moment, names)

    def compile(self, segment: str | None = None, dialect: str = "duckdb",
                as_of: str | datetime | None = None, *, pretty: bool = True) -> str:
        """The SQL for one segment's members, or (no segment) for every segment at once.

        Unsupported constructs for a dialect raise instead of producing wrong SQL.
        """
        from segctl.compiler.plan import PlanBuilder

        if dialect not in DIALECTS:
            raise UsageError(f"unknown dialect '{dialect}' (choose from {', '.join(DIALECTS)})")
        moment = parse_as_of(as_of, self.config)
        names = self.segment_names([segment] if segment else None)
        builder = PlanBuilder(self.definitions, self._context(names, moment))
        query = builder.members_query(segment) if segment else builder.segments_query(names)
        try:
            return query.sql(dialect=dialect, pretty=pretty,
                             unsupported_level=sqlglot.ErrorLevel.RAISE)
        except sqlglot.errors.UnsupportedError as exc:
            raise DefinitionError(f"cannot compile for {dialect}: {exc}") from None

    def features(self, names: list[str] | None = None,
                 as_of: str | datetime | None = None) -> pl.DataFrame:
        """Every named feature (or those named) per person, as a polars DataFrame."""
        from segctl.compiler.plan import PlanBuilder

        features = self.definitions.features
        wanted = names or list(features)
        for name in wanted:
            if name not in features:
                from segctl.definitions.source import did_you_mean

                raise UsageError(f"unknown feature '{name}'{did_you_mean(name, features)}")
        moment = parse_as_of(as_of, self.config)
        self.engine.check_persons()
        builder = PlanBuilder(self.definitions, self._context([], moment))
        return _polars(self.engine.arrow(builder.features_query(wanted)))


@dataclass
class EvaluationResult:
    """Memberships computed at one ``as_of`` (kept in the engine until the project closes)."""

    project: Project
    as_of: datetime
    segments: list[str]

    def members(self, name: str) -> pl.DataFrame:
        """The members of one segment: a DataFrame with a sorted ``person_id`` column."""
        if name not in self.segments:
            raise UsageError(f"segment '{name}' was not evaluated")
        from segctl.engine.duckdb import qident

        table = self.project.engine.arrow(
            f"SELECT person_id FROM {qident(RESULT_TABLE)} WHERE {qident(name)} "
            "ORDER BY person_id"
        )
        return _polars(table)

    def memberships(self) -> pl.DataFrame:
        """Every (segment, person_id) pair, sorted."""
        import polars as pl

        frames = [self.members(n).select(pl.lit(n).alias("segment"), "person_id")
                  for n in self.segments]
        if not frames:
            return pl.DataFrame(schema={"segment": pl.Utf8, "person_id": pl.Utf8})
        return pl.concat(frames)

    def size_counts(self) -> dict[str, int]:
        if not self.segments:
            return {}
        from segctl.engine.duckdb import qident

        counts = ", ".join(f"count(*) FILTER (WHERE {qident(n)})" for n in self.segments)
        row = self.project.engine.execute(f"SELECT {counts} FROM {qident(RESULT_TABLE)}")
        values = row.fetchone() or ()
        return dict(zip(self.segments, (int(v) for v in values), strict=True))

    def sizes(self) -> pl.DataFrame:
        """``segment, size, entered, exited`` per evaluated segment."""
        import polars as pl

        rows = self.size_rows()
        return pl.DataFrame(rows, schema={"segment": pl.Utf8, "size": pl.Int64,
                                          "entered": pl.Int64, "exited": pl.Int64},
                            orient="row")

    def size_rows(self) -> list[tuple[str, int, int, int]]:
        # Until there is committed state, every member counts as entered.
        return [(n, size, size, 0) for n, size in self.size_counts().items()]

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's ``evaluate --format json`` document."""
        return {
            "as_of": iso(self.as_of),
            "segments": [
                {"name": n, "size": s, "entered": e, "exited": x}
                for n, s, e, x in self.size_rows()
            ],
        }


def _polars(table: Any) -> pl.DataFrame:
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
