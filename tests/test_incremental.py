"""Incremental ``segctl run`` (SPEC 5, docs/realtime.md "Incremental runs").

The proof: a hypothesis state machine appends event files (new events, late events with old
timestamps, events after as_of, duplicates, persons whose first events arrive), advances
as_of (with and without a new file, across local day boundaries of the case's timezone) and
changes definitions; after every step the incrementally committed snapshot and transitions
equal those of ``run --full`` on a copy of the project taken just before the run, and the
memberships equal the reference evaluator's (tests/reference.py) over the files written so far.
The catalogue and the data come from tests/test_differential.py's ``cases()``: the whole
language.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from copy import deepcopy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from exports import (
    Truth,
    truth,
    write_amplitude,
    write_ga4,
    write_mixpanel,
    write_posthog,
    write_segment_archive,
)
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from reference import resolve_identities
from stateproject import AS_OF, T0, iso, segctl, snapshot_members, write_project
from test_differential import (
    COUNTRIES,
    EMAILS,
    LIST_EMAILS,
    LIST_FILES,
    MRRS,
    ORPHAN_ID,
    PERSONS_SCHEMA,
    PLANS,
    RAW_EVENTS_SCHEMA,
    SCORES,
    STATUSES,
    SUBSCRIPTION_PLANS,
    SUBSCRIPTIONS_SCHEMA,
    Case,
    StitchedCase,
    _uses_last,
    cases,
    stitched_cases,
)
from test_differential import write_events as write_case_events

import segctl as lib
from segctl import incremental
from segctl.incremental import catalogue
from segctl.state import DB_FILE, event_rows

Row = dict[str, Any]

#: How far a step moves as_of: seconds around window edges, hours, local day boundaries, weeks.
STEPS = [
    timedelta(seconds=1),
    timedelta(minutes=30),
    timedelta(hours=5),
    timedelta(hours=23, minutes=59, seconds=59),
    timedelta(days=1),
    timedelta(days=1, hours=7),
    timedelta(days=3),
    timedelta(days=7),
    timedelta(days=31),
]
SECOND = timedelta(seconds=1)
#: The values a re-exported persons or subscriptions row takes, per column (empty: a time).
REEXPORTED: dict[str, dict[str, list[Any]]] = {
    "persons": {
        "email": EMAILS,
        "plan": PLANS,
        "country": COUNTRIES,
        "score": SCORES,
        "created_at": [],
    },
    "subscriptions": {"status": STATUSES, "plan": SUBSCRIPTION_PLANS, "mrr": MRRS},
}
#: Shifts applied to an existing event's timestamp to make a new one (late, future, on edges).
SHIFTS = [
    timedelta(0),
    timedelta(seconds=1),
    timedelta(seconds=-1),
    timedelta(days=1),
    timedelta(days=-1),
    timedelta(days=-7),
    timedelta(days=-40),
    timedelta(hours=6),
]


def committed(root: Path) -> tuple[dict[str, set[str]], set[tuple[str, str, str]]]:
    """The committed snapshot and the last run's transitions, read from the state database."""
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    try:
        members = snapshot_members(con)
        moves = {
            (str(s), str(p), str(k))
            for s, p, k in con.execute(
                "SELECT segment, person_id, kind FROM transitions "
                "WHERE run_id = (SELECT max(run_id) FROM runs)"
            ).fetchall()
        }
    finally:
        con.close()
    return members, moves


def one_wake_up_time_each(root: Path) -> bool:
    """Whether the state keeps at most one wake-up time per person (an incremental run
    replaces D's, never adds a second row for anyone)."""
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    try:
        [(rows, persons)] = con.execute(
            "SELECT count(*), count(DISTINCT person_id) FROM wakeups"
        ).fetchall()
    finally:
        con.close()
    return bool(rows == persons)


