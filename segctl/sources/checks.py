"""What the views leave out, and bad values traced to their file (SPEC 1, "Data sources").

Nothing is dropped silently: :func:`warnings` says per events source how many rows were
repeats (``dedupe_on``), had no person once identities were resolved, or had no event name.
:func:`find_bad_timestamps` traces a timestamp that does not parse to its file, row (or line),
column and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from segctl.errors import DataError
from segctl.sources import columns as cols
from segctl.sources.inputs import InputFiles
from segctl.sources.load import DUPLICATE, SOURCE_INDEX, STAGED, TIMESTAMPS, Loader, qident, sql
from segctl.textfmt import percent


@dataclass
class Stats:
    """What the events views left out of one source."""

    name: str
    rows: int
    duplicates: int
    no_person: int
    no_event: int


def stats(loader: Loader) -> list[Stats]:
    """Per events source: rows, duplicates removed, rows with no person or no event."""
    if "events" not in loader.staged:
        return []
    rows = loader.con.execute(
        f"SELECT {qident(SOURCE_INDEX)}, count(*), count(*) FILTER ({qident(DUPLICATE)}), "
        f"count(*) FILTER (NOT {qident(DUPLICATE)} AND person_id IS NULL), count(*) FILTER "
        f"(NOT {qident(DUPLICATE)} AND person_id IS NOT NULL AND event IS NULL) FROM {STAGED} "
        "GROUP BY 1"
    ).fetchall()
    by_index = {int(r[0]): r for r in rows}
    out = []
    for staged in loader.staged["events"]:
        r = by_index.get(staged.index, (staged.index, 0, 0, 0, 0))
        out.append(Stats(staged.source.name, int(r[1]), int(r[2]), int(r[3]), int(r[4])))
    return out


def warnings(loader: Loader) -> list[str]:
    """What the events views leave out, one sentence per source and kind (SPEC 1)."""
    found = []
    for s in stats(loader):
        kept = s.rows - s.duplicates
        if s.duplicates:
            found.append(
                f"{s.name}: {s.duplicates:,} of {s.rows:,} rows "
                f"({_share(s.duplicates, s.rows)}) repeat an earlier row's dedupe_on value "
                "and were removed"
            )
        if s.no_person:
            found.append(
                f"{s.name}: {s.no_person:,} of {kept:,} events ({_share(s.no_person, kept)}) "
                "have no person id and were ignored"
            )
        if s.no_event:
            found.append(
                f"{s.name}: {s.no_event:,} of {kept:,} rows ({_share(s.no_event, kept)}) have "
                "no event name (identify or page calls?) and were ignored"
            )
    if loader.ambiguous:
        found.append(
            f"identities: {loader.ambiguous:,} anonymous id(s) link to more than one person; "
            "their events count for the first of those person ids in sort order"
        )
    return found


def find_bad_timestamps(loader: Loader) -> None:
    """Trace a timestamp that does not parse to its file, row (or line), column and value."""
    for role, index in dict.fromkeys(loader.text_timestamps):
        staged = loader.staged[role][index]
        canonical = TIMESTAMPS[role]
        unit = staged.source.timestamp_unit
        for group in staged.groups:
            for file in group.files.files:
                single = InputFiles(role, (file,), group.files.format, file)
                try:
                    one = loader.read_group(staged.source, single)
                    loader.pick(staged.source, one, file)
                except DataError:
                    continue
                found = one.picked.get(canonical)
                if found is None:
                    continue
                value = found.expr if found.type == "VARCHAR" else exp.cast(found.expr, "VARCHAR")
                try:
                    row = loader.con.execute(
                        f"SELECT n, v FROM (SELECT row_number() OVER () AS n, {sql(value)} "
                        f"AS v FROM {one.reader}) WHERE "
                        f"{sql(cols.bad_timestamp(exp.column('v'), unit))} "
                        "ORDER BY n LIMIT 1"
                    ).fetchall()
                except duckdb.Error:
                    continue
                if row:
                    where = "line" if group.files.format == "json" else "row"
                    expected = (
                        f"expected a number of {cols.UNIT_NAMES[unit]} since the Unix epoch "
                        f"(timestamp_unit: {unit})"
                        if unit
                        else "expected ISO-8601, like 2026-01-31T12:00:00Z; values without "
                        "an offset are read as UTC"
                    )
                    raise DataError(
                        f"{loader.display(Path(file))}: {where} {row[0][0]}: column "
                        f"'{found.name}' has a value that is not a timestamp: "
                        f"{row[0][1]!r} ({expected})"
                    )


def _share(part: int, whole: int) -> str:
    """A whole percentage, unhedged (the counts stand beside it): ``(21%)``, ``(0%)``."""
    return percent(part, whole, places=0, hedge=False)
