"""Incremental ``segctl run`` (SPEC 5, docs/realtime.md "Incremental runs").

A run may take a person's memberships from the last committed run unchanged when none of the
person's rows changed and nothing in the rules can flip for that person between the last
``as_of`` and this one. Everything else (the set D) is re-evaluated with the very plan a full
run uses, restricted to D (``PlanContext.persons_filter``). The result table holds D's rows
alone: the diff compares them with their snapshot rows (everyone else's are unchanged), so
the transitions, the commit (which replaces the changed persons' rows) and the deliveries
are a full run's.

What the state keeps, committed in the run's transaction (state schema v8):

- ``incremental``: the catalogue fingerprint of the run (each definition's hash, the features
  file, timezone, data configuration, list and identities files), keyed by the run it belongs
  to; a run whose last committed run has no such rows evaluates in full.
- ``wakeups``: per person, a lower bound of the first instant at or after the run's ``as_of``
  at which any membership of the person can change without a new row
  (:meth:`Incremental.wake_sql`).
- ``event_copy`` and the Parquet files it names in ``<state>/events/``: the ``events`` view's
  rows clustered by person (:mod:`segctl.state.event_rows`), when no row's fate depends on
  another file's rows; full runs keep it while the files it holds are unchanged;
- ``row_hashes``: per person, a hash of their rows in the persons and subscriptions views and
  of the list entries naming or matching them (:meth:`Incremental._hash_rows`), so that a
  re-exported persons, subscriptions or list file re-evaluates the persons whose rows
  changed; kept once such a file has been re-exported (that first run is full).
- ``identity_map``: each anonymous id and its person, when the events carry anonymous ids;
  the next run diffs its own map with it (a run that finds none kept evaluates in full).

D = the persons whose rows the new event files can change (their own rows, an anonymous
row's through the identity map, and the rows sharing a ``dedupe_on`` key with a new row),
both persons of every anonymous id whose entry in the identity map moved (an identities
file re-exported, a new row linking an id), the persons whose persons or subscriptions
rows or list entries changed (a re-exported, new or removed file of those sources), and
the persons whose wake-up time is at or before the new ``as_of``. While the plan runs for
D, D's rows are read from temp tables that shadow the input views
(:meth:`Incremental.restricted`): D's events from the state's copy plus the new files' rows
when the copy is kept, else from one scan of the input files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
from sqlglot import Tokenizer, TokenType, exp

from segctl import tempnames, wakeup
from segctl.definitions.model import ColumnType, ListCondition, list_conditions
from segctl.engine.duckdb import qident, quote
from segctl.errors import DataError
from segctl.sources import checks, runfiles
from segctl.sources import columns as cols
from segctl.sources.inputs import resolve_inputs
from segctl.sources.sql import duck
from segctl.sources.views import DUPLICATE
from segctl.state import event_rows
from segctl.state import incremental as kept_state
from segctl.tempnames import IDENTITY_MAP_TABLE
from segctl.wakeup import Catalogue, catalogue

if TYPE_CHECKING:
    from segctl.config import Config
    from segctl.definitions.loader import Definitions
    from segctl.engine.duckdb import DuckDBEngine
    from segctl.state import StateStore

#: The engine's temp table holding D (one ``person_id`` per row).
PERSONS_TABLE = tempnames.INCREMENTAL_PERSONS
#: The engine's temp table of the wake-up times computed by this run.
WAKE_TABLE = tempnames.INCREMENTAL_WAKE
#: The engine's temp table of the new event files' ids (person, anonymous, dedupe key).
NEW_ROWS_TABLE = tempnames.INCREMENTAL_NEW_ROWS
#: The engine's temp tables of D's rows, named to shadow the input views.
D_ROWS = tempnames.INCREMENTAL_ROWS
#: The engine's temp table of the ``events`` view's rows of the new files (with the copy).
NEW_EVENTS = tempnames.INCREMENTAL_NEW_EVENTS
#: The engine's temp table of D's events read from the copy, renamed to shadow ``events``.
D_EVENTS = tempnames.INCREMENTAL_EVENTS
#: D's rows are read into tables when D is at most one person in this many, or at most
#: :data:`COPY_PERSONS` persons (the tables are held in memory).
COPY_SHARE = 4
COPY_PERSONS = 10_000
#: A run evaluates in full when D holds more than 1 in this many persons (and more than
#: :data:`COPY_PERSONS`): it would cost more than a full evaluation.
FULL_SHARE = 2

#: The DuckDB whose ``hash`` keys the copy of the events (another one writes it again).
VERSION = duckdb.__version__
#: The fingerprint's keys a view's rows of a file depend on (with the file).
VIEW_KEYS = ("the timezone", "the data configuration", "the columns of the data")
#: The engine's temp table of every person's hash of their persons and subscriptions rows.
ROW_HASHES = tempnames.INCREMENTAL_ROW_HASHES
#: The sources whose files an incremental run may find re-exported: it re-evaluates the
#: persons whose rows changed (by :data:`ROW_HASHES`), not everyone (SPEC 5); list files
#: too (the entries that name or match a person count among their rows).
DIFFED = ("persons", "subscriptions")


#: What a run does with the persons' row hashes (:attr:`Decision.hashes`).
Hashes = Literal["drop", "keep", "new"]


@dataclass
class Decision:
    """How a run evaluates: in full (with the reason said on stderr, None when asked for) or
    for the persons in :data:`PERSONS_TABLE` only."""

    full: bool
    reason: str | None = None
    new_files: list[str] = field(default_factory=list)
    persons: int = 0  # the size of D for an incremental run
    #: Whether D's rows are read once into tables (see :meth:`Incremental.restricted`).
    copy_events: bool = False
    #: The state's copy of the events when it holds the last run's rows (this run adds the
    #: new files' rows to it): D's events come from it, not from a scan of every file.
    copy: list[Path] | None = None
    #: Without a copy: whether this run writes one. Not after an event file it held changed
    #: or vanished: a source that rewrites its files makes every run full, and writing the
    #: copy (a sort of every event) would nearly double each; the next run with stable
    #: files writes it.
    write_copy: bool = True
    #: The persons' row hashes this run keeps: ``drop`` none, ``keep`` the kept ones (they
    #: still describe its rows), ``new`` everyone's, hashed into :data:`ROW_HASHES`. A
    #: project keeps none until a persons, subscriptions or list file is first re-exported
    #: (that run is full): 13 MiB at a million persons that a file never re-exported leaves
    #: unused.
    hashes: Hashes = "drop"
    #: Whether :data:`ROW_HASHES` holds them already (an incremental run diffs them early).
    hashed: bool = False


def named(plan: exp.Expr, *texts: str) -> set[str]:
    """The identifiers (lower case) a plan and some DuckDB SQL ``texts`` name: every column
    they read among them (:meth:`Incremental.d_events`)."""
    found = {i.name.lower() for i in plan.find_all(exp.Identifier)}
    for text in texts:
        tokens = Tokenizer().tokenize(text)
        found |= {t.text.lower() for t in tokens if t.token_type in _NAMES}
    return found


_NAMES = (TokenType.VAR, TokenType.IDENTIFIER)


def _without(found: dict[str, str], keys: set[str]) -> dict[str, str]:
    return {k: v for k, v in found.items() if k not in keys}


def _compare(old: dict[str, str], new: dict[str, str]) -> str | None:
    """The first difference, definitions first (the order :meth:`Incremental.fingerprint`
    builds)."""
    for key in [*new, *(k for k in old if k not in new)]:
        if key not in old:
            return f"{key} is new"
        if key not in new:
            return f"{key} is gone"
        if old[key] != new[key]:
            return f"{key} changed"
    return None


class Incremental:
    """One run's incremental machinery over the project's configuration, definitions and
    engine (whose views are registered). ``segctl.project.Project`` drives it:
    :meth:`decide` before evaluating (the plan then reads :data:`PERSONS_TABLE` as its
    persons filter, and the diff compares D's rows alone), :meth:`prepare_wake` after, and
    :meth:`save` inside the commit's transaction."""

    def __init__(self, config: Config, definitions: Definitions, engine: DuckDBEngine) -> None:
        self.config = config
        self.definitions = definitions
        self.engine = engine
        self._records: list[runfiles.FileRecord] | None = None
        self._fingerprint: dict[str, str] | None = None
        self._catalogue: Catalogue | None = None

    @property
    def root(self) -> Path:
        return self.config.root

    def records(self) -> list[runfiles.FileRecord]:
        """The input files of this run as they are now, stat'ed and fingerprinted once per run
        (the comparison with the last run and the commit's record share them)."""
        if self._records is None:
            self._records = runfiles.record(self.root, self.engine.inputs)
        return self._records

    def catalogue(self) -> Catalogue:
        """What the rules depend on besides the rows (:func:`segctl.wakeup.catalogue`), taken
        once per run: deciding and the wake-up times share it (0.27 s a walk over 1,000
        segments)."""
        if self._catalogue is None:
            schema = self.engine.schema()
            stamps = {c for t in schema.values() for c, k in t.items() if k is ColumnType.TIMESTAMP}
            self._catalogue = catalogue(self.definitions, stamps, schema.get("events", {}))
        return self._catalogue

    def fingerprint(self) -> dict[str, str]:
        """What a run's memberships depend on besides the event, persons and subscriptions
        files (those are compared file by file through ``run_inputs``): key -> hash. Taken
        once per run: the comparison with the last run and the commit share it."""
        if self._fingerprint is None:
            self._fingerprint = self._take_fingerprint()
        return dict(self._fingerprint)

    def _take_fingerprint(self) -> dict[str, str]:
        config = self.config
        found = {
            f"segment '{name}'": segment.source_hash
            for name, segment in self.definitions.segments.items()
        }
        features = config.features_file
        found["the features file"] = (
            hashlib.sha256(features.read_bytes()).hexdigest()
            if features is not None and features.is_file()
            else "none"
        )
        found["the timezone"] = config.timezone
        found["the data configuration"] = runfiles.data_hash(config)
        # The views' column types (a new file can add a column or widen a type): the plan is
        # compiled against them, for everyone.
        types = repr(sorted((t, sorted(c.items())) for t, c in self.engine.column_types().items()))
        found["the columns of the data"] = hashlib.sha256(types.encode()).hexdigest()
        found["the engine"] = config.engine.type
        files = {c.path for c in self._list_conditions}
        for file in sorted(files | self._identity_files):
            path = Path(file)
            key = runfiles.stored_path(self.root, file)
            try:
                info = path.stat()
                found[key] = (
                    f"{info.st_size}:{info.st_mtime_ns}:{runfiles.fingerprint(path, info.st_size)}"
                )
            except OSError:
                found[key] = "missing"
        return found

    @cached_property
    def _list_conditions(self) -> list[ListCondition]:
        """Every list condition of the catalogue (the fingerprint, the decision and the row
        hashes read them)."""
        return list_conditions(self.definitions.segments.values())

    @cached_property
    def _identity_files(self) -> set[str]:
        """The identities files' paths."""
        try:
            groups = resolve_inputs(
                "identities", self.config.inputs.get("identities", ()), self.root
            )
        except DataError:
            return set()  # no identities: the run itself reports a bad configuration
        return {file for group in groups for file in group.files}

    @cached_property
    def _identity_keys(self) -> set[str]:
        """The fingerprint's keys of the identities files (their stored paths)."""
        return {runfiles.stored_path(self.root, file) for file in self._identity_files}

    @cached_property
    def _list_keys(self) -> set[str]:
        """The fingerprint's keys of the catalogue's list files (their stored paths), but
        not of a file that is an identities file too (compared as such)."""
        identities = self._identity_files
        return {
            runfiles.stored_path(self.root, c.path)
            for c in self._list_conditions
            if c.path not in identities
        }

    def decide(self, store: StateStore, moment: datetime, full: bool) -> Decision:
        """Full or incremental, and for an incremental run D in the engine's
        :data:`PERSONS_TABLE`. The caller holds the lock; ``store`` is the state attached to
        the engine's connection. A full run keeps the state's copy of the events when it
        still holds the rows of the files it was written from (:meth:`_kept_copy`)."""
        decision = self._decide(store, moment, full)
        if decision.full and self.config.engine.type == "duckdb":
            if self.keeps_rows():
                decision.copy, decision.new_files, decision.write_copy = self._kept_copy(store)
            last = store.last_run()
            held = last is not None and kept_state.kept_row_hashes(store, last.run_id)
            if held and not decision.hashed:
                decision.hashes = "keep" if self._hashes_current(store) else "new"
        return decision

    def _hashes_current(self, store: StateStore) -> bool:
        """Whether the kept row hashes describe this run's persons and subscriptions rows and
        list entries: the files of those sources are as the last run read them."""
        last = store.last_run()
        if last is None:
            return False
        kept, now = kept_state.kept(store, last.run_id), self.fingerprint()
        if any(kept.get(key) != now.get(key) for key in [*VIEW_KEYS, *self._list_keys]):
            return False
        return self.same_files(store, DIFFED)

    def same_files(self, store: StateStore, sources: tuple[str, ...]) -> bool:
        """Whether the input files of ``sources`` are those the last committed run read,
        unchanged."""
        last = store.last_run()
        if last is None:
            return False
        recorded = {r.row() for r in runfiles.load(store, last.run_id) if r.source in sources}
        return recorded == {r.row() for r in self.records() if r.source in sources}

    def _hash_rows(self) -> None:
        """Every person's hash of their rows in the persons and subscriptions views and of the
        list entries naming or matching them (:meth:`_list_terms`) into :data:`ROW_HASHES`:
        the sum, modulo 2^64, of each row's MD5 (its low 64 bits) of the source's name and
        the row as JSON. JSON is one text per value, so a changed, added or removed row
        changes the sum unless 64 bits of two MD5s happen to agree."""
        con = self.engine.con
        [(database,)] = con.execute("SELECT current_database()").fetchall()
        schema = self.engine.schema()
        parts = [
            f"SELECT person_id, md5_number_lower({quote(table)} || to_json(r)::VARCHAR) AS h "
            f"FROM {qident(database)}.main.{qident(table)} AS r"
            for table in DIFFED
            if table in schema
        ]
        parts += self._list_terms(f"{qident(database)}.main.persons")
        rows = " UNION ALL ".join(parts)
        select = (
            f"SELECT person_id, (sum(h) % {2**64})::UBIGINT AS hash FROM ({rows}) "
            "WHERE person_id IS NOT NULL GROUP BY person_id"
            if rows
            else "SELECT NULL::VARCHAR AS person_id, NULL::UBIGINT AS hash WHERE false"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ROW_HASHES} AS {select}")

    def _list_terms(self, persons: str) -> list[str]:
        """The terms of the list files in the persons' hashes: one per entry of a list by
        ``person_id`` (the id it names) and per person whose email a list by ``email``
        holds, matched as the plan matches them (``segctl.compiler.conditions``)."""
        conditions = {(c.path, c.key): c for c in self._list_conditions}
        tables = self.engine.register_lists(list(conditions.values()))
        terms = []
        for (path, key), condition in sorted(conditions.items()):
            tag = quote(f"list {key} {condition.file}")
            keys = f"SELECT key FROM {qident(tables[path])}"
            if key != "email":
                terms.append(f"SELECT key AS person_id, md5_number_lower({tag}) AS h FROM ({keys})")
            elif "email" in self.engine.schema().get("persons", {}):
                terms.append(
                    f"SELECT person_id, md5_number_lower({tag}) AS h FROM {persons} "
                    f"WHERE lower(trim(email)) IN ({keys})"
                )
        return terms

    def prepare_rows(self, decision: Decision) -> None:
        """Hash everyone's persons and subscriptions rows when this run keeps new hashes and
        has not yet (outside :meth:`restricted`: the views' rows, not D's)."""
        if decision.hashes == "new" and not decision.hashed:
            self._hash_rows()
            decision.hashed = True

    def _kept_copy(self, store: StateStore) -> tuple[list[Path] | None, list[str], bool]:
        """For a full run: the state's copy of the events and the event files new since it
        was written, when it still holds the ``events`` view's rows of every file it was
        written from (each unchanged, and the data configuration, timezone and columns too).
        It depends on nothing else, so a new definition or ``run --full`` keeps it and adds
        the new files' rows, where writing it again costs a sort of every event. Last,
        whether to write a copy when it keeps none (:attr:`Decision.write_copy`)."""
        last = store.last_run()
        copy = event_rows.current(store, last.run_id, VERSION) if last is not None else None
        if last is None or copy is None:
            return None, [], True
        kept, now = kept_state.kept(store, last.run_id), self.fingerprint()
        if any(kept.get(key) != now.get(key) for key in VIEW_KEYS):
            return None, [], True
        recorded = {(r.source, r.path): r for r in runfiles.load(store, last.run_id)}
        files = {(r.source, r.path): r for r in self.records() if r.source == "events"}
        if any(files.get(key) != r for key, r in recorded.items() if key[0] == "events"):
            return None, [], False
        added = [r.path for key, r in files.items() if key not in recorded]
        return copy, [runfiles.absolute(self.root, path) for path in added], True

    def _decide(self, store: StateStore, moment: datetime, full: bool) -> Decision:
        if full:
            return Decision(True)
        if self.config.engine.type != "duckdb":
            return Decision(True, f"the {self.config.engine.type} engine evaluates in full")
        last = store.last_run()
        if last is None:
            return Decision(True, "first run")
        kept = kept_state.kept(store, last.run_id)
        if not kept:
            return Decision(True, f"run {last.run_id} kept no incremental state")
        cat = self.catalogue()
        if cat.unsupported:
            return Decision(True, cat.unsupported)
        if any(source.latest_by for source in self.config.sources.get("persons", ())):
            return Decision(True, "persons use latest_by")
        now, lists = self.fingerprint(), self._list_keys
        # Events that carry anonymous ids: the run diffs the identity map with the one the
        # last run kept and re-evaluates the persons whose ids moved (a changed identities
        # file, a new link), so it needs that map.
        linked = self.engine.loader.linked
        if linked and not kept_state.kept_identity_map(store, last.run_id):
            return Decision(True, f"run {last.run_id} kept no identity map")
        diffed_keys = lists | (self._identity_keys if linked else set())
        reason = _compare(_without(kept, diffed_keys), _without(now, diffed_keys))
        if reason:
            return Decision(True, reason)
        # The snapshot holds the segments in the run's order, then any since removed (their
        # members kept, should they come back): what a full run after a change commits.
        layout, names = store.snapshot_segments(), sorted(self.definitions.segments)
        if layout and layout[: len(names)] != names:
            return Decision(True, "the segments' layout changed")
        reason, added, diffed = self._files(runfiles.load(store, last.run_id), linked)
        if reason:
            return Decision(True, reason)
        changed = sorted(key for key in lists if kept.get(key) != now.get(key))
        diffed = diffed or (f"{changed[0]} changed" if changed else None)
        held = kept_state.kept_row_hashes(store, last.run_id)
        if diffed and not held:  # the first re-export: in full, keeping the hashes from now
            return Decision(True, diffed, hashes="new")
        new_files = [runfiles.absolute(self.root, r.path) for r in added]
        con = self.engine.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE {PERSONS_TABLE} (person_id VARCHAR)")
        hashes: Hashes = "new" if diffed else "keep" if held else "drop"
        if diffed:  # a re-exported persons, subscriptions or list file: the persons it changed
            self._hash_rows()
            kept_state.add_changed_rows(store, ROW_HASHES, PERSONS_TABLE)
        if linked:  # an id linked to another person (identities files, new rows): both
            kept_state.add_relinked(store, IDENTITY_MAP_TABLE, PERSONS_TABLE)
        copy = event_rows.current(store, last.run_id, VERSION) if self.keeps_rows() else None
        if copy is not None:
            self._new_events(new_files)
            con.execute(f"INSERT INTO {PERSONS_TABLE} SELECT person_id FROM {NEW_EVENTS}")
        elif new_files:
            self._add_new_file_persons(new_files)
        kept_state.add_woken(store, PERSONS_TABLE, moment)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {PERSONS_TABLE} AS "
            f"SELECT DISTINCT person_id FROM {PERSONS_TABLE} WHERE person_id IS NOT NULL"
        )
        count = int(con.execute(f"SELECT count(*) FROM {PERSONS_TABLE}").fetchall()[0][0])
        persons = kept_state.wakeup_count(store)
        if count > COPY_PERSONS and count * FULL_SHARE > persons:
            # Re-evaluating most persons through the persons filter, then merging, costs
            # more than a full evaluation (the next day past a local midnight, typically).
            reason = f"{count:,} of {persons:,} persons can have changed"
            return Decision(True, reason, hashes=hashes, hashed=bool(diffed))
        copy_events = count <= COPY_PERSONS or count * COPY_SHARE <= persons
        return Decision(
            False,
            None,
            new_files,
            count,
            copy_events,
            copy,
            hashes=hashes,
            hashed=bool(diffed),
        )

    def keeps_rows(self) -> bool:
        """Whether runs keep a copy of the events (:mod:`segctl.state.event_rows`): when the
        ``events`` view's rows of a file do not depend on other files' rows (no ``dedupe_on``,
        no identity map), so the copy grows by the new files' rows alone."""
        return "events" in self.engine.schema() and checks.additive(self.engine.loader)

    def _event_columns(self) -> list[str]:
        """The ``events`` view's columns, in order."""
        cursor = self.engine.con.execute("SELECT * FROM events LIMIT 0")
        return [str(d[0]) for d in cursor.description]

    def _raw(self) -> str | None:
        """The ``events`` view's column of the source's own timestamps, if it has one."""
        return self.engine.loader.raw_timestamp

    def _new_events(self, files: list[str]) -> None:
        """The ``events`` view's rows of the new ``files`` into :data:`NEW_EVENTS`, typed as
        the view (whose column types are those of the last run: the fingerprint says so)."""
        con = self.engine.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW_EVENTS} AS SELECT * FROM events LIMIT 0")
        rows = self.engine.loader.events_of(files)
        if rows is not None:
            with self.engine.plan_errors():
                con.execute(f"INSERT INTO {NEW_EVENTS} BY NAME {duck(rows)}")

    @contextmanager
    def restricted(
        self, decision: Decision, reads: Collection[str] | None = None
    ) -> Iterator[None]:
        """While inside, an incremental run's queries read D's rows of the events, persons
        and subscriptions from tables of them that shadow the engine's views (a temp table
        comes first in DuckDB's search path): the input files are scanned once, where the
        plan and the wake-up times would scan them each (several times for the plan). The
        plan is restricted to D anyway and no condition reads another person's rows, so it
        computes the same. Only for a D of at most :data:`COPY_PERSONS` persons or 1 in
        :data:`COPY_SHARE` of them: the tables are held in memory. ``reads``: the identifiers
        the queries inside name, if known (:meth:`d_events`)."""
        if decision.full or not decision.copy_events:
            yield
            return
        con = self.engine.con
        [(database,)] = con.execute("SELECT current_database()").fetchall()
        views = self.shadowed(decision)
        try:
            for view in views:
                source = f"{qident(database)}.main.{qident(view)}"
                if view == "events":
                    self.d_events(decision, source, reads)
                    continue
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {qident(view)} AS SELECT * FROM {source} "
                    f"WHERE person_id IN (SELECT person_id FROM {PERSONS_TABLE})"
                )
            yield
        finally:
            for view in views:
                con.execute(f"DROP TABLE IF EXISTS temp.main.{qident(view)}")

    def d_events(self, decision: Decision, view: str, reads: Collection[str] | None) -> None:
        """D's rows of the events into a temp table ``events``: from the copy and the new
        files' rows when the state keeps a copy, else from the ``view``. Given the
        identifiers ``reads`` of the queries to run (:func:`named`), only the columns they
        name are read, the others left NULL (the table keeps every column, so that a
        ``SELECT *`` still binds): a wide export's row is decoded at a cost per column, and a
        catalogue reads a few. An alias that happens to be a column's name only makes the
        column read needlessly."""
        con = self.engine.con
        columns = self._event_columns()
        if reads is not None:
            columns = [c for c in columns if c.lower() in reads]
        con.execute(f"CREATE OR REPLACE TEMP TABLE {D_EVENTS} AS SELECT * FROM {view} LIMIT 0")
        listed = ", ".join(qident(c) for c in columns)
        if decision.copy is not None:
            event_rows.read(con, decision.copy, PERSONS_TABLE, D_EVENTS, columns, self._raw())
            rows = f"SELECT {listed} FROM {NEW_EVENTS}"
        else:
            d = f"SELECT person_id FROM {PERSONS_TABLE}"
            rows = f"SELECT {listed} FROM {view} WHERE person_id IN ({d})"
        con.execute(f"INSERT INTO {D_EVENTS} BY NAME {rows}")
        con.execute(f"ALTER TABLE temp.main.{D_EVENTS} RENAME TO events")

    def _files(
        self, recorded: list[runfiles.FileRecord], linked: bool
    ) -> tuple[str | None, list[runfiles.FileRecord], str | None]:
        """Why the event files forbid an incremental run (a recorded one changed or gone),
        else None and the new event files; last, the first change of a persons or
        subscriptions file (changed, gone or new), whose rows a run diffs by person. When
        ``linked``, the identities files' changes are the identity map's (diffed by person)."""
        ignored = {"identities"} if linked else set()
        now = {(r.source, r.path): r for r in self.records() if r.source not in ignored}
        diffed = None
        for rec in recorded:
            if rec.source in ignored:
                continue
            current = now.get((rec.source, rec.path))
            change = None
            if current is None:
                change = f"{rec.path} is gone"
            elif current != rec:
                change = f"{rec.path} changed"
            if change is not None and rec.source not in DIFFED:
                return change, [], None
            diffed = diffed or change
        before = {(r.source, r.path) for r in recorded}
        added = [r for key, r in now.items() if key not in before]
        other = [r for r in added if r.source != "events"]
        if other:
            diffed = diffed or f"{other[0].source}: {other[0].path} is new"
        return None, [r for r in added if r.source == "events"], diffed

    def _add_new_file_persons(self, files: list[str]) -> None:
        """Add to :data:`PERSONS_TABLE` every person whose rows the new ``files`` can change:
        the persons of their rows (an anonymous row's through the identity map), and, since a
        new row can move an old row to another person, the persons of every row sharing a
        ``dedupe_on`` key with a new row (the copy kept can change). An anonymous id's old
        rows move only when its entry in the map changes, and the map diff has added both
        persons of every entry that did (:func:`segctl.state.incremental.add_relinked`)."""
        loader = self.engine.loader
        con = self.engine.con
        selects = []
        for _, one in loader.read_events_of(files):
            values = [
                duck(cols.text(found)) if (found := one.picked.get(key)) else "NULL::VARCHAR"
                for key in ("person_id", "anonymous_id", "dedupe_on")
            ]
            selects.append(
                f"SELECT {values[0]} AS person_id, {values[1]} AS anonymous_id, "
                f"{values[2]} AS key FROM {duck(one.reader)}"
            )
        if not selects:
            return
        rows = NEW_ROWS_TABLE
        con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS {' UNION ALL '.join(selects)}")
        con.execute(f"INSERT INTO {PERSONS_TABLE} SELECT person_id FROM {rows}")
        resolved = "s.person_id"
        if loader.linked:
            con.execute(
                f"INSERT INTO {PERSONS_TABLE} SELECT m.person_id FROM {rows} AS r "
                f"JOIN {IDENTITY_MAP_TABLE} AS m ON r.person_id IS NULL AND r.anonymous_id = m.id"
            )
            resolved = "coalesce(s.person_id, m.person_id)"
        for staged in loader.staged.get("events", []):
            if not staged.dedupe:
                continue
            anonymous = any(g.picked.get("anonymous_id") for g in staged.groups)
            join = (
                f" LEFT JOIN {IDENTITY_MAP_TABLE} AS m ON s.person_id IS NULL "
                "AND s.anonymous_id = m.id"
                if loader.linked and anonymous
                else ""
            )
            con.execute(
                f"INSERT INTO {PERSONS_TABLE} SELECT {resolved if join else 's.person_id'} "
                f"FROM ({duck(staged.query)}) AS s{join} "
                f"WHERE s.{qident(DUPLICATE)} IN (SELECT key FROM {rows})"
            )

    def wake_sql(self, moment: datetime, only: str | None, shadowed: list[str]) -> str:
        """SELECT person_id, wake: per person a lower bound of the first instant at or after
        ``moment`` at which a membership can change without a new row, for the persons in the
        table ``only`` (everyone when None; the ``shadowed`` views hold their rows alone):
        :func:`segctl.wakeup.wake_sql`."""
        cat = self.catalogue()
        timezone = self.config.timezone
        return wakeup.wake_sql(self.engine.schema(), cat, moment, timezone, only, shadowed)

    def run_wake_sql(self, moment: datetime, decision: Decision) -> str:
        """:meth:`wake_sql` of this run: of D, or of everyone for a full run."""
        only = PERSONS_TABLE if not decision.full else None
        return self.wake_sql(moment, only, self.shadowed(decision))

    def prepare_wake(self, wake: str) -> None:
        """Compute this run's wake-up times (``wake``: :meth:`run_wake_sql`) into the
        engine's :data:`WAKE_TABLE`, before the commit's transaction (inside
        :meth:`restricted`)."""
        self.engine.con.execute(f"CREATE OR REPLACE TEMP TABLE {WAKE_TABLE} AS {wake}")

    def shadowed(self, decision: Decision) -> list[str]:
        """The views :meth:`restricted` shadows with tables of D's rows for ``decision``:
        their reads need no filter by D."""
        if decision.full or not decision.copy_events:
            return []
        return [t for t in D_ROWS if t in self.engine.schema()]

    def committed_sizes(self, store: StateStore) -> dict[str, int] | None:
        """Segment -> members of the committed snapshot when the last run's figures still
        say it (no erasure since), else None: an incremental run's sizes are these moved by
        its transitions (:func:`segctl.diff.compute`)."""
        last = store.last_run()
        return kept_state.committed_sizes(store, last.run_id) if last is not None else None

    def save(
        self, store: StateStore, run_id: int, kept: dict[str, str] | None, decision: Decision
    ) -> None:
        """Inside the commit's transaction: this run's catalogue fingerprint ``kept`` (from
        :meth:`fingerprint`, taken before the transaction) and wake-up times; ``kept`` None
        keeps nothing, so the next run is full."""
        only = None if decision.full else PERSONS_TABLE
        new = ROW_HASHES if decision.hashes == "new" else None
        hashes = decision.hashes != "drop"
        linked = IDENTITY_MAP_TABLE if self.engine.loader.linked else None
        kept_state.save(store, run_id, kept, WAKE_TABLE, only, hashes, new, map_table=linked)
        names: list[str] = []
        copy = decision.copy
        if kept is None or not self.keeps_rows():
            pass  # no copy
        elif copy is None:
            if decision.write_copy:  # the first run that keeps one, or a rewrite
                names = [event_rows.write(store, "events", self._raw())]
        elif decision.new_files:
            if decision.full:  # an incremental run read them in decide()
                self._new_events(decision.new_files)
            added = event_rows.write(store, NEW_EVENTS, self._raw())
            names = event_rows.grown(store, copy, added)
        else:
            names = [f.name for f in copy]
        event_rows.record(store, run_id, VERSION, names)

    def collect(self, store: StateStore) -> None:
        """After the commit: delete the files of the copy of the events it no longer uses."""
        event_rows.collect(store)
