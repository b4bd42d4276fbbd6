"""What the views leave out, and bad values traced to their file (SPEC 1, "Data sources").

Nothing is dropped silently: :func:`warnings` says per events source how many rows were
repeats (``dedupe_on``), had no person once identities were resolved, had no event name, had
no timestamp (an empty cell: no condition can place the event in time), or had a person id
that no row of the persons source holds (its events belong to nobody evaluated).
:func:`find_bad_timestamps` traces a timestamp that does not parse to its file, row (or line),
column and value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from segctl.errors import DataError, DataProblems
from segctl.sources import columns as cols
from segctl.sources.load import Group, Loader, Staged
from segctl.sources.sql import count, duck
from segctl.sources.views import DUPLICATE, SOURCE_INDEX
from segctl.tempnames import EVENTS_STAGED_VIEW
from segctl.textfmt import percent


@dataclass
class Stats:
    """What the events views left out of one source."""

    name: str
    rows: int
    duplicates: int
    no_person: int
    no_event: int
    no_time: int
    unknown: int  # events of a person id the persons source does not hold


def stats(loader: Loader) -> list[Stats]:
    """Per events source: rows, duplicates removed, rows with no person, no event, no
    timestamp or a person the persons source does not hold."""
    if "events" not in loader.staged:
        return []
    duplicate = exp.column(DUPLICATE, quoted=True)
    kept = exp.not_(duplicate)
    no_person = exp.column("person_id").is_(exp.null())
    no_event = exp.column("event").is_(exp.null())
    no_time = exp.column("timestamp").is_(exp.null())
    named = exp.and_(kept, exp.not_(no_person), exp.not_(no_event))
    per_source = (
        exp.select(
            exp.column(SOURCE_INDEX, quoted=True),
            count(),
            count(duplicate),
            count(exp.and_(kept, no_person)),
            count(exp.and_(kept, exp.not_(no_person), no_event)),
            count(exp.and_(named, no_time)),
            _unknown(loader, exp.and_(named, exp.not_(no_time))),
        )
        .from_(EVENTS_STAGED_VIEW)
        .group_by(exp.Literal.number(1))
    )
    rows = loader.con.execute(duck(per_source)).fetchall()
    by_index = {int(r[0]): r for r in rows}
    out = []
    for staged in loader.staged["events"]:
        r = by_index.get(staged.index, (staged.index, 0, 0, 0, 0, 0, 0))
        out.append(Stats(staged.source.name, *(int(v) for v in r[1:])))
    return out


def _unknown(loader: Loader, counted: exp.Expr, person: str = "person_id") -> exp.Expr:
    """How many rows that pass ``counted`` have a ``person`` the persons source does not hold
    (none without a persons source: the persons are then the events' own). Ids are compared
    by their 64-bit hashes: over every event that costs 1.4 s per 50 million rows, the text
    ids 2.5 s (an unknown id whose hash a known one shares, one chance in 2^64 per pair,
    would go uncounted)."""
    if loader.derived_persons:
        return exp.Literal.number(0)
    known = exp.select(exp.func("hash", exp.column("person_id"))).from_("persons")
    held = exp.In(this=exp.func("hash", exp.column(person)), query=known.subquery())
    return count(exp.and_(counted, exp.not_(held)))


def additive(loader: Loader) -> bool:
    """Whether the figures of :func:`stats` (and the newest event) over a set of files are
    the sums (the max) of those over its parts: no row's fate depends on another file's rows,
    that is, no ``dedupe_on`` (a repeat may sit in another file) and no identity map (a link
    in one file gives another file's anonymous rows a person)."""
    return not loader.linked and not any(s.dedupe for s in loader.staged.get("events", []))


def files_stats(loader: Loader, files: list[str]) -> tuple[list[Stats], datetime | None]:
    """:func:`stats` over the events rows of ``files`` (of the views' inputs) alone, and the
    newest timestamp of those kept (naive UTC; None without one). Exact for the rows of the
    views only when :func:`additive`: the rows are read as the views read them, with each
    source's mapping, but without repeats removed or identities resolved."""
    totals = {
        id(s): Stats(s.source.name, 0, 0, 0, 0, 0, 0) for s in loader.staged.get("events", [])
    }
    newest: datetime | None = None
    for staged, one in loader.read_events_of(files):
        found = one.picked.get("person_id")
        person = cols.text(found) if found is not None else exp.null()
        name = one.picked.get("event")
        event: exp.Expr = cols.text(name, False) if name is not None else exp.null()
        if staged.source.event is not None:
            event = exp.Literal.string(staged.source.event)
        stamp = one.picked.get("timestamp")
        moment: exp.Expr = (
            cols.timestamp(stamp, staged.source.timestamp_unit, one.files.display, "timestamp")
            if stamp is not None
            else exp.cast(exp.null(), "TIMESTAMP")
        )
        inner = exp.select(
            exp.alias_(person, "p"), exp.alias_(event, "e"), exp.alias_(moment, "t")
        ).from_(one.reader)
        p, e = exp.column("p"), exp.column("e")
        has_person = exp.not_(p.is_(exp.null()))
        kept = exp.and_(has_person, exp.not_(e.is_(exp.null())))
        query = exp.select(
            count(),
            count(p.is_(exp.null())),
            count(exp.and_(has_person, e.is_(exp.null()))),
            count(exp.and_(kept, exp.column("t").is_(exp.null()))),
            _unknown(loader, exp.and_(kept, exp.not_(exp.column("t").is_(exp.null()))), "p"),
            _max_where("t", kept),
        ).from_(inner.subquery())
        [(n, no_person, no_event, no_time, unknown, last)] = loader.con.execute(
            duck(query)
        ).fetchall()
        rows = totals[id(staged)]
        rows.rows += int(n)
        rows.no_person += int(no_person)
        rows.no_event += int(no_event)
        rows.no_time += int(no_time)
        rows.unknown += int(unknown)
        if last is not None and (newest is None or last > newest):
            newest = last
    return list(totals.values()), newest


def _max_where(column: str, condition: exp.Expr) -> exp.Expr:
    """``max(column) FILTER (WHERE condition)``."""
    return exp.Filter(this=exp.Max(this=exp.column(column)), expression=exp.Where(this=condition))


def warnings(loader: Loader) -> list[str]:
    """What the events views leave out, one sentence per source and kind (SPEC 1)."""
    return render(stats(loader), loader.ambiguous)


def render(found: list[Stats], ambiguous: int) -> list[str]:
    """The sentences of :func:`warnings` for the figures ``found`` and the count of
    ambiguous anonymous ids."""
    sentences = []
    for s in found:
        kept = s.rows - s.duplicates
        if s.duplicates:
            sentences.append(
                f"{s.name}: {s.duplicates:,} of {s.rows:,} rows "
                f"({_share(s.duplicates, s.rows)}) repeat an earlier row's dedupe_on value "
                "and were removed"
            )
        if s.no_person:
            sentences.append(
                f"{s.name}: {s.no_person:,} of {kept:,} events ({_share(s.no_person, kept)}) "
                "have no person id and were ignored"
            )
        if s.no_event:
            sentences.append(
                f"{s.name}: {s.no_event:,} of {kept:,} rows ({_share(s.no_event, kept)}) have "
                "no event name (identify or page calls?) and were ignored"
            )
        if s.no_time:
            sentences.append(
                f"{s.name}: {s.no_time:,} of {kept:,} events ({_share(s.no_time, kept)}) have "
                "no timestamp and were ignored"
            )
        if s.unknown:
            sentences.append(
                f"{s.name}: {s.unknown:,} of {kept:,} events ({_share(s.unknown, kept)}) have a "
                "person id that no row of the persons source holds and were ignored"
            )
    if ambiguous:
        sentences.append(
            f"identities: {ambiguous:,} anonymous id(s) link to more than one person; "
            "their events count for the first of those person ids in sort order"
        )
    return sentences


def _each_file(loader: Loader, staged: Staged, *, pick: bool) -> Iterator[tuple[str, Group]]:
    """Each file of a source read alone (its columns picked, with ``pick``): the file and
    its group; a file that cannot be read so is skipped (the whole read says why)."""
    for group in staged.groups:
        for file in group.files.files:
            single = replace(group.files, files=(file,), display=file)
            try:
                one = loader.read_group(staged.source, single)
                if pick:
                    loader.pick(staged.source, one, file)
            except DataError:
                continue
            yield file, one


def _first_bad(
    loader: Loader, one: Group, value: exp.Expr, bad: Callable[[exp.Expr], exp.Expr]
) -> tuple[str, int, Any] | None:
    """The first row of a file read alone whose ``value`` is ``bad``: "row" (or "line" in
    NDJSON), its number and the value."""
    numbered = exp.select(
        exp.alias_(exp.Window(this=exp.RowNumber()), "n"), exp.alias_(value, "v")
    ).from_(one.reader)
    first = (
        exp.select("n", "v")
        .from_(numbered.subquery())
        .where(bad(exp.column("v")))
        .order_by("n")
        .limit(1)
    )
    try:
        found = loader.con.execute(duck(first)).fetchall()
    except duckdb.Error:
        return None
    if not found:
        return None
    return ("line" if one.files.format == "json" else "row"), found[0][0], found[0][1]


def find_bad_timestamps(loader: Loader) -> None:
    """Trace a timestamp that does not parse to its file, row (or line), column and value:
    the first of each file and column, every one at once."""
    problems = DataProblems()
    for role, index, canonical in dict.fromkeys(loader.text_timestamps):
        staged = loader.staged[role][index]
        unit = staged.source.timestamp_unit
        for file, one in _each_file(loader, staged, pick=True):
            found = one.picked.get(canonical)
            if found is None:
                continue
            value = cols.text(found, empty_is_null=False)  # a JSON string unquoted
            refused = functools.partial(cols.bad_timestamp, unit=unit)
            bad = _first_bad(loader, one, value, refused)
            if bad is None:
                continue
            where, n, text = bad
            expected = (
                f"expected a number of {cols.UNIT_NAMES[unit]} since the Unix epoch "
                f"(timestamp_unit: {unit}){_out_of_range(text, unit)}"
                if unit
                else "expected ISO-8601, like 2026-01-31T12:00:00Z; values without "
                f"an offset are read as UTC{_epoch_hint(text)}"
            )
            problems.errors.append(
                DataError(
                    f"{loader.display(Path(file))}: {where} {n}: column '{found.name}' has a "
                    f"value that is not a timestamp: {text!r} ({expected})"
                )
            )
    problems.raise_any()


def first_non_number(loader: Loader, table: str, column: str) -> str | None:
    """Why the ``table``'s column (a plain one, not a nested path) is text where a definition
    needs numbers: its first value that is not one, with its file and row (or line); None
    when every value is a number (a column typed text by its files: say nothing more)."""

    def number(v: exp.Expr) -> exp.Expr:
        return exp.TryCast(this=v.copy(), to=exp.DataType.build("DOUBLE"))

    def bad(v: exp.Expr) -> exp.Expr:
        empty = exp.NEQ(this=v.copy(), expression=exp.Literal.string(""))
        return exp.and_(empty, number(v).is_(exp.null()))

    # A column of words (a format, a plan) is text by nature: only one of numbers, half or more,
    # was made text by a few values.
    text = exp.func("trim", exp.cast(exp.column(column, quoted=True), "VARCHAR"))
    present = exp.func("NULLIF", text.copy(), exp.Literal.string(""))
    share = exp.select(exp.Count(this=number(text)), exp.Count(this=present)).from_(
        exp.to_table(table, quoted=True)
    )
    try:
        [(numbers, values)] = loader.con.execute(duck(share)).fetchall()
    except duckdb.Error:
        return None
    if numbers * 2 < values:  # at least half of them numbers
        return None
    for staged in loader.staged.get(table, []):
        for file, one in _each_file(loader, staged, pick=False):
            found = cols.column(column, one.described)
            if found is None or not found.flat:
                continue
            value = exp.func("trim", exp.cast(found.expr, "VARCHAR"))
            if first := _first_bad(loader, one, value, bad):
                where, n, text = first
                return (
                    f"{loader.display(Path(file))}: {where} {n}: column '{column}' holds "
                    f"{text!r}, not a number, so the {table}' column is read as text; fix the "
                    "value (or leave the cell empty for no value)"
                )
    return None


def _out_of_range(value: object, unit: str) -> str:
    """What is wrong with a number ``value`` that ``unit`` reads beyond the years 1 to 9999,
    and the unit it was likely written in; empty for a value that is not a number."""
    try:
        number = float(str(value))
    except ValueError:
        return ""
    when = "after the year 9999" if number > 0 else "before the year 1"
    said = f"; as {cols.UNIT_NAMES[unit]} it is {when}"
    if other := cols.plausible_unit(number):
        said += f": it reads as {cols.UNIT_NAMES[other]}, set timestamp_unit: {other}"
    return said


def _epoch_hint(value: object) -> str:
    """For a number where ISO-8601 text was expected: the ``timestamp_unit`` that reads it."""
    try:
        unit = cols.plausible_unit(float(str(value)))
    except ValueError:
        return ""
    return (
        f"; it reads as {cols.UNIT_NAMES[unit]} since the Unix epoch: set timestamp_unit: {unit} "
        "on the source"
        if unit
        else ""
    )


def _share(part: int, whole: int) -> str:
    """A whole percentage, unhedged (the counts stand beside it): ``(21%)``, ``(0%)``."""
    return percent(part, whole, places=0, hedge=False)
