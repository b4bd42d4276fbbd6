"""The public entry point: a :class:`Project` loads its configuration and definitions and
evaluates, runs, compiles or describes segments. The CLI is a thin shell over this class.

The package keeps one face, :class:`Project`; its heavier calls live beside it:

- :mod:`~segctl.project.context`: the definitions, and the compiler's context for a plan;
- :mod:`~segctl.project.run`: a run and a backfill (evaluate, diff, commit, deliver);
- :mod:`~segctl.project.reads`: the committed state as diff, members, person, status show it;
- :mod:`~segctl.project.deliver`: push, sync and forget (the delivery worker is made there);
- :mod:`~segctl.project.preview`: a segment's or a draft's size and first members;
- :mod:`~segctl.project.compile`: a segment's SQL for a warehouse dialect.

What the calls return is in :mod:`segctl.results`; every query of the state is in
:mod:`segctl.state`, the privacy rule in :mod:`segctl.privacy`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl import diff, progress
from segctl.config import Config, find_project, load_config
from segctl.definitions.loader import Definitions
from segctl.definitions.model import Schema
from segctl.definitions.source import known_hint
from segctl.errors import (
    ConfigError,
    DataError,
    DataProblems,
    DefinitionError,
    UsageError,
    listed,
    problems_of,
)
from segctl.project import deliver, reads
from segctl.project import run as runs
from segctl.project.compile import DIALECTS, compile_sql
from segctl.project.context import load_definitions, plan_context
from segctl.project.preview import preview
from segctl.results import DiffResult, EvaluationResult, Preview, RunResult, polars_frame
from segctl.tempnames import RESULT_TABLE
from segctl.timeutil import iso, parse_as_of

if TYPE_CHECKING:
    import httpx
    import polars as pl
    from sqlglot import exp

    from segctl.analytics import HistoryRow, OverlapRow, StatsRow
    from segctl.compiler import PlanContext
    from segctl.delivery.audiences.result import SyncResult
    from segctl.delivery.model import Report
    from segctl.engine.base import Engine
    from segctl.explain import Explanation
    from segctl.privacy import Reachability
    from segctl.sources.inspect import SourceReport
    from segctl.sources.property_types import PropertyTypes
    from segctl.state import StateStore
    from segctl.verify import VerifyResult

__all__ = ["DIALECTS", "Project"]


class Project:
    """A segctl project: ``segctl.yaml``, its segments, features and data."""

    def __init__(self, config: Config) -> None:
        self.config = config
        #: Whether a delivery (``push``, a ``run``'s) sends at once what waits for a retry
        #: after a failure (True), or leaves it to the backoff's schedule (``segctl watch``,
        #: whose runs come every minute: a failing endpoint is not retried at each).
        self.retry_waiting = True
        self._data_warnings: list[str] | None = None
        self._newest_event: tuple[datetime | None] | None = None  # (newest,) once known

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

    # ---- what a project is made of ------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def engine(self) -> Engine:
        """DuckDB on this machine; with ``engine.type: spark`` a SparkEngine, whose plans run
        on Spark while the result, state and deliveries stay in this DuckDB."""
        if self.config.engine.type == "spark":
            from segctl.engine.spark import SparkEngine

            return SparkEngine(self.config)
        from segctl.engine.duckdb import DuckDBEngine

        return DuckDBEngine(self.config)

    @property
    def schema(self) -> Schema:
        return self.engine.driver.schema()

    @cached_property
    def definitions(self) -> Definitions:
        """Segments and features, validated against the data schema (raises DefinitionError
        with every problem found)."""
        return load_definitions(self)

    @cached_property
    def property_types(self) -> PropertyTypes:
        """Nested property names (``properties.plan``) resolved against the engine's column
        types, with a sample of the JSON keys for warnings."""
        from segctl.sources.property_types import PropertyTypes

        return PropertyTypes(self.engine.driver.column_types(), self.engine.driver.sample_rows)

    @cached_property
    def reachability(self) -> Reachability:
        """Who may be messaged or uploaded (consent, suppression), over the persons view."""
        from segctl.privacy import Reachability

        return Reachability(self.config, self.engine.driver, list(self.schema["persons"]))

    def validate(self, *, check_data: bool = True) -> Definitions:
        """Check config, segments and features against the data schema, and (by default)
        the data itself: unique person ids, parseable timestamps, list files. Every problem
        is said at once: when the data cannot be read (a file missing), the definitions' own
        problems come with that error (exit 4); when the definitions have problems, the
        data's come with them (exit 3)."""
        return self._validate(check_data)

    def _validate(self, check_data: bool) -> Definitions:
        try:
            definitions = self.definitions
        except DataError as unread:
            try:
                load_definitions(self, blind=True)
            except DefinitionError as found:
                problems = [*problems_of(unread), *found.problems]
                raise DataError(listed(problems)) from None
            raise
        except DefinitionError as found:
            try:
                if check_data:
                    self._check_data()
            except DataError as bad:
                raise DefinitionError([*found.problems, *problems_of(bad)]) from None
            raise
        if check_data:
            self._check_data()
            self.plan_context(list(definitions.segments), parse_as_of(None))
            self.reachability.condition()  # the consent column and the suppression file
        return definitions

    @staticmethod
    def config_problems(error: ConfigError) -> ConfigError:
        """segctl.yaml's problems with the segment and feature files' own (read without the
        data, as far as segctl.yaml reads): every problem at once, for ``validate``. A use of
        a destination segctl.yaml names but could not read is not said again."""
        if error.partial is None:
            return error
        try:
            load_definitions(Project(error.partial), blind=True)
        except DefinitionError as found:
            cascade = (  # every destination is unknown when `destinations` is no mapping
                ("unknown destination",)
                if error.named is None
                else tuple(f"unknown destination '{n}'" for n in error.named)
            )
            own = [p for p in found.problems if not p.message.startswith(cascade)]
            return ConfigError([*error.problems, *own])
        return error

    def _check_data(self) -> None:
        """The data's own problems, whatever the definitions: repeated person ids and
        timestamps that do not parse: both at once."""
        found = DataProblems()
        with found.check():
            self.engine.driver.check_persons()
        with found.check():
            self.engine.driver.check_timestamps()
        found.raise_any()

    def segment_names(self, names: list[str] | None = None) -> list[str]:
        """The named segments (all by default), checked to exist, in dependency order."""
        segments = self.definitions.segments
        if not names:
            return sorted(segments)
        for name in names:
            if name not in segments:
                raise UsageError(
                    f"unknown segment '{name}'{known_hint(name, segments, 'segments')}"
                )
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
        the persons view at as_of in the engine (segctl.project.context)."""
        return plan_context(self, definitions or self.definitions, names, as_of, dialect)

    # ---- evaluating -------------------------------------------------------------------

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
        from segctl.state import StateStore

        moment = parse_as_of(as_of, self.config.tz)
        names = self.segment_names(segments)
        self._evaluate(names, moment)
        folder = self.config.state_dir
        if StateStore.exists(folder):
            with StateStore.open(folder, con=self.engine.driver.con, wait=wait) as store:
                changes = diff.compute(self.engine.driver.con, store, names, RESULT_TABLE)
        else:
            changes = diff.compute(self.engine.driver.con, None, names, RESULT_TABLE)
        warnings = self.data_warnings() + self.freshness_warnings(moment)
        return EvaluationResult(self.engine.driver, moment, names, changes, warnings)

    def _evaluate(
        self,
        names: list[str],
        moment: datetime,
        persons: str | None = None,
        events_shadowed: bool = False,
        plan: exp.Expr | None = None,
    ) -> None:
        """Evaluate into the engine's result table (and the members view over it); with
        ``persons``, only the persons in that table (an incremental run; ``events_shadowed``:
        the ``events`` hold their rows alone). ``plan``: :meth:`_plan`'s, built already."""
        progress.phase(f"Evaluating {len(names)} segment(s) as of {iso(moment)}")
        self.engine.driver.check_persons()
        query = plan if plan is not None else self._plan(names, moment, persons, events_shadowed)
        # D's rows alone (an incremental run's, in memory): DuckDB plans lightly.
        light = self.engine.driver.light_planning() if events_shadowed else nullcontext()
        with light:
            self.engine.create_table(RESULT_TABLE, query, diff.result_columns(names))
        self.engine.driver.con.execute(diff.members_view(names))

    def _plan(
        self,
        names: list[str],
        moment: datetime,
        persons: str | None = None,
        events_shadowed: bool = False,
    ) -> exp.Expr:
        """The query of the segments ``names`` at ``moment`` (see :meth:`_evaluate`)."""
        from segctl.compiler import Plan

        dialect = self.config.engine.type
        context = plan_context(
            self, self.definitions, names, moment, dialect, persons, events_shadowed
        )
        return Plan(self.definitions, context).segments_query(names)

    def _result_size(self) -> int:
        """How many persons the last evaluation's result table holds."""
        return int(self.engine.driver.rows(diff.result_size_query())[0][0])

    def preview(self, target: str, as_of: str | datetime | None = None, limit: int = 10) -> Preview:
        """Size and sample members of a segment, or of a segment file not yet in the project
        (it may reference project segments). Nothing is saved."""
        return preview(self, target, as_of, limit)

    def features(
        self, names: list[str] | None = None, as_of: str | datetime | None = None
    ) -> pl.DataFrame:
        """Every named feature (or those named) per person, as a polars DataFrame."""
        from segctl.compiler import Plan

        features = self.definitions.features
        wanted = names or list(features)
        for name in wanted:
            if name not in features:
                raise UsageError(
                    f"unknown feature '{name}'{known_hint(name, features, 'features')}"
                )
        moment = parse_as_of(as_of, self.config.tz)
        self.engine.driver.check_persons()
        builder = Plan(self.definitions, self.plan_context([], moment, self.config.engine.type))
        return polars_frame(self.engine.arrow(builder.features_query(wanted)))

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
        return compile_sql(self, segments, dialect, as_of, pretty=pretty, header=header)

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

    def inspect(self) -> list[SourceReport]:
        """What segctl sees in each data source: files, rows, time range, persons, events with
        no person, and the property keys found (with nested ones, as dotted names).

        >>> for source in project.inspect(): print(source.name, source.rows)  # doctest: +SKIP
        """
        from segctl.sources.inspect import inspect

        self.schema  # noqa: B018 - reads and checks every source
        with self.engine.driver.plan_errors():
            return inspect(self.engine.driver.loader, self.engine.driver.con)

    def data_warnings(self) -> list[str]:
        """What the data views leave out, per source (SPEC 1: events with no person once
        identities are resolved, rows without an event name, duplicates removed by
        ``dedupe_on``); said on stderr and listed under ``"warnings"`` in JSON outputs."""
        if self._data_warnings is None:
            self._data_warnings = self.engine.driver.warnings()
        return list(self._data_warnings)

    def freshness_warnings(self, as_of: datetime) -> list[str]:
        """``[warning]`` when ``as_of`` is more than ``stale_after`` past the newest event
        (segctl.freshness), else ``[]``."""
        from segctl.freshness import stale_warning
        from segctl.project.figures import newest_event

        if self.config.stale_after is None:
            return []
        if self._newest_event is None:
            self._newest_event = (newest_event(self),)
        warning = stale_warning(self._newest_event[0], as_of, self.config.stale_after)
        return [warning] if warning else []

    # ---- committing runs (segctl.project.run) ------------------------------------------

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
        when it cannot (docs/realtime.md, "Incremental runs"). Python's cyclic garbage
        collector (process-wide) is paused until delivery starts, then as it was before.

        >>> project.run(as_of="2026-11-17T00:00:00Z").run_id  # doctest: +SKIP
        1
        """
        return runs.run(
            self,
            as_of,
            dry_run=dry_run,
            fire_initial=fire_initial,
            wait=wait,
            client=client,
            full=full,
        )

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
        return runs.backfill(self, start, end, every, reset=reset, wait=wait)

    def verify(self, *, wait: float = 10.0) -> VerifyResult:
        """Re-evaluate the last committed run from scratch, at its as_of and over exactly the
        input files it read, and compare with the committed snapshot (see segctl.verify).

        >>> project.verify().equal  # doctest: +SKIP
        True
        """
        from segctl.verify import verify

        # The definitions read the data: loaded by verify once it has pinned the run's files.
        return verify(
            self.config, self.engine.driver, lambda: self.definitions, self._evaluate, wait=wait
        )

    # ---- reading the committed state ------------------------------------------------

    def state(self, *, wait: float = 10.0) -> AbstractContextManager[StateStore]:
        """Open the committed state, read-only (a context manager yielding a StateStore).

        >>> with project.state() as store: print(store.last_run())  # doctest: +SKIP
        """
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
        with self.state(wait=wait) as store:
            return reads.between(store, segments, from_run, to_run)

    def members(
        self, segment: str, as_of_run: int | None = None, *, wait: float = 10.0
    ) -> pl.DataFrame:
        """Members of a segment at the last (or a given) committed run, with person columns,
        sorted by person_id."""
        return reads.members(self, segment, as_of_run, wait)

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
        """A person's segments now, their membership history, and pending deliveries (the
        audiences a pending sync adds them to or removes them from among them)."""
        with self.state(wait=wait) as store:
            info = reads.person(store, person_id)
            syncs = reads.syncs_pending(store)
        if syncs:
            info["pending"] += deliver.audience_changes(self, person_id, wait=wait)
        return info

    def tags(self, *, wait: float = 10.0) -> pl.DataFrame:
        """Every person tag set by ``tag`` actions."""
        with self.state(wait=wait) as store:
            return reads.tags(store)

    def status(self, *, wait: float = 10.0) -> dict[str, Any]:
        """Last runs, pending/failed per destination, audiences' last sync and figures;
        all empty before the first run."""
        from segctl.state import StateStore

        if not StateStore.exists(self.config.state_dir):
            return {"runs": [], "deliveries": [], "audiences": [], "holds": []}
        with self.state(wait=wait) as store:
            return reads.status(store)

    # ---- delivering (segctl.project.deliver) ------------------------------------------

    def push(
        self,
        *,
        confirm: list[str] | None = None,
        wait: float = 0.0,
        client: httpx.Client | None = None,
        retry_failed: bool = False,
    ) -> Report:
        """Deliver what is pending: retries, delayed emails, audience syncs; with
        ``confirm``, first release the held exits of those segments; with ``retry_failed``,
        try the failed deliveries again (after fixing what refused them)."""
        return deliver.push(
            self, confirm or [], wait=wait, client=client, retry_failed=retry_failed
        )

    def sync(
        self,
        segment: str,
        destination: str,
        *,
        mode: str = "mirror",
        dry_run: bool = False,
        wait: float = 0.0,
        client: httpx.Client | None = None,
    ) -> list[SyncResult]:
        """Reconcile one segment's audience on one destination now.

        ``add`` only adds missing members, ``remove`` only removes those who left, ``mirror``
        does both (with the platform's replace where it has one).
        """
        return deliver.sync(
            self, segment, destination, mode=mode, dry_run=dry_run, wait=wait, client=client
        )

    def forget(
        self, person_ids: list[str], *, wait: float = 0.0, client: httpx.Client | None = None
    ) -> dict[str, Any]:
        """Erasure: remove the persons from every audience, drop their data from the state,
        keep an audit record without PII (the SHA-256 of each id)."""
        return deliver.forget(self, person_ids, wait=wait, client=client)
