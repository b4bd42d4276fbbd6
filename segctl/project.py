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
    def load(
        cls, path: str | Path | None = None, *, environ: dict[str, str] | None = None
    ) -> Project:
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
        return self._load_definitions()

    def _load_definitions(self, extra_files: list[Path] | None = None) -> Definitions:
        schema = self.schema
        problems = Problems()
        features_file = self.config.features_file
        features = load_features(
            features_file,
            self.config.display(features_file) if features_file else "",
            schema,
            self.config.tz,
            self.root,
            problems,
        )
        segments = load_segments(
            self.config.segments_dir,
            self.root,
            schema,
            features,
            self.config.tz,
            problems,
            extra_files=extra_files,
        )
        problems.raise_if_any()
        return Definitions(segments, features)

    def validate(self, *, check_data: bool = True) -> Definitions:
        """Check config, segments and features against the data schema, and (by default)
        the data itself: unique person ids, parseable timestamps, list files."""
        definitions = self.definitions
        if check_data:
            self.engine.check_persons()
            self.engine.check_timestamps()
            self._context(list(definitions.segments), parse_as_of(None))
        return definitions

    def segment_names(self, names: list[str] | None = None) -> list[str]:
        """The named segments (all by default), checked to exist, in dependency order."""
        segments = self.definitions.segments
        if not names:
            return sorted(segments)
        from segctl.definitions.source import did_you_mean

        for name in names:
            if name not in segments:
                raise UsageError(f"unknown segment '{name}'{did_you_mean(name, segments)}")
        return list(dict.fromkeys(names))

    def _context(self, names: list[str], as_of: datetime) -> PlanContext:
        return self._context_for(self.definitions, names, as_of)

    def _context_for(
        self, definitions: Definitions, names: list[str], as_of: datetime
    ) -> PlanContext:
        from segctl.compiler.plan import PlanContext

        lists = [
            c
            for n in names
            for dep in definitions.dependencies(n)
            for c in segment_conditions(definitions.segments[dep])
            if isinstance(c, ListCondition)
        ]
        tables = self.engine.register_lists(lists)
        return PlanContext(self.schema, as_of, self.config.timezone, tables)

    def evaluate(
        self, segments: list[str] | None = None, as_of: str | datetime | None = None
    ) -> EvaluationResult:
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

    def compile(
        self,
        segments: str | list[str] | None = None,
        dialect: str = "duckdb",
        as_of: str | datetime | None = None,
        *,
        pretty: bool = True,
    ) -> str:
        """SQL for one segment's sorted members, or for several (default: all) segments at
        once as ``person_id`` plus one boolean column each.

        Unsupported constructs for a dialect raise instead of producing wrong SQL.

        >>> print(project.compile("power_users", dialect="spark"))  # doctest: +SKIP
        """
        from segctl.compiler.plan import PlanBuilder

        if dialect not in DIALECTS:
            raise UsageError(f"unknown dialect '{dialect}' (choose from {', '.join(DIALECTS)})")
        moment = parse_as_of(as_of, self.config)
        wanted = [segments] if isinstance(segments, str) else segments
        names = self.segment_names(wanted)
        builder = PlanBuilder(self.definitions, self._context(names, moment))
        if wanted and len(wanted) == 1:
            query = builder.members_query(wanted[0])
        else:
            query = builder.segments_query(names)
        try:
            return query.sql(
                dialect=dialect, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE
            )
        except sqlglot.errors.UnsupportedError as exc:
            raise DefinitionError(f"cannot compile for {dialect}: {exc}") from None

    def preview(self, target: str, as_of: str | datetime | None = None, limit: int = 10) -> Preview:
        """Size and sample members of a segment, or of a segment file not yet in the project
        (it may reference project segments). Nothing is saved."""
        from segctl.compiler.plan import PlanBuilder

        moment = parse_as_of(as_of, self.config)
        path = Path(target)
        if target.endswith((".yaml", ".yml")) or path.is_file():
            if not path.is_file():
                raise UsageError(f"no such segment file: {target}")
            from segctl.definitions.source import Problems, load_yaml

            doc = load_yaml(path, target, Problems())
            name = doc.get("name") if isinstance(doc, dict) else None
            definitions = self._load_definitions([path])
            if not isinstance(name, str) or name not in definitions.segments:
                raise DefinitionError(f"{target}: not a segment file (it needs name: and rule:)")
        else:
            definitions, name = self.definitions, target
            self.segment_names([name])
        self.engine.check_persons()
        builder = PlanBuilder(definitions, self._context_for(definitions, [name], moment))
        self.engine.create_table("segctl_preview", builder.members_query(name))
        from segctl.engine.duckdb import qident

        size_row = self.engine.rows("SELECT count(*) FROM segctl_preview")[0]
        columns = ", ".join(f"p.{qident(c)}" for c in self.schema["persons"] if c != "person_id")
        sample = self.engine.arrow(
            f"SELECT m.person_id{', ' + columns if columns else ''} FROM segctl_preview m "
            f"JOIN persons p ON p.person_id = m.person_id ORDER BY m.person_id LIMIT {int(limit)}"
        )
        return Preview(name, moment, int(size_row[0]) if size_row else 0, _polars(sample))

    def features(
        self, names: list[str] | None = None, as_of: str | datetime | None = None
    ) -> pl.DataFrame:
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


@dataclass(frozen=True)
class Preview:
    """What ``segctl preview`` shows: the size and the first members with person columns."""

    name: str
    as_of: datetime
    size: int
    sample: pl.DataFrame


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
            f"SELECT person_id FROM {qident(RESULT_TABLE)} WHERE {qident(name)} ORDER BY person_id"
        )
        return _polars(table)

    def memberships(self) -> pl.DataFrame:
        """Every (segment, person_id) pair, sorted."""
        import polars as pl

        frames = [
            self.members(n).select(pl.lit(n).alias("segment"), "person_id") for n in self.segments
        ]
        if not frames:
            return pl.DataFrame(schema={"segment": pl.Utf8, "person_id": pl.Utf8})
        return pl.concat(frames)

    def size_counts(self) -> dict[str, int]:
        if not self.segments:
            return {}
        from segctl.engine.duckdb import qident

        counts = ", ".join(f"count(*) FILTER (WHERE {qident(n)})" for n in self.segments)
        values = self.project.engine.rows(f"SELECT {counts} FROM {qident(RESULT_TABLE)}")[0]
        return dict(zip(self.segments, (int(v) for v in values), strict=True))

    def sizes(self) -> pl.DataFrame:
        """``segment, size, entered, exited`` per evaluated segment."""
        import polars as pl

        rows = self.size_rows()
        return pl.DataFrame(
            rows,
            schema={"segment": pl.Utf8, "size": pl.Int64, "entered": pl.Int64, "exited": pl.Int64},
            orient="row",
        )

    def size_rows(self) -> list[tuple[str, int, int, int]]:
        # Until there is committed state, every member counts as entered.
        return [(n, size, size, 0) for n, size in self.size_counts().items()]

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's ``evaluate --format json`` document."""
        return {
            "as_of": iso(self.as_of),
            "segments": [
                {"name": n, "size": s, "entered": e, "exited": x} for n, s, e, x in self.size_rows()
            ],
        }


def _polars(table: Any) -> pl.DataFrame:
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