def _references(text: str) -> set[str]:
    """The segments a segment file's YAML references (``segment:`` conditions)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("segment"), str):
                found.add(node["segment"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(text))
    return found


def without_zone(path: Path) -> None:
    """Rewrite an events Parquet file with its timestamps naive (the same UTC instants)."""
    table = pq.read_table(path)
    index = table.schema.get_field_index("timestamp")
    stamps = table.column(index).cast(pa.timestamp("us"))
    pq.write_table(table.set_column(index, "timestamp", stamps), path)


class IncrementalMachine(RuleBasedStateMachine):
    """One project run incrementally, compared after each run with a full run on a copy."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="segctl-incr-"))
        self.root = self.folder / "project"
        self.case: Case | None = None
        self.written: list[Row] = []
        self.as_of = datetime.min
        self.files = 0
        self.full_runs = 0
        self.incremental_runs = 0
        self.reference_applies = True  # False once the reference's rules differ (see below)
        self.reexported = False  # whether a re-export made the state keep the row hashes
        self.removed: dict[str, str] = {}  # segment files taken out, by name

    def teardown(self) -> None:
        if hasattr(self, "saved"):
            incremental.COPY_SHARE, incremental.COPY_PERSONS, event_rows.UNSORTED_SHARE = self.saved
        shutil.rmtree(self.folder, ignore_errors=True)
        event(f"incremental runs: {self.incremental_runs}, full: {self.full_runs}")

    # ---- set-up ---------------------------------------------------------------------------

    @initialize(case=cases(), data=st.data())
    def start(self, case: Case, data: st.DataObject) -> None:
        """The case's project with some of its events as the first file; the first run (full)
        starts before the case's as_of so that later steps cross its window edges."""
        self.case = case
        self.root.mkdir(parents=True)
        case.write(self.root)
        (self.root / "data" / "events.parquet").unlink()
        config = yaml.safe_load((self.root / "segctl.yaml").read_text())
        config["data"]["events"] = "data/events/*.parquet"
        (self.root / "segctl.yaml").write_text(yaml.safe_dump(config))
        (self.root / "data" / "events").mkdir()
        first = [e for e in case.events if data.draw(st.booleans())]
        self.write(first)
        back = data.draw(
            st.sampled_from(
                [timedelta(0), timedelta(days=1), timedelta(days=8), -timedelta(days=2)]
            )
        )
        self.as_of = case.as_of - back
        note(case.describe())
        self.read_rows(data)
        # Steps of exactly the catalogue's durations (and a second either side) move as_of
        # across the window edges of the events written so far.
        project = lib.Project.load(self.root)
        stamps = {"timestamp", "created_at", "updated_at"}
        found = catalogue(project.definitions, stamps).durations
        self.durations = [d for d in found if d]
        self.edges = sorted({d + j for d in self.durations for j in (-SECOND, 0 * SECOND, SECOND)})
        self.uses_last = _uses_last([yaml.safe_load(t) for t in case.segment_files.values()]) or (
            case.features_file is not None and "last" in case.features_file
        )
        self.run()

    def read_rows(self, data: st.DataObject) -> None:
        """How this machine's incremental runs read D's rows: into tables (from the state's
        copy of the events when it is kept, else from one scan of the files), or through
        the views (as for a D of more than a quarter of the persons)."""
        self.saved = (incremental.COPY_SHARE, incremental.COPY_PERSONS, event_rows.UNSORTED_SHARE)
        if data.draw(st.booleans(), label="D's rows through the views"):
            incremental.COPY_SHARE, incremental.COPY_PERSONS = 10**9, 0
        # The copy's small files merged into the whole (tiny files: nearly always), or not.
        event_rows.UNSORTED_SHARE = data.draw(st.sampled_from([0.25, 1000.0]))

    def write(self, rows: list[Row], naive: bool = False) -> None:
        """A new event file, named so that it sorts anywhere among the others; ``naive``: its
        timestamps without a zone (UTC), beside the others' zoned ones."""
        name = f"{random.Random(self.files).randrange(10**6):06d}-{self.files}.parquet"
        path = self.root / "data" / "events" / name
        write_case_events(rows, path)
        if naive:
            without_zone(path)
        self.files += 1
        self.written += rows

    # ---- rules ----------------------------------------------------------------------------

    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def append_file(self, data: st.DataObject, step: timedelta) -> None:
        """New events (the case's, or copies moved late, early, after as_of) and duplicates."""
        self.new_file(data, step)
        self.as_of += step
        self.run()

    def new_file(self, data: st.DataObject, step: timedelta) -> None:
        """Write a file of new events (:meth:`append_file`) for a run at ``as_of + step``."""
        assert self.case is not None
        pool = self.pool()
        rows: list[Row] = []
        for _ in range(data.draw(st.integers(0, 6))):
            how = data.draw(st.sampled_from(["case", "shifted", "duplicate", "future"]))
            if how == "duplicate" and self.written:
                rows.append(dict(data.draw(st.sampled_from(self.written))))
            elif pool:
                row = dict(data.draw(st.sampled_from(pool)))
                if how == "shifted":
                    row["timestamp"] += data.draw(st.sampled_from(SHIFTS))
                elif how == "future":  # after the next run's as_of: counted later
                    row["timestamp"] = self.as_of + step + data.draw(st.sampled_from(STEPS))
                rows.append(row)
        if self.uses_last:
            # The order of tied events under `last:` is unspecified: keep timestamps distinct
            # per person (identical duplicates are harmless: they tie with themselves).
            seen = {(r["person_id"], r["timestamp"]): r for r in self.written}
            kept = []
            for r in rows:
                other = seen.get((r["person_id"], r["timestamp"]))
                if other is None or other == r:
                    seen[(r["person_id"], r["timestamp"])] = r
                    kept.append(r)
            rows = kept
        event(f"file of {min(len(rows), 3)}+ rows")
        self.write(rows, naive=data.draw(st.booleans(), label="naive timestamps"))

    @precondition(lambda self: bool(getattr(self, "edges", None)))
    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def append_events_near_an_edge(self, data: st.DataObject, step: timedelta) -> None:
        """Events (copies of the case's) placed just inside one of the catalogue's windows at
        the next as_of: they leave it soon after, with no new row of their persons."""
        assert self.case is not None
        if not self.pool():
            return
        duration = data.draw(st.sampled_from(self.durations))
        after = data.draw(st.sampled_from([SECOND, timedelta(hours=1), timedelta(days=1)]))
        rows = []
        for _ in range(data.draw(st.integers(1, 4))):
            row = dict(data.draw(st.sampled_from(self.pool())))
            row["timestamp"] = self.as_of + step - duration + after
            rows.append(row)
        if self.uses_last:  # distinct timestamps per person under `last:` (see append_file)
            taken = {(r["person_id"], r["timestamp"]) for r in self.written}
            rows = [r for r in rows if (r["person_id"], r["timestamp"]) not in taken]
            rows = list({(r["person_id"], r["timestamp"]): r for r in rows}.values())
        self.write(rows)
        self.as_of += step
        self.run()

    @rule(step=st.sampled_from(STEPS))
    def time_passes(self, step: timedelta) -> None:
        """No new file: only time-based changes (window edges, local days, created_at...)."""
        self.as_of += step
        self.run()

    @precondition(lambda self: bool(getattr(self, "edges", None)))
    @rule(data=st.data())
    def time_passes_by_a_window(self, data: st.DataObject) -> None:
        """No new file; as_of moves by one of the catalogue's durations (+-1s): events that
        were at as_of, or on a window edge, cross an edge exactly now."""
        self.as_of += data.draw(st.sampled_from(self.edges))
        self.run()

    @precondition(lambda self: self.case is not None and len(self.case.segment_files) > 1)
    @rule(data=st.data())
    def change_definition(self, data: st.DataObject) -> None:
        """A segment takes the rule of an earlier one (references stay acyclic), with or
        without a new file: a full run."""
        assert self.case is not None
        names = list(self.case.segment_files)
        i = data.draw(st.integers(1, len(names) - 1))
        j = data.draw(st.integers(0, i - 1))
        target = yaml.safe_load(self.case.segment_files[names[i]])
        target["rule"] = yaml.safe_load(self.case.segment_files[names[j]])["rule"]
        text = yaml.safe_dump(target, sort_keys=False)
        files = {**self.case.segment_files, names[i]: text}
        self.case = replace(self.case, segment_files=files)
        (self.root / "segments" / f"{names[i]}.yaml").write_text(text)
        step = data.draw(st.sampled_from(STEPS))
        if data.draw(st.booleans(), label="with a new file"):  # the full run adds it to the copy
            self.new_file(data, step)
        self.as_of += step
        self.run()

    @precondition(lambda self: self.case is not None and len(self.case.segment_files) > 1)
    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def remove_or_restore_a_segment(self, data: st.DataObject, step: timedelta) -> None:
        """A segment file taken out (one no other segment references), or one taken out
        earlier put back: a full run, then incremental ones again (the snapshot keeps a
        removed segment's members in slots after the others'; the runs after a removal were
        all full)."""
        assert self.case is not None
        files = dict(self.case.segment_files)
        back = [n for n, text in self.removed.items() if _references(text) <= set(files)]
        if back and data.draw(st.booleans(), label="put one back"):
            name = data.draw(st.sampled_from(sorted(back)))
            files[name] = self.removed.pop(name)
            (self.root / "segments" / f"{name}.yaml").write_text(files[name])
        else:
            used = set().union(*(_references(text) for text in files.values()))
            free = sorted(n for n in files if n not in used)
            if not free:
                return
            name = data.draw(st.sampled_from(free))
            self.removed[name] = files.pop(name)
            (self.root / "segments" / f"{name}.yaml").unlink()
        self.case = replace(self.case, segment_files=files)
        self.as_of += step
        self.run()

    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def reexport_persons_subscriptions_or_lists(self, data: st.DataObject, step: timedelta) -> None:
        """The persons or subscriptions file written again with rows changed, added or
        removed, or a list file with entries added or removed (values from the case's own):
        the persons whose rows or entries changed are re-evaluated (SPEC 5), or everyone when
        that is most of them."""
        assert self.case is not None
        if not self.reexported:  # the first re-export is full; it keeps the row hashes
            self.reexported = True
            self.write_persons_and_lists(self.case)
            self.as_of += SECOND
            self.run()
        persons = [dict(p) for p in self.case.persons]
        subscriptions = [dict(s) for s in self.case.subscriptions]
        stamps = [p["created_at"] for p in persons] + [e["timestamp"] for e in self.written]
        lists = {file: [dict(r) for r in rows] for file, rows in self.case.lists.items()}
        for _ in range(data.draw(st.integers(1, 3))):
            table = data.draw(st.sampled_from(["persons", "subscriptions", *LIST_FILES]))
            if table in LIST_FILES:  # a list by person_id or by email
                entries = lists[LIST_FILES[table]]
                if len(entries) > 1 and data.draw(st.booleans(), label="remove an entry"):
                    entries.pop(data.draw(st.integers(0, len(entries) - 1)))
                else:
                    named = [p.get(table) for p in persons if p.get(table)]
                    extra = LIST_EMAILS if table == "email" else [ORPHAN_ID, "P1"]
                    entries.append({table: data.draw(st.sampled_from([*named, *extra]))})
                continue
            rows = persons if table == "persons" else subscriptions
            how = data.draw(st.sampled_from(["change", "add", "remove"]))
            if how == "remove" and rows:
                rows.pop(data.draw(st.integers(0, len(rows) - 1)))
            elif how == "change" and rows:
                row = rows[data.draw(st.integers(0, len(rows) - 1))]
                values = REEXPORTED[table]
                column = data.draw(st.sampled_from(sorted(values)))
                row[column] = data.draw(st.sampled_from(values[column] or [None, *stamps]))
            elif how == "add" and table == "persons":
                taken = {p["person_id"] for p in persons}
                free = [i for i in [ORPHAN_ID, *(f"p{n}" for n in range(12))] if i not in taken]
                source = data.draw(st.sampled_from(persons)) if persons else {"created_at": None}
                persons.append({**source, "person_id": free[0]})
            elif how == "add" and rows:
                # A later row of a person's history (distinct updated_at per person).
                source = dict(data.draw(st.sampled_from(rows)))
                latest = max(r["updated_at"] for r in rows if r["person_id"] == source["person_id"])
                source["updated_at"] = latest + data.draw(st.sampled_from(STEPS))
                rows.append(source)
        self.case = replace(self.case, persons=persons, subscriptions=subscriptions, lists=lists)
        self.write_persons_and_lists(self.case)
        self.as_of += step
        result = self.run()
        event(f"re-export: {'incremental' if result.incremental else result.full_reason}")

    def write_persons_and_lists(self, case: Case) -> None:
        """The case's persons, subscriptions and list files, written again."""
        for file, entries in case.lists.items():
            with (self.root / file).open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
                writer.writeheader()
                writer.writerows(entries)
        data = self.root / "data"
        pq.write_table(pa.Table.from_pylist(case.persons, PERSONS_SCHEMA), data / "persons.parquet")
        pq.write_table(
            pa.Table.from_pylist(case.subscriptions, SUBSCRIPTIONS_SCHEMA),
            data / "subscriptions.parquet",
        )

    # ---- the comparison -------------------------------------------------------------------

    def run(self) -> lib.RunResult:
        """Run incrementally here and in full on a copy taken just before; compare both with
        each other and with the reference over the events written so far."""
        assert self.case is not None
        copy = self.folder / "full"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.root, copy)
        stamp = iso(self.as_of)
        result = lib.Project.load(self.root).run(as_of=stamp)
        from_scratch = lib.Project.load(copy).run(as_of=stamp, full=True)
        # The data and freshness warnings too: an incremental run adds its new files' figures
        # to the kept ones (segctl.project.figures) where a full run counts every event.
        assert result.warnings == from_scratch.warnings, (stamp, result.full_reason)
        if result.incremental:
            self.incremental_runs += 1
            event(f"persons re-evaluated: {min(result.persons_evaluated, 5)}+")
        else:
            self.full_runs += 1
            event(f"full evaluation: {(result.full_reason or '').split(' ')[0]}")
        incremental, full = committed(self.root), committed(copy)
        assert one_wake_up_time_each(self.root), stamp
        assert incremental[0] == full[0], (stamp, result.full_reason)
        assert incremental[1] == full[1], (stamp, result.full_reason)
        # The run's figures: an incremental run's sizes are the committed ones moved by its
        # transitions (diff.compute's persons), a full run's counted.
        assert result.changes == from_scratch.changes, (stamp, result.full_reason)
        if not self.reference_applies:
            return result
        expected = self.reference()
        for name in self.case.segment_files:
            assert incremental[0].get(name, set()) == expected[name], (name, stamp)
            assert result.changes[name].size == len(expected[name]), (name, stamp)
        return result

    def pool(self) -> list[Row]:
        """The rows new files copy."""
        assert self.case is not None
        return self.case.events

    def reference(self) -> dict[str, set[str]]:
        """The reference evaluator's members over the events written so far."""
        assert self.case is not None
        return replace(self.case, as_of=self.as_of).expected(events=self.written)

    @invariant()
    def as_of_moves_forward(self) -> None:
        assert self.case is None or self.as_of >= self.case.as_of - timedelta(days=8)
        assert self.files >= 1 or self.case is None


