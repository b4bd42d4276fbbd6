"""Real tools' exports read through a few-line segctl.yaml (SPEC 1, "Data sources").

Each tool's export is written by tests/exports.py from one truth in that tool's documented
schema; DuckDB reads it for real; the members of a segment are compared with the members
computed from the truth in plain Python (anonymous events stitched to their person, repeated
rows counted once, events of never-identified persons ignored and said so).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from exports import (
    Person,
    Truth,
    posthog_person_id,
    truth,
    write_amplitude,
    write_ga4,
    write_mixpanel,
    write_posthog,
    write_segment_archive,
    write_segment_warehouse,
    write_stripe_charges,
)

import segctl

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
    plans = dict(proj.engine.rows("SELECT person_id, plan FROM persons ORDER BY 1"))
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
        "data:\n  events: {path: archive/*.json.gz, preset: segment, name: archive}\n",
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
    persons = proj.engine.rows("SELECT count(*) FROM persons")[0][0]
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
    created = dict(proj.engine.rows("SELECT person_id, created_at FROM persons"))
    first = {p.user_id: p.events[0].at.replace(tzinfo=None) for p in t.persons}
    assert created == {k: first[k] for k in created}


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
        "data:\n  events: {path: warehouse/*.json.gz, preset: segment}\n",
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
    duck_persons = sorted(
        str(r[0])
        for r in project(tmp_path, data, event).engine.rows("SELECT person_id FROM persons")
    )
    assert spark_persons == duck_persons
