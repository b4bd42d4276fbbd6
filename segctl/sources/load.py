"""Sources -> the DuckDB views the compiled plans read (SPEC 1, "Data sources").

Every source is read by its format's reader, its columns mapped to the canonical ones
(:mod:`segctl.sources.columns`), and the sources of a role unioned by name:

- ``segctl_events_staged``: every event row with its source's index, its resolved person (the
  row's own, else the person its anonymous id links to) and a duplicate flag (``dedupe_on``);
- ``events``: the rows the plans count (not duplicates, with a person and an event name);
- ``persons``: the persons source (its latest row per person with ``latest_by``), else the
  distinct persons of the events with ``created_at`` their first event;
- ``subscriptions`` as before.

Links between ids (``identities`` sources, and event rows carrying both a person id and an
anonymous id) are resolved into ``segctl_identity_map`` (:mod:`segctl.sources.identities`).
Nothing is dropped silently: :mod:`segctl.sources.checks` counts what the views leave out.
Every query is a sqlglot tree: the readers in :mod:`segctl.sources.sql`, the views in
:mod:`segctl.sources.views`.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
from sqlglot import exp

from segctl.definitions.data import COLUMN_KEYS, Source
from segctl.errors import DataError, DataProblems
from segctl.sources import columns as cols
from segctl.sources import runfiles, views
from segctl.sources.identities import resolve
from segctl.sources.inputs import InputFiles
from segctl.sources.sql import create_view, duck, json_type, read_files, union_by_name
from segctl.sources.views import DUPLICATE, LATEST, RAW_TIMESTAMP, alias
from segctl.tempnames import EVENTS_STAGED_VIEW, IDENTITY_MAP_TABLE

#: Canonical timestamp column of each role.
TIMESTAMPS = {"events": "timestamp", "persons": "created_at", "subscriptions": "updated_at"}
#: Columns every file of a source must have (events: also a person id or an anonymous id).
REQUIRED = {
    "events": ("event", "timestamp"),
    "persons": ("person_id",),
    "subscriptions": ("person_id", "status", "updated_at"),
    "identities": ("id", "person_id"),
}
#: Read as text whatever they look like: ids and phones lose meaning as numbers.
TEXT_COLUMNS = ("person_id", "email", "phone", "id", "anonymous_id")
#: Ids: an empty one is no id (the event is anonymous, or belongs to nobody).
ID_COLUMNS = ("person_id", "id", "anonymous_id")
#: Roles whose files must not be read as events too (SPEC 1: persons and identities may share).
EXCLUSIVE = ("persons", "subscriptions", "identities")


@dataclass
class Group:
    """One format group of one source as read: the reader and the columns it gives."""

    files: InputFiles
    reader: exp.Table
    described: dict[str, str]
    picked: dict[str, cols.Column | None] = field(default_factory=dict)  # canonical -> column


@dataclass
class Staged:
    """One source, read and mapped."""

    source: Source
    index: int
    groups: list[Group]
    query: exp.Query = field(default_factory=exp.select)  # canonical rows (groups unioned)
    dedupe: bool = False
    tz_aware: bool = False  # every group's timestamp is a TIMESTAMPTZ (pushdown possible)


class Loader:
    """Reads every source of a project into DuckDB views on ``con``."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        sources: dict[str, tuple[Source, ...]],
        root: Path,
        display: Callable[[Path], str],
        describe: Callable[[exp.Expr, str], list[tuple[str, str]]],
        *,
        pinned: runfiles.Pinned | None = None,
        checked: frozenset[str] = frozenset(),
        every_line: bool = False,
    ) -> None:
        self.con = con
        self.every_line = every_line  # NDJSON columns sniffed from every line, not the first
        self.pinned = pinned  # segctl verify: only the files the run read
        self.checked = checked  # files whose checks alone need not run again
        self.sources = sources
        self.root = root
        self.display = display
        self.describe = describe  # (reader, role) -> [(column, type)], errors translated
        self.staged: dict[str, list[Staged]] = {}
        self.inputs: dict[str, list[InputFiles]] = {}
        self.raw_timestamp: str | None = None
        self.derived_persons = "persons" not in sources
        self.ambiguous: int = 0  # anonymous ids linked to more than one person
        self.linked = False  # the events join the identity map
        #: (role, source index, canonical column) of timestamps read from text, to scan
        self.text_timestamps: list[tuple[str, int, str]] = []

    # ---- reading ------------------------------------------------------------------------

    def load(self) -> None:
        """Resolve the files of every source, check them, and create the views."""
        found = DataProblems()  # every source's missing files and columns at once
        resolved: dict[str, list[list[InputFiles]]] = {}
        for role, sources in self.sources.items():
            for source in sources:
                with found.check():
                    groups = runfiles.resolve(
                        role, source.paths, self.root, self.pinned, source.where
                    )
                    resolved.setdefault(role, []).append(groups)
        found.raise_any()
        self._check_roles(resolved)
        for role, sources in self.sources.items():
            self.staged[role] = []
            for index, (source, groups) in enumerate(zip(sources, resolved[role], strict=True)):
                self.inputs.setdefault(role, []).extend(groups)
                with found.check():
                    self.staged[role].append(self._stage(source, index, groups))
        found.raise_any()
        if "events" in self.staged:
            self._events_views()
        for role in ("persons", "subscriptions"):
            if role in self.staged:
                self._table_view(role)
        if self.derived_persons:
            self.con.execute(create_view("persons", views.derived_persons()))
            self.inputs["persons"] = [
                InputFiles("persons", (), "derived", "the persons of the events")
            ]

    def read_group(self, source: Source, group: InputFiles) -> Group:
        hive = group.hive
        plain = read_files(group.format, group.files, every_line=self.every_line, hive=hive)
        described = dict(self.describe(plain, source.role))
        if group.format == "json":
            reader = read_files("json", group.files, described, hive=hive)
            described = {k: json_type(v) for k, v in described.items()}
            return Group(group, reader, described)
        if group.format == "csv":
            # Ids, phones and timestamps are parsed by us, not guessed by the sniffer.
            wanted = [*TEXT_COLUMNS, TIMESTAMPS.get(source.role, ""), "latest_by", "dedupe_on"]
            text = [
                name
                for canonical in wanted
                for name in _names(source, canonical)
                if name in described
            ]
            if text:
                reader = read_files("csv", group.files, text=tuple(dict.fromkeys(text)), hive=hive)
                described = dict(self.describe(reader, source.role))
                return Group(group, reader, described)
        return Group(group, plain, described)

    def read_events_of(self, files: Iterable[str]) -> Iterator[tuple[Staged, Group]]:
        """Each events source's rows in ``files`` alone (of the views' inputs), read and
        mapped as the views read them: (the staged source, the group of those files), a group
        per source's group that holds any of them."""
        wanted = set(files)
        for staged in self.staged.get("events", []):
            for group in staged.groups:
                mine = tuple(f for f in group.files.files if f in wanted)
                if mine:
                    one = self.read_group(staged.source, replace(group.files, files=mine))
                    self.pick(staged.source, one)
                    yield staged, one

    def events_of(self, files: Iterable[str]) -> exp.Query | None:
        """The ``events`` view's rows of ``files`` alone (of the views' inputs), read and
        mapped as the view reads them; None when no events source reads any of them. The
        same rows as the view's only when no row's fate depends on another file's rows
        (:func:`segctl.sources.checks.additive`: no ``dedupe_on``, no identity map)."""
        mine: dict[int, tuple[Staged, list[Group]]] = {}
        for staged, one in self.read_events_of(files):
            mine.setdefault(staged.index, (staged, []))[1].append(one)
        if not mine:
            return None
        noted = list(self.text_timestamps)  # the view's own notes stand
        parts = []
        for staged, groups in mine.values():
            part = Staged(staged.source, staged.index, groups)
            part.query = self._source_query(part)
            drop_raw = self.raw_timestamp is None and part.tz_aware
            parts.append(views.flagged(part.query, staged.index, None, drop_raw))
        self.text_timestamps[:] = noted
        return views.counted(union_by_name(parts))

    def _stage(self, source: Source, index: int, files: list[InputFiles]) -> Staged:
        groups = [self.read_group(source, g) for g in files]
        found = DataProblems()  # every file that lacks a column, not the first alone
        for group in groups:
            whole, each = DataProblems(), DataProblems()
            with whole.check():
                self.pick(source, group)
            if len(group.files.files) > 1:
                for file in group.files.files:  # a file of a glob or list is checked alone
                    if file in self.checked:
                        continue  # as a committed run read it, under this configuration
                    single = replace(group.files, files=(file,), display=file)
                    with each.check():
                        one = self.read_group(source, single)
                        self.pick(source, one, self.display(Path(file)))
            # A column no file has: each file says so, by name.
            found.errors += each.errors or whole.errors
        found.raise_any()
        staged = Staged(source, index, groups)
        staged.query = self._source_query(staged)
        return staged

    def pick(self, source: Source, group: Group, display: str | None = None) -> None:
        """Choose the column read as each canonical one; DataError naming the file when a
        required column is missing."""
        display = display or group.files.display
        described = group.described
        role = source.role
        wanted = [*REQUIRED[role], *source.columns]
        if role == "events":
            wanted += ["person_id", "anonymous_id"]
        if role == "persons":
            wanted += ["created_at", "email", "phone"]
        if role == "subscriptions":
            wanted += ["plan", "mrr"]
        csv_files = group.files.files if group.files.format == "csv" else ()
        for canonical in dict.fromkeys([*wanted, "dedupe_on", "latest_by"]):
            names = _names(source, canonical)
            found = next((c for n in names if (c := cols.column(n, described))), None)
            found = self._present(found, names, group)
            group.picked[canonical] = found
            if found is None and canonical == "event" and source.event is not None:
                continue
            if found is None and canonical == "event" and _other_messages(source, described):
                continue
            if found is None and (canonical in REQUIRED[role] or canonical in source.given):
                self._missing(source, canonical, names, described, display, csv_files)
            # Renamed over a column of that name: which one is meant? (A preset's own
            # names are known to be alone in the tool's export.)
            if (
                canonical in source.given
                and source.preset is None
                and found is not None
                and found.name != canonical
                and canonical in described
                and canonical not in COLUMN_KEYS
            ):
                raise DataError(
                    f"{display}: has both '{found.name}' (renamed to '{canonical}' in "
                    f"{_mapping_key(source)}) and a column named '{canonical}'"
                )
        if role == "events" and source.person_per_row:
            group.picked["person_id"] = _row_person(source, group) or group.picked["person_id"]
        if (
            role == "events"
            and group.picked["person_id"] is None
            and (group.picked["anonymous_id"] is None)
        ):
            self._missing(
                source,
                "person_id",
                _names(source, "person_id"),
                described,
                display,
                csv_files,
            )

    def _present(
        self, found: cols.Column | None, names: tuple[str, ...], group: Group
    ) -> cols.Column | None:
        """Of candidates that are paths into JSON, the first one holding a value somewhere
        (a key a tool writes only in some exports, such as Mixpanel's ``$user_id``)."""
        if found is None or len(names) < 2 or found.name not in names:
            return found
        for name in names[names.index(found.name) :]:
            candidate = cols.column(name, group.described)
            if candidate is None:
                continue
            if candidate.name in group.described:
                return candidate
            probe = (
                exp.select("1")
                .from_(group.reader.copy())
                .where(exp.not_(candidate.expr.copy().is_(exp.null())))
                .limit(1)
            )
            hit = self.con.execute(duck(probe)).fetchall()
            if hit:
                return candidate
        return found

    def _missing(
        self,
        source: Source,
        canonical: str,
        names: tuple[str, ...],
        described: dict[str, str],
        display: str,
        files: tuple[str, ...],  # the CSV files, whose rows may be ragged
    ) -> None:
        listed = ", ".join(described)
        if canonical in COLUMN_KEYS and canonical in source.given:
            raise DataError(
                f"{display}: missing column '{names[0]}' (given as {canonical} in "
                f"{source.where}); columns are: {listed}"
            )
        if canonical in source.given:
            raise DataError(
                f"{display}: missing column '{names[0]}' (mapped to '{canonical}' in "
                f"{_mapping_key(source)}); columns are: {listed}"
            )
        if not source.mapping:
            hint = f"rename yours with data.columns.{source.role}: {{{canonical}: your_column}}"
        else:
            hint = f"map yours with columns: {{{canonical}: your_column}} in {source.where}"
        if source.preset is not None:
            hint = (
                f"the {source.preset} preset reads it from {' or '.join(names)}; map yours "
                f"with columns: {{{canonical}: your_column}} in {source.where}"
            )
        if canonical == "person_id" and source.role == "events":
            hint += ", or give anonymous_id: your_column"
        # DuckDB names the columns itself when it finds no header row (a row of more fields
        # than the header), or takes another delimiter (a row of fewer): name that row.
        unread = all(re.fullmatch(r"column\d+", c) for c in described)
        if (unread or len(described) == 1) and (ragged := ragged_row(files)):
            raise ragged_error(ragged, self.display)
        if unread:
            hint = (
                "no header row was found: is the file empty, or does a row have more "
                "fields than the header?"
            )
        raise DataError(
            f"{display}: missing required column '{canonical}' (columns are: {listed}; {hint})"
        )

    def _check_roles(self, resolved: dict[str, list[list[InputFiles]]]) -> None:
        """A file read as events and as persons, subscriptions or identities is an error."""
        event_files = {
            file: source
            for source, groups in zip(
                self.sources.get("events", ()), resolved.get("events", []), strict=True
            )
            for group in groups
            for file in group.files
        }
        for role in EXCLUSIVE:
            for source, groups in zip(
                self.sources.get(role, ()), resolved.get(role, []), strict=True
            ):
                for file in (f for g in groups for f in g.files):
                    if file in event_files:
                        raise DataError(
                            f"{self.display(Path(file))}: read both as events (by "
                            f"{event_files[file].where}: {event_files[file].name}) and as {role} "
                            f"(by {source.where}); narrow the events path or glob so that it "
                            "does not catch this file"
                        )

    # ---- SQL of a source -------------------------------------------------------------------

    def _source_query(self, staged: Staged) -> exp.Query:
        source = staged.source
        role = source.role
        selects: list[exp.Query] = []
        tz = []
        for group in staged.groups:
            picked = group.picked
            used = {
                c.name
                for k, c in picked.items()
                if c is not None
                and c.name in group.described
                and k not in ("dedupe_on", "latest_by")
            }
            out: dict[str, exp.Expr] = {}
            for canonical, found in picked.items():
                if canonical in ("dedupe_on", "latest_by"):
                    continue
                if found is None:
                    if canonical in ("person_id", "event", "id"):
                        out[canonical] = exp.cast(exp.Null(), "VARCHAR")
                    continue
                if canonical == TIMESTAMPS.get(role):
                    if cols.is_number(found.type) and not source.timestamp_unit:
                        raise self._numbers_without_unit(source, group, canonical)
                    out[canonical] = cols.timestamp(
                        found, source.timestamp_unit, group.files.display, canonical
                    )
                    tz.append(found.type == cols.TIMESTAMPTZ and source.timestamp_unit is None)
                    if cols.is_text(found.type) or source.timestamp_unit:  # a number: its range
                        self.text_timestamps.append((role, staged.index, canonical))
                elif canonical in TEXT_COLUMNS or canonical == "event":
                    out[canonical] = cols.text(found, canonical in ID_COLUMNS)
                elif cols.is_timestamp(found.type) and found.type != "TIMESTAMP":
                    out[canonical] = cols.timestamp(found, None, group.files.display, canonical)
                else:
                    out[canonical] = found.expr
            if role == "events" and source.event is not None:
                out["event"] = exp.Literal.string(source.event)
            key = picked.get("dedupe_on")
            if role == "events" and key is not None:
                out[DUPLICATE] = cols.text(key)  # replaced by the flag below
                staged.dedupe = True
            if role == "persons" and picked.get("latest_by") is not None:
                found = picked["latest_by"]
                assert found is not None
                value = (
                    cols.timestamp(found, source.timestamp_unit, group.files.display, "latest_by")
                    if not cols.is_number(found.type) or source.timestamp_unit
                    else found.expr
                )
                out[LATEST] = value
                if cols.is_text(found.type) or source.timestamp_unit:
                    self.text_timestamps.append((role, staged.index, "latest_by"))
            # In the file's column order (a mapped column where its source stands); other
            # columns are properties, under their own names.
            source_of = {
                c.name: k
                for k, c in picked.items()
                if c is not None and k in out and c.name in used
            }
            projections: list[exp.Expr] = []
            emitted: set[str] = set()
            for name, kind in group.described.items():
                mapped = source_of.get(name)
                if mapped is not None and mapped not in emitted:
                    projections.append(alias(out[mapped], mapped))
                    emitted.add(mapped)
                elif name not in used and name not in out:
                    # Every timestamp as naive UTC, as the canonical ones.
                    if cols.is_timestamp(kind) and kind != "TIMESTAMP":
                        tree = cols.timestamp(
                            cols.Column(exp.column(name, quoted=True), kind, name),
                            None,
                            group.files.display,
                            name,
                        )
                        projections.append(alias(tree, name))
                    else:
                        projections.append(exp.column(name, quoted=True))
            for canonical, tree in out.items():
                if canonical not in emitted:
                    projections.append(alias(tree, canonical))
            stamp = picked.get("timestamp")
            if role == "events" and tz and tz[-1] and "timestamp" in out and stamp is not None:
                projections.append(alias(stamp.expr, RAW_TIMESTAMP))
            elif role == "events" and self.raw_timestamp is not None and "timestamp" in out:
                # A new file read alone (:meth:`events_of`) whose timestamps are naive, in a
                # view whose files' are all zoned: its rows' instants for the plans' filter
                # on the raw column (left NULL, they fell outside every window).
                instant = exp.cast(out["timestamp"].copy(), "TIMESTAMPTZ")
                projections.append(alias(instant, RAW_TIMESTAMP))
            selects.append(exp.select(*projections).from_(group.reader.copy()))
        staged.tz_aware = bool(tz) and all(tz)
        return union_by_name(self._text_over_json(selects)[0])

    def _numbers_without_unit(self, source: Source, group: Group, canonical: str) -> DataError:
        """A timestamp column of numbers and no ``timestamp_unit``: the error names its
        first value, with its file and row (or line), and the unit that reads it."""
        found = group.picked[canonical]
        assert found is not None
        for file in group.files.files:
            try:
                one = self.read_group(source, replace(group.files, files=(file,), display=file))
                self.pick(source, one, file)
            except DataError:
                continue
            column = one.picked.get(canonical)
            if column is None:
                continue
            numbered = exp.select(
                exp.alias_(exp.Window(this=exp.RowNumber()), "n"), exp.alias_(column.expr, "v")
            ).from_(one.reader)
            first = (
                exp.select("n", "v")
                .from_(numbered.subquery())
                .where(exp.column("v").is_(exp.null()).not_())
                .order_by("n")
                .limit(1)
            )
            rows = self.con.execute(duck(first)).fetchall()
            if rows:
                where = "line" if one.files.format == "json" else "row"
                first_value = (where, rows[0][0], rows[0][1])
                return cols.numbers_not_timestamps(
                    self.display(Path(file)), column, canonical, first_value
                )
        return cols.numbers_not_timestamps(group.files.display, found, canonical)

    def _events_views(self) -> None:
        all_tz = all(s.tz_aware for s in self.staged["events"])
        parts = []
        alike = self._alike(*self._text_over_json([s.query for s in self.staged["events"]]))
        for staged, query in zip(self.staged["events"], alike, strict=True):
            staged.query = query
            order = None
            if staged.dedupe:
                # Exports repeat rows: keep one per key (the first in a fixed order).
                order = ["timestamp", "event", "person_id"]
                if any(g.picked.get("anonymous_id") for g in staged.groups):
                    order.append("anonymous_id")
            drop_raw = not all_tz and staged.tz_aware
            parts.append(views.flagged(staged.query, staged.index, order, drop_raw))
        self.raw_timestamp = RAW_TIMESTAMP if all_tz else None
        union = union_by_name(parts)
        self._identity_map(union)
        body = views.resolved(union) if self.linked else union
        self.con.execute(create_view(EVENTS_STAGED_VIEW, body))
        self.con.execute(create_view("events", views.counted()))

    def _described(self, query: exp.Query) -> dict[str, str]:
        """The columns of ``query`` and their DuckDB types."""
        found = self.con.execute(f"DESCRIBE {duck(query)}").fetchall()
        return {str(row[0]): str(row[1]) for row in found}

    def _text_over_json(
        self, queries: list[exp.Query]
    ) -> tuple[list[exp.Query], list[dict[str, str]]]:
        """Parts of a union (a source's formats, the events sources) where a column is JSON
        values in one (an NDJSON key holding numbers and text) and text in another: the JSON
        read as text (a string unquoted), since the union would make the column JSON and
        fail on the text that is not JSON (``'e0'``: an internal error, every run). With the
        parts' column types after it (none for a single part, which is left as it is)."""
        if len(queries) < 2:
            return queries, []
        types = [self._described(q) for q in queries]
        text = {c for t in types for c, kind in t.items() if kind == "VARCHAR"}
        out = []
        for query, mine in zip(queries, types, strict=True):
            read = [c for c, kind in mine.items() if kind == "JSON" and c in text]
            casts = [
                alias(cols.text(cols.Column(exp.column(c, quoted=True), "JSON", c), False), c)
                for c in read
            ]
            mine.update(dict.fromkeys(read, "VARCHAR"))
            out.append(
                exp.select(exp.Star(replace=casts)).from_(query.subquery()) if casts else query
            )
        return out, types

    def _alike(self, queries: list[exp.Query], types: list[dict[str, str]]) -> list[exp.Query]:
        """The events sources (their column ``types``), a column that is wholly empty in one
        of them cast to the type the others agree on: an empty CSV column reads as text, and
        the union would make the column text for every source (a ``sum`` of a number column
        refused)."""
        if len(queries) < 2:
            return queries
        out = []
        for query, mine in zip(queries, types, strict=True):
            casts = []
            for column, kind in mine.items():
                others = {t[column] for t in types if t is not mine and column in t} - {kind}
                if kind != "VARCHAR" or len(others) != 1:
                    continue
                name = exp.to_identifier(column, quoted=True)
                count = exp.select(exp.Count(this=exp.column(name))).from_(query.subquery())
                [(found,)] = self.con.execute(duck(count)).fetchall()
                if not found:
                    to = exp.DataType.build(others.pop(), dialect="duckdb")
                    casts.append(alias(exp.cast(exp.column(name.copy()), to), column))
            if casts:
                query = exp.select(exp.Star(replace=casts)).from_(query.subquery())
            out.append(query)
        return out

    def _identity_map(self, union: exp.Query) -> None:
        """Resolve every link (identities sources, events carrying both ids) into the map."""
        identities = [staged.query for staged in self.staged.get("identities", [])]
        # Links matter only to events with an anonymous id.
        self.linked = any(
            g.picked.get("anonymous_id") is not None
            for s in self.staged["events"]
            for g in s.groups
        )
        if not self.linked:
            return
        links = duck(views.links(identities, union))
        self.ambiguous = resolve(self.con, links, IDENTITY_MAP_TABLE)

    def _table_view(self, role: str, as_of: datetime | None = None) -> None:
        (staged,) = self.staged[role]
        query = staged.query
        if role == "persons" and any(g.picked.get("latest_by") for g in staged.groups):
            query = views.latest(query, as_of)
        self.con.execute(create_view(role, query))

    def set_as_of(self, as_of: datetime) -> None:
        """``latest_by``: each person's latest row at or before ``as_of`` (naive UTC)."""
        if "persons" in self.staged:
            self._table_view("persons", as_of)