class StitchedMachine(IncrementalMachine):
    """The same over events as a tool exports them (tests/test_differential.py's stitched
    cases): anonymous rows, rows carrying both ids, an identities file, ``dedupe_on`` (or
    not). New files also link an anonymous id to another person (re-mapping the old rows of
    that id: its old person changes with no row of theirs in the file), repeat a key with
    another person and an earlier time (the copy kept changes), or hold only anonymous rows
    of linked ids (only the identity map names their persons)."""

    @initialize(case=stitched_cases(), data=st.data())
    def start(self, case: Case, data: st.DataObject) -> None:
        assert isinstance(case, StitchedCase)
        self.case = case
        self.root.mkdir(parents=True)
        case.write(self.root)
        (self.root / "data" / "events.parquet").unlink()
        config = yaml.safe_load((self.root / "segctl.yaml").read_text())
        config["data"]["events"]["path"] = "data/events/*.parquet"
        # Without dedupe_on, no run reads keys: only the identity map names the persons of
        # a new file's anonymous rows.
        self.dedupe = data.draw(st.booleans(), label="dedupe_on")
        if not self.dedupe:
            del config["data"]["events"]["dedupe_on"]
        (self.root / "segctl.yaml").write_text(yaml.safe_dump(config))
        (self.root / "data" / "events").mkdir()
        self.keys: dict[str, Row] = {}
        self.write([e for e in case.raw_events if data.draw(st.booleans())])
        self.as_of = case.as_of - data.draw(st.sampled_from([timedelta(0), timedelta(days=8)]))
        note(case.describe())
        self.read_rows(data)
        project = lib.Project.load(self.root)
        stamps = {"timestamp", "created_at", "updated_at"}
        self.durations = [d for d in catalogue(project.definitions, stamps).durations if d]
        self.edges = sorted({d + j for d in self.durations for j in (-SECOND, 0 * SECOND, SECOND)})
        self.uses_last = _uses_last([yaml.safe_load(t) for t in case.segment_files.values()]) or (
            case.features_file is not None and "last" in case.features_file
        )
        self.run()

    def write(self, rows: list[Row], naive: bool = False) -> None:
        """Raw rows; a row that is not an exact repeat of a written key gets a key of its own
        (a repeat keeps it: dedupe_on drops it). ``naive``: as :meth:`IncrementalMachine.write`."""
        out = []
        for row in rows:
            key = row.get("event_id")
            if key in self.keys and self.keys[key] != row:
                row = {**row, "event_id": f"n{len(self.keys)}-{self.files}"}
            self.keys.setdefault(str(row["event_id"]), row)
            out.append(row)
        name = f"{random.Random(self.files).randrange(10**6):06d}-{self.files}.parquet"
        events = [
            {k: list(v.items()) if isinstance(v, dict) else v for k, v in e.items()} for e in out
        ]
        table = pa.Table.from_pylist(events, RAW_EVENTS_SCHEMA)
        pq.write_table(table, self.root / "data" / "events" / name)
        if naive:
            without_zone(self.root / "data" / "events" / name)
        self.files += 1
        self.written += out

    def pool(self) -> list[Row]:
        assert isinstance(self.case, StitchedCase)
        return list(self.case.raw_events)

    def reference(self) -> dict[str, set[str]]:
        assert isinstance(self.case, StitchedCase)
        key = "event_id" if self.dedupe else None
        resolved = resolve_identities(self.written, self.case.identities, key)
        plain = replace(self.case, as_of=self.as_of, raw_events=())
        return Case.expected(plain, events=resolved)

    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def link_an_anonymous_id(self, data: st.DataObject, step: timedelta) -> None:
        """A row carrying a person id and another person's (or nobody's) anonymous id: the
        id's old rows may move to this person (the smallest linked id wins)."""
        anonymous = sorted({str(r["anonymous_id"]) for r in self.pool() if r["anonymous_id"]})
        persons = sorted({str(r["person_id"]) for r in self.pool() if r["person_id"]})
        if not anonymous or not persons:
            return
        row = dict(data.draw(st.sampled_from(self.pool())))
        row["person_id"] = data.draw(st.sampled_from(["p", *persons]))  # "p" sorts first
        row["anonymous_id"] = data.draw(st.sampled_from(anonymous))
        # A microsecond of its own: ties under `last:` are in no set order.
        moved = data.draw(st.sampled_from(SHIFTS)) + timedelta(microseconds=self.files + 1)
        row["timestamp"] = self.as_of + moved
        row["event_id"] = f"link-{self.files}"
        self.write([row])
        self.as_of += step
        self.run()

    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def append_anonymous_rows(self, data: st.DataObject, step: timedelta) -> None:
        """A new file of anonymous rows alone (no person id) of ids already linked: their
        persons have no row in the file; only the identity map names them."""
        assert isinstance(self.case, StitchedCase)
        linked = {str(link["id"]) for link in self.case.identities} | {
            str(r["anonymous_id"]) for r in self.written if r["anonymous_id"] and r["person_id"]
        }
        if not linked or not self.pool():
            return
        rows = []
        for i in range(data.draw(st.integers(1, 3))):
            row = dict(data.draw(st.sampled_from(self.pool())))
            row["person_id"] = None
            row["anonymous_id"] = data.draw(st.sampled_from(sorted(linked)))
            moved = data.draw(st.sampled_from(SHIFTS)) + timedelta(microseconds=self.files + i + 1)
            row["timestamp"] = self.as_of + moved
            row["event_id"] = f"anonymous-{self.files}-{i}"
            rows.append(row)
        self.write(rows)
        self.as_of += step
        self.run()

    @rule(data=st.data())
    def reexport_identities(self, data: st.DataObject) -> None:
        """The identities file written again with links moved to another person, added or
        removed: the run diffs the identity map the last run kept and re-evaluates the
        persons whose ids moved (SPEC 5), not everyone."""
        assert isinstance(self.case, StitchedCase)
        links = [dict(r) for r in self.case.identities]
        # The ids whose rows move: of rows written with no person id.
        anonymous = sorted(
            {
                str(r["anonymous_id"])
                for r in self.written
                if r["anonymous_id"] and not r["person_id"]
            }
        )
        persons = sorted({str(p["person_id"]) for p in self.case.persons})
        if not anonymous or not persons:
            return
        for _ in range(data.draw(st.integers(1, 3))):
            how = data.draw(st.sampled_from(["move", "add", "remove"]))
            if how == "remove" and links:
                links.pop(data.draw(st.integers(0, len(links) - 1)))
            elif how == "move" and links:
                links[data.draw(st.integers(0, len(links) - 1))]["person_id"] = data.draw(
                    st.sampled_from(["p", *persons])
                )
            else:
                links.append(
                    {
                        "id": data.draw(st.sampled_from(anonymous)),
                        "person_id": data.draw(st.sampled_from(["p", *persons])),
                    }
                )
        self.case = replace(self.case, identities=tuple(links))
        schema = pa.schema([("id", pa.string()), ("person_id", pa.string())])
        pq.write_table(
            pa.Table.from_pylist(links, schema), self.root / "data" / "identities.parquet"
        )
        self.as_of += SECOND  # few wake-up times: D is the persons whose ids moved
        result = self.run()
        event(f"identities: {'incremental' if result.incremental else result.full_reason}")

    @precondition(lambda self: bool(getattr(self, "written", None)))
    @rule(data=st.data(), step=st.sampled_from(STEPS))
    def repeat_a_key_earlier(self, data: st.DataObject, step: timedelta) -> None:
        """A written row's key again, for another person and a second earlier: segctl keeps
        the earliest copy, so the old row's person loses the event. (The reference keeps the
        first copy written: from here on only full runs are compared with.)"""
        row = dict(data.draw(st.sampled_from(self.written)))
        if row["event_id"] is None:
            return
        row["person_id"] = data.draw(st.sampled_from(["p", "p0", "p1", "ghost"]))
        row["timestamp"] -= SECOND + timedelta(microseconds=self.files + 1)
        self.keys[str(row["event_id"])] = row  # write() keeps its key
        self.reference_applies = self.reference_applies and not self.dedupe
        self.write([row])
        self.as_of += step
        self.run()


for machine in (IncrementalMachine, StitchedMachine):
    machine.TestCase.settings = settings(
        # SEGCTL_INCREMENTAL_EXAMPLES=300 for a longer search (the suite's default is quick)
        max_examples=int(os.environ.get("SEGCTL_INCREMENTAL_EXAMPLES", "12")),
        stateful_step_count=int(os.environ.get("SEGCTL_INCREMENTAL_STEPS", "6")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
test_incremental_runs_equal_full_runs_and_the_reference = IncrementalMachine.TestCase
test_stitched_incremental_runs_equal_full_runs_and_the_reference = StitchedMachine.TestCase


# ---- the fallback reasons --------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """stateproject's project with its events in ``events/``, a features file and a list."""
    root = write_project(tmp_path / "proj")
    (root / "events").mkdir()
    shutil.move(root / "events.parquet", root / "events" / "a.parquet")
    config = root / "segctl.yaml"
    config.write_text(
        config.read_text().replace("events.parquet", "events/*.parquet") + "timezone: UTC\n"
    )
    (root / "features.yaml").write_text("features:\n  logins: {event: login, measure: count}\n")
    (root / "vip.csv").write_text("person_id\np1\n")
    (root / "segments" / "vip.yaml").write_text(
        "name: vip\nrule: {list: {file: vip.csv, key: person_id}}\n"
    )
    return root


def new_events(path: Path, person: str, when: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "person_id": [person],
                "event": ["login"],
                "timestamp": pa.array([when], pa.timestamp("us", tz="UTC")),
            }
        ),
        path,
    )


def reason_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("full evaluation")]


def test_first_run_then_incremental_runs_say_nothing(root: Path) -> None:
    first = segctl(root, "run", "--as-of", iso(AS_OF[0]))
    assert first.returncode == 0, first.stderr
    assert reason_lines(first) == ["full evaluation: first run"]
    new_events(root / "events" / "b.parquet", "p5", AS_OF[0] + timedelta(hours=1))
    second = segctl(root, "run", "--as-of", iso(AS_OF[1]), "--format", "json")
    assert second.returncode == 0, second.stderr
    assert reason_lines(second) == []
    full = segctl(root, "run", "--as-of", iso(AS_OF[2]), "--full")
    assert full.returncode == 0 and reason_lines(full) == []  # asked for: nothing to explain


def replace_events(root: Path) -> None:
    """A new file lands and the recorded one is removed."""
    new_events(root / "events" / "b.parquet", "p1", T0)
    (root / "events" / "a.parquet").unlink()


