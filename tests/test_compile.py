"""The compiler: golden SQL per dialect, one shared scan, the pushed-down window, injection.

Golden files live in ``tests/golden/SEGMENT.DIALECT.sql``; after an intended change to the
compiler, rewrite them with ``SEGCTL_UPDATE_GOLDEN=1 pytest tests/test_compile.py`` and review
the diff. The DuckDB golden files are also run as they are, so each one is known to compute the
right members.
"""

from __future__ import annotations

import csv
import io
import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml
from conftest import (
    AS_OF,
    CONFIG,
    EVENT_COLUMNS,
    FEATURES,
    SEGMENTS,
    Cli,
    MakeProject,
    at,
    build_project,
)
from sqlglot import exp

import segctl
from segctl.errors import DataError
from segctl.project import DIALECTS

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SEGCTL_UPDATE_GOLDEN") == "1"
EXAMPLE = Path(__file__).resolve().parents[1]

# One segment per construct, over conftest's data, with the members each has at AS_OF.
GOLDEN_SEGMENTS = {
    "power_users": (SEGMENTS["power_users"], ["p1"]),  # property + event
    "big_spenders": (SEGMENTS["big_spenders"], ["p1", "p3"]),  # sum
    "spenders_not_vip": (
        """\
        name: spenders_not_vip
        rule:
          any:
            - segment: big_spenders
            - event: purchase
              within: 30d
              count: {gte: 1}
        exclude:
          - segment: vip
          - property: country
            eq: FR
        """,
        ["p1"],
    ),
    "login_streak": (
        """\
        name: login_streak
        rule:
          event: login
          streak: {gte: 3}
        """,
        ["p1"],
    ),
    "onboarded": (
        """\
        name: onboarded
        rule:
          sequence:
            steps: [{event: signup}, {event: purchase, where: {amount: {gte: 50}}}]
            within: 30d
            max_gap: 7d
        """,
        ["p3"],
    ),
    "mp4_focus": (  # p1's last 2 renders are mp4 and mov: 0.5, although 2 of all 3 are mp4
        """\
        name: mp4_focus
        rule:
          event: video_rendered
          last: 2
          share: {where: {format: {eq: mp4}}, gte: 0.6}
        """,
        ["p3"],
    ),
    "paying": (  # p2's cancellation comes after AS_OF
        """\
        name: paying
        rule:
          subscription:
            status: {in: [active, past_due]}
            mrr: {gte: 900}
        """,
        ["p1", "p2"],
    ),
    "vip": (SEGMENTS["vip"], ["p2"]),  # list
    # SPEC 2.4b: calendar activity periods (p1 logs in on each of the 3 days before as_of's)
    "regulars": (
        """\
        name: regulars
        rule:
          event: login
          calendar: true
          active_periods: {every: 1d, of_last: 3, offset: 1d, gte: 3}
        """,
        ["p1"],
    ),
    # at_least with a custom event and calendar windows: p1 holds 3, p3 2, p2 1
    "two_of_three": (
        """\
        name: two_of_three
        rule:
          at_least: 2
          of:
            - {custom_event: mp4_render, within: 7d, calendar: true, count: {gte: 1}}
            - {property: plan, in: [pro, premium]}
            - {event: purchase, between: [365d, 30d], calendar: true, count: {gte: 1}}
        """,
        ["p1", "p3"],
    ),
    # a sequence step that is a custom event, and max_span
    "quick_buyers": (
        """\
        name: quick_buyers
        rule:
          sequence:
            steps: [{event: signup}, {custom_event: paid}]
            max_span: 3d
        """,
        ["p3"],
    ),
}
GOLDEN_DIALECTS = ("duckdb", "spark")
GOLDEN_CUSTOM_EVENTS = """\
custom_events:
  mp4_render: {event: video_rendered, where: {format: {eq: mp4}}}
  paid: {event: purchase, where: {amount: {gte: 50}}}
"""


@pytest.fixture(scope="module")
def golden_project(tmp_path_factory: pytest.TempPathFactory) -> segctl.Project:
    root = build_project(
        tmp_path_factory.mktemp("golden"),
        segments={name: text for name, (text, _) in GOLDEN_SEGMENTS.items()},
        features=FEATURES + GOLDEN_CUSTOM_EVENTS,
    )
    return segctl.Project.load(root)


