"""An events column named ``day`` (a user column, or a hive folder ``day=...``) beside the plan's
own local-day column: day-based measures, nested properties and incremental runs still bind
and give the members worked out by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import segctl

SEGMENTS = {
    "streak": "name: streak\nrule:\n  event: login\n  streak: {gte: 2}\n",
    "days": "name: days\nrule:\n  event: login\n  distinct_days: {gte: 2}\n",
    "nested": (
        "name: nested\nrule:\n  event: login\n  where: {props.p: {eq: 1}}\n  streak: {gte: 2}\n"
    ),
}


def write_day(root: Path, day: str, rows: list[tuple[str, datetime, str]]) -> None:
    folder = root / "events" / f"day={day}"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "person_id": [r[0] for r in rows],
            "event": ["login"] * len(rows),
            "timestamp": [r[1] for r in rows],
            "day": [day] * len(rows),  # a text column of the same name as the folder's key
            "props": [r[2] for r in rows],
        }
    )
    pq.write_table(table, folder / "part.parquet")


def members(project: segctl.Project) -> dict[str, list[str]]:
    return {name: sorted(project.members(name)["person_id"].to_list()) for name in SEGMENTS}


def test_a_day_column_and_day_folders_do_not_collide_with_the_plan(tmp_path: Path) -> None:
    root = tmp_path
    (root / "segments").mkdir()
    for name, text in SEGMENTS.items():
        (root / "segments" / f"{name}.yaml").write_text(text)
    (root / "segctl.yaml").write_text("data:\n  events: events/*/*.parquet\nsegments: segments/\n")
    write_day(root, "2026-11-15", [("a", datetime(2026, 11, 15, 10), '{"p": 1}')])
    write_day(
        root,
        "2026-11-16",
        [("a", datetime(2026, 11, 16, 10), '{"p": 1}'), ("b", datetime(2026, 11, 16, 11), "{}")],
    )
    segctl.Project.load(root).run(as_of="2026-11-16T12:00:00Z")
    assert members(segctl.Project.load(root)) == {"streak": ["a"], "days": ["a"], "nested": ["a"]}

    # A new day's folder: the incremental run reads it and agrees with a full evaluation.
    write_day(root, "2026-11-17", [("b", datetime(2026, 11, 17, 9), '{"p": 1}')])
    run = segctl.Project.load(root).run(as_of="2026-11-17T12:00:00Z")
    assert run.full_reason is None  # incremental
    expected = {"streak": ["a", "b"], "days": ["a", "b"], "nested": ["a"]}
    assert members(segctl.Project.load(root)) == expected
    assert segctl.Project.load(root).verify().equal