CHANGES: dict[str, tuple[Callable[[Path], object], str]] = {
    "events file changed": (
        lambda root: new_events(root / "events" / "a.parquet", "p1", T0),
        "full evaluation: events/a.parquet changed",
    ),
    "events file gone": (
        lambda root: replace_events(root),
        "full evaluation: events/a.parquet is gone",
    ),
    "definition": (
        lambda root: (root / "segments" / "buyers.yaml").write_text(
            dedent("""\
            name: buyers
            rule: {event: purchase, count: {gte: 2}}
            """)
        ),
        "full evaluation: segment 'buyers' changed",
    ),
    "new segment": (
        lambda root: (root / "segments" / "all.yaml").write_text(
            "name: all\nrule: {event: '*', count: {gte: 0}}\n"
        ),
        "full evaluation: segment 'all' is new",
    ),
    # The snapshot keeps a removed segment's members (after the others' slots): the runs
    # after it were all full ("the segments' layout changed") until this was handled.
    "segment removed": (
        lambda root: (root / "segments" / "active_buyers.yaml").unlink(),
        "full evaluation: segment 'active_buyers' is gone",
    ),
    # A source mapping naming a column (the same rows): its hash must see it.
    "data configuration": (
        lambda root: (root / "segctl.yaml").write_text(
            (root / "segctl.yaml")
            .read_text()
            .replace(
                "events: events/*.parquet",
                "events: {path: events/*.parquet, columns: {event: event}}",
            )
        ),
        "full evaluation: the data configuration changed",
    ),
    "features file": (
        lambda root: (root / "features.yaml").write_text(
            "features:\n  logins: {event: login, measure: count, within: 30d}\n"
        ),
        "full evaluation: the features file changed",
    ),
    "timezone": (
        lambda root: (root / "segctl.yaml").write_text(
            (root / "segctl.yaml").read_text().replace("timezone: UTC", "timezone: Europe/Paris")
        ),
        "full evaluation: the timezone changed",
    ),
    "new column": (
        lambda root: pq.write_table(
            pa.table({"person_id": ["p5"], "event": ["login"], "timestamp": [T0], "coupon": ["x"]}),
            root / "events" / "b.parquet",
        ),
        "full evaluation: the columns of the data changed",
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_fallback_says_its_reason_in_one_line(root: Path, change: str) -> None:
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    apply, line = CHANGES[change]
    apply(root)
    result = segctl(root, "run", "--as-of", iso(AS_OF[1]))
    assert result.returncode == 0, result.stderr
    assert reason_lines(result) == [line]
    # The full run kept the incremental state: the next run is incremental again.
    again = segctl(root, "run", "--as-of", iso(AS_OF[2]))
    assert again.returncode == 0 and reason_lines(again) == [], again.stderr
    # And it equals a from-scratch evaluation.
    assert lib.Project.load(root).verify().equal


def test_a_segment_put_back_is_diffed_against_the_members_it_had(root: Path) -> None:
    """A removed segment's members stay in the snapshot while runs go on incrementally;
    put back, its members who still match do not enter again (no on_enter for them), and
    incremental runs equal full ones throughout."""
    first = lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    had = committed(root)[0]["buyers"]
    assert had and first.changes["buyers"].entered == len(had)
    text = (root / "segments" / "buyers.yaml").read_text()
    text_of_both = (root / "segments" / "active_buyers.yaml").read_text()
    (root / "segments" / "active_buyers.yaml").unlink()  # it references buyers
    (root / "segments" / "buyers.yaml").unlink()
    assert not run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=1)).incremental
    quiet = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=2))
    assert quiet.incremental and "buyers" not in quiet.changes
    new_events(root / "events" / "b.parquet", "p5", AS_OF[0] + timedelta(minutes=2))
    assert run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=3)).incremental
    assert "p5" in committed(root)[0]["active"]  # a person with no row before: added
    # p1 (a buyer, an active buyer) leaves `active` while both are out: their row changes,
    # and keeps its bits of the two removed segments.
    both = (root / "segments" / "active_buyers.yaml", text_of_both)
    later = T0 + timedelta(days=18, hours=2)
    moved = run_beside_a_full_run(root, later)
    assert moved.incremental and moved.changes["active"].exited
    assert "p1" not in committed(root)[0]["active"] and "p1" in had
    (root / "segments" / "buyers.yaml").write_text(text)
    both[0].write_text(both[1])
    back = run_beside_a_full_run(root, later + timedelta(hours=1))
    assert not back.incremental and back.full_reason in {
        f"segment '{name}' is new" for name in ("buyers", "active_buyers")
    }
    assert not back.changes["buyers"].first_run
    [buyers, active_buyers] = lib.Project.load(root).diff(["buyers", "active_buyers"]).segments
    assert set(buyers.entered) == committed(root)[0]["buyers"] - had and "p1" not in buyers.entered
    assert "p1" in active_buyers.exited  # a member when it was taken out, no longer
    assert run_beside_a_full_run(root, AS_OF[3]).incremental
    assert lib.Project.load(root).verify().equal


def persons_file(root: Path, rows: list[str], name: str = "persons.csv") -> None:
    (root / name).write_text("\n".join(["person_id,email,plan", *rows]) + "\n")


def first_run_and_a_reexport(root: Path, *names: str) -> None:
    """The first run, then the files ``names`` written again as they were: the first
    re-export is a full run, said, after which the state keeps the persons' row hashes."""
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    for name in names:
        path = root / name
        path.write_bytes(path.read_bytes())
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = lib.Project.load(root).run(as_of=iso(AS_OF[0] + timedelta(seconds=30)))
    assert not result.incremental and result.full_reason in {f"{n} changed" for n in names}


def assert_quiet(root: Path, moment: datetime) -> None:
    """A run at ``moment`` is incremental and re-evaluates nobody: the last run kept what it
    read."""
    quiet = lib.Project.load(root).run(as_of=iso(moment))
    assert quiet.incremental and quiet.persons_evaluated == 0


def run_beside_a_full_run(root: Path, moment: datetime) -> lib.RunResult:
    """``run`` here and ``run --full`` on a copy taken just before; both committed the same
    snapshot and transitions (:func:`committed`)."""
    copy = root.with_name(root.name + "-full")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    result = lib.Project.load(root).run(as_of=iso(moment))
    lib.Project.load(copy).run(as_of=iso(moment), full=True)
    assert committed(root) == committed(copy)
    return result


def test_a_reexported_persons_file_reevaluates_the_persons_whose_rows_changed(root: Path) -> None:
    """SPEC 5's SHOULD: a changed row (p2 on the pro plan), a new person (p7) and a removed
    one (p6) are re-evaluated; the rest, written again in another order, are not."""
    (root / "segments" / "pro.yaml").write_text("name: pro\nrule: {property: plan, eq: pro}\n")
    first_run_and_a_reexport(root, "persons.csv")
    rows = [f"p{i},p{i}@example.com,free" for i in (5, 4, 3, 1)]
    persons_file(root, [*rows, "p2,p2@example.com,pro", "p7,p7@example.com,pro"])
    moment = AS_OF[0] + timedelta(minutes=1)  # no one's wake-up time comes
    result = run_beside_a_full_run(root, moment)
    assert result.incremental and result.full_reason is None
    assert result.persons_evaluated == 3  # p2, p6, p7
    assert (result.changes["pro"].entered, result.changes["pro"].size) == (2, 2)
    # The next run keeps the new rows' hashes: nothing left to re-evaluate.
    assert_quiet(root, moment + timedelta(minutes=1))
    assert lib.Project.load(root).verify().equal


def test_a_persons_file_that_lands_or_goes_reevaluates_its_persons(root: Path) -> None:
    """Persons from a glob of files: a new file's persons, then a removed file's, alone."""
    (root / "people").mkdir()
    shutil.move(root / "persons.csv", root / "people" / "a.csv")
    config = root / "segctl.yaml"
    config.write_text(config.read_text().replace("persons.csv", "people/*.csv"))
    (root / "segments" / "pro.yaml").write_text("name: pro\nrule: {property: plan, eq: pro}\n")
    first_run_and_a_reexport(root, "people/a.csv")
    persons_file(root, ["p8,p8@example.com,pro"], "people/b.csv")
    landed = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=1))
    assert landed.incremental and landed.persons_evaluated == 1
    assert landed.changes["pro"].entered == 1
    (root / "people" / "b.csv").unlink()
    gone = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=2))
    assert gone.incremental and gone.persons_evaluated == 1
    assert gone.changes["pro"].exited == 1


def row_count(root: Path, table: str) -> int:
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    finally:
        con.close()


def identities_file(root: Path, links: dict[str, str]) -> None:
    pq.write_table(
        pa.table({"id": list(links), "person_id": list(links.values())}),
        root / "identities.parquet",
    )


def test_a_reexported_identities_file_reevaluates_the_persons_whose_ids_moved(
    root: Path,
) -> None:
    """SPEC 5's SHOULD for identities: an id linked to another person (a1: p2 -> p4), an id
    linked for the first time (a2 -> p5) and a link removed (a3, p5's) move anonymous
    purchases between persons. The run diffs the identity map the last run kept and
    re-evaluates p2, p4 and p5 alone: p2 leaves `buyers`, p4 enters it."""
    config = root / "segctl.yaml"
    config.write_text(
        config.read_text().replace(
            "events: events/*.parquet",
            "identities: identities.parquet\n"
            "  events: {path: events/*.parquet, anonymous_id: anonymous_id}",
        )
    )
    first = pq.read_table(root / "events" / "a.parquet").to_pylist()
    raw_events(
        root / "events" / "a.parquet",
        [(r["person_id"], None, r["event"], r["timestamp"]) for r in first],
    )
    bought = T0 + timedelta(days=1)
    raw_events(
        root / "events" / "m.parquet",
        [(None, a, "purchase", bought) for a in ("a1", "a2", "a3")],
    )
    identities_file(root, {"a1": "p2", "a3": "p5"})
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    assert row_count(root, "identity_map") == 2
    identities_file(root, {"a1": "p4", "a2": "p5"})
    moment = AS_OF[0] + timedelta(minutes=1)  # no one's wake-up time comes
    result = run_beside_a_full_run(root, moment)
    assert result.incremental and result.full_reason is None
    assert result.persons_evaluated == 3  # p2, p4, p5
    assert (result.changes["buyers"].entered, result.changes["buyers"].exited) == (1, 1)
    assert_quiet(root, moment + timedelta(minutes=1))
    assert lib.Project.load(root).verify().equal
    # An erased person's ids are kept nowhere, and do not make every later run re-evaluate
    # them as relinked.
    lib.Project.load(root).forget(["p5"])
    assert row_count(root, "identity_map WHERE person_id = 'p5'") == 0
    for minutes in (2, 3):
        after = lib.Project.load(root).run(as_of=iso(moment + timedelta(minutes=minutes)))
        assert after.incremental and after.persons_evaluated == 0
    assert row_count(root, "identity_map WHERE person_id = 'p5'") == 0
    moment += timedelta(minutes=3)
    # A state whose last run kept no map (written by v7) cannot diff one: its next run is
    # full, said, even for a new events file alone, and keeps the map from then on.
    con = duckdb.connect(str(root / ".segctl" / DB_FILE))
    con.execute("DELETE FROM incremental WHERE key = 'data figures: identity map'")
    [(last,)] = con.execute("SELECT max(run_id) FROM runs").fetchall()
    con.close()
    identities_file(root, {"a1": "p2"})
    raw_events(root / "events" / "n.parquet", [(None, "a1", "purchase", bought)])
    full = lib.Project.load(root).run(as_of=iso(moment + timedelta(minutes=2)))
    assert not full.incremental and full.full_reason == f"run {last} kept no identity map"
    assert row_count(root, "identity_map") == 1  # kept again from that run on
    raw_events(root / "events" / "o.parquet", [(None, "a1", "purchase", bought)])
    after = run_beside_a_full_run(root, moment + timedelta(minutes=3))
    assert after.incremental and after.persons_evaluated == 1  # p2, by the map alone