def golden(name: str, text: str) -> str:
    """The golden file's text; with SEGCTL_UPDATE_GOLDEN=1, ``text`` is written first."""
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing {path}: run with SEGCTL_UPDATE_GOLDEN=1 to create it"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("dialect", GOLDEN_DIALECTS)
@pytest.mark.parametrize("segment", sorted(GOLDEN_SEGMENTS))
def test_golden_sql(golden_project: segctl.Project, segment: str, dialect: str) -> None:
    sql = golden_project.compile(segment, dialect=dialect, as_of=AS_OF, header=False) + "\n"
    assert sql == golden(f"{segment}.{dialect}.sql", sql), (
        "compiled SQL changed; if intended, rerun with SEGCTL_UPDATE_GOLDEN=1 and review the diff"
    )


def test_golden_files_are_all_in_use() -> None:
    expected = {f"{s}.{d}.sql" for s in GOLDEN_SEGMENTS for d in GOLDEN_DIALECTS}
    assert {p.name for p in GOLDEN.glob("*.sql")} == expected


@pytest.mark.parametrize("segment", sorted(GOLDEN_SEGMENTS))
def test_golden_duckdb_sql_computes_the_members(
    golden_project: segctl.Project, segment: str
) -> None:
    sql = (GOLDEN / f"{segment}.duckdb.sql").read_text()
    golden_project.compile(segment, as_of=AS_OF)  # registers the list views the SQL reads
    rows = golden_project.engine.driver.rows(sql)
    assert [r[0] for r in rows] == GOLDEN_SEGMENTS[segment][1]


def test_golden_segments_evaluate_together(golden_project: segctl.Project) -> None:
    result = golden_project.evaluate(as_of=AS_OF)
    for name, (_, members) in GOLDEN_SEGMENTS.items():
        assert result.members(name)["person_id"].to_list() == members, name


# ---- the public API: one dispatch over condition kinds --------------------------------------


def test_every_condition_kind_has_one_entry_and_every_visitor_handles_it() -> None:
    from typing import get_args

    import segctl.explain  # noqa: F401 - its visitors subclass ConditionVisitor too
    from segctl.compiler import KINDS, ConditionVisitor
    from segctl.definitions.model import Condition

    assert set(KINDS) == set(get_args(Condition))
    visitors = ConditionVisitor.__subclasses__()
    assert len(visitors) >= 4  # the compiler's, its instrumentation's, explain's two
    for visitor in visitors:
        missing = [k for k in KINDS.values() if not hasattr(visitor, f"visit_{k}")]
        assert not missing, f"{visitor.__name__} lacks {missing}"


def test_a_kind_a_visitor_lacks_raises(golden_project: segctl.Project) -> None:
    from segctl.compiler import ConditionVisitor

    rule = golden_project.definitions.segments["power_users"].rule
    unhandled = r"ConditionVisitor has no visit_all: all conditions unhandled"
    with pytest.raises(TypeError, match=unhandled):
        ConditionVisitor[None]().visit(rule)


def test_one_condition_compiles_over_the_plan_columns(golden_project: segctl.Project) -> None:
    from segctl.compiler import Plan
    from segctl.timeutil import parse_as_of

    definitions = golden_project.definitions
    context = golden_project.plan_context(["power_users"], parse_as_of(AS_OF))
    plan = Plan(definitions, context)
    verdict = plan.condition(definitions.segments["power_users"].rule)
    columns = {c.name for c in verdict.find_all(exp.Column)}
    assert columns == {"p__plan", *plan.needs.measures.values()} and plan.needs.measures
    # The plan computes what the condition reads: its measures are columns of base.
    base = cte(plan.segments_query(["power_users"]).sql(dialect="duckdb"), "base")
    assert set(plan.needs.measures.values()) <= {p.alias_or_name for p in base.expressions}


# ---- the fused plan ---------------------------------------------------------------------------


def cte(sql: str, name: str) -> exp.Select:
    """The CTE ``name`` of a compiled (DuckDB) plan."""
    for table in sqlglot.parse_one(sql, read="duckdb").find_all(exp.CTE):
        if table.alias == name:
            assert isinstance(table.this, exp.Select)
            return table.this
    raise AssertionError(f"no CTE {name}")


def segments(**texts: str) -> dict[str, str]:
    return {name: f"name: {name}\n" + textwrap.dedent(text) for name, text in texts.items()}


