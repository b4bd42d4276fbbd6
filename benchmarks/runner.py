"""Run one benchmark method in this (fresh) process and print a JSON line with its results.

    python -m benchmarks.runner METHOD --data DIR --as-of 2026-11-17T00:00:00Z [--out FILE]

METHOD is one of:

- ``duckdb``: the hand-written fused DuckDB query (benchmarks/handwritten.py);
- ``polars``: the hand-written polars lazy query;
- ``per_segment``: a naive compiler: ``Project.compile(name)`` for each segment, each run as its
  own DuckDB query (so the events are scanned once per segment);
- ``segctl_api``: ``segctl.Project.load(dir).evaluate(as_of=...)`` (the fused plan, in process,
  plus what evaluate adds: the person-id check, staging (segment, person_id) pairs, the diff
  against the last committed snapshot);
- ``segctl_sql``: only segctl's fused SQL (``Project.compile()`` for all segments) run as one
  DuckDB query over segctl's input views: the compiler's plan without the rest of evaluate.

Every method materialises the memberships (person_id plus one boolean per segment, or one
table per segment) and counts the members of each segment, like ``segctl evaluate`` does.
``compute_seconds`` is the time from after the imports to the counts; ``--out`` then writes
(segment, person_id) rows to Parquet for the membership check (not timed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.handwritten import NAMES, duckdb_sql, polars_query

METHODS = ("duckdb", "polars", "per_segment", "segctl_api", "segctl_sql")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_duckdb(data: Path, as_of: str, out: Path | None) -> dict[str, Any]:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE TEMP TABLE result AS {duckdb_sql(data, as_of)}")
    counts = ", ".join(f"count(*) FILTER (WHERE {_quote(n)})" for n in NAMES)
    row = con.execute(f"SELECT {counts} FROM result").fetchone()
    assert row is not None
    sizes = dict(zip(NAMES, (int(v) for v in row), strict=True))
    seconds = time.perf_counter() - started
    if out is not None:
        union = " UNION ALL ".join(
            f"SELECT {_literal(n)} AS segment, person_id FROM result WHERE {_quote(n)}"
            for n in NAMES
        )
        con.execute(f"COPY ({union}) TO {_literal(str(out))} (FORMAT parquet)")
    return {"compute_seconds": seconds, "sizes": sizes}


def run_polars(data: Path, as_of: str, out: Path | None) -> dict[str, Any]:
    import polars as pl

    started = time.perf_counter()
    result = polars_query(data, as_of).collect()
    sums = result.select(pl.col(NAMES).sum()).row(0)
    sizes = dict(zip(NAMES, (int(v) for v in sums), strict=True))
    seconds = time.perf_counter() - started
    if out is not None:
        (
            result.unpivot(index="person_id", on=NAMES, variable_name="segment")
            .filter(pl.col("value"))
            .select("segment", "person_id")
            .write_parquet(out)
        )
    return {"compute_seconds": seconds, "sizes": sizes}


def run_per_segment(project_dir: Path, as_of: str, out: Path | None) -> dict[str, Any]:
    from segctl import Project

    started = time.perf_counter()
    project = Project.load(project_dir)
    con = project.engine.driver.con
    sizes: dict[str, int] = {}
    for i, name in enumerate(NAMES):
        sql = project.compile(name, as_of=as_of, pretty=False)
        con.execute(f"CREATE TEMP TABLE members_{i} AS {sql}")
        row = con.execute(f"SELECT count(*) FROM members_{i}").fetchone()
        assert row is not None
        sizes[name] = int(row[0])
    seconds = time.perf_counter() - started
    if out is not None:
        union = " UNION ALL ".join(
            f"SELECT {_literal(n)} AS segment, person_id FROM members_{i}"
            for i, n in enumerate(NAMES)
        )
        con.execute(f"COPY ({union}) TO {_literal(str(out))} (FORMAT parquet)")
    return {"compute_seconds": seconds, "sizes": sizes}


def run_segctl_sql(project_dir: Path, as_of: str, out: Path | None) -> dict[str, Any]:
    from segctl import Project

    started = time.perf_counter()
    project = Project.load(project_dir)
    sql = project.compile(as_of=as_of, pretty=False)
    con = project.engine.driver.con
    con.execute(f"CREATE TEMP TABLE result AS {sql}")
    counts = ", ".join(f"count(*) FILTER (WHERE {_quote(n)})" for n in NAMES)
    row = con.execute(f"SELECT {counts} FROM result").fetchone()
    assert row is not None
    sizes = dict(zip(NAMES, (int(v) for v in row), strict=True))
    seconds = time.perf_counter() - started
    if out is not None:
        union = " UNION ALL ".join(
            f"SELECT {_literal(n)} AS segment, person_id FROM result WHERE {_quote(n)}"
            for n in NAMES
        )
        con.execute(f"COPY ({union}) TO {_literal(str(out))} (FORMAT parquet)")
    return {"compute_seconds": seconds, "sizes": sizes}


def run_segctl_api(project_dir: Path, as_of: str, out: Path | None) -> dict[str, Any]:
    from segctl import Project

    started = time.perf_counter()
    result = Project.load(project_dir).evaluate(as_of=as_of)
    sizes = {name: size for name, size, _entered, _exited in result.size_rows()}
    seconds = time.perf_counter() - started
    if out is not None:
        result.memberships().write_parquet(out)
    return {"compute_seconds": seconds, "sizes": sizes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runner")
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("--data", type=Path, required=True, help="generated data folder")
    parser.add_argument("--project", type=Path, help="benchmark project (default: DATA/project)")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--out", type=Path, help="write (segment, person_id) Parquet here")
    args = parser.parse_args(argv)
    project = args.project or args.data / "project"
    if args.method == "duckdb":
        document = run_duckdb(args.data, args.as_of, args.out)
    elif args.method == "polars":
        document = run_polars(args.data, args.as_of, args.out)
    elif args.method == "per_segment":
        document = run_per_segment(project, args.as_of, args.out)
    elif args.method == "segctl_sql":
        document = run_segctl_sql(project, args.as_of, args.out)
    else:
        document = run_segctl_api(project, args.as_of, args.out)
    sys.stdout.write(json.dumps({"method": args.method, **document}) + "\n")


if __name__ == "__main__":
    main()