def test_a_reexported_subscriptions_file_reevaluates_the_persons_whose_rows_changed(
    root: Path,
) -> None:
    """A row changed (p1 canceled), a row added to a person's history (p2 active again) and
    a person's rows removed (p3): those three are re-evaluated."""
    config = root / "segctl.yaml"
    config.write_text(
        config.read_text().replace(
            "persons: persons.csv", "persons: persons.csv\n  subscriptions: subs.csv"
        )
    )
    header = "person_id,status,mrr,updated_at"
    (root / "subs.csv").write_text(
        f"{header}\np1,active,900,2026-03-02T00:00:00Z\np2,canceled,0,2026-03-02T00:00:00Z\n"
        "p3,active,900,2026-03-03T00:00:00Z\np4,active,2900,2026-03-04T00:00:00Z\n"
    )
    (root / "segments" / "paying.yaml").write_text(
        "name: paying\nrule: {subscription: {status: {eq: active}}}\n"
    )
    first_run_and_a_reexport(root, "subs.csv")
    (root / "subs.csv").write_text(
        f"{header}\np4,active,2900,2026-03-04T00:00:00Z\np1,canceled,0,2026-03-02T00:00:00Z\n"
        "p2,canceled,0,2026-03-02T00:00:00Z\np2,active,900,2026-03-09T00:00:00Z\n"
    )
    result = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=1))
    assert result.incremental and result.persons_evaluated == 3
    paying = result.changes["paying"]
    assert (paying.entered, paying.exited, paying.size) == (1, 2, 2)


def test_a_full_run_keeps_the_hashes_of_the_rows_it_read(root: Path) -> None:
    """A full run (a definition changed) over a re-exported persons file keeps the hashes of
    the new rows: p2's row written back as before is then a change, re-evaluated."""
    (root / "segments" / "pro.yaml").write_text("name: pro\nrule: {property: plan, eq: pro}\n")
    before = [f"p{i},p{i}@example.com,free" for i in range(1, 7)]
    first_run_and_a_reexport(root, "persons.csv")
    persons_file(
        root, [row.replace("p2,p2@example.com,free", "p2,p2@example.com,pro") for row in before]
    )
    (root / "segments" / "all.yaml").write_text("name: all\nrule: {event: '*', count: {gte: 0}}\n")
    full = lib.Project.load(root).run(as_of=iso(AS_OF[0] + timedelta(minutes=1)))
    assert not full.incremental and full.changes["pro"].entered == 1
    persons_file(root, before)
    result = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=2))
    assert result.incremental and result.persons_evaluated == 1
    assert result.changes["pro"].exited == 1


def test_a_reexported_list_file_reevaluates_the_persons_it_names_or_matches(root: Path) -> None:
    """A list by person_id (p1 out, p2 and p9, who has no row, in) and one by email (p4 in;
    p3's entry written another way, the same once normalised) re-evaluate those four."""
    (root / "emails.csv").write_text("email\n P3@Example.com\n")
    (root / "segments" / "known.yaml").write_text(
        "name: known\nrule: {list: {file: emails.csv, key: email}}\n"
    )
    first_run_and_a_reexport(root, "vip.csv", "emails.csv")
    (root / "vip.csv").write_text("person_id\np2\np9\n")
    (root / "emails.csv").write_text("email\np3@example.com\np4@EXAMPLE.com \n")
    result = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=1))
    assert result.incremental and result.persons_evaluated == 4
    vip, known = result.changes["vip"], result.changes["known"]
    assert (vip.entered, vip.exited, known.entered, known.exited) == (1, 1, 1, 0)
    assert_quiet(root, AS_OF[0] + timedelta(minutes=2))


def row_hashes(root: Path) -> tuple[int, bool]:
    """How many row hashes the state keeps, and whether its last run says it kept them."""
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    try:
        [(count,)] = con.execute("SELECT count(*) FROM row_hashes").fetchall()
        [(said,)] = con.execute(
            "SELECT count(*) FROM incremental WHERE key = 'data figures: row hashes'"
        ).fetchall()
    finally:
        con.close()
    return int(count), bool(said)


def test_the_first_reexport_is_a_full_run_that_keeps_the_hashes_for_the_next(root: Path) -> None:
    """A project whose persons file was never re-exported keeps no row hashes (13 MiB at a
    million persons); the first re-export evaluates in full, says so and keeps them; the next
    re-exports are incremental."""
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    quiet = lib.Project.load(root).run(as_of=iso(AS_OF[0] + timedelta(minutes=1)))
    assert quiet.incremental and row_hashes(root) == (0, False)
    persons_file(root, [f"p{i},p{i}@example.com,free" for i in range(1, 8)])
    result = segctl(root, "run", "--as-of", iso(AS_OF[0] + timedelta(minutes=2)))
    assert result.returncode == 0, result.stderr
    assert reason_lines(result) == ["full evaluation: persons.csv changed"]
    assert row_hashes(root) == (7, True)
    persons_file(root, [f"p{i},p{i}@example.com,free" for i in range(1, 7)])
    later = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=3))
    assert later.incremental and later.persons_evaluated == 1  # p7
    assert row_hashes(root) == (6, True)


def test_an_incremental_run_reevaluates_only_the_persons_that_can_change(root: Path) -> None:
    """p5 (no events) is never re-evaluated; a new file re-evaluates its persons; time passing
    re-evaluates the persons whose 7-day window edge it crossed."""
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    assert_quiet(root, AS_OF[0] + timedelta(minutes=1))
    new_events(root / "events" / "b.parquet", "p5", AS_OF[0] + timedelta(minutes=2))
    landed = lib.Project.load(root).run(as_of=iso(AS_OF[0] + timedelta(minutes=3)))
    assert landed.incremental and landed.persons_evaluated == 1
    assert landed.changes["active"].entered == 1
    later = lib.Project.load(root).run(as_of=iso(AS_OF[3]))
    assert later.incremental and 0 < later.persons_evaluated < 7
    assert lib.Project.load(root).verify().equal


@pytest.mark.parametrize(
    "point",
    [
        "run:after-evaluate",
        "commit:after-transitions",
        "commit:before-commit",
        "commit:after-commit",
    ],
)
def test_kill_9_during_an_incremental_run_leaves_a_state_the_next_run_is_exact_from(
    root: Path, point: str
) -> None:
    """SIGKILL at each crash point of an incremental run: the state holds the old run or the
    new one (snapshot, wake-up times and fingerprint together), and the next incremental run
    commits what a full run would."""
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    new_events(root / "events" / "b.parquet", "p5", AS_OF[0] + timedelta(hours=1))
    killed = segctl(root, "run", "--as-of", iso(AS_OF[1]), env={"SEGCTL_CRASH_AT": point})
    assert killed.returncode == -9, killed.stderr
    copy = root.with_name("copy")
    shutil.copytree(root, copy)
    after = segctl(root, "run", "--as-of", iso(AS_OF[3]), "--wait", "5")
    assert after.returncode == 0, after.stderr
    assert reason_lines(after) == []  # the old or the new state: either allows incremental
    assert segctl(copy, "run", "--as-of", iso(AS_OF[3]), "--full", "--wait", "5").returncode == 0
    assert committed(root) == committed(copy)
    assert lib.Project.load(root).verify().equal


def test_a_streak_ends_at_a_local_midnight_with_no_new_row(root: Path) -> None:
    """p4's only events before day 16 are on day 4: its streak holds on days 4 and 5 and ends
    at the start of day 6 with no new row; no window duration of the catalogue lands there, so
    only the local-day part of the wake-up bound re-evaluates p4 (the stateful test's cases
    rarely isolate this)."""
    (root / "segments" / "streaky.yaml").write_text(
        "name: streaky\nrule: {event: login, streak: {gte: 1}}\n"
    )
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text().replace("timezone: UTC", "timezone: Europe/Berlin")
    )
    lib.Project.load(root).run(as_of=iso(T0 + timedelta(days=5, hours=12)))
    # Within the same local day nothing moves a local-day measure: nobody is re-evaluated
    # for it, however recent their events (the bound waits for the next local midnight).
    assert_quiet(root, T0 + timedelta(days=5, hours=12, minutes=1))
    assert "p4" in set(lib.Project.load(root).members("streaky")["person_id"].to_list())
    later = lib.Project.load(root).run(as_of=iso(T0 + timedelta(days=6, hours=1)))
    assert later.incremental
    assert later.changes["streaky"].exited >= 1
    assert "p4" not in set(lib.Project.load(root).members("streaky")["person_id"].to_list())
    assert lib.Project.load(root).verify().equal


def test_files_a_run_read_are_not_checked_alone_again_while_unchanged(root: Path) -> None:
    """The engine skips the checks of each file alone (runfiles.unchanged) only for files the
    last committed run read, as it recorded them, under the same data configuration."""
    from segctl.sources import runfiles

    def unchanged(config: Any) -> set[str]:
        return {f for f in runfiles.unchanged(config) if f.endswith(".parquet")}

    project = lib.Project.load(root)
    assert unchanged(project.config) == set()  # no state yet
    project.run(as_of=iso(AS_OF[0]))
    a, b = root / "events" / "a.parquet", root / "events" / "b.parquet"
    config = lib.Project.load(root).config
    assert unchanged(config) == {str(a.resolve())}
    new_events(b, "p5", AS_OF[0] + timedelta(hours=1))  # new: checked
    assert unchanged(config) == {str(a.resolve())}
    lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert unchanged(config) == {str(a.resolve()), str(b.resolve())}
    new_events(b, "p6", AS_OF[0] + timedelta(hours=2))  # rewritten: checked again
    assert unchanged(config) == {str(a.resolve())}
    other = replace(config, sources={**config.sources, "identities": ()})
    assert unchanged(other) == set()  # another data configuration: all checked
    # A file that fails its check alone is still named once it changes.
    pq.write_table(pa.table({"person_id": ["p1"], "timestamp": [T0]}), b)
    failed = segctl(root, "run", "--as-of", iso(AS_OF[2]))
    assert failed.returncode != 0 and "b.parquet" in failed.stderr, failed.stderr


# ---- the data warnings and the newest event (segctl.project.figures) ----------------------------


def raw_events(
    path: Path, rows: list[tuple[str | None, str | None, str | None, datetime | None]]
) -> None:
    """(person_id, anonymous_id, event, timestamp) rows, with an event_id each."""
    pq.write_table(
        pa.table(
            {
                "person_id": [r[0] for r in rows],
                "anonymous_id": [r[1] for r in rows],
                "event": [r[2] for r in rows],
                "timestamp": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
                "event_id": [f"{path.stem}-{i}" for i in range(len(rows))],
            }
        ),
        path,
    )


