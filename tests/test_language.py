"""SPEC 2.4b, hand-checked: at_least, calendar windows across DST changes, active_periods,
custom events, max_span, regex inline flags and the stopped/restarted templates.

Each case states the members worked out by hand from the SPEC's sentences, and checks both the
reference evaluator (tests/reference.py) and segctl (a project evaluated through the public API)
against them; the differential test then compares the two on generated data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import Cli
from reference import Row, evaluate

import segctl
from segctl.compiler.calendar import day_start, period_windows, resolve
from segctl.definitions.model import EventMatch, EventMeasure, Measure, Periods, Window
from segctl.errors import DefinitionError

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
EVENTS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("url", pa.string()),
    ]
)
PERSONS = ["p1", "p2", "p3", "p4", "p5"]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ev(person: str, ts: datetime, event: str = "a", **properties: Any) -> Row:
    return {"person_id": person, "event": event, "timestamp": ts, "amount": None, "url": None,
            **properties}  # fmt: skip


def write_project(
    root: Path,
    rules: dict[str, Any],
    events: list[Row],
    timezone: str,
    features: dict[str, Any] | None = None,
    persons: list[Row] | None = None,
) -> Path:
    (root / "segments").mkdir(parents=True)
    (root / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(events, EVENTS_SCHEMA), root / "data/events.parquet")
    people = persons or [{"person_id": p, "email": f"{p}@example.com"} for p in PERSONS]
    pq.write_table(pa.Table.from_pylist(people), root / "data/persons.parquet")
    for name, rule in rules.items():
        text = yaml.safe_dump({"name": name, **_rule(rule)}, sort_keys=False)
        (root / "segments" / f"{name}.yaml").write_text(text)
    config: dict[str, Any] = {
        "data": {"events": "data/events.parquet", "persons": "data/persons.parquet"},
        "segments": "segments/",
        "timezone": timezone,
    }
    if features:
        (root / "features.yaml").write_text(yaml.safe_dump(features, sort_keys=False))
        config["features"] = "features.yaml"
    (root / "segctl.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _rule(rule: Any) -> dict[str, Any]:
    return rule if isinstance(rule, dict) and "template" in rule else {"rule": rule}


def members(
    tmp_path: Path,
    rules: dict[str, Any],
    events: list[Row],
    as_of: datetime,
    timezone: str = "UTC",
    features: dict[str, Any] | None = None,
    persons: list[Row] | None = None,
) -> dict[str, set[str]]:
    """segctl's members, checked equal to the reference's (for rules it evaluates)."""
    root = write_project(tmp_path / "project", rules, events, timezone, features, persons)
    project = segctl.Project.load(root)
    result = project.evaluate(as_of=as_of.isoformat())
    found = {name: set(result.members(name)["person_id"].to_list()) for name in rules}
    # The reference does not expand templates: those are checked against the hand values only.
    plain = {n: {"name": n, "rule": r} for n, r in rules.items() if "template" not in json.dumps(r)}
    if plain:
        people = persons or [{"person_id": p} for p in PERSONS]
        expected = evaluate(
            plain, people, events, [], as_of, timezone,
            (features or {}).get("features"), None, (features or {}).get("custom_events"),
        )  # fmt: skip
        for name in plain:
            assert found[name] == expected[name], (name, found[name], expected[name])
    return found


# ---- at_least --------------------------------------------------------------------------------


def test_at_least_counts_the_conditions_that_hold(tmp_path: Path) -> None:
    as_of = utc(2026, 3, 15, 12)
    events = [
        ev("p1", as_of - DAY, "a"), ev("p1", as_of - DAY, "b"), ev("p1", as_of - DAY, "c"),
        ev("p2", as_of - DAY, "a"), ev("p2", as_of - DAY, "c"),
        ev("p3", as_of - DAY, "b"),
    ]  # fmt: skip
    of = [{"event": e, "count": {"gte": 1}} for e in "abc"]
    found = members(
        tmp_path,
        {
            "two": {"at_least": 2, "of": of},
            "three": {"at_least": 3, "of": of},
            "one": {"at_least": 1, "of": of},
            # "did not perform" under at_least includes p4 and p5, who have no events at all
            "two_absent": {"at_least": 2, "of": [{"event": e, "count": {"eq": 0}} for e in "abc"]},
        },
        events,
        as_of,
    )
    assert found == {
        "two": {"p1", "p2"},
        "three": {"p1"},
        "one": {"p1", "p2", "p3"},
        "two_absent": {"p3", "p4", "p5"},
    }


# ---- calendar windows --------------------------------------------------------------------------

# Berlin moves to summer time at 2026-03-29 02:00 (CET +01:00 -> CEST +02:00).
BERLIN_AS_OF = utc(2026, 3, 30, 12)  # 14:00 on Monday 30 March in Berlin


def test_calendar_within_starts_at_local_midnight_across_spring_forward(tmp_path: Path) -> None:
    # within: 7d -> start of (30 March - 7 days) = 23 March 00:00 CET = 22 March 23:00 UTC.
    start = utc(2026, 3, 22, 23)
    events = [
        ev("p1", start),  # the lower bound is included
        ev("p2", start - SECOND),  # 23:59:59 on 22 March, local: outside
        ev("p3", BERLIN_AS_OF),  # as_of itself: inside
        ev("p4", BERLIN_AS_OF + SECOND),  # after as_of: ignored
        ev("p5", utc(2026, 3, 23, 6)),  # inside the calendar window, outside the rolling one
    ]
    found = members(
        tmp_path,
        {
            "calendar": {"event": "a", "within": "7d", "calendar": True, "count": {"gte": 1}},
            "rolling": {"event": "a", "within": "7d", "count": {"gte": 1}},
        },
        events,
        BERLIN_AS_OF,
        "Europe/Berlin",
    )
    assert found == {"calendar": {"p1", "p3", "p5"}, "rolling": {"p3"}}


def test_calendar_between_is_whole_local_days(tmp_path: Path) -> None:
    # between: [7d, 1d] -> 23 March 00:00 CET <= ts < 29 March 00:00 CET (28 March 23:00 UTC).
    events = [
        ev("p1", utc(2026, 3, 22, 23)),  # first instant: inside
        ev("p2", utc(2026, 3, 28, 23)),  # 00:00 on 29 March, local: outside (upper excluded)
        ev("p3", utc(2026, 3, 28, 22, 59, 59)),  # last second of 28 March: inside
        ev("p4", utc(2026, 3, 29, 12)),  # yesterday: outside
    ]
    rule = {"event": "a", "between": ["7d", "1d"], "calendar": True, "count": {"gte": 1}}
    found = members(tmp_path, {"b": rule}, events, BERLIN_AS_OF, "Europe/Berlin")
    assert found == {"b": {"p1", "p3"}}


def test_a_calendar_week_lasts_167_or_169_hours_across_dst() -> None:
    spring = resolve(Window(between=(7 * DAY, 0 * DAY), calendar=True), BERLIN_AS_OF.replace(
        tzinfo=None), "Europe/Berlin")  # fmt: skip
    assert spring.start is not None and spring.end is not None
    assert spring.end - spring.start == timedelta(hours=167)
    # New York moves back to winter time on 2026-11-01: 27 Oct 00:00 EDT to 3 Nov 00:00 EST.
    autumn = resolve(
        Window(between=(7 * DAY, 0 * DAY), calendar=True), datetime(2026, 11, 3, 12),
        "America/New_York",
    )  # fmt: skip
    assert (autumn.start, autumn.end) == (datetime(2026, 10, 27, 4), datetime(2026, 11, 3, 5))
    assert autumn.end - autumn.start == timedelta(hours=169)  # type: ignore[operator]


def test_day_start_where_midnight_does_not_exist() -> None:
    # Santiago skips 00:00-01:00 on 2026-09-06: the day begins at 01:00 -03:00 = 04:00 UTC.
    assert day_start(datetime(2026, 9, 6).date(), "America/Santiago") == datetime(2026, 9, 6, 4)


def test_calendar_within_0d_is_today_so_far(tmp_path: Path) -> None:
    as_of = utc(2026, 11, 3, 4, 30)  # 23:30 on 2 November in New York (EST, -05:00)
    events = [
        ev("p1", utc(2026, 11, 2, 5)),  # 00:00 on 2 November, local
        ev("p2", utc(2026, 11, 2, 4, 59, 59)),  # 23:59:59 on 1 November
        ev("p3", utc(2026, 11, 3, 4, 29)),
    ]
    rule = {"event": "a", "within": "0d", "calendar": True, "count": {"gte": 1}}
    assert members(tmp_path, {"t": rule}, events, as_of, "America/New_York") == {"t": {"p1", "p3"}}


# ---- active_periods ----------------------------------------------------------------------------


def test_active_periods_rolling(tmp_path: Path) -> None:
    as_of = utc(2026, 3, 15, 12)
    # every: 7d, of_last: 3: periods (as_of-7d, as_of], (as_of-14d, as_of-7d], (as_of-21d, ..].
    events = [
        # p1: two events in period 0, one in period 1, two in period 2
        ev("p1", as_of), ev("p1", as_of - 6 * DAY),
        ev("p1", as_of - 7 * DAY),  # exactly as_of - 7d: period 1 (upper bound included)
        ev("p1", as_of - 15 * DAY), ev("p1", as_of - 20 * DAY),
        # p2: two in period 0, two exactly at as_of - 21d: outside every period
        ev("p2", as_of - DAY), ev("p2", as_of - 2 * DAY),
        ev("p2", as_of - 21 * DAY), ev("p2", as_of - 21 * DAY),
    ]  # fmt: skip
    spec = {"every": "7d", "of_last": 3}
    found = members(
        tmp_path,
        {
            "any2": {"event": "a", "active_periods": {**spec, "gte": 2}},
            "all3": {"event": "a", "active_periods": {**spec, "gte": 3}},
            "twice2": {"event": "a", "active_periods": {**spec, "min_count": 2, "gte": 2}},
            "none": {"event": "a", "active_periods": {**spec, "eq": 0}},
            # offset 1d: periods end at as_of - 1d; p1's event at as_of leaves period 0
            "offset": {"event": "a", "active_periods": {**spec, "offset": "1d", "min_count": 2,
                                                        "gte": 1}},
        },
        events,
        as_of,
    )  # fmt: skip
    assert found["any2"] == {"p1"}
    assert found["all3"] == {"p1"}
    assert found["twice2"] == {"p1"}  # periods 0 and 2 hold two events each
    assert found["none"] == {"p3", "p4", "p5"}  # persons with no events have 0 active periods
    # offset 1d: period 0 is (as_of-8d, as_of-1d]: p1's as_of-6d and as_of-7d, p2's as_of-1d
    # (the upper bound is included) and as_of-2d.
    assert found["offset"] == {"p1", "p2"}


def test_active_periods_calendar_weeks_with_offset_across_dst(tmp_path: Path) -> None:
    # Berlin, as_of Monday 30 March 14:00. every: 7d, offset: 1d (periods end at the start of
    # today): period 0 = 23..29 March, period 1 = 16..22 March.
    events = [
        ev("p1", utc(2026, 3, 22, 23)),  # 23 March 00:00 CET: period 0
        ev("p1", utc(2026, 3, 29, 21, 59, 59)),  # 29 March 23:59:59 CEST: period 0
        ev("p1", utc(2026, 3, 15, 23)),  # 16 March 00:00 CET: period 1
        ev("p2", utc(2026, 3, 29, 22)),  # 30 March 00:00 CEST: today, outside every period
        ev("p2", utc(2026, 3, 22, 22, 59, 59)),  # 22 March 23:59:59 CET: period 1
        ev("p3", utc(2026, 3, 15, 22, 59, 59)),  # 15 March: before period 1
    ]
    spec = {"every": "7d", "of_last": 2, "offset": "1d"}
    found = members(
        tmp_path,
        {
            "both": {"event": "a", "calendar": True, "active_periods": {**spec, "gte": 2}},
            "one": {"event": "a", "calendar": True, "active_periods": {**spec, "eq": 1}},
            "twice": {"event": "a", "calendar": True,
                      "active_periods": {**spec, "min_count": 2, "gte": 1}},
            # without offset, period 0 is 24..30 March (up to as_of): p2's event today counts
            "today": {"event": "a", "calendar": True,
                      "active_periods": {"every": "7d", "of_last": 1, "gte": 1}},
        },
        events,
        BERLIN_AS_OF,
        "Europe/Berlin",
    )  # fmt: skip
    assert found == {"both": {"p1"}, "one": {"p2"}, "twice": {"p1"}, "today": {"p1", "p2"}}


def test_period_windows_tile_the_days() -> None:
    measure = EventMeasure(
        EventMatch(("a",)),
        Window(calendar=True),
        Measure("active_periods", periods=Periods(7 * DAY, 3, 1, 1 * DAY)),
    )
    bounds = [resolve(w, datetime(2026, 3, 30, 12), "Europe/Berlin") for w in
              period_windows(measure)]  # fmt: skip
    # Each period starts where the next (older) one ends: no gap, no overlap.
    assert [b.end for b in bounds[1:]] == [b.start for b in bounds[:-1]]
    assert bounds[0].end == datetime(2026, 3, 29, 22)  # 30 March 00:00 CEST


# ---- custom events and max_span ---------------------------------------------------------------

CUSTOM = {
    "custom_events": {"pricing": {"event": "view", "where": {"url": {"contains": "/pricing"}}}}
}


def test_custom_event_where_is_anded_with_the_definition(tmp_path: Path) -> None:
    as_of = utc(2026, 3, 15, 12)
    events = [
        ev("p1", as_of - DAY, "view", url="/pricing", amount=5.0),
        ev("p2", as_of - DAY, "view", url="/pricing", amount=1.0),
        ev("p3", as_of - DAY, "view", url="/home", amount=5.0),
        ev("p4", as_of - DAY, "click", url="/pricing", amount=5.0),
    ]
    found = members(
        tmp_path,
        {
            "viewed": {"custom_event": "pricing", "within": "7d", "count": {"gte": 1}},
            "big": {"custom_event": "pricing", "where": {"amount": {"gte": 2}},
                    "count": {"gte": 1}},
            "then": {"sequence": {"steps": [{"custom_event": "pricing"}, {"event": "buy"}]}},
        },
        events,
        as_of,
        features=CUSTOM,  # a features.yaml with only custom events
    )  # fmt: skip
    assert found == {"viewed": {"p1", "p2"}, "big": {"p1"}, "then": set()}


def test_custom_event_in_a_feature(tmp_path: Path) -> None:
    as_of = utc(2026, 3, 15, 12)
    events = [ev("p1", as_of - DAY, "view", url="/pricing"), ev("p2", as_of, "view", url="/x")]
    features = {**CUSTOM, "features": {"views": {"custom_event": "pricing", "measure": "count"}}}
    found = members(tmp_path, {"f": {"feature": "views", "gte": 1}}, events, as_of,
                    features=features)  # fmt: skip
    assert found == {"f": {"p1"}}


def test_max_span_bounds_first_to_last_step(tmp_path: Path) -> None:
    as_of = utc(2026, 3, 15, 12)
    t0 = as_of - 20 * DAY
    events = [
        # p1: a, b, c within 7d of the first
        ev("p1", t0, "a"), ev("p1", t0 + 3 * DAY, "b"), ev("p1", t0 + 7 * DAY, "c"),
        # p2: each gap is 4d (max_gap 5d holds) but the span is 8d
        ev("p2", t0, "a"), ev("p2", t0 + 4 * DAY, "b"), ev("p2", t0 + 8 * DAY, "c"),
        # p3: an early a spans too long, a later a starts a chain that fits
        ev("p3", t0, "a"), ev("p3", t0 + 5 * DAY, "a"), ev("p3", t0 + 6 * DAY, "b"),
        ev("p3", t0 + 12 * DAY, "c"),
    ]  # fmt: skip
    steps = [{"event": "a"}, {"event": "b"}, {"event": "c"}]
    found = members(
        tmp_path,
        {
            "span": {"sequence": {"steps": steps, "max_span": "7d"}},
            "gap_span": {"sequence": {"steps": steps, "max_gap": "5d", "max_span": "7d"}},
            "gap": {"sequence": {"steps": steps, "max_gap": "5d"}},
        },
        events,
        as_of,
    )
    assert found == {"span": {"p1", "p3"}, "gap_span": {"p1"}, "gap": {"p1", "p2"}}


# ---- regex inline flags ------------------------------------------------------------------------


def test_regex_inline_flags(tmp_path: Path) -> None:
    persons: list[Row] = [
        {"person_id": "p1", "email": "Ann@GMAIL.com"},
        {"person_id": "p2", "email": "bob@gmail.com"},
        {"person_id": "p3", "email": "line one\nline two"},
        {"person_id": "p4", "email": None},
        {"person_id": "p5", "email": ""},
    ]
    rules = {
        "plain": {"property": "email", "regex": "@gmail\\.com$"},
        "any_case": {"property": "email", "regex": "(?i)@gmail\\.com$"},
        "dot_newline": {"property": "email", "regex": "(?s)one.line"},
        "no_dot_newline": {"property": "email", "regex": "one.line"},
        "lines": {"property": "email", "regex": "(?m)^line two$"},
        "no_lines": {"property": "email", "regex": "^line two$"},
        "both": {"property": "email", "regex": "(?is)ONE.LINE"},
    }
    found = members(tmp_path, rules, [], utc(2026, 3, 15), persons=persons)
    assert found == {
        "plain": {"p2"},
        "any_case": {"p1", "p2"},
        "dot_newline": {"p3"},
        "no_dot_newline": set(),
        "lines": {"p3"},
        "no_lines": set(),
        "both": {"p3"},
    }


# ---- templates ---------------------------------------------------------------------------------


def test_stopped_and_restarted(tmp_path: Path) -> None:
    as_of = utc(2026, 3, 15, 12)
    events = [
        ev("p1", as_of - 10 * DAY),  # stopped: active 10d ago, not in the last 7d
        ev("p2", as_of - DAY),  # first-timer: not restarted (nothing before the gap)
        ev("p3", as_of - DAY), ev("p3", as_of - 40 * DAY),  # restarted: gap 7d..37d empty
        ev("p4", as_of - DAY), ev("p4", as_of - 20 * DAY), ev("p4", as_of - 40 * DAY),
        ev("p5", as_of - 37 * DAY),  # exactly as_of - 37d: "at or before" -> stopped? no (30d)
    ]  # fmt: skip
    found = members(
        tmp_path,
        {
            "stopped": {"template": "stopped", "params": {"event": "a"}},
            "restarted": {"template": "restarted", "params": {"event": "a"}},
            # p5 with recent=1d, gap=36d: at or before as_of - 37d counts; nothing recent
            "restarted_p5": {"template": "restarted",
                             "params": {"event": "a", "recent": "1d", "gap": "36d"}},
            # gap: 0d: recent, and at some time before the recent days (p4 too)
            "restarted_0": {"template": "restarted", "params": {"event": "a", "gap": "0d"}},
            "inside": {"all": [{"template": "stopped", "params": {"event": "a"}},
                               {"property": "email", "is_set": True}]},
        },
        events,
        as_of,
    )  # fmt: skip
    assert found == {
        "stopped": {"p1"},
        "restarted": {"p3"},
        "restarted_p5": set(),
        "restarted_0": {"p3", "p4"},
        "inside": {"p1"},
    }


def test_restarted_with_calendar_days(tmp_path: Path) -> None:
    # Berlin, today 30 March: recent 7d = 23 March 00:00 CET .. as_of; gap 30d = 21 Feb ..
    # 22 March; before the gap: up to 20 February 23:59:59 local.
    events = [
        ev("p1", utc(2026, 3, 22, 23)), ev("p1", utc(2026, 2, 20, 22, 59, 59)),  # restarted
        ev("p2", utc(2026, 3, 22, 23)), ev("p2", utc(2026, 2, 20, 23)),  # 21 Feb: in the gap
        ev("p3", utc(2026, 3, 22, 22, 59, 59)), ev("p3", utc(2026, 1, 1)),  # not recent
        # "at or before" has no lower bound: a row of 1920 (the window reached 100 years)
        ev("p4", utc(2026, 3, 29)), ev("p4", utc(1920, 5, 1)),
        # gap: 0d (a valid duration): recent, and before the recent days, with no gap between
        ev("p5", utc(2026, 3, 29)), ev("p5", utc(2026, 3, 22, 22, 59, 59)),
    ]  # fmt: skip
    params = {"event": "a", "calendar": True}
    found = members(
        tmp_path,
        {"r": {"template": "restarted", "params": params},
         "s": {"template": "stopped", "params": params},
         "r0": {"template": "restarted", "params": {**params, "gap": "0d"}}},
        events,
        BERLIN_AS_OF,
        "Europe/Berlin",
    )  # fmt: skip
    assert found == {"r": {"p1", "p4"}, "s": {"p3"}, "r0": {"p1", "p2", "p4", "p5"}}


def test_templates_lists_stopped_and_restarted(cli: Cli) -> None:
    listed = json.loads(cli("templates", "--format", "json").stdout)
    text = json.dumps(listed)
    assert "stopped(event, recent=7d, before=30d, calendar=false)" in text
    assert "restarted(event, recent=7d, gap=30d, calendar=false)" in text
    shown = cli("templates", "show", "stopped", "--param", "event=login").stdout
    rule = yaml.safe_load(shown)["rule"]
    assert rule == {
        "all": [
            {"event": "login", "between": ["30d", "7d"], "count": {"gte": 1}},
            {"event": "login", "within": "7d", "count": {"eq": 0}},
        ]
    }


# ---- through the product -----------------------------------------------------------------------

SEGMENTS = {
    "regulars": {"event": "a", "calendar": True,
                 "active_periods": {"every": "7d", "of_last": 2, "offset": "1d", "gte": 2}},
    "two_of": {"at_least": 2, "of": [
        {"custom_event": "pricing", "within": "7d", "calendar": True, "count": {"gte": 1}},
        {"event": "a", "between": ["30d", "7d"], "calendar": True, "count": {"gte": 1}},
        {"property": "email", "regex": "(?i)@EXAMPLE\\.com$"}]},
    "quick": {"sequence": {"steps": [{"event": "a"}, {"custom_event": "pricing"}],
                           "max_span": "2d"}},
}  # fmt: skip


def product_project(tmp_path: Path) -> Path:
    events = [
        ev("p1", utc(2026, 3, 22, 23)), ev("p1", utc(2026, 3, 15, 23)),
        ev("p1", utc(2026, 3, 23, 9), "view", url="/pricing"),
        ev("p2", utc(2026, 3, 29, 12), "view", url="/pricing"),
    ]  # fmt: skip
    return write_project(tmp_path / "p", SEGMENTS, events, "Europe/Berlin", CUSTOM)


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "postgres", "bigquery", "snowflake",
                                     "trino"])  # fmt: skip
def test_compiles_for_every_dialect(tmp_path: Path, dialect: str) -> None:
    import sqlglot

    project = segctl.Project.load(product_project(tmp_path))
    sql = project.compile(list(SEGMENTS), dialect=dialect, as_of="2026-03-30T12:00:00Z")
    sqlglot.parse_one(sql, read=dialect)  # it reads back in its own dialect
    # calendar bounds are local midnights as UTC literals: 23 March 00:00 CET
    assert "2026-03-22 23:00:00" in sql
    # active_periods and calendar windows are measures of the per-person aggregate, not other
    # passes over the events: the only CTEs are the usual ones.
    ctes = {c.alias for c in sqlglot.parse_one(sql, read=dialect).find_all(sqlglot.exp.CTE)}
    usual = ("persons_base", "scoped_events", "event_measures", "q__", "base", "level_")
    assert all(c.startswith(usual) for c in ctes), ctes
    if dialect == "snowflake":
        # inline flags move to the parameters; REGEXP_INSTR searches (REGEXP_LIKE anchors)
        assert "'@EXAMPLE\\\\.com$', 1, 1, 0, 'i') > 0" in sql
    else:
        assert "(?i)@EXAMPLE" in sql


def test_postgres_refuses_multiline_flag(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"m": {"property": "email", "regex": "(?m)^a"}}, [],
                         "UTC")  # fmt: skip
    project = segctl.Project.load(root)
    with pytest.raises(DefinitionError, match="uses \\(\\?m\\), which PostgreSQL reads"):
        project.compile("m", dialect="postgres")
    assert "(?m)^a" in project.compile("m", dialect="trino")


def test_explain_shows_each_period_and_the_calendar_bounds(tmp_path: Path) -> None:
    project = segctl.Project.load(product_project(tmp_path))
    text = project.explain("regulars", "p1", as_of="2026-03-30T12:00:00Z").render()
    assert "A MEMBER" in text
    assert "period 1 (2026-03-23T00:00:00+01:00 to 2026-03-30T00:00:00+02:00), events: 1" in text
    assert "period 2 (2026-03-16T00:00:00+01:00 to 2026-03-23T00:00:00+01:00), events: 1" in text
    two_of = project.explain("two_of", "p2", as_of="2026-03-30T12:00:00Z").render()
    assert "at least 2 of, conditions holding: 2, needs >= 2 -> TRUE" in two_of
    assert "(2026-03-23T00:00:00+01:00 to as_of)" in two_of  # the calendar bounds
    assert "(2026-02-28T00:00:00+01:00 to before 2026-03-23T00:00:00+01:00)" in two_of


def test_evaluate_members_of_the_product_project(tmp_path: Path) -> None:
    project = segctl.Project.load(product_project(tmp_path))
    result = project.evaluate(as_of="2026-03-30T12:00:00Z")
    got = {n: set(result.members(n)["person_id"].to_list()) for n in SEGMENTS}
    # p1: events on 23 March (period 0) and 16 March (period 1); p2: pricing yesterday and
    # an example.com email; everyone else only the email.
    assert got == {"regulars": {"p1"}, "two_of": {"p1", "p2"}, "quick": {"p1"}}


def test_features_command_with_custom_events_and_active_periods(tmp_path: Path, cli: Cli) -> None:
    root = product_project(tmp_path)
    features = {
        **CUSTOM,
        "features": {
            "pricing_views": {"custom_event": "pricing", "measure": "count"},
            "active_days": {"event": "*", "measure": {"active_periods": {"every": "1d",
                                                                         "of_last": 15}}},
        },
    }  # fmt: skip
    (root / "features.yaml").write_text(yaml.safe_dump(features))
    out = cli("features", "--project", root, "--as-of", "2026-03-30T12:00:00Z", "--format",
              "json").stdout  # fmt: skip
    rows = {r["person_id"]: r for r in json.loads(out)}
    assert rows["p1"]["pricing_views"] == 1 and rows["p2"]["pricing_views"] == 1
    # 1-day rolling periods back to as_of - 15d: p1's events fall in periods 7 (two) and 14
    assert rows["p1"]["active_days"] == 2 and rows["p2"]["active_days"] == 1
    assert rows["p3"]["active_days"] == 0


def test_validate_accepts_a_features_file_with_only_custom_events(tmp_path: Path, cli: Cli) -> None:
    root = product_project(tmp_path)
    assert "valid" in cli("validate", "--project", root).stdout


# ---- docs/coming-from.md -----------------------------------------------------------------------


def test_the_coming_from_example_evaluates(tmp_path: Path) -> None:
    """The PostHog example of docs/coming-from.md, on data where p1 fits and p2 nearly does,
    its properties as PostHog exports them (JSON text in a `properties` column)."""
    from test_docs import DOCS, fenced

    (custom_block, segment_block) = [yaml.safe_load(t) for _, t in
                                     fenced(DOCS / "coming-from.md", "yaml")]  # fmt: skip
    as_of = utc(2026, 3, 30, 12)
    schema = pa.schema([("person_id", pa.string()), ("event", pa.string()),
                        ("timestamp", pa.timestamp("us", tz="UTC")),
                        ("properties", pa.string())])  # fmt: skip

    def row(person: str, ts: datetime, event: str, url: str | None = None) -> Row:
        properties = json.dumps({"$current_url": url} if url else {"$os": "Mac OS X"})
        return {"person_id": person, "event": event, "timestamp": ts, "properties": properties}

    weeks = [as_of - timedelta(days=d) for d in (3, 10, 17)]
    events = [
        *(row("p1", t, "login") for t in weeks),
        row("p1", as_of - DAY, "$pageview", "https://x.io/pricing"),
        row("p1", as_of - 2 * DAY, "$pageview", "https://x.io/pricing?plan=pro"),
        *(row("p2", t, "login") for t in weeks[:2]),  # two weeks only
        row("p2", as_of - DAY, "$pageview", "https://x.io/pricing"),
        row("p2", as_of - DAY, "$pageview", "https://x.io/pricing"),
    ]
    root = tmp_path / "p"
    (root / "segments").mkdir(parents=True)
    (root / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(events, schema), root / "data/events.parquet")
    (root / "features.yaml").write_text(yaml.safe_dump(custom_block))
    (root / "segments/s.yaml").write_text(yaml.safe_dump(segment_block))
    pq.write_table(pa.Table.from_pylist([{"person_id": "p1"}, {"person_id": "p2"}]),
                   root / "data/persons.parquet")  # fmt: skip
    (root / "segctl.yaml").write_text(
        "data: {events: data/events.parquet, persons: data/persons.parquet}\n"
        "segments: segments/\nfeatures: features.yaml\n"
    )
    result = segctl.Project.load(root).evaluate(as_of=as_of.isoformat())
    assert result.members("pricing_regulars")["person_id"].to_list() == ["p1"]

    # Named as the tool shows it, the property is said to be inside `properties`, once: the
    # custom event's uses are not also "unknown custom event" (it is defined).
    features = (root / "features.yaml").read_text()
    (root / "features.yaml").write_text(features.replace("properties.$current_url", "$current_url"))
    with pytest.raises(DefinitionError) as found:
        segctl.Project.load(root).validate()
    assert [p.message for p in found.value.problems] == [
        "unknown event property '$current_url' (did you mean 'properties.$current_url'? the "
        "export keeps it inside that column)"
    ]
