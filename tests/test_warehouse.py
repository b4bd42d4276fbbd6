"""Compiled SQL for the warehouses that cannot run here: golden files, sqlglot round trips, types.

Postgres runs on a real server (tests/test_postgres.py). BigQuery, Snowflake and Trino cannot,
so their output for the whole sample project is kept as golden files in
``tests/golden/warehouse/`` (regenerate with ``SEGCTL_UPDATE_GOLDEN=1`` and review the diff), each
parses back with sqlglot in its dialect to the same tree, and the timestamps it compares are of
one type: BigQuery refuses TIMESTAMP against DATETIME.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from conftest import CONFIG, MakeProject, at
from sqlglot import exp

import segctl
from segctl.compiler.warehouse import header

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "warehouse"
AS_OF = "2026-11-17T00:00:00Z"
WAREHOUSES = ("bigquery", "snowflake", "trino", "postgres")
#: How each dialect spells the type of a timestamp column (and of the literals compared with it).
TIMESTAMP_SQL = {
    "bigquery": "TIMESTAMP",
    "snowflake": "TIMESTAMPNTZ",
    "trino": "TIMESTAMP",
    "postgres": "TIMESTAMP",
}


@pytest.fixture(scope="module")
def sample() -> segctl.Project:
    return segctl.Project.load(REPO)


def golden(name: str, text: str) -> str:
    path = GOLDEN / name
    if os.environ.get("SEGCTL_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path.read_text()


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_golden_warehouse_sql(sample: segctl.Project, dialect: str) -> None:
    sql = sample.compile(dialect=dialect, as_of=AS_OF) + "\n"
    assert sql == golden(f"sample.{dialect}.sql", sql), f"{dialect}: the SQL changed"


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_every_segment_round_trips_through_sqlglot(sample: segctl.Project, dialect: str) -> None:
    for name in [None, *sample.definitions.segments]:
        sql = sample.compile(name, dialect=dialect, as_of=AS_OF)
        (tree,) = sqlglot.parse(sql, read=dialect)
        assert tree is not None
        again = sqlglot.parse_one(tree.sql(dialect=dialect), read=dialect)
        assert again == tree, f"{name}: {dialect} SQL does not read back the same"


def declared_types(sql: str, dialect: str) -> dict[str, str]:
    """Column -> SQL type, from the header's CREATE TABLE statements (read in ``dialect``)."""
    types = {}
    for line in sql.splitlines():
        if line.startswith("--   CREATE TABLE"):
            create = sqlglot.parse_one(line.removeprefix("--").strip(), read=dialect)
            for column in create.this.expressions:
                types[column.name] = column.args["kind"].sql(dialect=dialect)
    return types


def compared_literal_types(tree: exp.Expr, columns: set[str], dialect: str) -> set[str]:
    """The types of the literals compared with any of ``columns``."""
    found = set()
    for compare in tree.find_all(exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE):
        sides = (compare.this, compare.expression)
        if any(isinstance(s, exp.Column) and s.name in columns for s in sides):
            for side in sides:
                if isinstance(side, exp.Cast) and isinstance(side.this, exp.Literal):
                    found.add(side.to.sql(dialect=dialect))
    return found


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_timestamp_literals_have_the_type_of_the_timestamp_columns(
    sample: segctl.Project, dialect: str
) -> None:
    sql = sample.compile(dialect=dialect, as_of=AS_OF)
    types = declared_types(sql, dialect)
    timestamps = {c for c in ("timestamp", "created_at", "updated_at") if c in types}
    assert timestamps == {"timestamp", "created_at", "updated_at"}
    assert {types[c] for c in timestamps} == {TIMESTAMP_SQL[dialect]}
    tree = sqlglot.parse_one(sql, read=dialect)
    assert compared_literal_types(tree, timestamps, dialect) == {TIMESTAMP_SQL[dialect]}
    if dialect == "bigquery":
        assert "DATETIME" not in sql


def test_the_header_names_tables_columns_and_list_files(sample: segctl.Project) -> None:
    sql = sample.compile("power_users", dialect="bigquery", as_of=AS_OF)
    head = [line for line in sql.splitlines() if line.startswith("--")]
    assert head[0] == (
        "-- segctl: the members of power_users at 2026-11-17T00:00:00Z (person_id, sorted), "
        "for bigquery."
    )
    assert "--   events(person_id, event, timestamp)" in head
    assert "--   persons(person_id, plan, created_at)" in head
    assert "--   segctl_list_f73d9330f1(key)" in head
    assert any("'person_id' of sample_data/lists/vip.csv" in line for line in head)
    assert "--   CREATE TABLE `segctl_list_f73d9330f1` (`key` STRING);" in head
    assert "default dataset" in "\n".join(head)


