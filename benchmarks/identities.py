"""Incremental runs over events that carry anonymous ids, stitched by an identities file
(docs/realtime.md, "Re-exported identities files").

    python -m benchmarks.identities [--persons 200000] [--events 5000000]

A project whose events are half anonymous (no person id, one of the person's two device
ids), linked to their persons by ``identities.parquet`` (every device id), with four
segments over the events. After a first run, each step times ``segctl run`` (incremental)
against ``segctl run --full`` on a copy of the project and its state at the same as_of, and
checks both committed the same snapshot and transitions:

- the identities file re-exported with 1% of the persons' first device moved to another
  person (their anonymous rows move);
- a new events file of 1,000 anonymous rows of linked devices.

The data is generated once into ``benchmarks/data/identities_p<persons>_e<events>/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.realtime import beside_a_full_run, clone, timed  # noqa: E402

#: The history: this many days, one events file per :data:`FILE_DAYS`.
DAYS = 180
FILE_DAYS = 10
#: The last event of the history; the first run is an hour after it.
END = datetime(2026, 11, 30, tzinfo=UTC)
#: The share of persons whose first device the re-exported identities file moves.
MOVED = 0.01

SEGMENTS = {
    "recent": '{event: "*", within: 7d, count: {gte: 1}}',
    "buyers": "{event: purchase, count: {gte: 1}}",
    "power": "{event: login, within: 30d, count: {gte: 10}}",
    "lapsed": '{event: "*", within: 30d, count: {eq: 0}}',
}


def generate(folder: Path, persons: int, events: int) -> None:
    """The events files, the identities file (both devices of every person) and the
    project; a deterministic function of the sizes."""
    (folder / "events").mkdir(parents=True)
    (folder / "segments").mkdir()
    con = duckdb.connect()
    start = END - timedelta(days=DAYS)
    con.execute(
        f"""CREATE TABLE e AS SELECT
              hash(i) % {persons} AS p,
              hash(i, 1) % 2 = 0 AS anonymous,
              hash(i, 2) % 2 AS device,
              ['login', 'page_view', 'page_view', 'purchase'][(hash(i, 3) % 4)::BIGINT + 1]
                  AS event,
              TIMESTAMPTZ '{start.isoformat()}' + to_microseconds(
                  (hash(i, 4) % {DAYS * 86_400_000_000})::BIGINT) AS timestamp
            FROM range({events}) t(i)"""
    )
    for first in range(0, DAYS, FILE_DAYS):
        low = start + timedelta(days=first)
        high = low + timedelta(days=FILE_DAYS)
        con.execute(
            f"""COPY (SELECT CASE WHEN anonymous THEN NULL ELSE 'u' || p END AS person_id,
                       CASE WHEN anonymous THEN 'd' || p || '-' || device END AS anonymous_id,
                       event, timestamp
                FROM e WHERE timestamp >= '{low.isoformat()}' AND timestamp < '{high.isoformat()}'
                ORDER BY timestamp)
                TO '{folder / "events" / f"{low:%Y-%m-%d}.parquet"}' (FORMAT parquet)"""
        )
    con.execute(
        f"""COPY (SELECT 'd' || p || '-' || device AS id, 'u' || p AS person_id
            FROM range({persons}) a(p), range(2) b(device) ORDER BY ALL)
            TO '{folder / "identities.parquet"}' (FORMAT parquet)"""
    )
    con.close()
    (folder / "segctl.yaml").write_text(
        "data:\n  identities: identities.parquet\n"
        "  events: {path: events/*.parquet, anonymous_id: anonymous_id}\n"
        "segments: segments/\nstate: .segctl/\ntimezone: UTC\n"
    )
    for name, rule in SEGMENTS.items():
        (folder / "segments" / f"{name}.yaml").write_text(f"name: {name}\nrule: {rule}\n")


def reexport_identities(path: Path, persons: int) -> None:
    """The identities file written again with the first device of :data:`MOVED` of the
    persons linked to another person, as a merge in the tool would (renamed into place)."""
    moved = max(1, int(persons * MOVED))
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT id, CASE WHEN id LIKE '%-0' AND hash(person_id) % {persons} < {moved}
                  THEN 'u' || (hash(person_id, 9) % {persons}) ELSE person_id END AS person_id
            FROM read_parquet('{path}'))
            TO '{path.with_suffix(".tmp")}' (FORMAT parquet)"""
    )
    con.close()
    os.replace(path.with_suffix(".tmp"), path)


def new_file(path: Path, persons: int, at: datetime) -> None:
    """1,000 anonymous rows of linked devices, a few minutes before ``at``."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT NULL::VARCHAR AS person_id,
                  'd' || (hash(i, 7) % {persons}) || '-1' AS anonymous_id, 'purchase' AS event,
                  TIMESTAMPTZ '{(at - timedelta(minutes=5)).isoformat()}' AS timestamp
            FROM range(1000) t(i)) TO '{path}' (FORMAT parquet)"""
    )
    con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    args = parser.parse_args(argv)
    data = REPO / "benchmarks" / "data" / f"identities_p{args.persons}_e{args.events}"
    if not (data / "segctl.yaml").is_file():
        shutil.rmtree(data, ignore_errors=True)
        print(f"generating {data} ...", flush=True)
        generate(data, args.persons, args.events)
    root = data.with_name(data.name + "-work")
    clone(data, root)
    shutil.rmtree(root / ".segctl", ignore_errors=True)
    moment = END + timedelta(hours=1)
    seconds, proc = timed(["run", "--as-of", f"{moment:%Y-%m-%dT%H:%M:%SZ}"], root)
    assert proc.returncode == 0, proc.stderr
    print(f"first run (full): {seconds:.2f} s")
    copy = root.with_name(root.name + "-full")
    for label in ("identities re-exported", "a new file of anonymous rows"):
        moment += timedelta(minutes=1)
        if label.startswith("identities"):
            reexport_identities(root / "identities.parquet", args.persons)
        else:
            new_file(root / "events" / f"{moment:%Y-%m-%d-%H%M}.parquet", args.persons, moment)
        beside_a_full_run(root, copy, moment, label)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
