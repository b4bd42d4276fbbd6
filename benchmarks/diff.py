"""Benchmark: diff and commit of 1M persons x 20 segments against a committed snapshot.

    python benchmarks/diff.py [--persons 1000000] [--segments 20] [--churn 0.05]

Builds a state database holding one committed run (each segment holds about half of the
persons), then evaluates a result in which about ``churn`` of each segment's members left and
as many new ones came. It times, in the same process and on the same data:

- segctl: ``diff.compute`` + ``StateStore.commit_run`` (the work of a ``segctl run`` after
  evaluation: the packed result against the committed per-person snapshot);
- baseline: the diff as most hand-written pipelines do it: memberships in long form
  (segment, person_id) and an EXCEPT each way, no commit.

Goal (issue 3): segctl's diff + commit under 2 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb

from segctl import diff, packed
from segctl.state import StateStore
from segctl.timeutil import now_utc as now


def build(con: duckdb.DuckDBPyConnection, persons: int, segments: int, churn: float) -> list[str]:
    names = [f"seg_{i:02d}" for i in range(segments)]
    # Segment i holds person p when hash(p, i) is in the lower half; after the change, a
    # `churn` share of that half moves: the threshold window slides.
    before = ", ".join(f"(hash(i, {k}) % 1000) < 500 AS {n}" for k, n in enumerate(names))
    shift = int(500 * churn)
    after = ", ".join(
        f"(hash(i, {k}) % 1000) BETWEEN {shift} AND {499 + shift} AS {n}"
        for k, n in enumerate(names)
    )
    con.execute(
        f"CREATE TEMP TABLE before_result AS SELECT 'u' || i AS person_id, {before} "
        f"FROM range({persons}) t(i)"
    )
    con.execute(
        f"CREATE TEMP TABLE segctl_result AS SELECT 'u' || i AS person_id, {after} "
        f"FROM range({persons}) t(i)"
    )
    # What evaluation leaves for segctl: the same flags packed into words.
    words = ", ".join(packed.pack_as(names))
    for table in ("before_result", "segctl_result"):
        con.execute(f"CREATE TEMP TABLE {table}_packed AS SELECT person_id, {words} FROM {table}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--churn", type=float, default=0.05)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ".segctl"
        con = duckdb.connect()
        names = build(con, args.persons, args.segments, args.churn)
        with StateStore.open(folder, con=con, create=True) as store:
            first = diff.compute(con, store, names, "before_result_packed")
            store.commit_run(
                kind="run",
                as_of=now(),
                started_at=now(),
                figures=[(n, "h", c.size, c.entered, c.exited, True) for n, c in first.items()],
                result_table="before_result_packed",
            )
            memberships = sum(c.size for c in first.values())

        # Baseline: what a hand-written diff would do: both snapshots in long form (one row
        # per membership, as most tools store them) and an EXCEPT each way.
        cols = ", ".join(names)
        con.execute(f"""CREATE TEMP TABLE before_long AS SELECT segment, person_id FROM
            (UNPIVOT before_result ON {cols} INTO NAME segment VALUE m) WHERE m""")
        started = time.perf_counter()
        con.execute(f"""CREATE TEMP TABLE after_long AS SELECT segment, person_id FROM
            (UNPIVOT segctl_result ON {cols} INTO NAME segment VALUE m) WHERE m""")
        con.execute("""CREATE TEMP TABLE b_in AS SELECT * FROM after_long
                       EXCEPT SELECT * FROM before_long""")
        con.execute("""CREATE TEMP TABLE b_out AS SELECT * FROM before_long
                       EXCEPT SELECT * FROM after_long""")
        baseline = time.perf_counter() - started

        started = time.perf_counter()
        with StateStore.open(folder, con=con, write=True) as store:
            changes = diff.compute(con, store, names, "segctl_result_packed")
            computed = time.perf_counter() - started
            store.commit_run(
                kind="run",
                as_of=now(),
                started_at=now(),
                figures=[(n, "h", c.size, c.entered, c.exited, False) for n, c in changes.items()],
                result_table="segctl_result_packed",
            )
        total = time.perf_counter() - started
        size = (folder / "state.duckdb").stat().st_size

    entered = sum(c.entered for c in changes.values())
    exited = sum(c.exited for c in changes.values())
    print(
        f"machine: {os.cpu_count()} cores, {platform.python_version()}, duckdb {duckdb.__version__}"
    )
    print(
        f"{args.persons:,} persons x {args.segments} segments: {memberships:,} memberships; "
        f"entered {entered:,}, exited {exited:,}"
    )
    print(f"{'method':<34}{'seconds':>9}{'vs baseline':>13}")
    print(f"{'baseline: long form + 2 EXCEPTs':<34}{baseline:>9.2f}{1:>12.2f}x")
    print(f"{'segctl: diff':<34}{computed:>9.2f}{computed / baseline:>12.2f}x")
    print(f"{'segctl: diff + commit':<34}{total:>9.2f}{total / baseline:>12.2f}x")
    print(f"state database after 2 runs: {size / 1e6:.1f} MB")
    print(f"goal diff + commit < 2 s: {'PASS' if total < 2 else 'FAIL'} ({total:.2f} s)")


if __name__ == "__main__":
    main()