@pytest.mark.parametrize("events", ["plain", "dedupe_on", "identities", "anonymous"])
def test_warnings_and_freshness_of_incremental_runs_equal_full_runs(
    root: Path, events: str
) -> None:
    """An incremental run's data warnings (rows with no person, no event name, no timestamp,
    repeats removed) and freshness warning equal ``run --full``'s at every step: new files with such
    rows, time passing, a changed file, a repeat across files, an anonymous id linked by a
    later file, and as_of far past the newest event."""
    config = root / "segctl.yaml"
    text = config.read_text().replace(
        "events: events/*.parquet",
        "events: {path: events/*.parquet"
        + {
            "plain": "}",
            "dedupe_on": ", dedupe_on: event_id}",
            "identities": ", anonymous_id: anonymous_id}",
            "anonymous": ", anonymous_id: anonymous_id, dedupe_on: event_id}",
        }[events],
    )
    if events == "identities":
        pq.write_table(pa.table({"id": ["a1"], "person_id": ["p2"]}), root / "identities.parquet")
        text = text.replace("events: {", "identities: identities.parquet\n  events: {")
    config.write_text(text + "stale_after: 2d\n")
    first = pq.read_table(root / "events" / "a.parquet").to_pylist()
    raw_events(
        root / "events" / "a.parquet",
        [(r["person_id"], None, r["event"], r["timestamp"]) for r in first],
    )
    at = AS_OF[0] + timedelta(hours=1)
    raw_events(
        root / "events" / "m.parquet",
        [
            (None, "a1", "login", at),
            ("", "a2", "login", at),
            ("p1", None, None, at),
            ("p1", None, "login", None),
        ],
    )
    steps: list[tuple[str, Callable[[], object]]] = [
        ("first run", lambda: None),
        (
            "new file",
            lambda: raw_events(
                root / "events" / "n.parquet",
                [
                    (None, "a3", "login", at),
                    ("p2", "a2", "login", at),
                    ("p3", None, None, at),
                    ("p3", None, "login", None),
                    ("p4", None, "login", None),
                    ("p9", None, "login", at),  # no row of the persons file
                ],
            ),
        ),
        ("time passes", lambda: None),
        (
            "a repeat across files",
            lambda: shutil.copy(root / "events" / "n.parquet", root / "events" / "o.parquet"),
        ),
        (
            "a changed file",
            lambda: raw_events(
                root / "events" / "m.parquet", [(None, "a9", None, at), ("p4", None, "x", at)]
            ),
        ),
        (
            "a new file after the change",
            lambda: raw_events(root / "events" / "p.parquet", [(None, "a3", "login", at)]),
        ),
        # p9's events belong to a person once the persons file holds p9, and to nobody again
        # once it drops p9: the second re-export runs incrementally, and counts again.
        ("the persons file gains p9", lambda: persons.write_text(held + "p9,p9@x.com,free\n")),
        ("the persons file drops p9", lambda: persons.write_text(held)),
        # The copy of the events leaves out an erased person's rows, which the views still
        # read: once p2 is erased, a re-export that drops p2 counts over every event.
        ("p2 is erased", lambda: lib.Project.load(root).forget(["p2"])),
        ("the persons file drops p2", lambda: persons.write_text(without_p2)),
        ("stale", lambda: None),
    ]
    persons = root / "persons.csv"
    held = persons.read_text()
    without_p2 = "".join(r for r in held.splitlines(keepends=True) if not r.startswith("p2,"))
    assert without_p2 != held
    copy = root.parent / "full"
    kinds = []
    for i, (label, step) in enumerate(steps):
        step()
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        later = timedelta(days=30) if label == "stale" else timedelta(0)
        stamp = iso(AS_OF[0] + timedelta(hours=2 + i) + later)
        result = lib.Project.load(root).run(as_of=stamp)
        full = lib.Project.load(copy).run(as_of=stamp, full=True)
        assert result.warnings == full.warnings, label
        assert committed(root) == committed(copy), label
        kinds.append(result.incremental)
    assert any("no person id" in w for w in result.warnings)
    assert any("have no timestamp and were ignored" in w for w in result.warnings)
    assert any("no row of the persons source holds" in w for w in result.warnings)
    assert any("past the newest event" in w for w in result.warnings)
    assert kinds == [False, True, True, True, False, True, False, True, True, True, True], (
        f"{kinds}"
    )


def test_an_erased_person_keeps_no_wake_up_time(root: Path) -> None:
    """``segctl forget`` drops the person's wake-up time, and no later run (a full one reads
    their events again) keeps one: an erased id is kept nowhere in the state."""
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))

    def woken() -> set[str]:
        con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
        try:
            return {str(p) for (p,) in con.execute("SELECT person_id FROM wakeups").fetchall()}
        finally:
            con.close()

    victim = sorted(woken())[0]
    lib.Project.load(root).forget([victim])
    assert victim not in woken()
    lib.Project.load(root).run(as_of=iso(AS_OF[1]), full=True)
    assert victim not in woken() and woken()
    lib.Project.load(root).run(as_of=iso(AS_OF[2]))
    assert victim not in woken()


def test_an_incremental_run_after_an_erasure_counts_the_snapshot_without_it(
    root: Path,
) -> None:
    """An incremental run's sizes are the committed members moved by its transitions: after
    ``segctl forget`` (which deletes the person's snapshot row) they equal a full run's and
    the members committed, without the erased person."""
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    members = committed(root)[0]
    victim = min(p for persons in members.values() for p in persons)
    lib.Project.load(root).forget([victim])
    copy = root.parent / "full"
    shutil.copytree(root, copy)
    result = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert result.incremental
    assert result.changes == lib.Project.load(copy).run(as_of=iso(AS_OF[1]), full=True).changes
    after = committed(root)[0]
    assert {n: c.size for n, c in result.changes.items()} == {
        n: len(after.get(n, set())) for n in result.changes
    }
    assert any(victim in persons for persons in members.values())
    assert all(victim not in persons for persons in after.values())


