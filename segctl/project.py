"""The public entry point: a :class:`Project` loads its configuration and definitions and
evaluates, compiles or describes segments. The CLI is a thin shell over this class.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot

from segctl import packed, progress, tempnames
from segctl.config import Config, find_project, load_config
from segctl.definitions.custom_events import load_custom_events
from segctl.definitions.loader import Definitions, load_features, load_segments
from segctl.definitions.model import ListCondition, Schema, segment_conditions
from segctl.definitions.source import Problems
from segctl.errors import DataError, DefinitionError, UsageError
from segctl.faults import crash_point
from segctl.timeutil import iso, now_utc, parse_as_of

if TYPE_CHECKING:
    import httpx
    import polars as pl

    from segctl.analytics import HistoryRow, OverlapRow, StatsRow
    from segctl.compiler import PlanContext
    from segctl.delivery.model import Report
    from segctl.delivery.plan import PlanRow
    from segctl.delivery.worker import Worker
    from segctl.diff import Change, SegmentDiff
    from segctl.engine.duckdb import DuckDBEngine
    from segctl.explain import Explanation
    from segctl.sources.inspect import SourceReport
    from segctl.sources.property_types import PropertyTypes
    from segctl.state import StateStore
    from segctl.verify import VerifyResult

DIALECTS = ("duckdb", "spark", "postgres", "bigquery", "snowflake", "trino")
# Temp-object names live in segctl.tempnames; these two are re-exported for their readers.
RESULT_TABLE = tempnames.RESULT_TABLE
MEMBERS_VIEW = tempnames.MEMBERS_VIEW


class Project:
    """A segctl project: ``segctl.yaml``, its segments, features and data."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._data_warnings: list[str] | None = None
        #: While an incremental run evaluates: the table of the persons it re-evaluates.
        self._persons_filter: str | None = None

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        environ: dict[str, str] | None = None,
        engine: str | None = None,
        spark_master: str | None = None,
    ) -> Project:
        """Load the project in ``path`` (a folder or its segctl.yaml; default: cwd).

        ``engine`` ("duckdb" or "spark") and ``spark_master`` override segctl.yaml's
        ``engine:`` settings.

        >>> project = Project.load("examples/demo")  # doctest: +SKIP
        >>> project = Project.load("examples/demo", engine="spark")  # doctest: +SKIP
        """
        config = load_config(find_project(path), environ)
        if engine is not None or spark_master is not None:
            from dataclasses import replace

            settings = replace(
                config.engine,
                type=engine or config.engine.type,
                spark_master=spark_master or config.engine.spark_master,
            )
            if settings.type not in ("duckdb", "spark"):
                raise UsageError(f"unknown engine '{settings.type}' (choose duckdb or spark)")
            if spark_master and settings.type != "spark":
                raise UsageError("--spark-master needs --engine spark")
            config = replace(config, engine=settings)
        return cls(config)

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def engine(self) -> DuckDBEngine:
        """DuckDB on this machine; with ``engine.type: spark`` a SparkEngine, whose plans run
        on Spark while the result, state and deliveries stay in this DuckDB."""
        if self.config.engine.type == "spark":
            from segctl.engine.spark import SparkEngine

            return SparkEngine(self.config)
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

    def _load_definitions(
        self,
        extra_files: list[Path] | None = None,
        *,
        only: list[Path] | None = None,
        features_needed: bool = True,
    ) -> Definitions:
        """Segments and features; with ``only``, just those segment files (and the extra
        ones), and features.yaml's problems only when ``features_needed`` (segctl.drafts)."""
        schema = self.schema
        problems = Problems()
        features_file = self.config.features_file
        display = self.config.display(features_file) if features_file else ""
        features_problems = problems if features_needed else Problems()
        custom_events = load_custom_events(
            features_file,
            display,
            schema,
            self.config.tz,
            self.root,
            features_problems,
            properties=self.property_types,
        )
        features = load_features(
            features_file,
            display,
            schema,
            self.config.tz,
            self.root,
            features_problems,
            properties=self.property_types,
            custom_events=custom_events,
        )
        segments = load_segments(
            self.config.segments_dir,
            self.root,
            schema,
            features,
            self.config.tz,
            problems,
            extra_files=extra_files,
            destinations=self.config.destinations,
            properties=self.property_types,
            custom_events=custom_events,
            files=only,
        )
        problems.raise_if_any()
        return Definitions(segments, features, problems.warnings)

    @cached_property
    def property_types(self) -> PropertyTypes:
        """Nested property names (``properties.plan``) resolved against the engine's column
        types, with a sample of the JSON keys for warnings."""
        from segctl.sources.property_types import PropertyTypes

        return PropertyTypes(self.engine.column_types(), self.engine.sample_rows)

    def validate(self, *, check_data: bool = True) -> Definitions:
        """Check config, segments and features against the data schema, and (by default)
        the data itself: unique person ids, parseable timestamps, list files."""
        definitions = self.definitions
        if check_data:
            self.engine.check_persons()
            self.engine.check_timestamps()
            self.plan_context(list(definitions.segments), parse_as_of(None))
            self.reachable_condition()  # the consent column and the suppression file
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

    def plan_context(
        self,
        names: list[str],
        as_of: datetime,
        dialect: str = "duckdb",
        definitions: Definitions | None = None,
    ) -> PlanContext:
        """The compiler's context for a plan of ``names`` (of the project's definitions, or of
        ``definitions``) at ``as_of`` in ``dialect``: registers the list files they read and
        the persons view at as_of in the engine."""
        from segctl.compiler import PlanContext

        if definitions is None:
            definitions = self.definitions
        lists = [
            c
            for n in names
            for dep in definitions.dependencies(n)
            for c in segment_conditions(definitions.segments[dep])
            if isinstance(c, ListCondition)
        ]
        tables = self.engine.register_lists(lists)
        # Persons with latest_by: each one's latest row at or before as_of.
        self.engine.prepare(f"TIMESTAMP '{as_of.isoformat(sep=' ')}'")
        raw = self.engine.raw_timestamp if dialect == "duckdb" else None
        spillable = self.config.engine.memory_limit is not None
        return PlanContext(
            self.schema,
            as_of,
            self.config.timezone,
            tables,
            dialect,
            raw,
            spillable,
            self.property_types.column_types,
            self._persons_filter,
        )

    def evaluate(
        self,
        segments: list[str] | None = None,
        as_of: str | datetime | None = None,
        *,
        wait: float = 10.0,
    ) -> EvaluationResult:
        """Compute memberships of the named segments (all by default) at ``as_of``, with
        entered/exited counted against the last committed run. Changes no state.

        >>> result = project.evaluate(as_of="2026-11-17T00:00:00Z")  # doctest: +SKIP
        >>> result.sizes()  # doctest: +SKIP
        """
        from segctl import diff
        from segctl.state import StateStore

        moment = parse_as_of(as_of, self.config.tz)
        names = self.segment_names(segments)
        self._evaluate(names, moment)
        folder = self.config.state_dir
        if StateStore.exists(folder):
            with StateStore.open(folder, con=self.engine.con, wait=wait) as store:
                changes = diff.compute(self.engine.con, store, names, RESULT_TABLE)
        else:
            changes = diff.compute(self.engine.con, None, names, RESULT_TABLE)
        warnings = self.data_warnings() + self.freshness_warnings(moment)
        return EvaluationResult(self, moment, names, changes, warnings)

    def _evaluate(self, names: list[str], moment: datetime) -> None:
        """Evaluate into the engine's result table."""
        from segctl.compiler import Plan

        progress.phase(f"Evaluating {len(names)} segment(s) as of {iso(moment)}")
        self.engine.check_persons()
        context = self.plan_context(names, moment, self.config.engine.type)
        builder = Plan(self.definitions, context)
        words = packed.pack_as([packed.quote(n) for n in names])
        self.engine.create_table(
            RESULT_TABLE, builder.segments_query(names), ", ".join(["person_id", *words])
        )
        # The memberships as one boolean column per segment, for readers of a few segments
        # (DuckDB computes only the columns a query reads).
        self.engine.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {MEMBERS_VIEW} AS SELECT person_id, "
            f"{', '.join(packed.flags(names))} FROM {RESULT_TABLE}"
        )

    def run(
        self,
        as_of: str | datetime | None = None,
        *,
        dry_run: bool = False,
        fire_initial: bool = False,
        wait: float = 0.0,
        client: httpx.Client | None = None,
        full: bool = False,
    ) -> RunResult:
        """Evaluate every segment, diff against the last committed snapshot and commit the
        snapshot, history and queued actions in one transaction (nothing with ``dry_run``).

        ``full`` asks for an evaluation from scratch over every input file; otherwise a run
        re-evaluates only the persons whose memberships can have changed since the last run
        when it can, and falls back to a full evaluation (``RunResult.full_reason`` says why)
        when it cannot (docs/realtime.md, "Incremental runs").

        >>> project.run(as_of="2026-11-17T00:00:00Z").run_id  # doctest: +SKIP
        1
        """
        from segctl.lock import state_lock

        moment = parse_as_of(as_of, self.config.tz)
        names = self.segment_names()
        started = now_utc()
        folder = self.config.state_dir
        with state_lock(folder, wait=wait, command="segctl run"):
            result = self._commit(
                names,
                moment,
                started,
                kind="run",
                dry_run=dry_run,
                fire_initial=fire_initial,
                client=client,
                full=full,
            )
        result.warnings = self.data_warnings() + self.freshness_warnings(moment)
        return result

    def _evaluated_count(self, decision: Any) -> int:
        """How many persons the run evaluated: D for an incremental run, else all in the
        result table."""
        if not decision.full:
            return int(decision.persons)
        return int(self.engine.rows(f"SELECT count(*) FROM {RESULT_TABLE}")[0][0])

    def inspect(self) -> list[SourceReport]:
        """What segctl sees in each data source: files, rows, time range, persons, events with
        no person, and the property keys found (with nested ones, as dotted names).

        >>> for source in project.inspect(): print(source.name, source.rows)  # doctest: +SKIP
        """
        from segctl.sources.inspect import inspect

        self.schema  # noqa: B018 - reads and checks every source
        with self.engine.plan_errors():
            return inspect(self.engine.loader, self.engine.con)

    def data_warnings(self) -> list[str]:
        """What the data views leave out, per source (SPEC 1: events with no person once
        identities are resolved, rows without an event name, duplicates removed by
        ``dedupe_on``); said on stderr and listed under ``"warnings"`` in JSON outputs."""
        if self._data_warnings is None:
            self._data_warnings = self.engine.warnings()
        return list(self._data_warnings)

    def freshness_warnings(self, as_of: datetime) -> list[str]:
        """``[warning]`` when ``as_of`` is more than ``stale_after`` past the newest event
        (segctl.freshness), else ``[]``."""
        from sqlglot import exp

        from segctl.freshness import stale_warning

        if self.config.stale_after is None:
            return []
        self.schema  # noqa: B018 - the input views, and whether the source has a raw timestamp
        column = "timestamp"
        if self.config.engine.type == "duckdb" and self.engine.raw_timestamp:
            # The source's own column: DuckDB answers its max from the Parquet statistics
            # (3 ms for 10M events, against 48 ms through the per-row conversion to UTC).
            column = self.engine.raw_timestamp
        query = exp.select(exp.Max(this=exp.column(column, quoted=True))).from_("events")
        newest = self.engine.arrow(query).column(0)[0].as_py()
        if isinstance(newest, datetime) and newest.tzinfo is not None:
            newest = newest.astimezone(UTC).replace(tzinfo=None)
        warning = stale_warning(newest, as_of, self.config.stale_after)
        return [warning] if warning else []

    def _commit(
        self,
        names: list[str],
        moment: datetime,
        started: datetime,
        *,
        kind: str,
        dry_run: bool = False,
        fire_initial: bool = False,
        client: httpx.Client | None = None,
        full: bool = True,
    ) -> RunResult:
        """Evaluate at ``moment`` and (unless ``dry_run``) commit it with its queued actions in
        one transaction, then (for kind "run") deliver. The caller holds the lock. A run
        (not ``full``) evaluates incrementally when it can (segctl.incremental)."""
        from segctl import diff, incremental
        from segctl.delivery.outbox import queue_run
        from segctl.state import StateStore

        folder = self.config.state_dir
        if StateStore.exists(folder):
            with StateStore.open(folder, locked=True, write=not dry_run) as store:
                _check_after_last(store, moment)
        decision = incremental.Decision(True, None if full else "first run")
        duckdb_engine = self.config.engine.type == "duckdb"
        if kind == "run" and not full and not duckdb_engine:
            decision.reason = f"the {self.config.engine.type} engine evaluates in full"
        elif kind == "run" and not dry_run and StateStore.exists(folder):
            self.schema  # noqa: B018 - the input views must exist before the state is attached
            with StateStore.open(folder, con=self.engine.con, locked=True, write=True) as store:
                decision = incremental.decide(self, store, moment, full)
        elif kind == "run" and dry_run and not full:
            decision.reason = "dry run"
        if not decision.full:
            self._persons_filter = incremental.PERSONS_TABLE
        try:
            self._evaluate(names, moment)
        finally:
            self._persons_filter = None
        keep_incremental = kind == "run" and not dry_run and duckdb_engine
        if keep_incremental:
            incremental.prepare_wake(self, moment, decision)
        if kind == "run":  # privacy settings are checked before anything is committed
            self.reachable_condition()
        crash_point("run:after-evaluate")
        if dry_run and not StateStore.exists(folder):
            changes = diff.compute(self.engine.con, None, names, RESULT_TABLE)
            plan = self._plan(None, changes, fire_initial)
            return RunResult(None, moment, changes, True, plan=plan)
        with StateStore.open(folder, con=self.engine.con, create=not dry_run, locked=True) as store:
            if not decision.full:
                incremental.merge_snapshot(self, RESULT_TABLE, packed.words(len(names)))
            changes = diff.compute(self.engine.con, store, names, RESULT_TABLE)
            if dry_run:
                plan = self._plan(store, changes, fire_initial)
                return RunResult(None, moment, changes, True, plan=plan)
            segments = self.definitions.segments
            figures = [
                (n, segments[n].source_hash, c.size, c.entered, c.exited, c.first_run)
                for n, c in changes.items()
            ]
            queue = None
            if kind == "run":
                queue = functools.partial(
                    queue_run,
                    store,
                    as_of=moment,
                    changes=changes,
                    segments={
                        n: (segments[n].on_enter, segments[n].on_exit, segments[n].audiences)
                        for n in changes
                    },
                    fire_initial=fire_initial,
                    max_exit_ratio=self.config.max_exit_ratio,
                )
            progress.phase("Committing the run")
            from segctl import runfiles

            read = runfiles.record(self.root, self.engine.inputs)
            kept = incremental.fingerprint(self) if keep_incremental else None

            def queue_and_keep(run_id: int) -> None:
                # The incremental state commits in the run's transaction, like the snapshot.
                if queue is not None:
                    queue(run_id)
                incremental.save(store, run_id, kept, decision.full)

            run_id = store.commit_run(
                inputs=[r.row() for r in read],
                kind=kind,
                as_of=moment,
                started_at=started,
                figures=figures,
                result_table=RESULT_TABLE,
                queue=queue_and_keep,
            )
            result = RunResult(run_id, moment, changes)
            result.full_reason = decision.reason if decision.full else None
            result.incremental = not decision.full
            result.persons_evaluated = self._evaluated_count(decision)
            if kind == "run":
                progress.phase("Delivering")
                result.report = self._worker(store, client).push()
                result.deliveries = result.report.counts()
        return result

    def backfill(
        self,
        start: str | datetime,
        end: str | datetime,
        every: str = "1d",
        *,
        reset: bool = False,
        wait: float = 0.0,
    ) -> list[RunResult]:
        """Rebuild committed history at past as_of times (start, start+every, ... <= end)
        from the raw events, without any delivery.

        Runs are appended after the last committed one; ``reset`` first deletes all runs
        and membership history (the outbox and synced audiences are kept).
        """
        from segctl.definitions.durations import parse_duration
        from segctl.lock import state_lock
        from segctl.state import StateStore

        first, last = parse_as_of(start, self.config.tz), parse_as_of(end, self.config.tz)
        try:
            step = parse_duration(every)
        except ValueError as exc:
            raise UsageError(f"--every: {exc}") from None
        if last < first:
            raise UsageError("--to must not be before --from")
        times = []
        moment = first
        while moment <= last:
            times.append(moment)
            moment += step
        if len(times) > 10_000:
            raise UsageError(f"backfill would commit {len(times)} runs; use a larger --every")
        names = self.segment_names()
        folder = self.config.state_dir
        results = []
        with state_lock(folder, wait=wait, command="segctl backfill"):
            if reset and StateStore.exists(folder):
                with StateStore.open(folder, locked=True, write=True) as store, store.transaction():
                    for table in ("runs", "run_segments", "transitions", "holds", "run_inputs"):
                        store.con.execute(f"DELETE FROM segctl_state.{table}")
                    store.con.execute(
                        "CREATE OR REPLACE TABLE segctl_state.snapshot (person_id VARCHAR NOT NULL)"
                    )
                    store.con.execute("DELETE FROM segctl_state.snapshot_layout")
            advance = progress.task("Backfilling", len(times))
            for moment in times:
                results.append(self._commit(names, moment, now_utc(), kind="backfill"))
                advance(1)
        return results

    def verify(self, *, wait: float = 10.0) -> VerifyResult:
        """Re-evaluate the last committed run from scratch, at its as_of and over exactly the
        input files it read, and compare with the committed snapshot (see segctl.verify).

        >>> project.verify().equal  # doctest: +SKIP
        True
        """
        from segctl.verify import verify

        return verify(self, wait=wait)

    def state(self, *, wait: float = 10.0) -> Any:
        """Open the committed state (a context manager yielding a StateStore)."""
        from segctl.state import StateStore

        return StateStore.open(self.config.state_dir, wait=wait)

    def diff(
        self,
        segments: list[str] | None = None,
        from_run: int | None = None,
        to_run: int | None = None,
        *,
        wait: float = 10.0,
    ) -> DiffResult:
        """Who entered and exited between two committed runs (default: the last two)."""
        from segctl import diff

        with self.state(wait=wait) as store:
            runs = [r.run_id for r in store.runs()]
            if not runs:
                raise UsageError("no committed run yet: run `segctl run` first")
            to_id = to_run if to_run is not None else runs[-1]
            store.run(to_id)
            if from_run is None:
                earlier = [r for r in runs if r < to_id]
                from_id = earlier[-1] if earlier else 0
            else:
                from_id = from_run
                store.run(from_id)
            return DiffResult(from_id, to_id, diff.between(store, from_id, to_id, segments))

    def members(
        self, segment: str, as_of_run: int | None = None, *, wait: float = 10.0
    ) -> pl.DataFrame:
        """Members of a segment at the last (or a given) committed run, with person columns,
        sorted by person_id."""
        from segctl.engine.duckdb import qident
        from segctl.state import StateStore, members_at_sql

        schema = self.schema  # registers the persons view before the state is attached
        with StateStore.open(self.config.state_dir, con=self.engine.con, wait=wait) as store:
            run = store.run(as_of_run) if as_of_run is not None else store.last_run()
            if run is None:
                raise UsageError("no committed run yet: run `segctl run` first")
            evaluated = store.rows(
                "SELECT 1 FROM segctl_state.run_segments WHERE run_id = ? AND segment = ?",
                [run.run_id, segment],
            )
            if not evaluated:
                raise UsageError(f"segment '{segment}' was not part of run {run.run_id}")
            columns = ", ".join(f"p.{qident(c)}" for c in schema["persons"] if c != "person_id")
            self.engine.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {tempnames.RUN_MEMBERS_TABLE} AS "
                f"SELECT person_id FROM ({members_at_sql()}) WHERE segment = ?",
                [run.run_id, segment],
            )
        return _polars(
            self.engine.arrow(
                f"SELECT m.person_id{', ' + columns if columns else ''} "
                f"FROM {tempnames.RUN_MEMBERS_TABLE} m "
                "LEFT JOIN persons p ON p.person_id = m.person_id ORDER BY m.person_id"
            )
        )

    # ---- delivery ---------------------------------------------------------------------

    def _worker(self, store: StateStore, client: httpx.Client | None) -> Worker:
        """The delivery worker of this project's state (the persons view must exist)."""
        from segctl.delivery.worker import Worker

        return Worker(
            store,
            _Reachability(self),
            self.config.destinations,
            client=client,
            root=self.config.root,
            person_columns=list(self.schema["persons"]),
        )

    def _plan(
        self, store: StateStore | None, changes: dict[str, Change], fire_initial: bool
    ) -> list[PlanRow]:
        """What the staged run would send (``run --dry-run``)."""
        from segctl.delivery.plan import plan_run

        return plan_run(
            self.engine.con,
            store,
            changes,
            segments=self.definitions.segments,
            destinations=self.config.destinations,
            reachability=_Reachability(self),
            max_exit_ratio=self.config.max_exit_ratio,
            fire_initial=fire_initial,
        )

    def reachable_condition(self, alias: str = "p") -> str:
        """SQL over a persons alias: consent given and not suppressed (SPEC 1, privacy)."""
        from segctl.engine.duckdb import qident

        parts = ["true"]
        consent = self.config.consent_column
        if consent:
            if consent not in self.schema["persons"]:
                raise DefinitionError(
                    f"privacy.consent_column: '{consent}' is not a column of the persons data "
                    f"(columns are: {', '.join(self.schema['persons'])})"
                )
            value = f"lower(trim(CAST({alias}.{qident(consent)} AS VARCHAR)))"
            parts.append(f"coalesce({value} IN ('true', '1', 'yes', 'y', 't'), false)")
        table = self._suppression_table()
        if table:
            parts.append(
                f"NOT coalesce({alias}.person_id IN (SELECT key FROM {table}) OR "
                f"lower(trim({alias}.email)) IN (SELECT key FROM {table}), false)"
                if "email" in self.schema["persons"]
                else f"NOT coalesce({alias}.person_id IN (SELECT key FROM {table}), false)"
            )
        return " AND ".join(parts)

    def _suppression_table(self) -> str | None:
        path = self.config.suppression_file
        if path is None:
            return None
        if not path.is_file():
            shown = self.config.display(path)
            raise DataError(f"privacy.suppression_file: file not found: {shown}")
        from segctl.engine.duckdb import quote

        reader = (
            f"read_parquet({quote(str(path))})"
            if path.suffix == ".parquet"
            else f"read_csv({quote(str(path))}, all_varchar = true)"
        )
        try:
            columns = [c for c, _ in self.engine._describe(reader, "lists")]
        except DataError as exc:  # name the file: the reader's error does not
            raise DataError(f"{self.config.display(path)}: {exc}") from None
        keys = [c for c in ("person_id", "email") if c in columns]
        if not keys:
            raise DataError(
                f"{self.config.display(path)}: a suppression file needs a person_id or email column"
            )
        union = " UNION ".join(
            f"SELECT lower(trim(CAST({k} AS VARCHAR))) AS key FROM {reader}"
            if k == "email"
            else f"SELECT CAST({k} AS VARCHAR) AS key FROM {reader}"
            for k in keys
        )
        self.engine.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {tempnames.SUPPRESSED_VIEW} AS {union}"
        )
        return tempnames.SUPPRESSED_VIEW

    def reachable(self, person_ids: list[str]) -> set[str]:
        """Which of these persons may be emailed or uploaded."""
        if not person_ids:
            return set()
        rows = self.engine.rows(
            "SELECT p.person_id FROM persons p WHERE p.person_id IN "
            f"(SELECT unnest(?::VARCHAR[])) AND "
            f"{self.reachable_condition('p')}",
            [person_ids],
        )
        return {r[0] for r in rows}

    def push(
        self,
        *,
        confirm: list[str] | None = None,
        wait: float = 0.0,
        client: httpx.Client | None = None,
    ) -> Report:
        """Deliver what is pending: retries, delayed emails, audience syncs; with
        ``confirm``, first release the held exits of those segments."""
        from segctl.state import StateStore

        for name in confirm or []:
            self.segment_names([name])
        self.schema  # noqa: B018 - the persons view must exist before the state is attached
        with StateStore.open(
            self.config.state_dir, con=self.engine.con, wait=wait, write=True, command="segctl push"
        ) as store:
            return self._worker(store, client).push(confirm or [])

    def sync(
        self,
        segment: str,
        destination: str,
        *,
        mode: str = "mirror",
        dry_run: bool = False,
        wait: float = 0.0,
        client: httpx.Client | None = None,
    ) -> Any:
        """Reconcile one segment's audience on one destination now.

        ``add`` only adds missing members, ``remove`` only removes those who left, ``mirror``
        does both (with the platform's replace where it has one).
        """
        from segctl.delivery.audiences import Reconciler
        from segctl.state import StateStore

        self.segment_names([segment])
        if mode not in ("add", "remove", "mirror"):
            raise UsageError(f"--mode is add, remove or mirror, not {mode!r}")
        audiences = [
            a for a in self.definitions.segments[segment].audiences if a.destination == destination
        ]
        if not audiences:
            known = [a.destination for a in self.definitions.segments[segment].audiences]
            raise UsageError(
                f"segment '{segment}' has no audience on '{destination}'"
                + (f" (it has: {', '.join(known)})" if known else "")
            )
        self.schema  # noqa: B018
        with StateStore.open(
            self.config.state_dir,
            con=self.engine.con,
            wait=wait,
            write=not dry_run,
            command="segctl sync",
        ) as store:
            reconciler = Reconciler(self._worker(store, client))
            return [
                reconciler.sync(destination, segment, a.audience_id, mode, dry_run=dry_run)
                for a in audiences
            ]

    def status(self, *, wait: float = 10.0) -> dict[str, Any]:
        """Last runs, pending/failed per destination, audiences' last sync and figures."""
        from segctl.delivery import queries
        from segctl.state import S

        with self.state(wait=wait) as store:
            runs = store.rows(f"""SELECT run_id, kind, as_of, started_at, finished_at
                                  FROM {S}.runs ORDER BY run_id DESC LIMIT 5""")
            delivery = queries.status(store)
        return {
            "runs": [
                dict(zip(("run_id", "kind", "as_of", "started_at", "finished_at"), r, strict=True))
                for r in runs
            ],
            **delivery,
        }

    def forget(
        self, person_ids: list[str], *, wait: float = 0.0, client: httpx.Client | None = None
    ) -> dict[str, Any]:
        """Erasure: remove the persons from every audience, drop their data from the state,
        keep an audit record without PII (the SHA-256 of each id)."""
        import hashlib

        from segctl.delivery import queries
        from segctl.delivery.audiences import Reconciler
        from segctl.state import S, StateStore

        if not person_ids:
            raise UsageError("name at least one person id")
        hashes = [hashlib.sha256(p.encode()).hexdigest() for p in person_ids]
        self.schema  # noqa: B018
        with StateStore.open(
            self.config.state_dir,
            con=self.engine.con,
            wait=wait,
            create=True,
            command="segctl forget",
        ) as store:
            affected = queries.audiences_of(store, person_ids)
            with store.transaction():
                store.executemany(
                    f"INSERT INTO {S}.forgotten VALUES (?, ?, ?)",
                    [[h, now_utc(), json.dumps({"audiences": len(affected)})] for h in hashes],
                )
                for table in ("transitions", "snapshot", "tags"):
                    store.con.execute(
                        f"DELETE FROM {S}.{table} WHERE list_contains(?, person_id)", [person_ids]
                    )
                queries.forget_deliveries(store, person_ids)
            reconciler = Reconciler(self._worker(store, client))
            results = []
            for destination, audience, segment, mode in affected:
                results.append(
                    reconciler.sync(
                        destination, segment, audience, "remove" if mode != "mirror" else mode
                    )
                )
            left = queries.still_in_audiences(store, person_ids)
        return {
            "forgotten": len(person_ids),
            "audiences": len(affected),
            "still_in_audiences": left,
            "errors": [r.error for r in results if r.error],
        }

    def tags(self, *, wait: float = 10.0) -> pl.DataFrame:
        """Every person tag set by ``tag`` actions."""
        from segctl.state import S

        with self.state(wait=wait) as store:
            cursor = store.con.execute(
                f"SELECT person_id, name, value, set_at, run_id FROM {S}.tags ORDER BY ALL"
            )
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        import polars as pl

        return pl.DataFrame(rows, schema=columns, orient="row")

    def history(self, segment: str, *, wait: float = 10.0) -> list[HistoryRow]:
        """Size, entered and exited of a segment at every committed run."""
        from segctl import analytics

        with self.state(wait=wait) as store:
            return analytics.history(store, segment)

    def stats(
        self, segment: str | None = None, days: int = 30, *, wait: float = 10.0
    ) -> list[StatsRow]:
        """Size, entered/exited in the last ``days`` days and growth rate per segment."""
        from segctl import analytics

        with self.state(wait=wait) as store:
            return analytics.stats(store, [segment] if segment else None, days)

    def overlap(
        self, segments: list[str], as_of_run: int | None = None, *, wait: float = 10.0
    ) -> tuple[list[OverlapRow], list[str]]:
        """Pairwise overlap of segments at a committed run, and the persons in all."""
        from segctl import analytics

        with self.state(wait=wait) as store:
            return analytics.overlap(store, segments, as_of_run)

    def person(self, person_id: str, *, wait: float = 10.0) -> dict[str, Any]:
        """A person's segments now, their membership history, and pending deliveries."""
        from segctl.delivery import queries
        from segctl.state import intervals_sql

        with self.state(wait=wait) as store:
            history = store.rows(
                f"""SELECT segment, entered_at, exited_at, entered_run, exited_run
                    FROM ({intervals_sql("person_id = $1")}) ORDER BY entered_run, segment""",
                [person_id],
            )
            pending = queries.pending_for(store, person_id)
        keys = ("segment", "entered_at", "exited_at", "entered_run", "exited_run")
        intervals = [dict(zip(keys, row, strict=True)) for row in history]
        return {
            "person_id": person_id,
            "segments": sorted(i["segment"] for i in intervals if i["exited_run"] is None),
            "history": intervals,
            "pending": pending,
        }

    def compile(
        self,
        segments: str | list[str] | None = None,
        dialect: str = "duckdb",
        as_of: str | datetime | None = None,
        *,
        pretty: bool = True,
        header: bool = True,
    ) -> str:
        """SQL for one segment's sorted members, or for several (default: all) segments at
        once as ``person_id`` plus one boolean column each.

        With ``header``, the SQL opens with a comment naming the tables and columns it reads
        and the ``CREATE TABLE`` statements for them in ``dialect`` (segctl.compiler.warehouse).
        Unsupported constructs for a dialect raise instead of producing wrong SQL.

        >>> print(project.compile("power_users", dialect="spark"))  # doctest: +SKIP
        """
        from segctl.compiler import Plan, warehouse

        if dialect not in DIALECTS:
            raise UsageError(f"unknown dialect '{dialect}' (choose from {', '.join(DIALECTS)})")
        moment = parse_as_of(as_of, self.config.tz)
        wanted = [segments] if isinstance(segments, str) else segments
        names = self.segment_names(wanted)
        # The SQL shown must run on plain tables: no time bounds on segctl's raw column.
        context = replace(self.plan_context(names, moment, dialect), raw_timestamp=None)
        builder = Plan(self.definitions, context)
        if wanted and len(wanted) == 1:
            query = builder.members_query(wanted[0])
            title = f"segctl: the members of {wanted[0]} at {iso(moment)} (person_id, sorted)"
        else:
            query = builder.segments_query(names)
            title = (
                f"segctl: {len(names)} segment(s) at {iso(moment)} "
                "(person_id and one boolean column per segment)"
            )
        from segctl.compiler.dialects import adjust
        from segctl.sources.nested import NestedAccessError, check_dialect

        try:
            check_dialect(query, dialect)
        except NestedAccessError as exc:
            raise DefinitionError(f"cannot compile for {dialect}: {exc}") from None
        typed = warehouse.retype(adjust(query, dialect), dialect)
        try:
            sql = typed.sql(
                dialect=dialect, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE
            )
        except sqlglot.errors.UnsupportedError as exc:
            raise DefinitionError(f"cannot compile for {dialect}: {exc}") from None
        if not header:
            return sql
        lists = [
            warehouse.ListTable(context.list_tables[c.path], c.file, c.key)
            for n in names
            for dep in self.definitions.dependencies(n)
            for c in segment_conditions(self.definitions.segments[dep])
            if isinstance(c, ListCondition)
        ]
        return warehouse.header(sql, dialect, self.schema, lists, title) + sql

    def preview(self, target: str, as_of: str | datetime | None = None, limit: int = 10) -> Preview:
        """Size and sample members of a segment, or of a segment file not yet in the project
        (it may reference project segments). Nothing is saved."""
        from segctl.compiler import Plan

        moment = parse_as_of(as_of, self.config.tz)
        path = Path(target)
        if target.endswith((".yaml", ".yml")) or path.is_file():
            if not path.is_file():
                raise UsageError(f"no such segment file: {target}")
            from segctl.definitions.source import Problems, load_yaml
            from segctl.drafts import needed_files

            doc = load_yaml(path, target, Problems())
            name = doc.get("name") if isinstance(doc, dict) else None
            # The draft and what it references only: an unrelated broken segment of the
            # project must not stop a preview.
            files, uses_features = needed_files(path, self.config.segments_dir)
            definitions = self._load_definitions([path], only=files, features_needed=uses_features)
            if not isinstance(name, str) or name not in definitions.segments:
                raise DefinitionError(f"{target}: not a segment file (it needs name: and rule:)")
        else:
            definitions, name = self.definitions, target
            self.segment_names([name])
        self.engine.check_persons()
        context = self.plan_context([name], moment, self.config.engine.type, definitions)
        builder = Plan(definitions, context)
        self.engine.create_table(tempnames.PREVIEW_TABLE, builder.members_query(name))
        from segctl.engine.duckdb import qident

        size_row = self.engine.rows(f"SELECT count(*) FROM {tempnames.PREVIEW_TABLE}")[0]
        columns = ", ".join(f"p.{qident(c)}" for c in self.schema["persons"] if c != "person_id")
        sample = self.engine.arrow(
            f"SELECT m.person_id{', ' + columns if columns else ''} "
            f"FROM {tempnames.PREVIEW_TABLE} m "
            f"JOIN persons p ON p.person_id = m.person_id ORDER BY m.person_id LIMIT {int(limit)}"
        )
        return Preview(name, moment, int(size_row[0]) if size_row else 0, _polars(sample))

    def features(
        self, names: list[str] | None = None, as_of: str | datetime | None = None
    ) -> pl.DataFrame:
        """Every named feature (or those named) per person, as a polars DataFrame."""
        from segctl.compiler import Plan

        features = self.definitions.features
        wanted = names or list(features)
        for name in wanted:
            if name not in features:
                from segctl.definitions.source import did_you_mean

                raise UsageError(f"unknown feature '{name}'{did_you_mean(name, features)}")
        moment = parse_as_of(as_of, self.config.tz)
        self.engine.check_persons()
        builder = Plan(self.definitions, self.plan_context([], moment, self.config.engine.type))
        return _polars(self.engine.arrow(builder.features_query(wanted)))

    def explain(
        self,
        segment: str,
        person_id: str,
        as_of: str | datetime | None = None,
        *,
        wait: float = 10.0,
    ) -> Explanation:
        """Why a person is or is not a member of a segment at ``as_of`` (default now): each
        condition with the value measured for them and its verdict, computed by the same plan
        as :meth:`evaluate`; with a state folder, also what changed at their last transition.

        Raises UsageError for an unknown segment, DataError for an unknown person.

        >>> print(project.explain("power_users", "u00042").render())  # doctest: +SKIP
        """
        from segctl.explain import explain

        moment = parse_as_of(as_of, self.config.tz)
        return explain(self, segment, person_id, moment, state_dir=self.config.state_dir, wait=wait)


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
    changes: dict[str, Change]
    #: What the user should know about this evaluation (stale data...); also in to_dict.
    warnings: list[str] = field(default_factory=list)

    def members(self, name: str) -> pl.DataFrame:
        """The members of one segment: a DataFrame with a sorted ``person_id`` column."""
        if name not in self.segments:
            raise UsageError(f"segment '{name}' was not evaluated")
        table = self.project.engine.arrow(
            f"SELECT person_id FROM {RESULT_TABLE} "
            f"WHERE {packed.is_set(self.segments.index(name))} ORDER BY person_id"
        )
        return _polars(table)

    def memberships(self) -> pl.DataFrame:
        """Every (segment, person_id) pair, sorted."""
        words = packed.words(len(self.segments))
        return _polars(
            self.project.engine.arrow(
                f"SELECT names.segment, m.person_id "
                f"FROM ({packed.set_bits(RESULT_TABLE, words)}) AS m "
                f"JOIN {packed.names_table(self.segments)} ON names.idx = m.idx "
                "ORDER BY names.segment, m.person_id"
            )
        )

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


class _Reachability:
    """The project's privacy rule as the delivery's Reachability (until segctl.privacy)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def condition(self, alias: str = "p") -> sqlglot.exp.Expression:
        tree = sqlglot.parse_one(self.project.reachable_condition(alias), dialect="duckdb")
        assert isinstance(tree, sqlglot.exp.Expression)
        return tree

    def reachable(self, person_ids: list[str]) -> set[str]:
        return self.project.reachable(person_ids)


def _check_after_last(store: StateStore, moment: datetime) -> None:
    last = store.last_run()
    if last is not None and moment <= last.as_of:
        raise UsageError(
            f"as_of {iso(moment)} is not after the last committed run's as_of "
            f"{iso(last.as_of)} (run {last.run_id}); history only moves forward (use "
            "`segctl backfill --reset` to rebuild it)"
        )


def _polars(table: Any) -> pl.DataFrame:
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