def test_a_measure_shared_by_segments_and_features_is_computed_once(
    make_project: MakeProject,
) -> None:
    root = make_project(
        segments=segments(
            some="rule: {event: video_rendered, within: 30d, count: {gte: 1}}\n",
            many="""\
                rule:
                  all:
                    - {property: plan, eq: pro}
                    - {event: video_rendered, within: 30d, count: {gte: 3}}
                """,
            none="rule: {not: {event: video_rendered, within: 30d, count: {gte: 1}}}\n",
            by_feature="rule: {feature: renders_30d, lt: 2}\n",  # the same measure, named
            recent="rule: {event: video_rendered, within: 7d, count: {gte: 1}}\n",
            spend="rule: {event: purchase, sum: {of: amount, gt: 0}}\n",
        )
    )
    project = segctl.Project.load(root)
    plan = sqlglot.parse_one(project.compile(as_of=AS_OF), read="duckdb")
    tables = [t.this for t in plan.find_all(exp.CTE) if t.alias.startswith("event_measures")]
    assert sum(len(list(t.find_all(exp.Count, exp.CountIf))) for t in tables) == 2  # 30d, 7d
    assert sum(len(list(t.find_all(exp.Sum))) for t in tables) == 1
    # One GROUP BY per set of events read (video_rendered, purchase), not one per segment.
    assert len(tables) == 2 and len(list(plan.find_all(exp.Group))) == 2
    sizes = dict(project.evaluate(as_of=AS_OF).sizes().select("segment", "size").iter_rows())
    assert sizes == {"by_feature": 3, "many": 1, "none": 1, "recent": 3, "some": 3, "spend": 3}


def test_counts_are_integers_whatever_form_computes_them(
    make_project: MakeProject, cli: Cli
) -> None:
    """COUNT_IF gives a HUGEINT, BIT_COUNT a TINYINT: both are cast to BIGINT, since a HUGEINT
    leaves DuckDB through Arrow as a Decimal, which the JSON output cannot print."""
    features = {
        "n": "{event: video_rendered, within: 30d, measure: count}",
        "last_n": "{event: video_rendered, last: 2, measure: count}",
        "days": "{event: video_rendered, within: 30d, measure: distinct_days}",
        "streak": "{event: video_rendered, measure: streak}",
    }
    root = make_project(
        features="features:\n" + "".join(f"  {k}: {v}\n" for k, v in features.items())
    )
    frame = segctl.Project.load(root).features(as_of=AS_OF)
    assert {n: str(frame.schema[n]) for n in features} == dict.fromkeys(features, "Int64")
    printed = json.loads(cli("features", "--project", root, "--as-of", AS_OF, "-f", "json").stdout)
    assert all(isinstance(row[n], int) for row in printed for n in features)


def scope(project: segctl.Project) -> str:
    """The WHERE of the events scan, identifiers unquoted for reading."""
    where = cte(project.compile(as_of=AS_OF), "scoped_events").args["where"].this
    return where.sql("duckdb").replace('"', "")


def test_the_pushed_down_window_is_the_widest(make_project: MakeProject) -> None:
    root = make_project(
        segments=segments(
            week="rule: {event: login, within: 7d, count: {gte: 1}}\n",
            month="rule: {event: video_rendered, within: 30d, count: {gte: 1}}\n",
            lapsed="rule: {event: [login, purchase], between: [90d, 30d], count: {gte: 1}}\n",
        )
    )
    assert scope(segctl.Project.load(root)) == (
        "timestamp <= CAST('2026-11-17 00:00:00' AS TIMESTAMP) "
        "AND event IN ('login', 'purchase', 'video_rendered') "
        "AND timestamp > CAST('2026-08-19 00:00:00' AS TIMESTAMP)"
    )


def test_an_absolute_window_bounds_the_scan_from_its_start(make_project: MakeProject) -> None:
    root = make_project(
        segments=segments(
            since="rule: {event: login, from: 2026-01-01, count: {gte: 1}}\n",
            week="rule: {event: login, within: 7d, count: {gte: 1}}\n",
        )
    )
    assert scope(segctl.Project.load(root)).endswith(
        "timestamp > CAST('2025-12-31 23:59:59.999999' AS TIMESTAMP)"
    )


def test_an_unbounded_condition_scans_all_history_of_any_event(
    make_project: MakeProject,
) -> None:
    root = make_project(
        segments=segments(
            week="rule: {event: login, within: 7d, count: {gte: 1}}\n",
            ever='rule: {event: "*", last_seen: {is_set: true}}\n',
        )
    )
    assert scope(segctl.Project.load(root)) == (
        "timestamp <= CAST('2026-11-17 00:00:00' AS TIMESTAMP)"
    )


# ---- injection --------------------------------------------------------------------------------