def test_no_list_file_name_can_break_out_of_the_header(make_project: MakeProject) -> None:
    evil = "lists/x\nDROP TABLE persons; --.csv"
    rule = "rule: {list: {file: 'lists/x\n\n  DROP TABLE persons; --.csv'}}"
    root = make_project(segments={"evil": f"name: evil\n{rule}"}, files={evil: "person_id\np1\n"})
    project = segctl.Project.load(root)
    for dialect in WAREHOUSES:
        sql = project.compile("evil", dialect=dialect, as_of=AS_OF)
        head = sql.split("\nSELECT")[0].splitlines()
        assert all(line.startswith("-- ") for line in head)
        assert any("lists/x?DROP TABLE persons; --.csv" in line for line in head)
        (tree,) = sqlglot.parse(sql, read=dialect)
        assert isinstance(tree, exp.Select)
    lines = header("SELECT 1", "duckdb", {}, [], "a\nb\rc").splitlines()
    assert lines[0] == "-- a?b?c, for duckdb."


#: ``regex`` is a search (SPEC 2.2): unanchored, anchored at one end, with an inline flag.
REGEX_SEGMENTS = {
    "middle": r"(a|o)b",
    "end": r"l@example\.com$",
    "flagged": r"(?i)^CAROL@",
}


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_a_regex_compiled_for_a_warehouse_means_what_it_means_in_duckdb(
    make_project: MakeProject, dialect: str
) -> None:
    """The warehouse's SQL, read back into DuckDB by sqlglot and run on the project's data,
    finds the members the DuckDB evaluation finds. Snowflake's REGEXP_LIKE anchors its
    pattern at both ends: a search there is REGEXP_INSTR (``"end"`` found no one before)."""
    segments = {
        name: f"name: {name}\nrule: {{property: email, regex: '{pattern}'}}\n"
        for name, pattern in REGEX_SEGMENTS.items()
    }
    project = segctl.Project.load(make_project(segments=segments))
    evaluated = project.evaluate(as_of=AS_OF)
    project.engine.driver.schema()
    for name in REGEX_SEGMENTS:
        sql = project.compile(name, dialect=dialect, as_of=AS_OF)
        duck = sqlglot.transpile(sql, read=dialect, write="duckdb")[0]
        found = [row[0] for row in project.engine.driver.rows(duck)]
        expected = sorted(evaluated.members(name)["person_id"].to_list())
        assert found == expected and expected, (name, sql)


#: Logins a few hours after midnight UTC: in New York they fall on the day before.
NEW_YORK_EVENTS = [
    (person, "login", at(f"2026-11-{day:02d} {hour:02d}:30"), None, None)
    for person, days, hour in (
        ("p1", (12, 13, 14, 15, 16), 3),  # local days 11..15: a streak up to yesterday
        ("p2", (14, 15, 16), 3),  # local days 13, 14, 15
        ("p3", (14, 15, 16), 15),  # local days 14, 15, 16 (today)
    )
    for day in days
]
NEW_YORK_SEGMENTS = {
    "streak": "name: streak\nrule: {event: login, streak: {gte: 4}}\n",
    "days": "name: days\nrule: {event: login, within: 3d, distinct_days: {gte: 3}}\n",
    "yesterday": "name: yesterday\nrule: {event: login, between: [2d, 1d], calendar: true, "
    "count: {gte: 1}}\n",
}


@pytest.mark.parametrize("dialect", ["bigquery", "trino"])
def test_local_days_compiled_for_a_warehouse_mean_what_they_mean_in_duckdb(
    make_project: MakeProject, dialect: str
) -> None:
    """SPEC 1: ``timezone`` sets the day boundaries, in a warehouse's SQL too. BigQuery's
    TIMESTAMP columns take ``DATETIME(ts, zone)``; Trino's naive ones ``WITH_TIMEZONE(ts,
    'UTC')`` before the zone (an ``AT TIME ZONE`` alone reads them in the session's zone).
    Read back into DuckDB (Trino's ``WITH_TIMEZONE`` and ``AT_TIMEZONE`` as DuckDB's ``timezone``,
    which converts both ways) and run on the
    project's data, each segment has DuckDB's members."""
    root = make_project(
        config=CONFIG.replace("timezone: UTC", "timezone: America/New_York"),
        segments=NEW_YORK_SEGMENTS,
        events=NEW_YORK_EVENTS,
    )
    project = segctl.Project.load(root)
    evaluated = project.evaluate(as_of=AS_OF)
    for macro in ("with_timezone", "at_timezone"):  # Trino's, as DuckDB says them
        project.engine.driver.con.execute(
            f"CREATE OR REPLACE TEMP MACRO {macro}(ts, zone) AS timezone(zone, ts)"
        )
    local = {
        "bigquery": "DATETIME(`timestamp`, 'America/New_York')",
        "trino": """AT_TIMEZONE(WITH_TIMEZONE("timestamp", 'UTC'), 'America/New_York')""",
    }
    for name in NEW_YORK_SEGMENTS:
        sql = project.compile(name, dialect=dialect, as_of=AS_OF)
        # (a calendar window's edges are instants, resolved when compiling)
        assert (local[dialect] in sql) == (name != "yesterday"), sql
        duck = sqlglot.transpile(sql, read=dialect, write="duckdb")[0]
        found = [row[0] for row in project.engine.driver.rows(duck)]
        expected = sorted(evaluated.members(name)["person_id"].to_list())
        assert found == expected and expected, (name, sql)