def ragged_error(
    ragged: tuple[str, int, int, list[str]], display: Callable[[Path], str]
) -> DataError:
    """The DataError for a row of :func:`ragged_row`."""
    file, line, fields, header = ragged
    return DataError(
        f"{display(Path(file))}:{line}: a row of {fields} fields, where the header has "
        f"{len(header)} ({', '.join(header)}), so the columns cannot be read: quote the "
        "values that hold the delimiter, or fix the row"
    )


def ragged_row(files: tuple[str, ...]) -> tuple[str, int, int, list[str]] | None:
    """The first row of a CSV file whose number of fields differs from its header's: (file,
    line, its fields, the header); None when there is none."""
    for file in files:
        opener = gzip.open if file.lower().endswith(".gz") else open
        with opener(file, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            sample = handle.read(65536)
            handle.seek(0)
            try:
                dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
            except csv.Error:
                dialect = csv.excel
            rows = csv.reader(handle, dialect)
            header = next(rows, [])
            for row in rows:
                if header and row and len(row) != len(header):
                    return file, rows.line_num, len(row), header
    return None


def _row_person(source: Source, group: Group) -> cols.Column | None:
    """The person id of each row as :attr:`Source.person_per_row` reads it: the first of the
    candidates present that has a value on the row and does not name the row's device
    (``$device:`` and an id, or the row's anonymous id read from another column)."""
    found = [c for n in _names(source, "person_id") if (c := cols.column(n, group.described))]
    if not found:
        return None
    anonymous = group.picked.get("anonymous_id")
    reads: list[exp.Expr] = []
    for column in found:
        value = cols.text(column)
        device: exp.Expr = exp.func("starts_with", value.copy(), exp.Literal.string("$device:"))
        if anonymous is not None and anonymous.name != column.name:
            same = exp.EQ(this=value.copy(), expression=cols.text(anonymous))
            device = exp.or_(device, exp.Coalesce(this=same, expressions=[exp.false()]))
        reads.append(exp.Case(ifs=[exp.If(this=exp.not_(device), true=value)]))
    tree = exp.Coalesce(this=reads[0], expressions=reads[1:]) if len(reads) > 1 else reads[0]
    return cols.Column(tree, "VARCHAR", found[0].name)


def _names(source: Source, canonical: str) -> tuple[str, ...]:
    if canonical == "dedupe_on":
        return source.dedupe_on
    if canonical == "latest_by":
        return source.latest_by
    if canonical == "anonymous_id":
        return source.anonymous_id
    return source.column(canonical)


def _mapping_key(source: Source) -> str:
    if not source.mapping:
        return f"data.columns.{source.role}"
    return f"{source.where}.columns"


def _other_messages(source: Source, described: dict[str, str]) -> bool:
    """A file of Segment's raw archive (RudderStack's) holding no track call, only identify,
    page or screen messages (their ``type``): it has no ``event`` column, and its rows have
    no event name (counted and said, as the same messages beside track calls are)."""
    return source.preset in ("segment", "rudderstack") and "type" in described
