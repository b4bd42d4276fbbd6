"""The compiled PostgreSQL runs on a real PostgreSQL server and finds the members DuckDB finds.

A throwaway server (tests/pgserver.py) starts once for the module. Each project's data goes in
through the tables that the compiled SQL's own header comment declares (its ``CREATE TABLE``
statements, run as they are), so the header is checked too: a table or column it forgets makes
the query fail. Then the compiled SQL runs as printed by ``segctl compile --dialect postgres``:
- for every segment of the sample project, one query per segment and the all-segments query;
- for the differential test's generated projects (tests/test_differential.py), whose members
  are also checked against the reference evaluator.
Where no server can be had (PostgreSQL not installed), the tests skip and say why.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from conftest import AS_OF, CONFIG, MakeProject
from hypothesis import given, note, settings
from pgserver import (
    PostgresServer,
    ServerUnavailable,
    create_statements,
    load_script,
    table_columns,
)
from test_differential import DIFFERENTIAL, Case, cases
from test_nested_project import SEGMENTS, nested_project

import segctl

REPO = Path(__file__).resolve().parents[1]
CONFIG_NO_SUBSCRIPTIONS = CONFIG.replace("  subscriptions: data/subscriptions.csv\n", "")
SAMPLE_AS_OF = "2026-11-17T00:00:00Z"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the warehouse SQL test: {exc}")
    try:
        yield server
    finally:
        server.stop()


def members_on_postgres(
    server: PostgresServer, project: segctl.Project, as_of: str, schema: str, folder: Path
) -> dict[str, set[str]]:
    """Every segment's members from the all-segments Postgres query, and one query each."""
    names = list(project.definitions.segments)
    everything = project.compile(dialect="postgres", as_of=as_of)
    script = load_script(everything, project.engine.driver.con, folder, schema)
    rows = server.query(script + everything + ";\n")
    together = {
        name: {row[0] for row in rows if row[i + 1] == "t"} for i, name in enumerate(sorted(names))
    }
    loaded = dict(map(table_columns, create_statements(everything)))
    one_by_one = {}
    for name in names:
        sql = project.compile(name, dialect="postgres", as_of=as_of)
        for table, columns in map(table_columns, create_statements(sql)):
            assert set(columns) <= set(loaded[table]), f"{name}: {table} lacks {columns}"
        found = server.query(f"SET search_path TO {schema};\n{sql};\n")
        one_by_one[name] = [row[0] for row in found]
        assert one_by_one[name] == sorted(one_by_one[name]), f"{name}: not sorted by person_id"
    assert {n: set(m) for n, m in one_by_one.items()} == together
    return together


def members_on_duckdb(project: segctl.Project, as_of: str) -> dict[str, set[str]]:
    result = project.evaluate(as_of=as_of)
    return {
        name: {str(p) for p in result.members(name)["person_id"].to_list()}
        for name in project.definitions.segments
    }