EVIL = """o'brien"); DROP TABLE persons; -- /* \\' ""x"" */ \\n ;"""
EVIL_COLUMN = 'we"ird; --'


def test_no_segment_content_can_inject_sql(make_project: MakeProject) -> None:
    persons = io.StringIO()
    writer = csv.writer(persons, lineterminator="\n")
    writer.writerows(
        [
            ["person_id", "plan", EVIL_COLUMN, "created_at"],
            ["p1", "pro", "a", "2026-01-01T00:00:00Z"],
            ["p2", EVIL, "b'; --", "2026-01-01T00:00:00Z"],
            ["p3", EVIL + " ", "b'; --", "2026-01-01T00:00:00Z"],
        ]
    )
    rule = {
        "all": [
            {"property": "plan", "eq": EVIL},
            {"property": EVIL_COLUMN, "in": ["b'; --", EVIL]},
            {"not": {"event": EVIL, "where": {"format": {"contains": EVIL}}, "count": {"gte": 1}}},
        ]
    }
    root = make_project(
        persons=persons.getvalue(),
        segments={"evil": yaml.safe_dump({"name": "evil", "rule": rule})},
        features="features: {}\n",
    )
    project = segctl.Project.load(root)
    project.validate()
    for dialect in DIALECTS:
        sql = project.compile("evil", dialect=dialect, as_of=AS_OF)
        (tree,) = sqlglot.parse(sql, read=dialect)  # one statement
        strings = [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string]
        # eq, in, the event name in scan + measure, and contains (lowered by the engine)
        assert strings.count(EVIL) == 5, dialect
        assert EVIL_COLUMN in {i.name for i in tree.find_all(exp.Identifier)}, dialect
    assert len(duckdb.extract_statements(project.compile("evil", as_of=AS_OF))) == 1
    assert project.evaluate(as_of=AS_OF).members("evil")["person_id"].to_list() == ["p2"]
    assert project.engine.driver.rows("SELECT count(*) FROM persons") == [(3,)]


# ---- every dialect ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> segctl.Project:
    return segctl.Project.load(EXAMPLE)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_compiles_the_example_project(example: segctl.Project, dialect: str) -> None:
    names = list(example.definitions.segments)
    assert len(names) >= 15
    plan = example.compile(dialect=dialect, as_of=AS_OF, pretty=False)
    (tree,) = sqlglot.parse(plan, read=dialect)
    assert [s.alias_or_name for s in tree.selects] == ["person_id", *sorted(names)]
    for name in names:
        (tree,) = sqlglot.parse(example.compile(name, dialect=dialect, as_of=AS_OF), read=dialect)
        assert tree.selects[0].alias_or_name == "person_id"


def test_compile_rejects_an_unknown_dialect(example: segctl.Project) -> None:
    with pytest.raises(segctl.UsageError, match="unknown dialect 'oracle'"):
        example.compile("vip", dialect="oracle")


# ---- DuckDB's fast forms (day bitmasks, MAX_BY) at their edges ------------------------------

FAST_FORM_FEATURES = {
    "streak_all": {"event": "login", "measure": "streak"},
    "streak_in_200d": {"event": "login", "within": "200d", "measure": "streak"},
    "days_30d": {"event": "login", "within": "30d", "measure": "distinct_days"},
    "days_125d": {"event": "*", "within": "125d", "measure": "distinct_days"},
    "days_126d": {"event": "*", "within": "126d", "measure": "distinct_days"},  # no bitmask
    "days_between": {"event": "login", "between": ["90d", "7d"], "measure": "distinct_days"},
    "last3_sum": {"event": "purchase", "last": 3, "measure": {"sum": "amount"}},
    "last3_avg": {"event": "purchase", "last": 3, "measure": {"avg": "amount"}},
    "last3_min": {"event": "purchase", "last": 3, "measure": {"min": "amount"}},
    "last3_max": {"event": "purchase", "last": 3, "measure": {"max": "amount"}},
    "last3_count": {"event": "purchase", "last": 3, "measure": "count"},
    "last3_first": {"event": "*", "last": 3, "measure": "first_seen"},
    "last3_days": {"event": "*", "last": 3, "measure": "distinct_days"},
    "last2_share": {
        "event": "purchase",
        "last": 2,
        "measure": {"share": {"where": {"amount": {"gte": 10}}}},
    },
}


