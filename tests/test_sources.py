"""Real tools' exports read through a few-line segctl.yaml (SPEC 1, "Data sources").

Each tool's export is written by tests/exports.py from one truth in that tool's documented
schema; DuckDB reads it for real; the members of a segment are compared with the members
computed from the truth in plain Python (anonymous events stitched to their person, repeated
rows counted once, events of never-identified persons ignored and said so).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from exports import (
    Person,
    Truth,
    posthog_person_id,
    truth,
    write_amplitude,
    write_ga4,
    write_ga4_ndjson,
    write_mixpanel,
    write_posthog,
    write_segment_archive,
    write_segment_warehouse,
    write_stripe_charges,
)

import segctl
from segctl.engine.read_errors import SAMPLED_ROWS

AS_OF = "2026-12-01T00:00:00Z"
SEGMENT = "name: renders\nrule: {{event: {event}, count: {{gte: 3}}}}\n"


def project(root: Path, data: str, event: str) -> segctl.Project:
    (root / "segctl.yaml").write_text(textwrap.dedent(data) + "segments: segments/\n")
    (root / "segments").mkdir(exist_ok=True)
    (root / "segments/renders.yaml").write_text(SEGMENT.format(event=json.dumps(event)))
    return segctl.Project.load(root)


def expected(t: Truth, ident: Callable[[Person], str] = lambda p: p.user_id) -> list[str]:
    """Persons with 3+ renders, anonymous events included, in plain Python."""
    return sorted(ident(p) for p in t.persons if p.known and t.count(p, "Video Rendered") >= 3)


def members(proj: segctl.Project) -> list[str]:
    result = proj.evaluate(as_of=AS_OF)
    return sorted(result.members("renders")["person_id"].to_list())


def ignored_warning(name: str, ignored: int, kept: int) -> str:
    share = f"{round(100 * ignored / kept)}%"
    return f"{name}: {ignored:,} of {kept:,} events ({share}) have no person id and were ignored"


@pytest.fixture(scope="module")
def t() -> Truth:
    found = truth()
    # The fixture must exercise every path: stitched, identify-only, never identified, repeats.
    assert {p.identified for p in found.persons} == {"events", "identify", "never"}
    assert found.repeats and found.ignored()
    assert expected(found)
    return found


def test_segment_warehouse_tables(tmp_path: Path, t: Truth) -> None:
    write_segment_warehouse(t, tmp_path / "warehouse")
    proj = project(
        tmp_path,
        """\
        data:
          events: {path: warehouse/tracks.parquet, preset: segment, name: tracks}
          persons: {path: warehouse/identifies.parquet, preset: segment}
          identities: {path: warehouse/identifies.parquet, preset: segment}
        """,
        "video_rendered",
    )
    assert members(proj) == expected(t)
    kept = t.rows() - len(t.repeats)
    assert proj.data_warnings() == [
        f"tracks: {len(t.repeats):,} of {t.rows():,} rows "
        f"({round(100 * len(t.repeats) / t.rows())}%) repeat an earlier row's dedupe_on value and "
        "were removed",
        ignored_warning("tracks", t.ignored(), kept),
    ]
    # Persons come from identifies: the latest row per user, with its traits.
    plans = dict(proj.engine.driver.rows("SELECT person_id, plan FROM persons ORDER BY 1"))
    assert plans == {p.user_id: p.plan for p in t.persons if p.known}


def test_segment_without_identities_loses_identify_only_persons(tmp_path: Path, t: Truth) -> None:
    """Without the identifies table only the rows carrying both ids link: persons identified
    by an identify call alone are then nobody (and said so)."""
    write_segment_warehouse(t, tmp_path / "warehouse")
    proj = project(
        tmp_path,
        "data:\n  events: {path: warehouse/tracks.parquet, preset: segment}\n",
        "video_rendered",
    )
    want = sorted(
        p.user_id
        for p in t.persons
        if p.identified == "events" and t.count(p, "Video Rendered") >= 3
    )
    assert members(proj) == want
    lost = sum(len(p.events) for p in t.persons if p.identified != "events")
    assert ignored_warning("warehouse/tracks.parquet", lost, t.rows() - len(t.repeats)) in (
        proj.data_warnings()
    )


def test_segment_raw_archive(tmp_path: Path, t: Truth) -> None:
    write_segment_archive(t, tmp_path / "archive")
    proj = project(
        tmp_path,
        "data:\n  events: {path: archive/**/*.gz, preset: segment, name: archive}\n",
        "Video Rendered",
    )
    assert members(proj) == expected(t)
    identifies = sum(p.known for p in t.persons)
    warnings = proj.data_warnings()
    assert any(
        w.startswith(f"archive: {identifies:,} of ") and "have no event name" in w for w in warnings
    ), warnings


def test_amplitude_export(tmp_path: Path, t: Truth) -> None:
    write_amplitude(t, tmp_path / "amplitude")
    proj = project(
        tmp_path,
        "data:\n  events: {path: amplitude/export_*.json.gz, preset: amplitude}\n",
        "Video Rendered",
    )
    # Amplitude rows carry user_id and device_id once identified: identify-only persons are
    # anonymous in the export (no identify table), like never-identified ones.
    want = sorted(
        p.user_id
        for p in t.persons
        if p.identified == "events" and t.count(p, "Video Rendered") >= 3
    )
    assert members(proj) == want
    persons = proj.engine.driver.rows("SELECT count(*) FROM persons")[0][0]
    assert persons == sum(p.identified == "events" for p in t.persons)


def test_mixpanel_export(tmp_path: Path, t: Truth) -> None:
    write_mixpanel(t, tmp_path / "mixpanel")
    proj = project(
        tmp_path, "data:\n  events: {path: mixpanel/*.jsonl, preset: mixpanel}\n", "Video Rendered"
    )
    want = sorted(
        p.user_id
        for p in t.persons
        if p.identified == "events" and t.count(p, "Video Rendered") >= 3
    )
    assert members(proj) == want
    # properties.time is epoch seconds: the first event of each person is its created_at.
    created = dict(proj.engine.driver.rows("SELECT person_id, created_at FROM persons"))
    first = {p.user_id: p.events[0].at.replace(tzinfo=None) for p in t.persons}
    assert created == {k: first[k] for k in created}


def test_mixpanel_reads_each_rows_person_distinct_id_where_it_has_no_user_id(
    tmp_path: Path,
) -> None:
    """A row's person is its ``$user_id``, else its ``distinct_id`` (server-side events carry
    no ``$user_id``), unless the distinct id names the row's device (``$device:<id>`` in
    simplified ID merge, the ``$device_id`` itself in the original one): those rows are
    anonymous and stitched through the device. It took ``$user_id`` alone once the export
    held it anywhere: every server-side event was ignored as having no person."""

    def line(event: str, insert_id: str, **props: str) -> str:
        properties = {"time": 1793620800, "$insert_id": insert_id, **props}
        return json.dumps({"event": event, "properties": properties})

    lines = [
        line("Login", "a", distinct_id="u1", **{"$user_id": "u1", "$device_id": "d1"}),
        line("Charge", "b", distinct_id="u1"),  # server-side: no $user_id, no device
        line("Charge", "c", distinct_id="u2"),
        line("Charge", "d", distinct_id="$device:d1", **{"$device_id": "d1"}),  # u1's device
        line("Charge", "e", distinct_id="$device:d9", **{"$device_id": "d9"}),  # nobody's
        line("Charge", "f", distinct_id="d7", **{"$device_id": "d7"}),  # original ID merge
        line("Charge", "g", distinct_id="u3", **{"$device_id": "d7"}),  # ... then identified
    ]
    write(tmp_path, {"e.jsonl": "\n".join(lines) + "\n"})
    proj = project(tmp_path, "data:\n  events: {path: e.jsonl, preset: mixpanel}\n", "Charge")
    result = proj.evaluate(as_of=AS_OF)
    counts = dict(proj.engine.driver.rows("SELECT person_id, count(*) FROM events GROUP BY ALL"))
    assert counts == {"u1": 3, "u2": 1, "u3": 2}
    assert "e.jsonl: 1 of 7 events (14%) have no person id and were ignored" in result.warnings
    # A person id the user names beside the preset is read as named, on every row.
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: {path: e.jsonl, preset: mixpanel, "
        "columns: {person_id: properties.distinct_id}}\nsegments: segments/\n"
    )
    named = segctl.Project.load(tmp_path)
    named.evaluate(as_of=AS_OF)
    ids = {r[0] for r in named.engine.driver.rows("SELECT DISTINCT person_id FROM events")}
    assert ids == {"u1", "u2", "u3", "$device:d1", "$device:d9", "d7"}


def test_ga4_export(tmp_path: Path, t: Truth) -> None:
    write_ga4(t, tmp_path / "ga4")
    proj = project(
        tmp_path, "data:\n  events: {path: ga4/events_*.parquet, preset: ga4}\n", "video_rendered"
    )
    want = sorted(
        p.user_id
        for p in t.persons
        if p.identified == "events" and t.count(p, "Video Rendered") >= 3
    )
    assert members(proj) == want


def test_posthog_export(tmp_path: Path, t: Truth) -> None:
    write_posthog(t, tmp_path / "posthog")
    proj = project(
        tmp_path, "data:\n  events: {path: posthog/*.csv, preset: posthog}\n", "Video Rendered"
    )
    assert members(proj) == expected(t, posthog_person_id)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("columns: {person_id: persn_id}",
         "missing column 'persn_id' (mapped to 'person_id' in data.events.columns)"),
        ("columns: {timestamp: ts}",
         "missing column 'ts' (mapped to 'timestamp' in data.events.columns)"),
        ("anonymous_id: distnct_id",
         "missing column 'distnct_id' (given as anonymous_id in data.events)"),
        ("dedupe_on: uid", "missing column 'uid' (given as dedupe_on in data.events)"),
    ],
)  # fmt: skip
def test_a_column_named_beside_a_preset_must_be_in_the_data(
    tmp_path: Path, t: Truth, key: str, message: str
) -> None:
    """SPEC 1: a column the user names is read, over a preset's own too: a typo in one is a
    data error naming it (exit 4) at validate, where it was taken as absent (every event of
    no person, or repeats kept, or anonymous rows lost, said only as a warning of the run)."""
    write_posthog(t, tmp_path / "posthog")
    data = f"data:\n  events: {{path: posthog/*.csv, preset: posthog, {key}}}\n"
    proj = project(tmp_path, data, "Video Rendered")
    with pytest.raises(segctl.DataError, match=re.escape(message)):
        proj.validate()


def test_stripe_charges_with_a_constant_event(tmp_path: Path, t: Truth) -> None:
    write_stripe_charges(t, tmp_path / "billing")
    proj = project(
        tmp_path,
        """\
        data:
          events:
            - path: billing/charges.csv
              event: purchase
              columns: {person_id: customer, timestamp: created}
              timestamp_unit: s
              dedupe_on: id
        """,
        "purchase",
    )
    want = sorted(p.user_id for p in t.persons if p.known and t.count(p, "Purchase") >= 3)
    assert members(proj) == want
    repeats = sum(e.name == "Purchase" and p.known for p, e in t.repeats)
    rows = repeats + sum(t.count(p, "Purchase") for p in t.persons if p.known)
    assert repeats
    assert proj.data_warnings() == [
        f"billing/charges.csv: {repeats} of {rows} rows ({round(100 * repeats / rows)}%) repeat "
        "an earlier row's dedupe_on value and were removed"
    ]


def test_a_list_of_sources_takes_plain_paths_beside_mappings(tmp_path: Path) -> None:
    write(tmp_path, {
        "app.csv": "person_id,event,timestamp\nu1,login,2026-11-10T00:00:00Z\n",
        "more/app2.csv": "person_id,event,timestamp\nu2,login,2026-11-11T00:00:00Z\n",
        "billing.csv": "customer,created\nu3,1790000000\n",
        "segments/s.yaml": "name: s\nrule: {event: login, count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events:\n    - app.csv\n    - more/*.csv\n"
        "    - {path: billing.csv, event: login, columns: {person_id: customer, "
        "timestamp: created}, timestamp_unit: s}\nsegments: segments/\n"
    )
    proj = segctl.Project.load(tmp_path)
    assert proj.evaluate(as_of=AS_OF).members("s")["person_id"].to_list() == ["u1", "u2", "u3"]
    # Persons still take one source: a list of two is refused, naming the key.
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: app.csv\n  persons: [app.csv, {path: billing.csv}]\nsegments: segments/\n"
    )
    with pytest.raises(segctl.ConfigError, match=r"data\.persons takes one source"):
        segctl.Project.load(tmp_path)


def test_a_column_empty_in_one_source_takes_the_type_the_others_give_it(tmp_path: Path) -> None:
    """SPEC 1: the sources' rows are unioned. An all-empty CSV column reads as text; beside a
    source where it holds numbers it takes their type, so the union stays a number column
    and ``sum`` reads it, as when both files are one source. A column with text in it still
    makes the union text (the sum is then refused, saying so)."""
    write(tmp_path, {
        "app.csv": "person_id,event,timestamp,amount\nu1,login,2026-11-10T00:00:00Z,\n",
        "charges.csv": "person_id,event,timestamp,amount\nu1,purchase,2026-11-10T00:00:00Z,300\n"
                       "u2,purchase,2026-11-10T00:00:00Z,20\n",
        "segments/s.yaml": "name: s\nrule: {event: purchase, sum: {of: amount, gte: 100}}\n",
    })  # fmt: skip
    config = tmp_path / "segctl.yaml"
    config.write_text(
        "data:\n  events:\n    - {path: app.csv}\n    - {path: charges.csv}\nsegments: segments/\n"
    )
    proj = segctl.Project.load(tmp_path)
    assert proj.evaluate(as_of=AS_OF).members("s")["person_id"].to_list() == ["u1"]
    assert proj.engine.driver.column_types()["events"]["amount"] == "BIGINT"  # charges.csv's
    (tmp_path / "app.csv").write_text(
        "person_id,event,timestamp,amount\nu1,login,2026-11-10T00:00:00Z,n/a\n"
    )
    with pytest.raises(segctl.DefinitionError, match="cannot take sum of 'amount'"):
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)


# ---- the Spark engine reads the same sources (SPEC 8) ----------------------------------------

TOOLS: dict[str, tuple[Callable[[Truth, Path], object], str, str]] = {
    "segment-warehouse": (
        write_segment_warehouse,
        """\
        data:
          events: {path: warehouse/tracks.parquet, preset: segment}
          persons: {path: warehouse/identifies.parquet, preset: segment}
          identities: {path: warehouse/identifies.parquet, preset: segment}
        """,
        "video_rendered",
    ),
    "segment-archive": (
        write_segment_archive,
        "data:\n  events: {path: warehouse/**/*.gz, preset: segment}\n",
        "Video Rendered",
    ),
    "amplitude": (
        write_amplitude,
        "data:\n  events: {path: warehouse/export_*.json.gz, preset: amplitude}\n",
        "Video Rendered",
    ),
    "mixpanel": (
        write_mixpanel,
        "data:\n  events: {path: warehouse/*.jsonl, preset: mixpanel}\n",
        "Video Rendered",
    ),
    "ga4": (
        write_ga4,
        "data:\n  events: {path: warehouse/events_*.parquet, preset: ga4}\n",
        "video_rendered",
    ),
    "posthog": (
        write_posthog,
        "data:\n  events: {path: warehouse/*.csv, preset: posthog}\n",
        "Video Rendered",
    ),
    "stripe": (
        write_stripe_charges,
        """\
        data:
          events:
            - path: warehouse/charges.csv
              event: purchase
              columns: {person_id: customer, timestamp: created}
              timestamp_unit: s
              dedupe_on: id
        """,
        "purchase",
    ),
}


@pytest.fixture(scope="module")
def spark_session() -> object:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'segctl[spark]'")
    from segctl.engine.spark import start_session

    return start_session("local[2]", {"spark.sql.shuffle.partitions": "2"})


@pytest.mark.spark
@pytest.mark.parametrize("tool", list(TOOLS))
def test_spark_reads_each_tool_as_duckdb_does(
    spark_session: object, tmp_path: Path, t: Truth, tool: str
) -> None:
    write, data, event = TOOLS[tool]
    write(t, tmp_path / "warehouse")
    duck = members(project(tmp_path, data, event))
    on_spark = segctl.Project.load(tmp_path, engine="spark")
    result = on_spark.evaluate(as_of=AS_OF)
    assert sorted(result.members("renders")["person_id"].to_list()) == duck
    assert duck  # the comparison means something
    # The persons (derived or read) are the same rows too.
    frame = on_spark.engine.views()["persons"]  # type: ignore[attr-defined]
    spark_persons = sorted(str(r["person_id"]) for r in frame.collect())
    again = project(tmp_path, data, event)
    again.validate()
    duck_persons = sorted(
        str(r[0]) for r in again.engine.driver.rows("SELECT person_id FROM persons")
    )
    assert spark_persons == duck_persons


# ---- options one by one -----------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".gz"):
            import gzip

            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(textwrap.dedent(text))


def test_latest_by_takes_each_persons_latest_row_at_or_before_as_of(tmp_path: Path) -> None:
    write(tmp_path, {
        "events.csv": "person_id,event,timestamp\nu1,login,2026-11-01\nu2,login,2026-11-01\n",
        "identifies.csv": """\
            user_id,plan,timestamp
            u1,free,2026-10-01T00:00:00Z
            u1,pro,2026-11-10T00:00:00Z
            u1,gold,2026-12-10T00:00:00Z
            u2,pro,2026-12-02T00:00:00Z
            """,
        "segments/pro.yaml": "name: pro\nrule: {property: plan, eq: pro}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: events.csv\n  persons: {path: identifies.csv, columns: "
        "{person_id: user_id}, latest_by: timestamp}\nsegments: segments/\n"
    )
    proj = segctl.Project.load(tmp_path)
    # u1's latest row before as_of is pro (gold comes later); u2 has no row yet: not a person.
    assert proj.evaluate(as_of="2026-12-01T00:00:00Z").members("pro")["person_id"].to_list() == [
        "u1"
    ]
    later = segctl.Project.load(tmp_path).evaluate(as_of="2026-12-20T00:00:00Z")
    assert later.members("pro")["person_id"].to_list() == ["u2"]


def test_identity_links_resolve_to_the_first_person_and_count_the_ambiguous(
    tmp_path: Path,
) -> None:
    """An anonymous id linked to two persons goes to the first in sort order, and the
    warning counts it; an id that is itself a person id is never remapped; an id linked to
    nobody leaves its rows without a person (counted too)."""
    write(tmp_path, {
        "events.csv": """\
            person_id,anonymous_id,event,timestamp
            ,d1,purchase,2026-11-01
            ,d2,purchase,2026-11-01
            ,u2,purchase,2026-11-01
            ,d9,purchase,2026-11-01
            u4,,login,2026-11-01
            """,
        "identities.csv": "id,person_id\nd1,u2\nd1,u1\nd2,u3\nu2,u3\n",
        "segments/buyers.yaml": "name: buyers\nrule: {event: purchase, count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  identities: identities.csv\n"
        "  events: {path: events.csv, anonymous_id: anonymous_id}\nsegments: segments/\n"
    )
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert result.members("buyers")["person_id"].to_list() == ["u1", "u3"]
    assert any("1 anonymous id(s) link to more than one person" in w for w in result.warnings)
    assert any("2 of 5 events" in w for w in result.warnings), result.warnings


def test_persons_derived_from_events(tmp_path: Path) -> None:
    write(tmp_path, {
        "events.jsonl.gz": "".join(
            json.dumps({"user": u, "name": "login", "ts": ts}) + "\n"
            for u, ts in [("u2", 1790000000000), ("u1", 1790000500000), ("u2", 1789000000000)]
        ),
        "segments/new.yaml": "name: new\nrule: {property: created_at, gte: 2026-09-20}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: {path: events.jsonl.gz, columns: {person_id: user, event: name, "
        "timestamp: ts}, timestamp_unit: ms}\nsegments: segments/\n"
    )
    proj = segctl.Project.load(tmp_path)
    proj.validate()
    rows = proj.engine.driver.rows("SELECT person_id, created_at FROM persons ORDER BY 1")
    from datetime import UTC, datetime

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)

    # u2's created_at is its first event, not its first row.
    assert rows == [("u1", at(1790000500000)), ("u2", at(1789000000000))]
    assert proj.evaluate(as_of=AS_OF).members("new")["person_id"].to_list() == ["u1"]


@pytest.mark.parametrize(
    ("unit", "value"),
    [
        ("s", 1790000000),
        ("ms", 1790000000123),
        ("us", 1790000000123456),
        ("ns", 1790000000123456789),
    ],
)
def test_timestamp_units(tmp_path: Path, unit: str, value: int) -> None:
    write(tmp_path, {"e.csv": f"person_id,event,at\nu1,login,{value}\n"})
    (tmp_path / "segments").mkdir()
    (tmp_path / "segctl.yaml").write_text(
        f"data:\n  events: {{path: e.csv, columns: {{timestamp: at}}, timestamp_unit: {unit}}}\n"
    )
    proj = segctl.Project.load(tmp_path)
    proj.validate()
    (stamp,) = proj.engine.driver.rows("SELECT timestamp FROM events")[0]
    from datetime import UTC, datetime, timedelta

    micros = {"s": value * 10**6, "ms": value * 10**3, "us": value, "ns": value // 1000}[unit]
    assert stamp == datetime(1970, 1, 1) + timedelta(microseconds=micros)
    assert stamp.replace(tzinfo=UTC).year == 2026


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_numbers_of_nanoseconds_are_cut_to_the_microsecond_exactly(
    tmp_path: Path, suffix: str
) -> None:
    """A number of nanoseconds of today has 61 bits: divided through a double (53), as
    before, 1773144000000000999 read as a microsecond later (an event after as_of), while
    the same instant as a nanosecond timestamp was cut. Whole-number division cuts every
    form alike, before 1970 too (rounded down, not toward zero)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = [1773144000000000999, 1773057600000000001, -1500, 1773144000000001000]
    if suffix == "parquet":
        table = pa.table({"person_id": ["u1"] * 4, "event": ["e"] * 4, "at": values})
        assert table.schema.field("at").type == pa.int64()
        pq.write_table(table, tmp_path / "e.parquet")
    elif suffix == "jsonl":
        lines = [json.dumps({"person_id": "u1", "event": "e", "at": v}) for v in values]
        write(tmp_path, {"e.jsonl": "\n".join(lines) + "\n"})
    else:
        write(tmp_path, {"e.csv": "person_id,event,at\n" + "".join(f"u1,e,{v}\n" for v in values)})
    (tmp_path / "segments").mkdir()
    (tmp_path / "segctl.yaml").write_text(
        f"data:\n  events: {{path: e.{suffix}, columns: {{timestamp: at}}, timestamp_unit: ns}}\n"
    )
    proj = segctl.Project.load(tmp_path)
    proj.validate()
    stamps = [r[0] for r in proj.engine.driver.rows("SELECT timestamp FROM events")]
    epoch = datetime(1970, 1, 1)
    assert sorted(stamps) == sorted(epoch + timedelta(microseconds=v // 1000) for v in values)
    assert datetime(2026, 3, 10, 12) in stamps  # .000000999 cut, not a microsecond later


@pytest.mark.parametrize("pattern", ["e/*.jsonl*", "e/*.csv*"])
def test_empty_files_of_a_glob_hold_no_rows(tmp_path: Path, pattern: str) -> None:
    """An export's hour with no events (a 0-byte file, blank lines, an empty gzip stream)
    stopped every command (NDJSON: 'a JSON line that is not an object', naming no file;
    CSV: no header found); now it holds no rows. Every file empty is a data error."""
    kind = pattern[3:-1]
    rows = {
        ".jsonl": '{"person_id": "u1", "event": "login", "timestamp": "2026-11-10T00:00:00Z"}\n',
        ".csv": "person_id,event,timestamp\nu1,login,2026-11-10T00:00:00Z\n",
    }[kind]
    write(tmp_path, {f"e/a{kind}": rows, f"e/b{kind}": "\n\n", f"e/c{kind}.gz": ""})
    (tmp_path / f"e/d{kind}").write_bytes(b"")
    (tmp_path / "segctl.yaml").write_text(f"data:\n  events: {pattern}\nsegments: segments/\n")
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments/a.yaml").write_text("name: a\nrule: {event: login, count: {gte: 1}}\n")
    proj = segctl.Project.load(tmp_path)
    assert proj.evaluate(as_of=AS_OF).members("a")["person_id"].to_list() == ["u1"]

    (tmp_path / f"e/a{kind}").unlink()
    with pytest.raises(segctl.DataError, match=r"data.events: every file is empty \(e/b"):
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)


def test_repeats_alike_but_for_a_property_keep_the_same_copy_every_time(tmp_path: Path) -> None:
    """dedupe_on: two copies of a row with the same id, timestamp, event and person, one
    without `amount`. Which one the view kept followed the order the files were read in
    parallel: 9 of 20 evaluations counted p1 and 11 did not (and incremental runs disagreed
    with full ones). The hash of the whole row breaks the tie."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "events").mkdir()
    at = pa.array([datetime(2026, 11, 10, 12)], pa.timestamp("us", tz="UTC"))
    for i in range(3):  # the copy with an amount, and two other rows
        row = {"person_id": ["p1" if i == 0 else "p2"], "event": ["login"]}
        row |= {"id": ["e1" if i == 0 else f"x{i}"], "amount": [30.0], "timestamp": at}
        pq.write_table(pa.table(row), tmp_path / "events" / f"a{i}.parquet")
    bare = {"person_id": ["p1"], "event": ["login"], "id": ["e1"], "timestamp": at}
    pq.write_table(pa.table(bare), tmp_path / "events" / "m.parquet")
    write(tmp_path, {
        "segctl.yaml": "data:\n  events: {path: events/*, dedupe_on: id}\nsegments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: login, where: {amount: {gte: 10}}, "
                           "count: {gte: 1}}\n",
    })  # fmt: skip
    sizes = {
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF).sizes()["size"][0] for _ in range(20)
    }
    assert len(sizes) == 1


def test_a_column_of_json_values_in_ndjson_beside_text_in_parquet_reads_as_text(
    tmp_path: Path,
) -> None:
    """An NDJSON key holding a number in one line and text in another is JSON values; beside
    a Parquet file where the column is text, the union made it JSON and failed on 'e0' (an
    internal error at every run). The JSON values are read as text there."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "events").mkdir()
    at = pa.array([datetime(2026, 11, 1)], pa.timestamp("us"))
    row = {"person_id": ["p1"], "event": ["login"], "id": ["e0"], "timestamp": at}
    pq.write_table(pa.table(row), tmp_path / "events" / "a.parquet")
    write(tmp_path, {
        "events/b.ndjson": '{"person_id": "p2", "event": "login", "id": "e1", '
                           '"timestamp": "2026-11-01T10:00:00Z"}\n'
                           '{"person_id": "p3", "event": "login", "id": 2, '
                           '"timestamp": "2026-11-01T11:00:00Z"}\n',
        "segctl.yaml": "data:\n  events: [events/*.ndjson, events/*.parquet]\n"
                       "segments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: login, where: {id: {in: [e0, e1, '2']}}, "
                           "count: {gte: 1}}\n",
    })  # fmt: skip
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert sorted(result.members("s")["person_id"].to_list()) == ["p1", "p2", "p3"]


def test_cli_says_what_was_ignored_and_lists_it_in_json(tmp_path: Path, t: Truth) -> None:
    from typer.testing import CliRunner

    from segctl.cli import app

    write_segment_warehouse(t, tmp_path / "warehouse")
    project(
        tmp_path,
        "data:\n  events: {path: warehouse/tracks.parquet, preset: segment, name: tracks}\n",
        "video_rendered",
    )
    runner = CliRunner()
    for command in (["validate"], ["evaluate", "--as-of", AS_OF], ["run", "--as-of", AS_OF]):
        result = runner.invoke(app, [*command, "--project", str(tmp_path), "--format", "json"])
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        lost = sum(len(p.events) for p in t.persons if p.identified != "events")
        line = ignored_warning("tracks", lost, t.rows() - len(t.repeats))
        assert line in document["warnings"]
        assert f"warning: {line}" in result.stderr


def said_by_each_command(root: Path, line: str) -> None:
    """validate, evaluate and run say ``line`` on stderr and list it under "warnings"."""
    from typer.testing import CliRunner

    from segctl.cli import app

    runner = CliRunner()
    for command in (["validate"], ["evaluate", "--as-of", AS_OF], ["run", "--as-of", AS_OF]):
        result = runner.invoke(app, [*command, "--project", str(root), "--format", "json"])
        assert result.exit_code == 0, result.output
        assert line in json.loads(result.stdout)["warnings"]
        assert f"warning: {line}" in result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".ndjson", ".parquet"])