def test_the_sample_project_on_postgres_finds_the_duckdb_members(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    root = tmp_path / "sample"
    root.mkdir()
    for name in ("segctl.yaml", "features.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "segments", root / "segments")
    (root / "sample_data").symlink_to(REPO / "sample_data")
    project = segctl.Project.load(root)
    on_postgres = members_on_postgres(postgres, project, SAMPLE_AS_OF, "sample", tmp_path)
    on_duckdb = members_on_duckdb(project, SAMPLE_AS_OF)
    assert len(on_duckdb) == 17 and sum(map(len, on_duckdb.values())) > 5000
    assert on_postgres == on_duckdb


def test_the_header_declares_exactly_the_tables_the_sql_reads(postgres: PostgresServer) -> None:
    """Without the header's tables the query fails: each one is needed."""
    project = segctl.Project.load(REPO)
    sql = project.compile("power_users", dialect="postgres", as_of=SAMPLE_AS_OF)
    creates = create_statements(sql)
    assert [c.split('"')[1] for c in creates] == ["events", "persons", "segctl_list_f73d9330f1"]
    for left_out in range(len(creates)):
        kept = [c for i, c in enumerate(creates) if i != left_out]
        script = "CREATE SCHEMA IF NOT EXISTS h; SET search_path TO h;\n"
        script += "".join(f"DROP TABLE IF EXISTS {c.split()[2]};\n{c};\n" for c in creates)
        script += f"DROP TABLE {creates[left_out].split()[2]};\n"
        with pytest.raises(AssertionError, match="does not exist"):
            postgres.psql(script + sql + ";")
        assert kept


@settings(DIFFERENTIAL, max_examples=30)
@given(case=cases(postgres=True))  # nested properties in JSON alone, no (?m)
def test_generated_projects_on_postgres_match_duckdb_and_the_reference(
    postgres: PostgresServer, case: Case
) -> None:
    note(case.describe())
    with TemporaryDirectory(prefix="segctl-pg-case-") as folder:
        root = Path(folder)
        case.write(root)
        project = segctl.Project.load(root)
        on_duckdb = members_on_duckdb(project, case.as_of_iso)
        on_postgres = members_on_postgres(postgres, project, case.as_of_iso, "gen", root)
    assert on_postgres == on_duckdb
    assert on_postgres == case.expected()


def test_struct_and_ga4_readings_on_postgres_find_the_members_worked_out_by_hand(
    postgres: PostgresServer, make_project: MakeProject, tmp_path: Path
) -> None:
    """SPEC 1, 8: a nested property works in the warehouses' SQL too. PostgreSQL holds a
    STRUCT and GA4's key/value records as JSONB documents (the header's CREATE TABLE says
    so, and they go in as DuckDB's to_json makes them): each nested segment's SQL finds
    the members worked out by hand, as DuckDB does."""
    project = segctl.Project.load(nested_project(make_project))
    nested = [n for n in SEGMENTS if n.startswith(("struct_", "ga4_", "sequence_"))]
    for name in nested:
        sql = project.compile(name, dialect="postgres", as_of=AS_OF)
        script = load_script(sql, project.engine.driver.con, tmp_path, "nested")
        found = [row[0] for row in postgres.query(script + sql + ";\n")]
        assert found == SEGMENTS[name][1], (name, sql)
    sql = project.compile("ga4_text", dialect="postgres", as_of=AS_OF)
    assert '"event_params" JSONB' in sql and 'JSONB_ARRAY_ELEMENTS("event_params")' in sql


def test_map_readings_on_postgres_find_what_duckdb_finds(
    postgres: PostgresServer, make_project: MakeProject, tmp_path: Path
) -> None:
    """A MAP column (text values, and numbers) is a JSONB object on PostgreSQL: a key read
    as text, as a number and a missing key find the members DuckDB finds (and by hand)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rules = {
        "gold": ("{event: '*', where: {labels.tier: {eq: gold}}, count: {gte: 1}}", ["p1"]),
        "scored": ("{event: '*', sum: {of: scores.n, gte: 3}}", ["p2"]),
        "unlabelled": ("{event: '*', where: {labels.tier: {is_set: false}}, count: {gte: 1}}",
                       ["p2", "p3"]),
    }  # fmt: skip
    root = make_project(
        config=CONFIG_NO_SUBSCRIPTIONS,
        segments={n: f"name: {n}\nrule: {rule}\n" for n, (rule, _) in rules.items()},
        features="features: {}\n",
    )
    schema = pa.schema(
        [
            ("person_id", pa.string()),
            ("event", pa.string()),
            ("timestamp", pa.timestamp("us")),
            ("labels", pa.map_(pa.string(), pa.string())),
            ("scores", pa.map_(pa.string(), pa.int64())),
        ]
    )
    moment = datetime(2026, 11, 10, 10)
    rows = [
        ("p1", "login", moment, [("tier", "gold")], [("n", 1)]),
        ("p2", "login", moment, [("other", "x")], [("n", 2)]),
        ("p2", "login", moment, None, [("n", 2), ("m", 9)]),
        ("p3", "login", moment, [], None),
    ]
    table = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)
    pq.write_table(table, root / "data/events.parquet")
    project = segctl.Project.load(root)
    here = members_on_duckdb(project, AS_OF)
    for name, (_, expected) in rules.items():
        sql = project.compile(name, dialect="postgres", as_of=AS_OF)
        script = load_script(sql, project.engine.driver.con, tmp_path, "maps")
        found = [row[0] for row in postgres.query(script + sql + ";\n")]
        assert found == sorted(here[name]) == expected, (name, sql)