def _reference_measure(spec: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A features.yaml entry as the reference evaluator's (kind, node, measure argument)."""
    measure = spec["measure"]
    kind, arg = (measure, {}) if isinstance(measure, str) else next(iter(measure.items()))
    node = {k: v for k, v in spec.items() if k != "measure"}
    return kind, node, ({"of": arg} if kind in ("sum", "avg", "min", "max") else arg)


def _streak_events(person: str, days: int, *, skip: int = 0) -> list[tuple[Any, ...]]:
    """Logins at noon UTC on ``days`` consecutive days, the last ``skip`` days before 16 Nov
    (as_of's day before in UTC, its own day in Los Angeles)."""
    return [
        (person, "login", at("2026-11-16 12:00") - timedelta(days=d - 1), None, None)
        for d in range(skip + 1, days + skip + 1)
    ]


@pytest.mark.parametrize("timezone", ["UTC", "America/Los_Angeles"])
def test_fast_forms_agree_with_the_reference_at_their_edges(
    make_project: MakeProject, timezone: str
) -> None:
    """Streaks around and far beyond the bitmask horizon (the exact fallback), day masks at
    the window limit, and the last-N measures, against the pure-Python reference."""
    from reference import Evaluator

    events: list[tuple[Any, ...]] = []
    for days in (118, 119, 120, 121, 200, 400):
        events += _streak_events(f"s{days}", days)
    events += _streak_events("y150", 150, skip=1)  # ends yesterday
    events += _streak_events("gap", 3) + _streak_events("gap", 160, skip=4)
    for i, amount in enumerate([5.0, None, 30.0, 12.0, 7.0]):  # the last three: 30, 12, 7
        events.append(
            ("buyer", "purchase", at("2026-11-10 12:00") + timedelta(hours=i), amount, None)
        )
    events.append(("buyer", "signup", at("2026-06-01 12:00"), None, None))
    for i, amount in enumerate([50.0, 7.0, None, 1.0]):  # NULL takes one of the last 3 places
        events.append(
            ("nulls", "purchase", at("2026-11-10 12:00") + timedelta(hours=i), amount, None)
        )
    persons = sorted({e[0] for e in events})
    root = make_project(
        config=CONFIG.replace("timezone: UTC", f"timezone: {timezone}"),
        persons="person_id\n" + "\n".join(persons) + "\n",
        events=events,
        features=yaml.safe_dump({"features": FAST_FORM_FEATURES}),
        segments={},
    )
    got = {r["person_id"]: r for r in segctl.Project.load(root).features(as_of=AS_OF).to_dicts()}
    rows = [dict(zip(EVENT_COLUMNS, e, strict=True)) for e in events]
    reference = Evaluator({}, [], rows, [], at("2026-11-17 00:00"), timezone, {}, {})
    for person in persons:
        for feature, spec in FAST_FORM_FEATURES.items():
            kind, node, arg = _reference_measure(spec)
            matching = reference.matching_events(node, {"person_id": person})
            expected = reference.measure(kind, arg, matching)
            value = got[person][feature]
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            if isinstance(expected, float):
                expected = pytest.approx(expected)
            assert value == expected, (person, feature)
    assert got["s400"]["streak_all"] == 400 and got["s400"]["streak_in_200d"] == 200
    assert got["gap"]["streak_all"] == 3
    assert got["buyer"]["last3_sum"] == 49.0 and got["buyer"]["last3_count"] == 3
    assert got["nulls"]["last3_sum"] == 8.0 and got["nulls"]["last3_count"] == 3


def test_last_n_breaks_timestamp_ties_by_event_name_then_value(make_project: MakeProject) -> None:
    moment = at("2026-11-10 12:00")
    events = [("p1", "purchase", moment, amount, None) for amount in (5.0, 9.0, 7.0)]
    events.append(("p1", "refund", moment, 1.0, None))
    features = {
        "top": {"event": "purchase", "last": 1, "measure": {"sum": "amount"}},
        "top_any": {"event": "*", "last": 2, "measure": {"sum": "amount"}},
    }
    root = make_project(
        persons="person_id\np1\n",
        events=events,
        features=yaml.safe_dump({"features": features}),
        segments={},
    )
    (row,) = segctl.Project.load(root).features(as_of=AS_OF).to_dicts()
    assert row["top"] == 9.0  # the largest of the tied purchases
    assert row["top_any"] == 1.0 + 9.0  # "refund" > "purchase", then the largest purchase


def test_under_a_memory_limit_last_n_takes_the_form_that_spills(make_project: MakeProject) -> None:
    """DuckDB cannot spill MAX_BY's lists; under engine.memory_limit, ``last: N`` is a
    ROW_NUMBER over the events (a sort, which spills), and gives the same results, ties
    included."""
    moment = at("2026-11-10 12:00")
    events = [("p1", "purchase", moment, amount, None) for amount in (5.0, 9.0, 7.0)]
    events += [("p1", "refund", moment, 1.0, None), ("p2", "purchase", moment, 20.0, None)]
    events += [("p3", "purchase", moment - timedelta(days=d), 4.0, None) for d in range(5)]
    features = {
        "top": {"event": "purchase", "last": 1, "measure": {"sum": "amount"}},
        "top_any": {"event": "*", "last": 2, "measure": {"sum": "amount"}},
    }
    recent = """\
        name: recent_big
        rule: {event: purchase, last: 2, sum: {of: amount, gte: 9}}
        """
    parts = {
        "persons": "person_id\np1\np2\np3\n",
        "events": events,
        "features": yaml.safe_dump({"features": features}),
        "segments": {"recent_big": recent},
    }
    results = []
    for config in (CONFIG, CONFIG + "engine: {memory_limit: 2GB}\n"):
        project = segctl.Project.load(make_project(config=config, **parts))
        sql = project.compile()
        results.append(
            (
                "ARG_MAX(" in sql,  # MAX_BY, as sqlglot writes it for DuckDB
                "ROW_NUMBER" in sql,
                project.features(as_of=AS_OF).to_dicts(),
                project.evaluate(as_of=AS_OF).members("recent_big")["person_id"].to_list(),
            )
        )
    fast, spillable = results
    assert fast[:2] == (True, False) and spillable[:2] == (False, True)
    assert fast[2:] == spillable[2:]
    assert spillable[3] == ["p1", "p2"]  # 9 + 7 of the tied three, and 20; p3: 4 + 4


def test_running_out_of_memory_is_a_data_error_with_the_fix(
    make_project: MakeProject, cli: Any
) -> None:
    """A memory_limit too small for the plan: exit 4 naming the setting and what to change,
    not an internal error."""
    events = [
        (f"p{i % 500}", "login", at("2026-11-01 12:00") + timedelta(minutes=i), float(i), "mp4")
        for i in range(20_000)
    ]
    persons = "person_id,plan\n" + "\n".join(f"p{i},pro" for i in range(500)) + "\n"
    limited = CONFIG + "engine: {memory_limit: 1MB, threads: 2}\n"
    root = make_project(config=limited, persons=persons, events=events)
    result = cli("evaluate", "--project", root, "--as-of", AS_OF, code=4)
    assert "out of memory under engine.memory_limit" in result.stderr
    assert "set engine.threads: 1" in result.stderr
    # With one thread already, the fix is the limit (it said to set threads: 1 again).
    (root / "segctl.yaml").write_text(limited.replace("threads: 2", "threads: 1"))
    result = cli("evaluate", "--project", root, "--as-of", AS_OF, code=4)
    assert "set engine.threads" not in result.stderr
    assert "with one thread, the plan still holds" in result.stderr
    assert "raise engine.memory_limit in segctl.yaml" in result.stderr


def test_validate_says_the_definitions_problems_with_the_datas(make_project: MakeProject) -> None:
    """The events file missing, validate still checks the definitions, each column taken as
    its comparators read it: a catalogue of every condition kind has no problem made up,
    and a broken segment is said beside the data error (exit 4 stays: the data's)."""
    root = make_project(
        segments={name: text for name, (text, _) in GOLDEN_SEGMENTS.items()},
        features=FEATURES + GOLDEN_CUSTOM_EVENTS,
    )
    (root / "data" / "events.parquet").unlink()
    with pytest.raises(DataError) as missing:
        segctl.Project.load(root).validate()
    [line] = str(missing.value).splitlines()
    assert line.startswith("data.events: file not found: data/events.parquet")
    (root / "segments" / "typo.yaml").write_text(
        "name: typo\nrule: {event: login, within: 7d, count: {gtee: 1}}\nfoo: 1\n"
    )
    with pytest.raises(DataError) as both:
        segctl.Project.load(root).validate()
    assert str(both.value).splitlines() == [
        line,
        "segments/typo.yaml:2:42: unknown operator 'gtee' (did you mean 'gte'?)",
        "segments/typo.yaml:3:1: unknown key 'foo' in a segment file (valid keys: name, "
        "description, tags, rule, template, params, exclude, on_enter, on_exit, audiences)",
        "3 problems found.",
    ]