def test_events_with_no_timestamp_are_counted_and_said(tmp_path: Path, suffix: str) -> None:
    """An empty timestamp cell (a NULL) places the event nowhere in time: no condition counts
    it, and validate, evaluate and run say how many per source, as for rows with no person."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows = pa.table(
        {
            "person_id": ["a", "b", "b", "c"],
            "event": ["video_rendered"] * 4,
            "timestamp": ["2026-11-10T00:00:00Z", None, "2026-11-11T00:00:00Z", None],
        }
    )
    path = tmp_path / f"events{suffix}"
    if suffix == ".csv":
        pacsv.write_csv(rows, path)
    elif suffix == ".ndjson":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows.to_pylist()))
    else:
        pq.write_table(rows, path)
    proj = project(tmp_path, f"data:\n  events: {{path: {path.name}, name: app}}\n", "x")
    assert members(proj) == []  # SEGMENT counts 3 renders of "x": nobody
    (tmp_path / "segments/renders.yaml").write_text(
        "name: renders\nrule: {event: video_rendered, count: {gte: 1}}\n"
    )
    assert members(segctl.Project.load(tmp_path)) == ["a", "b"]
    said_by_each_command(tmp_path, "app: 2 of 4 events (50%) have no timestamp and were ignored")


def test_events_of_a_person_the_persons_source_does_not_hold_are_counted_and_said(
    tmp_path: Path,
) -> None:
    """With a persons source, the persons are its rows: events of another person id are
    evaluated for nobody, and validate, evaluate and run say how many per source."""
    (tmp_path / "events.csv").write_text(
        "person_id,event,timestamp\na,video_rendered,2026-11-10T00:00:00Z\n"
        "ghost,video_rendered,2026-11-10T00:00:00Z\nghost,video_rendered,2026-11-11T00:00:00Z\n"
        "b,video_rendered,2026-11-11T00:00:00Z\n"
    )
    (tmp_path / "persons.csv").write_text("person_id,plan\na,free\nb,pro\nc,pro\n")
    project(
        tmp_path,
        "data:\n  events: {path: events.csv, name: app}\n  persons: persons.csv\n",
        "video_rendered",
    )
    (tmp_path / "segments/renders.yaml").write_text(
        "name: renders\nrule: {event: video_rendered, count: {gte: 1}}\n"
    )
    assert members(segctl.Project.load(tmp_path)) == ["a", "b"]
    said_by_each_command(
        tmp_path,
        "app: 2 of 4 events (50%) have a person id that no row of the persons source holds and "
        "were ignored",
    )
    # Without a persons source every person id of the events is a person: nothing ignored.
    (tmp_path / "persons.csv").unlink()
    project(tmp_path, "data:\n  events: {path: events.csv, name: app}\n", "video_rendered")
    assert segctl.Project.load(tmp_path).data_warnings() == []


def test_inspect_lists_sources_and_nested_keys(tmp_path: Path, t: Truth) -> None:
    from typer.testing import CliRunner

    from segctl.cli import app

    write_mixpanel(t, tmp_path / "mixpanel")
    write_ga4(t, tmp_path / "ga4")
    project(
        tmp_path,
        "data:\n  events:\n    - {path: mixpanel/*.jsonl, preset: mixpanel, name: mixpanel}\n"
        "    - {path: ga4/*.parquet, preset: ga4, name: ga4}\n",
        "Video Rendered",
    )
    result = CliRunner().invoke(app, ["inspect", "--project", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    sources = {s["name"]: s for s in json.loads(result.stdout)["sources"]}
    mixpanel, ga4 = sources["mixpanel"], sources["ga4"]
    assert mixpanel["files"] == ["mixpanel/mixpanel-export.jsonl"]
    assert mixpanel["rows"] == t.rows()
    assert mixpanel["duplicates"] == len(t.repeats)
    never = sum(len(p.events) for p in t.persons if p.identified != "events")
    assert mixpanel["no_person"] == never
    assert mixpanel["persons"] == sum(p.identified == "events" for p in t.persons)
    first = min(e.at for p in t.persons for e in p.events)
    assert mixpanel["from"] == first.isoformat().replace("+00:00", "Z")
    keys = {p["name"]: p for p in mixpanel["properties"]}
    assert keys["properties.amount"]["type"] == "number"
    assert keys["properties.format"]["type"] == "text"
    assert keys["properties.$insert_id"]["example"]
    params = {p["name"]: p for p in ga4["properties"]}
    assert params["event_params.format"]["type"] == "text"
    assert params["event_params.amount"]["type"] == "number"
    table = CliRunner().invoke(app, ["inspect", "--project", str(tmp_path)])
    assert "events: mixpanel (1 file(s)" in table.stdout


# ---- segments on the tools' nested properties (with branch `nested`'s compiler) ----------------

NESTED = [
    ("mixpanel", write_mixpanel, "{path: w/*.jsonl, preset: mixpanel}", "Video Rendered",
     "properties", "events"),
    ("amplitude", write_amplitude, "{path: w/*.json.gz, preset: amplitude}", "Video Rendered",
     "event_properties", "events"),
    ("ga4", write_ga4, "{path: w/*.parquet, preset: ga4}", "video_rendered", "event_params",
     "events"),
    ("ga4-ndjson", write_ga4_ndjson, "{path: w/*.json, preset: ga4}", "video_rendered",
     "event_params", "events"),
    ("posthog", write_posthog, "{path: w/*.csv, preset: posthog}", "Video Rendered", "properties",
     "known"),
    ("segment-archive", write_segment_archive, "{path: w/**/*.gz, preset: segment}",
     "Video Rendered", "properties", "known"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tool", "writer", "source", "event", "column", "who"), NESTED, ids=[n[0] for n in NESTED]
)
def test_nested_properties_of_each_tool(
    tmp_path: Path,
    t: Truth,
    tool: str,
    writer: Callable[[Truth, Path], object],
    source: str,
    event: str,
    column: str,
    who: str,
) -> None:
    """A segment on the export's nested properties (a where on one key, a sum of another)
    gives the members plain Python finds in the truth."""
    pytest.importorskip(
        "segctl.definitions.properties", reason="nested property names come with branch nested"
    )
    writer(t, tmp_path / "w")
    (tmp_path / "segments").mkdir()
    (tmp_path / "segctl.yaml").write_text(f"data:\n  events: {source}\nsegments: segments/\n")
    (tmp_path / "segments/mp4.yaml").write_text(
        f'name: mp4\nrule:\n  event: "{event}"\n  where: {{{column}.format: {{eq: mp4}}}}\n'
        "  count: {gte: 2}\n"
    )
    (tmp_path / "segments/spend.yaml").write_text(
        f'name: spend\nrule:\n  event: "{event}"\n  sum: {{of: {column}.amount, gte: 60}}\n'
    )
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    ident = posthog_person_id if tool == "posthog" else (lambda p: p.user_id)
    persons = [p for p in t.persons if (p.known if who == "known" else p.identified == "events")]
    renders = {p.user_id: [e for e in p.events if e.name == "Video Rendered"] for p in persons}
    mp4 = sorted(
        ident(p)
        for p in persons
        if sum(e.properties["format"] == "mp4" for e in renders[p.user_id]) >= 2
    )
    spend = sorted(
        ident(p)
        for p in persons
        if sum(int(str(e.properties["amount"])) for e in renders[p.user_id]) >= 60
    )
    assert mp4 and spend
    assert sorted(result.members("mp4")["person_id"].to_list()) == mp4
    assert sorted(result.members("spend")["person_id"].to_list()) == spend


def test_a_top_level_json_key_mixing_numbers_and_text_reads_as_a_json_value(
    tmp_path: Path,
) -> None:
    """An NDJSON key whose lines mix numbers, numeric strings, text and booleans (typed JSON)
    is read by the comparator's value, as a nested JSON value is (SPEC 1): in a where, a sum
    and a person property. It was refused ('a other column')."""
    values = {"p1": 12, "p2": "12", "p3": "n/a", "p4": 3, "p5": "3.5e1", "p6": None, "p7": True}
    flags = {"p1": "true", "p2": True, "p3": False, "p4": "no"}
    write(tmp_path, {
        "ev.jsonl": "".join(
            json.dumps({"person_id": p, "event": "buy", "timestamp": "2026-11-10T00:00:00Z",
                        "amount": v, "flag": flags.get(p, False)}) + "\n"
            for p, v in values.items()
        ),
        "persons.jsonl": "".join(
            json.dumps({"person_id": p, "tier": v}) + "\n" for p, v in values.items()
        ),
        "segments/big.yaml": "name: big\nrule: {event: buy, where: {amount: {gte: 10}}, "
                             "count: {gte: 1}}\n",
        "segments/total.yaml": "name: total\nrule: {event: buy, sum: {of: amount, gte: 10}}\n",
        "segments/flag.yaml": "name: flag\nrule: {event: buy, where: {flag: {eq: true}}, "
                              "count: {gte: 1}}\n",
        "segments/tier.yaml": "name: tier\nrule: {property: tier, in: ['12', 'n/a']}\n",
        "segments/low.yaml": "name: low\nrule: {property: tier, lt: 5}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: ev.jsonl\n  persons: persons.jsonl\nsegments: segments/\n"
    )
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    segments = ["big", "total", "flag", "tier", "low"]
    got = {s: sorted(result.members(s)["person_id"].to_list()) for s in segments}
    assert got == {
        "big": ["p1", "p2", "p5"],  # 12, "12", "3.5e1": "n/a" and true are no numbers
        "total": ["p1", "p2", "p5"],
        "flag": ["p1", "p2"],  # "true" and true alike
        "tier": ["p1", "p2", "p3"],  # as text: 12 reads "12"
        "low": ["p4"],
    }


def test_ndjson_key_value_records_of_plain_values_are_read_by_key(tmp_path: Path) -> None:
    """A list of ``{key, value}`` records whose values are plain JSON (not GA4's typed slots)
    is a list of key/value records (SPEC 1): ``params.fmt`` reads the value of the record
    whose key is ``fmt``, by the comparator's value, fields beside key and value ignored.
    It was read as JSON text, where ``$.fmt`` of a list is missing: every key was missing,
    silently (an ``is_set: false`` matched everyone)."""
    params = {
        "p1": [{"key": "fmt", "value": "mp4"}, {"key": "n", "value": 5}],
        "p2": [{"key": "fmt", "value": "mov", "type": "string"}, {"key": "n", "value": "12"}],
        "p3": [],
        "p4": None,
        "p5": [{"key": "fmt", "value": {"codec": "h264"}}, {"key": "n", "value": "n/a"}],
        "p6": [{"key": "other", "value": "mp4"}, {"key": "fmt", "value": "MP4"}],
    }
    write(tmp_path, {
        "ev.jsonl": "".join(
            json.dumps({"person_id": p, "event": "x", "timestamp": "2026-11-10T00:00:00Z",
                        "params": v}) + "\n"
            for p, v in params.items()
        ),
        "segments/video.yaml": "name: video\nrule: {event: x, where: {params.fmt: "
                               "{in: [mp4, mov]}}, count: {gte: 1}}\n",
        "segments/unset.yaml": "name: unset\nrule: {event: x, where: {params.fmt: "
                               "{is_set: false}}, count: {gte: 1}}\n",
        "segments/many.yaml": "name: many\nrule: {event: x, where: {params.n: {gte: 5}}, "
                              "count: {gte: 1}}\n",
        "segments/codec.yaml": "name: codec\nrule: {event: x, where: {params.fmt.codec: "
                               "{eq: h264}}, count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text("data:\n  events: ev.jsonl\nsegments: segments/\n")
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    got = {s: sorted(result.members(s)["person_id"].to_list()) for s in result.segments}
    assert got == {
        "video": ["p1", "p2"],  # p6's fmt is MP4: `in` is exact
        "unset": ["p3", "p4"],
        "many": ["p1", "p2"],  # 5 and "12": "n/a" is no number
        "codec": ["p5"],
    }
    # The list itself is no text to compare (it was JSON text): the error says what to do.
    (tmp_path / "segments" / "codec.yaml").write_text(
        "name: codec\nrule: {event: x, where: {params: {contains: mp4}}, count: {gte: 1}}\n"
    )
    with pytest.raises(segctl.DefinitionError) as error:
        segctl.Project.load(tmp_path).validate()
    assert (
        "'contains' applies to string values, not to a nested value ('params' holds nested "
        "values: compare a key inside it, like params.<key>)"
    ) in str(error.value)


def test_segment_archive_files_of_identify_or_page_calls_alone_are_read(tmp_path: Path) -> None:
    """Segment's raw archive writes an hour's messages to a file: an hour of identify or page
    calls alone has no ``event`` key. Such a file of the segment preset (its messages have a
    ``type``) is read, its rows without an event name (counted, said), where it was refused
    as missing the required column; a file without ``type`` still is."""
    import gzip

    def archive(name: str, *messages: dict[str, object]) -> None:
        path = tmp_path / "archive" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress("".join(json.dumps(m) + "\n" for m in messages).encode()))

    stamp = "2026-11-02T10:00:00Z"
    archive("1.gz", {"type": "track", "event": "buy", "anonymousId": "a1", "messageId": "m1",
                     "timestamp": stamp})  # fmt: skip
    archive("2.gz", {"type": "identify", "userId": "u1", "anonymousId": "a1",
                     "messageId": "m2", "timestamp": stamp})  # fmt: skip
    archive("3.gz", {"type": "page", "userId": "u1", "messageId": "m3", "timestamp": stamp})
    write(tmp_path, {
        "segments/buyers.yaml": "name: buyers\nrule: {event: buy, count: {gte: 1}}\n",
        "segctl.yaml": "data:\n  events: {path: 'archive/*.gz', preset: segment, name: archive}"
                       "\nsegments: segments/\n",
    })  # fmt: skip
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert result.members("buyers")["person_id"].to_list() == ["u1"]  # linked by the identify
    assert result.warnings[0] == (
        "archive: 2 of 3 rows (67%) have no event name (identify or page calls?) and were ignored"
    )
    (tmp_path / "archive" / "1.gz").unlink()  # no track call in any file
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert result.members("buyers").is_empty()
    archive("4.gz", {"userId": "u1", "messageId": "m4", "timestamp": stamp})  # no type
    with pytest.raises(segctl.DataError, match=r"4\.gz: missing required column 'event'"):
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_ga4_user_properties_read_their_set_slot(tmp_path: Path, suffix: str) -> None:
    """GA4's ``user_properties`` values carry ``set_timestamp_micros`` beside the typed slots:
    still typed slots, the one set is the value (they were read as a JSON object, or a
    STRUCT, and a comparison with text was FALSE for everyone, silently)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"person_id": p, "event": "x", "timestamp": "2026-11-10T00:00:00Z",
         "user_properties": [{"key": "plan", "value": {"string_value": plan, "int_value": None,
                                                       "set_timestamp_micros": 1}},
                             {"key": "age", "value": {"string_value": None, "int_value": age,
                                                      "set_timestamp_micros": 2}}]}
        for p, plan, age in (("p1", "pro", 40), ("p2", "free", 20))
    ]  # fmt: skip
    if suffix == ".jsonl":
        (tmp_path / "ev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ev.parquet")
    write(tmp_path, {
        "segments/pro.yaml": "name: pro\nrule: {event: x, where: {user_properties.plan: "
                             "{eq: pro}}, count: {gte: 1}}\n",
        "segments/old.yaml": "name: old\nrule: {event: x, where: {user_properties.age: "
                             "{gte: 30}}, count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text(f"data:\n  events: ev{suffix}\nsegments: segments/\n")
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert result.members("pro")["person_id"].to_list() == ["p1"]
    assert result.members("old")["person_id"].to_list() == ["p1"]


def test_a_text_column_of_json_lists_warns_that_a_key_reads_nothing(tmp_path: Path) -> None:
    """The same records as JSON text in a CSV column are not looked into (``$.fmt`` of a list
    is missing): validate says so, where it said nothing and every key was missing. A column
    of JSON objects has no such warning."""
    lists = json.dumps([{"key": "fmt", "value": "mp4"}]).replace('"', '""')
    objects = json.dumps({"fmt": "mp4"}).replace('"', '""')
    write(tmp_path, {
        "ev.csv": "person_id,event,timestamp,params,props\n"
                  f'p1,x,2026-11-10T00:00:00Z,"{lists}","{objects}"\n',
        "segments/a.yaml": "name: a\nrule: {event: x, where: {params.fmt: {eq: mp4}}, "
                           "count: {gte: 1}}\n",
        "segments/b.yaml": "name: b\nrule: {event: x, where: {props.fmt: {eq: mp4}}, "
                           "count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text("data:\n  events: ev.csv\nsegments: segments/\n")
    project = segctl.Project.load(tmp_path)
    warnings = [str(w) for w in project.validate().warnings]
    assert len(warnings) == 1, warnings
    assert "segments/a.yaml:2:" in warnings[0]
    assert "params holds JSON lists, not objects, in the first 10,000 rows" in warnings[0]
    assert "key 'fmt' reads nothing in a list" in warnings[0]
    assert project.evaluate(as_of=AS_OF).members("b")["person_id"].to_list() == ["p1"]


def test_a_top_level_key_first_written_past_the_sniffed_lines_is_read(tmp_path: Path) -> None:
    """DuckDB sniffs an NDJSON file's columns from its first 20,480 lines: a key first written
    after them (a rare event's property) was an unknown property. A definition naming a column
    the views lack makes segctl sniff every line, once; a project that names none does not."""
    line = {"person_id": "p1", "event": "view", "timestamp": "2026-11-10T00:00:00Z"}
    late = [
        {**line, "person_id": "p2", "event": "buy", "coupon": "FALL"},
        {**line, "person_id": "p3", "event": "buy", "coupon": "SPRING"},
    ]
    write(tmp_path, {
        "ev.jsonl": "".join(json.dumps(r) + "\n" for r in [line] * SAMPLED_ROWS + late),
        "segments/views.yaml": "name: views\nrule: {event: view, count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / "segctl.yaml").write_text("data:\n  events: ev.jsonl\nsegments: segments/\n")
    proj = segctl.Project.load(tmp_path)
    assert proj.evaluate(as_of=AS_OF).members("views")["person_id"].to_list() == ["p1"]
    assert "coupon" not in proj.schema["events"]
    assert not proj.engine.driver.every_line  # named by no definition: the first lines do
    (tmp_path / "segments/fall.yaml").write_text(
        "name: fall\nrule: {event: buy, where: {coupon: {eq: FALL}}, count: {gte: 1}}\n"
    )
    proj = segctl.Project.load(tmp_path)
    assert proj.evaluate(as_of=AS_OF).members("fall")["person_id"].to_list() == ["p2"]
    (tmp_path / "segments/fall.yaml").write_text(
        "name: fall\nrule: {event: buy, where: {cuopon: {eq: FALL}}, count: {gte: 1}}\n"
    )
    with pytest.raises(segctl.DefinitionError, match="unknown event property 'cuopon' \\(did you"):
        segctl.Project.load(tmp_path).validate()


def test_every_data_block_of_the_docs_is_a_valid_config(tmp_path: Path) -> None:
    """docs/data.md cannot go stale: each of its `data:` examples parses as segctl.yaml does,
    and each preset and key it documents exists."""
    from segctl.config import load_config
    from segctl.definitions.data import SOURCE_KEYS
    from segctl.definitions.presets import PRESETS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    blocks = [b.split("```")[0] for b in doc.split("```yaml\n")[1:]]
    data_blocks = [b for b in blocks if b.startswith("data:")]
    assert len(data_blocks) >= 8
    for block in data_blocks:
        (tmp_path / "segctl.yaml").write_text(block)
        config = load_config(tmp_path, {})  # raises with file:line:col on any problem
        assert config.sources["events"], block
    for preset in PRESETS:
        assert f"preset: {preset}" in doc or f"`preset: {preset}`" in doc
    for keys in SOURCE_KEYS.values():
        for key in keys:
            assert f"| `{key}` |" in doc, key


def test_keys_beside_a_preset_override_it(tmp_path: Path) -> None:
    """Mixpanel's import API takes milliseconds: `timestamp_unit: ms` beside the preset reads
    them; `dedupe_on` beside it replaces $insert_id."""
    lines = [
        {"event": "Played", "properties": {"time": 1790000000123, "distinct_id": "u1",
                                           "$insert_id": "a", "play": "p1"}},
        {"event": "Played", "properties": {"time": 1790000001123, "distinct_id": "u1",
                                           "$insert_id": "b", "play": "p1"}},
    ]  # fmt: skip
    write(tmp_path, {"mp.jsonl": "".join(json.dumps(line) + "\n" for line in lines)})
    (tmp_path / "segments").mkdir()
    (tmp_path / "segctl.yaml").write_text(
        "data:\n  events: {path: mp.jsonl, preset: mixpanel, timestamp_unit: ms, "
        "dedupe_on: properties.play}\n"
    )
    proj = segctl.Project.load(tmp_path)
    proj.validate()
    from datetime import UTC, datetime

    rows = proj.engine.driver.rows("SELECT person_id, timestamp FROM events")
    assert rows == [("u1", datetime.fromtimestamp(1790000000.123, UTC).replace(tzinfo=None))]
    assert proj.data_warnings() == [
        "mp.jsonl: 1 of 2 rows (50%) repeat an earlier row's dedupe_on value and were removed"
    ]


def test_typed_timestamps_inside_a_struct_or_map_are_read_as_their_instants(
    tmp_path: Path,
) -> None:
    """A dotted path to a TIMESTAMP, TIMESTAMPTZ or DATE field of a STRUCT (or a MAP's value)
    is read as that instant wherever a source reads a timestamp: events' ``timestamp``,
    persons' ``created_at`` and ``latest_by``. They were read as missing text: every event
    ignored as having no timestamp, every person gone."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT * FROM (VALUES
            ('u1', 'buy', {{'ts': TIMESTAMP '2026-11-01 10:00:00',
                           'tz': TIMESTAMPTZ '2026-11-01 10:00:00+02',
                           'day': DATE '2026-11-01'}},
             MAP {{'at': TIMESTAMP '2026-11-02 09:30:00'}}),
            ('u2', 'buy', {{'ts': TIMESTAMP '2026-11-03 00:00:00',
                           'tz': TIMESTAMPTZ '2026-11-03 00:00:00-05',
                           'day': DATE '2026-11-03'}},
             MAP {{'at': TIMESTAMP '2026-11-04 00:00:00'}})
        ) AS t(uid, event, meta, extra)) TO '{tmp_path / "events.parquet"}'"""
    )
    con.execute(
        f"""COPY (SELECT * FROM (VALUES
            ('u1', 'free', {{'seen': TIMESTAMP '2026-10-01 00:00:00'}}),
            ('u1', 'pro', {{'seen': TIMESTAMP '2026-11-02 00:00:00'}}),
            ('u2', 'pro', {{'seen': TIMESTAMP '2026-10-15 00:00:00'}})
        ) AS t(uid, plan, info)) TO '{tmp_path / "persons.parquet"}'"""
    )
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments/pro.yaml").write_text("name: pro\nrule: {property: plan, eq: pro}\n")
    expected = {
        "meta.ts": {"u1": "2026-11-01 10:00:00", "u2": "2026-11-03 00:00:00"},
        "meta.tz": {"u1": "2026-11-01 08:00:00", "u2": "2026-11-03 05:00:00"},
        "meta.day": {"u1": "2026-11-01 00:00:00", "u2": "2026-11-03 00:00:00"},
        "extra.at": {"u1": "2026-11-02 09:30:00", "u2": "2026-11-04 00:00:00"},
    }
    for path, instants in expected.items():
        (tmp_path / "segctl.yaml").write_text(
            "data:\n"
            f"  events: {{path: events.parquet, columns: {{person_id: uid, timestamp: {path}}}}}\n"
            "  persons: {path: persons.parquet, columns: {person_id: uid, created_at: info.seen},"
            " latest_by: info.seen}\n"
            "segments: segments/\n"
        )
        proj = segctl.Project.load(tmp_path)
        # u1's latest row at as_of is the pro one; its created_at is that row's instant.
        result = proj.evaluate(as_of="2026-11-05T00:00:00Z")
        rows = proj.engine.driver.rows("SELECT person_id, timestamp::VARCHAR FROM events")
        assert dict(rows) == instants, path
        assert result.members("pro")["person_id"].to_list() == ["u1", "u2"]
        early = segctl.Project.load(tmp_path).evaluate(as_of="2026-11-01T12:00:00Z")
        assert early.members("pro")["person_id"].to_list() == ["u2"]
        created = proj.engine.driver.rows("SELECT person_id, created_at::VARCHAR FROM persons")
        assert dict(created) == {"u1": "2026-11-02 00:00:00", "u2": "2026-10-15 00:00:00"}


def test_an_empty_timestamp_in_ndjson_is_a_data_error_naming_its_line(tmp_path: Path) -> None:
    """An NDJSON line whose timestamp is the empty string ``""`` is not a missing timestamp
    but one that is not a timestamp: the error names the file, the line, the column and the
    value (the trace read ``""`` as NULL, found no bad row, and the read failed with DuckDB's
    bare 'Conversion Error', naming none of them)."""
    write(tmp_path, {
        "ev.jsonl": '{"person_id": "p1", "event": "login", "timestamp": "2026-11-10T00:00:00Z"}\n'
                    '{"person_id": "p2", "event": "login", "timestamp": ""}\n',
        "segctl.yaml": "data:\n  events: ev.jsonl\nsegments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: login, count: {gte: 1}}\n",
    })  # fmt: skip
    with pytest.raises(segctl.DataError) as caught:
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert str(caught.value) == (
        "ev.jsonl: line 2: column 'timestamp' has a value that is not a timestamp: '' "
        "(expected ISO-8601, like 2026-01-31T12:00:00Z; values without an offset are read as UTC)"
    )


def test_a_nested_json_column_of_one_events_source_beside_one_without_it(
    tmp_path: Path,
) -> None:
    """Two events sources (the ``events:`` list): an NDJSON key holding an object in one line
    and text in another is JSON values; the Parquet source lacks the column. It stays JSON
    (no other source holds it as text), so a nested path reads into it: only the line whose
    ``meta.n`` is 5 matches ``gte: 3`` (read as text, the union failed on 'Malformed JSON')."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    at = pa.array([datetime(2026, 11, 1)], pa.timestamp("us"))
    table = pa.table({"person_id": ["p3"], "event": ["login"], "timestamp": at})
    write(tmp_path, {
        "app.ndjson": '{"person_id": "p1", "event": "login", "meta": {"n": 5}, '
                      '"timestamp": "2026-11-01T10:00:00Z"}\n'
                      '{"person_id": "p2", "event": "login", "meta": "x", '
                      '"timestamp": "2026-11-01T11:00:00Z"}\n',
        "segctl.yaml": "data:\n  events:\n    - app.ndjson\n    - {path: tracks.parquet}\n"
                       "segments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: login, where: {meta.n: {gte: 3}}, "
                           "count: {gte: 1}}\n",
    })  # fmt: skip
    pq.write_table(table, tmp_path / "tracks.parquet")
    result = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert result.sizes()["size"].to_list() == [1]
    assert result.members("s")["person_id"].to_list() == ["p1"]


def test_ids_of_json_values_in_one_events_source_beside_text_in_others(tmp_path: Path) -> None:
    """Events sources (the ``events:`` list): NDJSON event ids written as numbers in some
    lines and strings in others are JSON values; the Parquet source's ids are text, and the
    CSV source's are all empty (text). The union made the column JSON and failed on the text
    that is not JSON; the JSON values are read as text (and an empty column beside them stays
    text), so the memberships are those of the same rows read as one source."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = [("p1", "buy", 1), ("p2", "buy", "e2"), ("p1", "buy", 3), ("p3", "login", "e4")]
    ndjson = "".join(
        json.dumps({"person_id": p, "event": e, "id": i, "timestamp": f"2026-11-0{n}T10:00:00Z"})
        + "\n"
        for n, (p, e, i) in enumerate(lines, start=1)
    )
    parquet = pa.table({
        "person_id": ["p1", "p4", "p2"], "event": ["buy", "buy", "login"], "id": ["a", "b", "c"],
        "timestamp": pa.array([datetime(2026, 11, 5)] * 3, pa.timestamp("us")),
    })  # fmt: skip
    write(tmp_path, {
        "app.ndjson": ndjson,
        "charges.csv": "person_id,event,timestamp,id\np5,buy,2026-11-06T00:00:00Z,\n",
        "segments/twice.yaml": "name: twice\nrule: {event: buy, count: {gte: 2}}\n",
        "segments/once.yaml": "name: once\nrule: {event: buy, count: {gte: 1}}\n",
        "segments/ids.yaml": "name: ids\nrule: {event: buy, where: {id: {in: ['1', e2, b]}}, "
                             "count: {gte: 1}}\n",
    })  # fmt: skip
    pq.write_table(parquet, tmp_path / "tracks.parquet")
    config = tmp_path / "segctl.yaml"
    config.write_text(
        "data:\n  events:\n    - app.ndjson\n    - {path: tracks.parquet}\n    - charges.csv\n"
        "segments: segments/\n"
    )
    apart = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    got = {s: sorted(apart.members(s)["person_id"].to_list()) for s in ["twice", "once", "ids"]}
    assert got == {"twice": ["p1"], "once": ["p1", "p2", "p4", "p5"], "ids": ["p1", "p2", "p4"]}
    # The same rows as one source (its files of three formats unioned): the same members.
    (tmp_path / "one").mkdir()
    for name in ["app.ndjson", "tracks.parquet", "charges.csv"]:
        (tmp_path / name).rename(tmp_path / "one" / name)
    config.write_text("data:\n  events: one/*\nsegments: segments/\n")
    together = segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert {s: sorted(together.members(s)["person_id"].to_list()) for s in got} == got


def test_every_file_of_a_source_blank_names_three_of_them(tmp_path: Path) -> None:
    """Every file of a source blank: the data error names the first three files (sorted) and
    says there are more with ``...``, so that a wrong glob over an empty export folder is
    recognised from the message alone."""
    write(tmp_path, {
        **{f"e/{name}.csv": "\n" for name in "abcd"},
        "segctl.yaml": "data:\n  events: e/*.csv\nsegments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: login, count: {gte: 1}}\n",
    })  # fmt: skip
    with pytest.raises(segctl.DataError) as caught:
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert str(caught.value) == (
        "data.events: every file is empty (e/a.csv, e/b.csv, e/c.csv, ...): "
        "no header and no rows to read"
    )
    (tmp_path / "e/d.csv").unlink()  # three: all named, no '...'
    with pytest.raises(segctl.DataError) as caught:
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert str(caught.value) == (
        "data.events: every file is empty (e/a.csv, e/b.csv, e/c.csv): "
        "no header and no rows to read"
    )


@pytest.mark.parametrize("kind", [".csv", ".jsonl"])
def test_a_file_holding_only_a_byte_order_mark_is_blank(tmp_path: Path, kind: str) -> None:
    """A file holding nothing but a UTF-8 byte order mark (what some editors and exporters
    write for an empty file), with or without a line break, holds no rows, as a 0-byte file:
    left out of the read beside a file with rows, and a source of only such files is the
    'every file is empty' data error."""
    rows = {
        ".jsonl": '{"person_id": "u1", "event": "login", "timestamp": "2026-11-10T00:00:00Z"}\n',
        ".csv": "person_id,event,timestamp\nu1,login,2026-11-10T00:00:00Z\n",
    }[kind]
    write(tmp_path, {
        f"e/a{kind}": rows,
        "segctl.yaml": f"data:\n  events: e/*{kind}\nsegments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: login, count: {gte: 1}}\n",
    })  # fmt: skip
    (tmp_path / f"e/b{kind}").write_bytes(b"\xef\xbb\xbf")
    (tmp_path / f"e/c{kind}").write_bytes(b"\xef\xbb\xbf\r\n")
    proj = segctl.Project.load(tmp_path)
    assert proj.evaluate(as_of=AS_OF).members("s")["person_id"].to_list() == ["u1"]

    (tmp_path / f"e/a{kind}").unlink()
    with pytest.raises(segctl.DataError) as caught:
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert str(caught.value) == (
        f"data.events: every file is empty (e/b{kind}, e/c{kind}): no header and no rows to read"
    )


def test_nanoseconds_before_1970_are_cut_down_to_the_microsecond(tmp_path: Path) -> None:
    """A Parquet timestamp typed in nanoseconds is cut to the microsecond below it, as ISO text
    with nine digits is: before 1970 the epoch's nanoseconds are negative, and a division
    toward zero took 1969-12-31T23:59:59.999999999 up to 1970-01-01, a window's end later."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = [-1, -1_000, -1_001, 1_999]  # nanoseconds since 1970
    pq.write_table(
        pa.table({
            "person_id": ["a", "b", "c", "d"], "event": ["old"] * 4,
            "timestamp": pa.array(stamps, pa.int64()).cast(pa.timestamp("ns")),
        }),
        tmp_path / "events.parquet",
    )  # fmt: skip
    write(tmp_path, {
        "segctl.yaml": "data:\n  events: events.parquet\nsegments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: old, count: {gte: 1}}\n",
    })  # fmt: skip
    proj = segctl.Project.load(tmp_path)
    proj.validate()
    rows = proj.engine.driver.rows("SELECT person_id, timestamp FROM events ORDER BY person_id")
    micros = {p: (t - datetime(1970, 1, 1)) // timedelta(microseconds=1) for p, t in rows}
    assert micros == {"a": -1, "b": -1, "c": -2, "d": 1}
    # Evaluated at 1970-01-01T00:00:00Z, an event of 23:59:59.999999999 the day before counts.
    result = proj.evaluate(as_of="1970-01-01T00:00:00Z")
    assert result.members("s")["person_id"].to_list() == ["a", "b", "c"]


def test_an_epoch_number_of_1998_where_iso_text_was_expected_hints_seconds(
    tmp_path: Path,
) -> None:
    """A number where ISO-8601 text was expected (no timestamp_unit): the hint names the unit
    that reads it as an instant of 1990 to 2100. 900000000 is July 1998 in seconds, so the
    hint says seconds, as it does for a value of 2026."""
    write(tmp_path, {
        "charges.csv": "id,customer,created\nch1,p1,900000000\n",
        "segctl.yaml": "data:\n  events: {path: charges.csv, event: purchase, "
                       "columns: {person_id: customer, timestamp: created}}\nsegments: segments/\n",
        "segments/s.yaml": "name: s\nrule: {event: purchase, count: {gte: 1}}\n",
    })  # fmt: skip
    with pytest.raises(segctl.DataError) as caught:
        segctl.Project.load(tmp_path).evaluate(as_of=AS_OF)
    assert str(caught.value) == (
        "charges.csv: row 1: column 'created' has a value that is not a timestamp: '900000000' "
        "(expected ISO-8601, like 2026-01-31T12:00:00Z; values without an offset are read as "
        "UTC; it reads as seconds since the Unix epoch: set timestamp_unit: s on the source)"
    )
