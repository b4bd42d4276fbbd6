"""What time passing makes an incremental run read, against what would suffice (the
measurements of docs/realtime.md, "What would reach 10x").

    python -m benchmarks.strips --persons 1000000 --events 50000000 --catalogue 1000

An incremental run a while after the last one re-evaluates the persons whose wake-up time
has come, from their whole histories. A measure in a rolling window only changes by the
rows that cross one of the catalogue's durations between the two runs (``v + d`` in
``(last as_of, as_of]``): the "edge strips". For a last run at ``--as-of`` (by default
the first run of ``benchmarks/realtime.py``: 10:00 UTC today) and that benchmark's steps
(an hour later, the next day), this prints, in one DuckDB process over the generated
events:

- the rows of the strips and their persons (the catalogue's durations from
  :func:`segctl.wakeup.catalogue`, 0 left out);
- the whole histories of those persons, which is what an incremental run reads for them
  (the wake-up bound wakes about the same persons: docs/realtime.md);
- the time to read the strips and the histories (the histories from the events file,
  filtered by person: the run reads them from its sorted copy, faster);
- the (person, event name, day) and (person, event name, week) groups against the rows: what
  per-day or per-week partial aggregates would hold instead of rows.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import segctl  # noqa: E402
from benchmarks import wide  # noqa: E402
from benchmarks.generate import ensure_data  # noqa: E402
from benchmarks.project import SEGMENTS  # noqa: E402
from benchmarks.realtime import first_as_of  # noqa: E402

#: The steps after the last run (``--as-of``), as in ``benchmarks/realtime.py``.
STEPS = {"an hour later": timedelta(hours=1), "the next day": timedelta(days=1)}


def texts(catalogue: int) -> dict[str, str]:
    """The segment files of the benchmark's catalogue (27 or 1,000 segments), by name."""
    if catalogue == 1000:
        return wide.catalogue(1000, 42)
    return {n: f"name: {n}\n{b.lstrip()}" for n, b in SEGMENTS.items()}


@contextmanager
def catalogue_project(data: Path, catalogue: int) -> Iterator[segctl.Project]:
    """A throwaway project over the generated ``data`` with the benchmark's catalogue."""
    folder = Path(tempfile.mkdtemp(prefix="segctl-catalogue-"))
    try:
        (folder / "segments").mkdir()
        (folder / "segctl.yaml").write_text(
            "data:\n  events: events.parquet\n  persons: persons.parquet\n"
            "  subscriptions: subscriptions.parquet\nsegments: segments/\ntimezone: UTC\n"
        )
        for name in ("events", "persons", "subscriptions"):
            (folder / f"{name}.parquet").symlink_to(data / f"{name}.parquet")
        for name, text in texts(catalogue).items():
            (folder / "segments" / f"{name}.yaml").write_text(text)
        yield segctl.Project.load(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def durations(catalogue: int) -> list[timedelta]:
    """Every duration the catalogue's conditions compare a timestamp with as_of by."""
    from segctl.definitions.model import ColumnType
    from segctl.wakeup import catalogue as wake_catalogue

    with catalogue_project(ensure_data(1000, 10000, log=False), catalogue) as project:
        schema = project.schema
        stamps = {c for t in schema.values() for c, k in t.items() if k is ColumnType.TIMESTAMP}
        found = wake_catalogue(project.definitions, stamps, schema.get("events", {})).durations
    return [d for d in found if d > timedelta(0)]


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options of the benchmarks of a last run and what follows it: the data's size and
    the last run's ``--as-of``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        help="the last run's as_of (UTC; default: as benchmarks/realtime.py's first run)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--catalogue", type=int, choices=(27, 1000), default=27)
    options = parser.parse_args(argv)

    data = ensure_data(options.persons, options.events)
    events = f"read_parquet('{data / 'events.parquet'}')"
    found = durations(options.catalogue)
    print(f"catalogue: {options.catalogue} segments, durations {[d.days for d in found]} days")
    con = duckdb.connect()
    [(total,)] = con.execute(f"SELECT count(*) FROM {events}").fetchall()
    last = (options.as_of or first_as_of()).replace(tzinfo=None)
    print(f"events: {total:,}; the last run at {last:%Y-%m-%d %H:%M} UTC")
    ts = '"timestamp"'
    for label, step in STEPS.items():
        now = last + step
        crossing = " OR ".join(
            f"({ts} > TIMESTAMPTZ '{last - d}+00' AND {ts} <= TIMESTAMPTZ '{now - d}+00')"
            for d in found
        )
        started = time.perf_counter()
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE strip AS SELECT person_id FROM {events} WHERE {crossing}"
        )
        strip_seconds = time.perf_counter() - started
        [(rows, persons)] = con.execute(
            "SELECT count(*), count(DISTINCT person_id) FROM strip"
        ).fetchall()
        started = time.perf_counter()
        [(history,)] = con.execute(
            f"SELECT count(*) FROM {events} WHERE person_id IN (SELECT person_id FROM strip)"
        ).fetchall()
        history_seconds = time.perf_counter() - started
        print(
            f"{label}: the strips {rows:,} rows of {persons:,} persons (read in "
            f"{strip_seconds:.2f} s); their histories {history:,} rows "
            f"({history / total:.0%} of the events, {history_seconds:.2f} s), "
            f"{history / max(rows, 1):,.0f}x the strips"
        )
    for unit in ("day", "week"):
        [(groups,)] = con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT person_id, event, "
            f"date_trunc('{unit}', {ts}::TIMESTAMP) FROM {events})"
        ).fetchall()
        print(f"(person, event name, {unit}) groups: {groups:,} ({groups / total:.0%} of the rows)")


if __name__ == "__main__":
    main()
