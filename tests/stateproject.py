"""A tiny project whose memberships change in known ways across as_of times.

Persons p1..p6. Segment ``active``: any event in the last 7 days. Segment ``buyers``: a purchase
ever. ``active_buyers`` references both. Events are placed so that between the as_of times
below, persons enter and leave ``active`` in a known pattern.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2026, 3, 1, tzinfo=UTC)
AS_OF = [T0 + timedelta(days=d) for d in (10, 11, 12, 20)]

SEGMENTS = {
    "active": """\
        name: active
        rule: {event: "*", within: 7d, count: {gte: 1}}
        """,
    "buyers": """\
        name: buyers
        rule: {event: purchase, count: {gte: 1}}
        """,
    "active_buyers": """\
        name: active_buyers
        rule:
          all: [{segment: active}, {segment: buyers}]
        """,
}


def write_project(root: Path, segments: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "segctl.yaml").write_text(
        dedent("""\
        data:
          events: events.parquet
          persons: persons.csv
        segments: segments/
        state: .segctl/
        """)
    )
    persons = ["person_id,email,plan"] + [f"p{i},p{i}@example.com,free" for i in range(1, 7)]
    (root / "persons.csv").write_text("\n".join(persons) + "\n")
    days = {  # person -> days after T0 with an event
        "p1": [1, 5, 9, 11, 19],
        "p2": [2, 3],
        "p3": [9, 10, 11, 12, 13],
        "p4": [4, 16],
        "p5": [],
        "p6": [3, 10, 18],
    }
    purchases = {"p1": 5, "p3": 12, "p6": 18}
    rows: list[tuple[str, str, datetime]] = []
    for person, offsets in days.items():
        rows += [(person, "login", T0 + timedelta(days=d, hours=1)) for d in offsets]
    rows += [(p, "purchase", T0 + timedelta(days=d, hours=2)) for p, d in purchases.items()]
    write_events(root / "events.parquet", rows)
    seg_dir = root / "segments"
    seg_dir.mkdir(exist_ok=True)
    for name, text in (segments or SEGMENTS).items():
        (seg_dir / f"{name}.yaml").write_text(dedent(text))
    return root


def write_events(path: Path, rows: list[tuple[str, str, datetime]]) -> None:
    """(person, event, time) rows as an events Parquet file (times as UTC)."""
    pq.write_table(
        pa.table(
            {
                "person_id": [r[0] for r in rows],
                "event": [r[1] for r in rows],
                "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            }
        ),
        path,
    )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def segctl(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real command in a subprocess (what CI and users run)."""
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "segctl", *args, "--project", str(root)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def snapshot_members(con: duckdb.DuckDBPyConnection, prefix: str = "") -> dict[str, set[str]]:
    """The committed snapshot decoded in plain Python: bit ``slot % 63`` of word
    ``w{slot // 63}`` set means a member (``prefix``: the database's alias and a dot)."""
    layout = con.execute(f"SELECT slot, segment FROM {prefix}snapshot_layout").fetchall()
    rows = con.execute(f"SELECT * FROM {prefix}snapshot").fetchall()
    return {
        segment: {r[0] for r in rows if r[1 + slot // 63] >> (slot % 63) & 1}
        for slot, segment in layout
    }