def test_an_incremental_run_takes_the_sizes_the_last_run_recorded(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no erasure since the last run, an incremental run does not count the snapshot's
    members (0.16 s with 1,000 segments): it moves the sizes the last run recorded by its
    transitions, and they equal a full run's."""
    from segctl import diff, packed
    from segctl.state import SNAPSHOT_TABLE

    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    copy = root.parent / "full"
    shutil.copytree(root, copy)
    counted: list[str] = []
    original = packed.counts

    def counts(table: str, count: int) -> str:
        counted.append(table)
        return original(table, count)

    monkeypatch.setattr(diff.packed, "counts", counts)
    result = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert result.incremental and SNAPSHOT_TABLE not in counted
    monkeypatch.undo()
    assert result.changes == lib.Project.load(copy).run(as_of=iso(AS_OF[1]), full=True).changes


def test_an_incremental_plan_over_d_alone_skips_the_heavy_optimizer_passes(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the plan reads D's rows alone, DuckDB skips the passes whose cost is the plan's
    size (a third of planning 1,000 segments); a full run's plan keeps them, and the setting
    is DuckDB's default again afterwards. A pass this DuckDB does not know is left out."""
    from segctl.engine import duckdb as engine

    seen: list[str] = []
    create_table = engine.DuckDBEngine.create_table

    def watched(self: engine.DuckDBEngine, *args: Any, **kwargs: Any) -> None:
        seen.append(str(self.rows("SELECT current_setting('disabled_optimizers')")[0][0]))
        create_table(self, *args, **kwargs)

    monkeypatch.setattr(engine.DuckDBEngine, "create_table", watched)
    monkeypatch.setattr(engine, "HEAVY_PASSES", ("projection_placement", "no_such_pass"))
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    new_events(root / "events" / "b.parquet", "p5", AS_OF[0] + timedelta(minutes=2))
    project = lib.Project.load(root)
    landed = project.run(as_of=iso(AS_OF[0] + timedelta(minutes=3)))
    assert landed.incremental and landed.persons_evaluated == 1
    assert seen == ["", "projection_placement"]
    assert project.engine.driver.rows("SELECT current_setting('disabled_optimizers')") == [("",)]
    assert project.verify().equal


def test_a_run_that_can_change_most_persons_evaluates_in_full(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When more than half the persons can have changed (the next day, past a local
    midnight), re-evaluating them through the persons filter costs more than a full
    evaluation: the run evaluates in full and says why; a minute later it is incremental
    again. (Only above COPY_PERSONS persons: lowered here.)"""
    monkeypatch.setattr(incremental, "COPY_PERSONS", 0)
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    later = lib.Project.load(root).run(as_of=iso(AS_OF[3]))
    assert not later.incremental
    found = re.fullmatch(r"(\d) of (\d) persons can have changed", later.full_reason or "")
    assert found is not None, later.full_reason
    assert 2 * int(found[1]) > int(found[2])
    quiet = lib.Project.load(root).run(as_of=iso(AS_OF[3] + timedelta(minutes=1)))
    assert quiet.incremental
    assert lib.Project.load(root).verify().equal


# ---- the state's copy of the events ------------------------------------------------------------


def copy_figures(root: Path) -> tuple[set[int], int | None, set[str]]:
    """The runs the state's ``event_copy`` names, the copy's row count and its persons
    (None, set() when there is no copy); the copy's folder holds its files alone."""
    state = root / ".segctl"
    con = duckdb.connect(str(state / DB_FILE), read_only=True)
    try:
        marker = con.execute("SELECT file, run_id FROM event_copy").fetchall()
    finally:
        con.close()
    files = sorted(state / "events" / str(f) for f, _ in marker)
    on_disk = sorted((state / "events").glob("*")) if (state / "events").is_dir() else []
    assert files == on_disk
    if not files:
        return set(), None, set()
    listed = ", ".join(f"'{f}'" for f in files)
    con = duckdb.connect()
    [(rows, persons)] = con.execute(
        f"SELECT count(*), list(DISTINCT person_id) FROM read_parquet([{listed}])"
    ).fetchall()
    return {int(r) for _, r in marker}, int(rows), set(persons)


def test_the_copy_of_the_events_grows_with_each_run_and_serves_d(root: Path) -> None:
    """A full run copies every event into the state, sorted; an incremental run adds its new
    files' rows, and a later run re-evaluating their persons reads them from the copy: p5's
    purchase of the second file keeps p5 among the buyers when a third file re-evaluates p5
    (left out of the copy, p5 would exit). Erasure removes a person's rows."""
    events = pq.read_table(root / "events" / "a.parquet").num_rows
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    assert copy_figures(root)[:2] == ({1}, events)
    # Parquet 2: each person's sorted timestamps are stored as deltas (a third smaller than
    # plain values at 50M events, and read faster).
    [copied] = (root / ".segctl" / "events").glob("*.parquet")
    metadata = f"parquet_metadata('{copied}')"
    [(encodings,)] = duckdb.execute(
        f"SELECT encodings FROM {metadata} WHERE path_in_schema = 'timestamp'"
    ).fetchall()
    assert "DELTA_BINARY_PACKED" in encodings
    pq.write_table(
        pa.table(
            {
                "person_id": ["p5"],
                "event": ["purchase"],
                "timestamp": pa.array(
                    [AS_OF[0] + timedelta(hours=1)], pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        root / "events" / "b.parquet",
    )
    second = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert second.incremental and second.changes["buyers"].entered == 1
    assert copy_figures(root)[:2] == ({2}, events + 1)
    new_events(root / "events" / "c.parquet", "p5", AS_OF[1] + timedelta(hours=1))
    third = lib.Project.load(root).run(as_of=iso(AS_OF[1] + timedelta(hours=2)))
    assert third.incremental and third.persons_evaluated >= 1
    assert "p5" in set(lib.Project.load(root).members("buyers")["person_id"].to_list())
    assert copy_figures(root)[:2] == ({3}, events + 2)
    assert lib.Project.load(root).verify().equal
    lib.Project.load(root).forget(["p5"])  # drops the copy; the next run writes it again
    assert copy_figures(root) == (set(), None, set())
    after = lib.Project.load(root).run(as_of=iso(AS_OF[2]))
    assert after.incremental
    figures = copy_figures(root)
    assert figures[0] == {4} and "p5" not in figures[2] and "p1" in figures[2]


def copy_files(root: Path) -> set[str]:
    return {p.name for p in (root / ".segctl" / "events").glob("*.parquet")}


def test_a_full_run_keeps_the_copy_of_unchanged_files_and_adds_the_new_ones(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy depends only on the event files and how they are read: a changed definition
    (a full run) and ``run --full`` keep its files and add the new files' rows, and the next
    incremental run reads the new rows from it (p5 re-evaluated by a third file stays a
    buyer thanks to a purchase in the file the full run added). A changed event file drops
    it (a source rewriting its files would pay a sort of every event on each run), and the
    next run with the files unchanged writes it again. (Small files are merged into the
    whole when they weigh a quarter of it: never, here, so that the whole keeps its name.)"""
    monkeypatch.setattr(event_rows, "UNSORTED_SHARE", 1000.0)
    events = pq.read_table(root / "events" / "a.parquet").num_rows
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    [base] = copy_files(root)
    buy = pa.table(
        {
            "person_id": ["p5"],
            "event": ["purchase"],
            "timestamp": pa.array([AS_OF[0] + timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(buy, root / "events" / "b.parquet")
    (root / "segments" / "all.yaml").write_text("name: all\nrule: {event: '*', count: {gte: 0}}\n")
    second = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert second.full_reason == "segment 'all' is new"
    assert base in copy_files(root) and copy_figures(root)[:2] == ({2}, events + 1)
    new_events(root / "events" / "c.parquet", "p5", AS_OF[1] + timedelta(hours=1))
    third = lib.Project.load(root).run(as_of=iso(AS_OF[1] + timedelta(hours=2)))
    assert third.incremental and third.persons_evaluated >= 1
    assert "p5" in set(lib.Project.load(root).members("buyers")["person_id"].to_list())
    lib.Project.load(root).run(as_of=iso(AS_OF[2]), full=True)
    assert base in copy_files(root) and copy_figures(root)[:2] == ({4}, events + 2)
    assert lib.Project.load(root).verify().equal
    pq.write_table(pa.concat_tables([buy, buy]), root / "events" / "b.parquet")
    changed = lib.Project.load(root).run(as_of=iso(AS_OF[3]))
    assert changed.full_reason == "events/b.parquet changed"
    assert copy_figures(root) == (set(), None, set())  # a file that is rewritten: no sort
    stable = lib.Project.load(root).run(as_of=iso(AS_OF[3] + timedelta(minutes=1)))
    assert stable.incremental and base not in copy_files(root)
    assert copy_figures(root)[:2] == ({6}, events + 3)
    assert lib.Project.load(root).verify().equal


def _with_columns(path: Path, amount: float) -> None:
    """The events file at ``path`` with an ``amount`` and two columns no segment reads: ``id``
    (unique, for ``dedupe_on``) and ``note``."""
    table = pq.read_table(path)
    rows = table.num_rows
    table = table.append_column("amount", pa.array([amount] * rows))
    table = table.append_column("id", pa.array([f"{path.stem}-{i}" for i in range(rows)]))
    pq.write_table(table.append_column("note", pa.array(["unread"] * rows)), path)


@pytest.mark.parametrize("source", ["copy", "files"])
def test_an_incremental_run_reads_only_the_event_columns_its_queries_name(
    root: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """D's rows of the events are read with the columns the plan and the wake-up times name,
    the others left NULL: a wide export's columns cost per column decoded. From the state's
    copy, and from the files when there is no copy (``dedupe_on``); the run commits what a
    full run does."""
    _with_columns(root / "events" / "a.parquet", 10.0)
    if source == "files":
        config = root / "segctl.yaml"
        config.write_text(
            config.read_text().replace(
                "events: events/*.parquet", "events: {path: events/*.parquet, dedupe_on: id}"
            )
        )
    (root / "segments" / "spenders.yaml").write_text(
        "name: spenders\nrule: {event: login, sum: {of: amount, gte: 25}}\n"
    )
    seen: dict[str, int] = {}
    prepare_wake = incremental.Incremental.prepare_wake

    def counting(self: incremental.Incremental, wake: str) -> None:
        found = self.engine.con.execute(
            "SELECT count(*), count(amount), count(id), count(note) FROM events"
        ).fetchall()[0]
        seen.update(zip(("rows", "amount", "id", "note"), found, strict=True))
        prepare_wake(self, wake)

    monkeypatch.setattr(incremental.Incremental, "prepare_wake", counting)
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    assert seen["note"] > 0  # a full run reads the views
    new_events(root / "events" / "b.parquet", "p2", AS_OF[0] + timedelta(hours=1))
    _with_columns(root / "events" / "b.parquet", 20.0)
    run = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert run.incremental
    assert seen["rows"] == seen["amount"] > 0 and seen["id"] == seen["note"] == 0, seen
    assert "p2" in set(lib.Project.load(root).members("spenders")["person_id"].to_list())
    assert lib.Project.load(root).verify().equal
    assert (copy_figures(root)[0] != set()) == (source == "copy")


def test_no_copy_of_the_events_when_rows_depend_on_other_files(root: Path) -> None:
    """With ``dedupe_on`` a file's rows depend on the others' (which repeat is kept): runs keep
    no copy and stay incremental, reading D's rows from the files; dropping ``dedupe_on``
    (a full run: the data configuration changed) makes the next run keep one."""
    config = root / "segctl.yaml"
    plain = config.read_text()
    config.write_text(
        plain.replace(
            "events: events/*.parquet", "events: {path: events/*.parquet, dedupe_on: event}"
        )
    )
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    new_events(root / "events" / "b.parquet", "p5", AS_OF[0] + timedelta(hours=1))
    second = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert second.incremental
    assert copy_figures(root) == (set(), None, set())
    config.write_text(plain)
    third = lib.Project.load(root).run(as_of=iso(AS_OF[2]))
    assert third.full_reason == "the data configuration changed"
    assert copy_figures(root)[0] == {3}


def test_d_rows_are_read_with_the_copys_largest_file_first(tmp_path: Path) -> None:
    """DuckDB estimates a Parquet scan from its first file: with an incremental run's small
    file first (by name) it built the semi-join's hash table on the copy instead of on D
    (4.0 s instead of 0.63 s at 50M events). Read lists the largest first, whatever the
    names, so the copy is the probe side; the rows are the same either way."""
    con = duckdb.connect()
    rows = (
        "SELECT hash(p) AS h, p AS person_id, i AS n "
        "FROM (SELECT 'p' || (i % 5000) AS p, i FROM range(200000) t(i))"
    )
    big, small = tmp_path / "b.parquet", tmp_path / "a.parquet"  # the small one sorts first
    con.execute(f"COPY ({rows} ORDER BY h) TO '{big}' (FORMAT parquet)")
    con.execute(f"COPY ({rows} LIMIT 10) TO '{small}' (FORMAT parquet)")
    con.execute("CREATE TEMP TABLE d AS SELECT 'p' || i AS person_id FROM range(0, 5000, 25) t(i)")
    statements: list[str] = []

    class Recording:
        def execute(self, sql: str) -> Any:
            statements.append(sql)
            return con.execute(sql)

    con.execute("CREATE TEMP TABLE mine (person_id VARCHAR, n BIGINT, unread INTEGER)")
    event_rows.read(Recording(), [small, big], "d", "mine", ["person_id", "n"], None)  # type: ignore[arg-type]
    query = statements[0].split(" BY NAME ", 1)[1]
    plan = "".join(str(r[1]) for r in con.execute(f"EXPLAIN {query}").fetchall())
    assert "RIGHT_SEMI" not in plan, plan
    expected = con.execute(
        f"SELECT count(*) FROM read_parquet(['{big}', '{small}']) "
        "WHERE person_id IN (SELECT person_id FROM d)"
    ).fetchall()
    assert con.execute("SELECT count(*) FROM mine").fetchall() == expected != [(0,)]
    assert con.execute("SELECT count(unread) FROM mine").fetchall() == [(0,)]  # not read


RENDER = "Video Rendered"
#: Each tool's export (tests/exports.py), by preset: its writer, folder, file suffix, the name
#: of its render event, and the property that holds an amount.
TOOL_EXPORTS: dict[str, tuple[Callable[[Truth, Path], object], str, str, str, str]] = {
    "posthog": (write_posthog, "posthog", ".csv", RENDER, "properties.amount"),
    "segment": (write_segment_archive, "archive", ".gz", RENDER, "properties.amount"),
    "amplitude": (write_amplitude, "amplitude", ".json.gz", RENDER, "event_properties.amount"),
    "mixpanel": (write_mixpanel, "mixpanel", ".jsonl", RENDER, "properties.amount"),
    "ga4": (write_ga4, "ga4", ".parquet", "video_rendered", "event_params.amount"),
}


def export_in_parts(t: Truth, parts: int) -> list[Truth]:
    """The truth's rows dealt round-robin into ``parts`` exports, each person's in time order
    (the shards of an export landing one by one): a person's first row, which may link their
    anonymous id, in the first, their later rows, anonymous ones too, in the others; a
    repeated row with its original."""
    found = []
    for part in range(parts):
        one = deepcopy(t)
        for person in one.persons:
            person.events = person.events[part::parts]
        one.persons = [p for p in one.persons if p.events]
        kept = {(p.user_id, e.event_id) for p in one.persons for e in p.events}
        one.repeats = [(p, e) for p, e in one.repeats if (p.user_id, e.event_id) in kept]
        found.append(one)
    return found


@pytest.mark.parametrize("tool", sorted(TOOL_EXPORTS))
def test_each_tools_export_landing_in_parts_runs_incrementally_as_in_full(
    tmp_path: Path, tool: str
) -> None:
    """A tool's export landing as files one by one (SPEC 1's presets: CSV, gzipped NDJSON,
    Parquet; repeated rows removed by the event id; anonymous rows stitched to the person
    another file links them to): each run after the first is incremental and commits what
    ``run --full`` does, with the same data warnings."""
    writer, folder, suffix, render, amount = TOOL_EXPORTS[tool]
    root = tmp_path / "project"
    (root / "segments").mkdir(parents=True)
    (root / "segctl.yaml").write_text(
        f"data:\n  events: {{path: '{folder}/*{suffix}', preset: {tool}, name: export}}\n"
        "segments: segments/\ntimezone: UTC\n"
    )
    rules = {
        "renders": f"{{event: '{render}', within: 30d, count: {{gte: 2}}}}",
        "recent": "{event: '*', within: 3d, count: {gte: 1}}",
        "busy": "{event: '*', count: {gte: 4}}",
        "new": "{event: '*', first_seen: {within: 10d}}",
        "spent": f"{{event: '*', sum: {{of: '{amount}', gte: 40}}}}",
    }
    for name, body in rules.items():
        (root / "segments" / f"{name}.yaml").write_text(f"name: {name}\nrule: {body}\n")
    t = truth(seed=11, persons=30)
    # The runs a minute apart after the last event: the later files' rows are late, and D is
    # their persons (a person the run missed would keep a stale count).
    last = max(e.at for p in t.persons for e in p.events)
    moments = [last + timedelta(hours=1, minutes=i) for i in range(3)]
    members: set[str] = set()
    said: set[str] = set()
    for index, (part, moment) in enumerate(zip(export_in_parts(t, 3), moments, strict=True)):
        written = tmp_path / f"written-{index}"
        writer(part, written)
        (root / folder).mkdir(exist_ok=True)
        for file in sorted(p for p in written.rglob("*") if p.is_file()):
            file.rename(root / folder / f"{index}-{file.name}")
        full = tmp_path / f"full-{index}"
        shutil.copytree(root, full)
        run = segctl(root, "run", "--as-of", iso(moment), "--format", "json")
        assert run.returncode == 0, run.stderr
        expected = segctl(full, "run", "--as-of", iso(moment), "--full", "--format", "json")
        assert expected.returncode == 0, expected.stderr
        assert reason_lines(run) == (["full evaluation: first run"] if index == 0 else [])
        assert committed(root) == committed(full)
        warnings = json.loads(run.stdout)["warnings"]
        assert warnings == json.loads(expected.stdout)["warnings"]
        said.update(warnings)
        members |= {p for found in committed(root)[0].values() for p in found}
    # Not a comparison of nothing: the segments hold persons, and events were left out.
    assert len(members) >= 10
    assert any("were ignored" in w for w in said), said


def test_files_inside_and_outside_a_hive_folder_run_incrementally_as_in_full(
    root: Path,
) -> None:
    """A glob catching files in ``day=...`` folders and beside them: DuckDB reads no
    ``day`` column for the whole list, but detected one for a new file read alone (each run
    after the first failed, with --full too, on a column the copy of the events lacks). The
    folders' columns are decided once for a source's files and given to every read."""
    from segctl.sources.inputs import hive_partitioned

    config = root / "segctl.yaml"
    config.write_text(config.read_text().replace("events/*.parquet", "events/**/*.parquet"))
    new_events(root / "events" / "day=2026-11-02" / "b.parquet", "p5", AS_OF[0])
    assert not hive_partitioned(("/e/day=1/b.parquet", "/e/a.parquet"))
    assert hive_partitioned(("/e/day=1/b.parquet", "/e/day=2/c.parquet"))
    assert not hive_partitioned(("/e/day=1/b.parquet", "/e/day=2/x=1/c.parquet"))
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    new_events(root / "events" / "day=2026-11-03" / "c.parquet", "p6", AS_OF[0])
    result = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=1))
    assert result.incremental and "day" not in lib.Project.load(root).schema["events"]
    assert lib.Project.load(root).verify().equal
    # Every file in day= folders: the folders' column is read, Parquet and NDJSON alike.
    (root / "events" / "a.parquet").unlink()
    (root / "events" / "day=2026-11-04").mkdir()
    (root / "events" / "day=2026-11-04" / "d.ndjson").write_text(
        '{"person_id": "p1", "event": "login", "timestamp": "2026-03-10T00:00:00Z"}\n'
    )
    config.write_text(config.read_text().replace("events/**/*.parquet", "events/**/*.*"))
    schema = lib.Project.load(root).schema["events"]
    assert "day" in schema


def test_a_new_file_of_naive_timestamps_beside_zoned_ones_runs_incrementally_as_in_full(
    root: Path,
) -> None:
    """Zoned files (TIMESTAMPTZ) and then one of naive timestamps (UTC): read alone, the new
    file gave its rows no instant in the column the plan's pushed-down time filter reads, so
    the incremental run left them out of every window (p5 not active; --full saw it)."""
    lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    when = AS_OF[1] + timedelta(hours=1)
    pq.write_table(
        pa.table(
            {
                "person_id": ["p5"],
                "event": ["login"],
                "timestamp": pa.array([when.replace(tzinfo=None)], pa.timestamp("us")),
            }
        ),
        root / "events" / "b.parquet",
    )
    result = run_beside_a_full_run(root, when + timedelta(hours=1))
    assert result.incremental
    assert "p5" in committed(root)[0]["active"]


@pytest.mark.parametrize("first", ["number", "string"])
def test_ndjson_ids_written_as_numbers_in_one_file_and_text_in_another(
    tmp_path: Path, first: str
) -> None:
    """`"person_id": 1001` in one file and `"1002"` in the next: read together the column is
    JSON values, whose text kept a string's quotes ('"1002"', no persons row), where the
    new file read alone gave 1002: the runs disagreed (and the full run lost old rows)."""
    root = tmp_path / "proj"
    (root / "events").mkdir(parents=True)
    (root / "segments").mkdir()
    (root / "persons.csv").write_text("person_id\n1001\n1002\n")
    (root / "segctl.yaml").write_text(
        "data:\n  events: events/*.ndjson\n  persons: persons.csv\nsegments: segments/\n"
    )
    (root / "segments" / "s.yaml").write_text(
        "name: s\nrule: {event: login, within: 7d, count: {gte: 1}}\n"
    )

    def line(person: int, when: datetime) -> str:
        value: object = person if (first == "number") == (person == 1001) else str(person)
        stamp = iso(when)
        return json.dumps({"person_id": value, "event": "login", "timestamp": stamp}) + "\n"

    (root / "events" / "a.ndjson").write_text(line(1001, AS_OF[0] - timedelta(hours=1)))
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))
    (root / "events" / "b.ndjson").write_text(line(1002, AS_OF[0] + timedelta(minutes=1)))
    result = run_beside_a_full_run(root, AS_OF[0] + timedelta(minutes=2))
    assert committed(root)[0]["s"] == {"1001", "1002"}
    assert not result.warnings


def test_a_file_of_text_timestamps_beside_nanosecond_ones_runs_incrementally_as_in_full(
    tmp_path: Path,
) -> None:
    """A Parquet file typed in nanoseconds rounded .999999999 up to the next second, where
    the same instant as text is cut to .999999: a new file of text timestamps (even empty)
    made the union text, so the full run read the old file otherwise than the runs before
    (a purchase no longer after its signup). Nanoseconds are cut, read either way."""
    root = tmp_path / "proj"
    (root / "events").mkdir(parents=True)
    (root / "segments").mkdir()
    (root / "segctl.yaml").write_text("data:\n  events: events/*.parquet\nsegments: segments/\n")
    (root / "segments" / "seq.yaml").write_text(
        "name: seq\nrule: {sequence: {steps: [{event: signup}, {event: purchase}], within: 30d}}\n"
    )
    last = 1794340799999999  # 19:59:59.999999 in microseconds
    for name, kind, stamp, unit in [
        ("a", "signup", last, "us"),
        ("b", "purchase", last * 1000 + 999, "ns"),  # .999999999
    ]:
        pq.write_table(
            pa.table(
                {
                    "person_id": ["p1"],
                    "event": [kind],
                    "timestamp": pa.array([stamp], pa.int64()).cast(pa.timestamp(unit)),
                }
            ),
            root / "events" / f"{name}.parquet",
        )
    moment = datetime(2026, 11, 10, 21, tzinfo=UTC)
    lib.Project.load(root).run(as_of=iso(moment))
    empty = {"person_id": pa.array([], pa.string()), "event": pa.array([], pa.string())}
    empty["timestamp"] = pa.array([], pa.string())
    pq.write_table(pa.table(empty), root / "events" / "c.parquet")
    run_beside_a_full_run(root, moment + timedelta(minutes=1))
    assert lib.Project.load(root).verify().equal


def test_the_data_configurations_hash_is_the_same_in_every_process(tmp_path: Path) -> None:
    """A preset's source (its columns named beside it, a set) hashed by its repr differed
    from one process to the next (Python's string hash seed): one run in three of such a
    project was full, "the data configuration changed", hiding the real reason."""
    import subprocess
    import sys

    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: {path: e/*.json, preset: segment, columns: {event: event}, "
        "dedupe_on: messageId}\n  identities: {path: ids.csv, preset: segment}\n"
        "segments: segments/\n"
    )
    script = (
        "import sys; from pathlib import Path; from segctl.config import load_config; "
        "from segctl.sources.runfiles import data_hash; "
        "print(data_hash(load_config(Path(sys.argv[1]))))"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(hashes) == 1, hashes


def test_a_state_of_an_older_reading_makes_the_next_run_full(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data hash holds the version of how rows are read (``runfiles.READING``): a state
    written by a segctl that read some rows otherwise (nanoseconds rounded, NDJSON ids
    quoted) must not be carried on incrementally, so the first run after an upgrade is full,
    saying the data configuration changed, though segctl.yaml did not."""
    from segctl.config import load_config
    from segctl.sources import runfiles

    config = load_config(root)
    now = runfiles.data_hash(config)
    monkeypatch.setattr(runfiles, "READING", runfiles.READING - 1)
    assert runfiles.data_hash(config) != now
    lib.Project.load(root).run(as_of=iso(AS_OF[0]))  # the state of the older version
    monkeypatch.undo()
    upgraded = lib.Project.load(root).run(as_of=iso(AS_OF[1]))
    assert not upgraded.incremental
    assert upgraded.full_reason == "the data configuration changed"
    assert lib.Project.load(root).run(as_of=iso(AS_OF[2])).incremental  # and after it, not
