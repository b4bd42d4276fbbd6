"""The segment language's parser pieces: durations, timestamps, literals, comparators,
conditions, templates, positions and the loader (SPEC section 2)."""

from __future__ import annotations

import re
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from test_differential import Case, cases

import segctl
from segctl.definitions.conditions import ConditionParser
from segctl.definitions.durations import format_duration, parse_duration
from segctl.definitions.loader import expand_template, load_segments
from segctl.definitions.model import (
    All,
    ColumnType,
    Condition,
    EventCondition,
    Not,
    PropertyCondition,
    Schema,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
    Window,
)
from segctl.definitions.source import Pos, Problems, YMap, did_you_mean, parse_yaml
from segctl.definitions.templates import TEMPLATES
from segctl.definitions.values import coerce
from segctl.errors import DefinitionError, Problem, ValueProblem
from segctl.project.context import load_definitions
from segctl.timeutil import parse_timestamp

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
S, N, B, T = ColumnType.STRING, ColumnType.NUMBER, ColumnType.BOOLEAN, ColumnType.TIMESTAMP
SCHEMA: Schema = {
    "persons": {"person_id": S, "plan": S, "email": S, "age": N, "opted_in": B, "created_at": T},
    "events": {"person_id": S, "event": S, "timestamp": T, "amount": N, "format": S},
    "subscriptions": {"person_id": S, "status": S, "mrr": N, "updated_at": T},
}
DAY = timedelta(days=1)


# ---- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", DAY),
        ("7d", 7 * DAY),
        ("2w", 14 * DAY),
        ("1y", 365 * DAY),
        (" 30d ", 30 * DAY),
        ("0d", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("value", ["7days", "1.5d", "-1d", "d", "7D", "7 m", "", 7, None, [7]])
def test_parse_duration_rejects(value: Any) -> None:
    with pytest.raises(ValueProblem, match=r"expected a duration like 30d \(units h, d, w, y\)"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("delta", "text"),
    [(7 * DAY, "1w"), (30 * DAY, "30d"), (365 * DAY, "1y"), (timedelta(hours=36), "36h")],
)
def test_format_duration_is_the_shortest_spelling(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta


# ---- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tz", "expected"),
    [
        ("2026-01-01T12:00:00Z", UTC_ZONE, datetime(2026, 1, 1, 12)),
        ("2026-01-01T12:00:00+02:00", UTC_ZONE, datetime(2026, 1, 1, 10)),
        ("2026-01-01T12:00:00-05:30", BERLIN, datetime(2026, 1, 1, 17, 30)),
        ("2026-01-01T12:00:00", BERLIN, datetime(2026, 1, 1, 12)),  # naive: UTC
        ("2026-01-01 12:00", UTC_ZONE, datetime(2026, 1, 1, 12)),
        ("2026-01-01", UTC_ZONE, datetime(2026, 1, 1)),
        ("2026-01-01", BERLIN, datetime(2025, 12, 31, 23)),  # a date: midnight where days begin
        ("2026-07-01", BERLIN, datetime(2026, 6, 30, 22)),  # summer time
        (date(2026, 1, 1), BERLIN, datetime(2025, 12, 31, 23)),  # YAML reads dates itself
        (datetime(2026, 1, 1, 12), BERLIN, datetime(2026, 1, 1, 12)),
        (datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=1))), UTC_ZONE,
         datetime(2026, 1, 1, 11)),
    ],
)  # fmt: skip
def test_parse_timestamp_gives_naive_utc(value: Any, tz: ZoneInfo, expected: datetime) -> None:
    parsed = parse_timestamp(value, tz)
    assert parsed == expected
    assert parsed.tzinfo is None


@pytest.mark.parametrize("value", ["someday", "2026-13-01", "01/02/2026", 20260101, None])
def test_parse_timestamp_rejects(value: Any) -> None:
    with pytest.raises(ValueProblem, match="expected a date or timestamp like 2026-01-01"):
        parse_timestamp(value, UTC_ZONE)


# ---- literals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "column_type", "expected"),
    [
        (10, N, 10),
        (2.5, N, 2.5),
        ("pro", S, "pro"),
        (42, S, "42"),
        (date(2026, 1, 1), S, "2026-01-01"),
        (True, B, True),
        ("False", B, False),
        ("2026-01-01T00:00:00+01:00", T, datetime(2025, 12, 31, 23)),
    ],
)
def test_coerce(value: Any, column_type: ColumnType, expected: Any) -> None:
    assert coerce(value, column_type, UTC_ZONE) == expected


@pytest.mark.parametrize(
    ("value", "column_type", "message"),
    [
        ("10", N, "expected a number, got the text '10'"),
        (True, N, "expected a number, got the boolean true"),
        ("yes", B, "expected true or false, got the text 'yes'"),
        (True, S, "expected text, got the boolean true (quote it: 'true')"),
        (5, T, "expected a date or timestamp, got int 5"),
        (None, S, "a value cannot be null here (use is_set: false"),
        ([1], N, "expected a single value, got a list"),
    ],
)
def test_coerce_rejects(value: Any, column_type: ColumnType, message: str) -> None:
    with pytest.raises(ValueProblem, match=re.escape(message)):
        coerce(value, column_type, UTC_ZONE)


# ---- conditions -------------------------------------------------------------------------------


def parse(text: str, **parser_options: Any) -> tuple[Condition | None, list[str]]:
    """A condition from YAML text, and the problems found (as ``line:col: message``)."""
    problems = Problems()
    node = parse_yaml(textwrap.dedent(text), "t.yaml", problems)
    parser = ConditionParser(SCHEMA, UTC_ZONE, Path("."), problems, **parser_options)
    condition = parser.condition(node, Pos("t.yaml"))
    return condition, [f"{p.line}:{p.col}: {p.message}" for p in problems.items]


def parse_ok(text: str, **parser_options: Any) -> Condition:
    condition, problems = parse(text, **parser_options)
    assert problems == []
    assert condition is not None
    return condition


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("{property: age, gte: 18}", 18),
        ("{property: age, between: [1, 10]}", (1, 10)),
        ("{property: plan, in: [pro, premium]}", ("pro", "premium")),
        ("{property: plan, lt: m}", "m"),  # strings are ordered too
        ("{property: plan, regex: '^p(ro|remium)$'}", "^p(ro|remium)$"),
        ("{property: plan, is_set: false}", False),
        ("{property: opted_in, eq: 'true'}", True),
        ("{property: created_at, within: 7d}", 7 * DAY),
        ("{property: created_at, older_than: 1y}", 365 * DAY),
        ("{property: created_at, after: 2026-01-01}", datetime(2026, 1, 1)),
        ("{property: created_at, eq: '2026-01-01T10:00:00+02:00'}", datetime(2026, 1, 1, 8)),
        ("{property: email, ends_with: '@example.com'}", "@example.com"),
    ],
)
def test_comparators_that_fit_the_column_type(rule: str, value: Any) -> None:
    condition = parse_ok(rule)
    assert isinstance(condition, PropertyCondition)
    (test,) = condition.test.comparator.tests
    assert test.value == value


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{property: age, gte: old}",
         "1:22: 'gte': expected a number, got the text 'old' ('age' is a number column)"),
        ("{property: age, contains: '1'}",
         "1:27: 'contains' applies to string values, not to a number value "
         "('age' is a number column)"),
        ("{property: opted_in, gte: true}",
         "1:27: 'gte' applies to number or string or timestamp values, not to a boolean value "
         "('opted_in' is a boolean column)"),
        ("{property: plan, within: 7d}",
         "1:26: 'within' applies to timestamp values, not to a string value "
         "('plan' is a string column)"),
        ("{property: created_at, regex: x}",
         "1:31: 'regex' applies to string values, not to a timestamp value "
         "('created_at' is a timestamp column)"),
        ("{property: age, in: [1, two]}",
         "1:21: 'in': expected a number, got the text 'two' ('age' is a number column)"),
        ("{property: age, between: [10]}",
         "1:26: 'between': expected two values, like between: [1, 10] ('age' is a number column)"),
        ("{property: plan, is_set: 'yes'}", "1:26: 'is_set': expected true or false, got 'yes'"),
        ("{property: plan, eq: pro, lte: [a]}",
         "1:32: 'lte': expected a single value, got a list ('plan' is a string column)"),
    ],
)  # fmt: skip
def test_comparators_that_do_not_fit_are_definition_errors(rule: str, message: str) -> None:
    condition, problems = parse(rule)
    assert condition is None
    assert problems == [message]


@pytest.mark.parametrize(
    ("measure", "value_type"),
    [
        ("count: {gte: 1}", N),
        ("distinct_days: {gte: 2}", N),
        ("sum: {of: amount, gte: 10}", N),
        ("min: {of: format, eq: mp4}", S),  # min/max keep the property's type
        ("first_seen: {within: 7d}", T),
        ("last_seen: {older_than: 30d}", T),
        ("streak: {gte: 3}", N),
        ("share: {where: {format: {eq: mp4}}, gte: 0.5}", N),
    ],
)
def test_measures_have_the_type_of_their_value(measure: str, value_type: ColumnType) -> None:
    condition = parse_ok(f"{{event: video_rendered, {measure}}}")
    assert isinstance(condition, EventCondition)
    assert condition.comparator.value_type is value_type


def test_a_timestamp_measure_rejects_a_number() -> None:
    _, problems = parse("{event: login, last_seen: {gte: 5}}")
    assert problems == [
        "1:33: 'gte': expected a date or timestamp, got int 5 (last_seen is a timestamp)"
    ]


def test_a_rule_parses_to_typed_conditions() -> None:
    condition = parse_ok(
        """\
        all:
          - property: plan
            in: [pro, premium]
          - event: [video_rendered, export, video_rendered]
            where: {format: {in: [mp4, mov]}}
            between: [90d, 30d]
            last: 50
            count: {gte: 3}
          - not: {segment: vip}
          - subscription: {status: {eq: active}, mrr: {gte: 2900}}
          - sequence:
              steps: [{event: signup}, {event: purchase}]
              from: 2026-01-01
              to: 2026-02-01
              max_gap: 24h
        """,
        segment_names=["vip"],
    )
    assert isinstance(condition, All)
    prop, event, negated, subscription, sequence = condition.items
    assert isinstance(prop, PropertyCondition) and prop.test.column == "plan"
    assert isinstance(event, EventCondition)
    assert event.measure.match.names == ("video_rendered", "export")  # duplicates dropped
    assert [t.column for t in event.measure.match.where] == ["format"]
    assert event.measure.window == Window(between=(90 * DAY, 30 * DAY))
    assert event.measure.last == 50
    assert (event.pos.line, event.pos.col) == (4, 5)
    assert isinstance(negated, Not) and negated.item == SegmentCondition("vip")
    assert isinstance(subscription, SubscriptionCondition)
    assert [t.column for t in subscription.tests] == ["status", "mrr"]
    assert isinstance(sequence, SequenceCondition)
    assert [s.names for s in sequence.steps] == [("signup",), ("purchase",)]
    assert sequence.window == Window(start=datetime(2026, 1, 1), end=datetime(2026, 2, 1))
    assert sequence.max_gap == DAY


def test_any_event_and_windows() -> None:
    condition = parse_ok('{event: "*", within: 30d, count: {eq: 0}}')
    assert isinstance(condition, EventCondition)
    assert condition.measure.match.names is None
    assert condition.measure.window.lookback() == 30 * DAY
    unbounded = parse_ok("{event: login, count: {gte: 1}}")
    assert isinstance(unbounded, EventCondition) and unbounded.measure.window.unbounded


def test_equal_measures_are_equal_wherever_they_stand() -> None:
    # The compiler deduplicates measures by equality, so positions must not take part in it.
    first = parse_ok("{event: login, within: 7d, count: {gte: 1}}")
    second = parse_ok("\n\n  {event: login,   within: 7d, count: {eq: 0}}")
    other = parse_ok("{event: login, within: 8d, count: {gte: 1}}")
    assert isinstance(first, EventCondition) and isinstance(second, EventCondition)
    assert isinstance(other, EventCondition)
    assert first.pos != second.pos
    assert first.measure == second.measure and hash(first.measure) == hash(second.measure)
    assert first.measure != other.measure


def test_both_bad_window_bounds_are_reported() -> None:
    _, problems = parse("{event: login, from: someday, to: later, count: {gte: 1}}")
    assert problems == [
        "1:22: 'from': expected a date or timestamp like 2026-01-01 or 2026-01-01T12:00:00Z, "
        "got 'someday'",
        "1:35: 'to': expected a date or timestamp like 2026-01-01 or 2026-01-01T12:00:00Z, "
        "got 'later'",
    ]


def test_a_misspelt_comparator_is_one_problem() -> None:
    """In a property or feature condition an unknown key is an operator misspelt: said once,
    in the words of the others (it was also "unknown key 'gtee' in a property condition")."""
    _, problems = parse("{property: plan, gtee: 1}")
    assert problems == ["1:18: unknown operator 'gtee' (did you mean 'gte'?)"]
    _, problems = parse("{property: plna, gtee: 1}")  # the column is unknown too
    assert problems == [
        "1:18: unknown operator 'gtee' (did you mean 'gte'?)",
        "1:12: unknown person property 'plna' (did you mean 'plan'?)",
    ]


def test_problems_are_collected_not_stopped_at() -> None:
    _, problems = parse(
        """\
        any:
          - {property: plna, eq: x}
          - {event: login, count: {gtee: 1}}
          - {segment: nope}
          - {evnt: login}
        """
    )
    assert problems == [
        "2:16: unknown person property 'plna' (did you mean 'plan'?)",
        "3:28: unknown operator 'gtee' (did you mean 'gte'?)",
        "4:15: unknown segment 'nope' (no segments)",
        "5:6: unknown condition 'evnt' (did you mean 'event'?); expected one of: all, any, "
        "not, property, event, feature, subscription, segment, sequence, list, template, "
        "at_least, custom_event",
    ]


def test_unknown_column_lists_the_columns_when_nothing_is_close() -> None:
    _, problems = parse("{property: zzz, eq: 1}")
    assert problems == [
        "1:12: unknown person property 'zzz' "
        "(available: age, created_at, email, opted_in, person_id, plan)"
    ]


def test_did_you_mean() -> None:
    assert did_you_mean("gtee", ["gt", "gte", "lte"]) == " (did you mean 'gte'?)"
    assert did_you_mean("xyz", ["gt", "gte"]) == ""


# ---- templates --------------------------------------------------------------------------------

# Each built-in template with parameters and the rule they expand to.
TEMPLATE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "power_users": (
        {"event": "video_rendered", "min_count": 5},
        {"event": "video_rendered", "within": "30d", "count": {"gte": 5}},
    ),
    "churn_risk": ({"days": 14}, {"event": "*", "within": "14d", "count": {"eq": 0}}),
    "trial_to_paid": (
        {},
        {"subscription": {"status": {"eq": "active"}, "updated_at": {"within": "7d"}}},
    ),
    "free_trial": ({}, {"subscription": {"status": {"eq": "trialing"}}}),
    "high_ltv": ({"amount": 1000}, {"event": "purchase", "sum": {"of": "amount", "gte": 1000}}),
    "new_users": ({}, {"property": "created_at", "within": "7d"}),
    "active_users": ({"days": 3}, {"event": "*", "within": "3d", "count": {"gte": 1}}),
    "inactive_users": (
        {"from_days": 14, "to_days": 60},
        {"event": "*", "last_seen": {"older_than": "14d", "within": "60d"}},
    ),
    "churned_users": ({}, {"event": "*", "last_seen": {"older_than": "30d"}}),
    "plan": ({"plan": "pro"}, {"property": "plan", "eq": "pro"}),
    "casual_users": (
        {"event": "login", "window": "7d"},
        {"event": "login", "within": "7d", "count": {"gte": 1, "lt": 10}},
    ),
    "streak": ({"days": 5}, {"event": "*", "streak": {"gte": 5}}),
    "stopped": (
        {"event": "login", "recent": "3d", "before": "14d"},
        {
            "all": [
                {"event": "login", "between": ["14d", "3d"], "count": {"gte": 1}},
                {"event": "login", "within": "3d", "count": {"eq": 0}},
            ]
        },
    ),
    "restarted": (
        {"event": ["login", "export"], "calendar": True},
        {
            "all": [
                {
                    "event": ["login", "export"],
                    "within": "7d",
                    "calendar": True,
                    "count": {"gte": 1},
                },
                {
                    "event": ["login", "export"],
                    "between": ["37d", "7d"],
                    "calendar": True,
                    "count": {"eq": 0},
                },
                {
                    "event": ["login", "export"],
                    "between": ["500y", "37d"],
                    "calendar": True,
                    "count": {"gte": 1},
                },
            ]
        },
    ),
    "focus": (
        {"event": "video_rendered", "property": "format", "value": "mp4", "last": 20},
        {
            "event": "video_rendered",
            "last": 20,
            "share": {"where": {"format": {"eq": "mp4"}}, "gte": 0.6},
        },
    ),
}


def test_every_template_has_a_case() -> None:
    assert set(TEMPLATE_CASES) == set(TEMPLATES)


@pytest.mark.parametrize("name", sorted(TEMPLATE_CASES))
def test_template_expands_to_a_rule_that_parses(name: str) -> None:
    params, expected = TEMPLATE_CASES[name]
    assert TEMPLATES[name].expand(params) == expected
    problems = Problems()
    expanded = expand_template(name, params, Pos("t.yaml", 4, 11), problems)
    parser = ConditionParser(SCHEMA, UTC_ZONE, Path("."), problems)
    assert parser.condition(expanded, Pos("t.yaml", 4, 11)) is not None
    assert problems.items == []


# SPEC 2.5: the built-ins and their parameters (a template may take more, optional, ones).
SPEC_SIGNATURES = """
power_users(event, min_count=10, window=30d) churn_risk(days=30) trial_to_paid(window=7d)
free_trial() high_ltv(amount=500, event=purchase, of=amount) new_users(days=7)
active_users(days=7) inactive_users(from_days=7, to_days=30) churned_users(days=30) plan(plan)
casual_users(event, max_count=10) streak(days=7) focus(event, property, value, share=0.6, last=100)
"""


@pytest.mark.parametrize("signature", re.findall(r"\w+\([^)]*\)", SPEC_SIGNATURES))
def test_template_signature_matches_the_spec(signature: str) -> None:
    name, _, args = signature.rstrip(")").partition("(")
    template = TEMPLATES[name]
    actual = {p.name: (None if p.required else str(p.default)) for p in template.params}
    for arg in filter(None, (a.strip() for a in args.split(","))):
        param, _, default = arg.partition("=")
        assert actual.pop(param) == (default or None), arg
    assert all(default is not None for default in actual.values()), "extra params are optional"


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("power_users", {}, "template 'power_users' needs parameter 'event'"),
        ("churn_risk", {"dayz": 1}, "template 'churn_risk' has no parameter 'dayz'"),
        ("churn_risk", {"days": "30d"}, "parameter 'days': expected a whole number, got '30d'"),
        ("churn_risk", {"days": True}, "parameter 'days': expected a whole number, got True"),
        ("power_users", {"event": "x", "window": "month"}, "parameter 'window': expected a dur"),
        ("high_ltv", {"amount": "lots"}, "parameter 'amount': expected a number, got 'lots'"),
        ("free_trial", {"x": 1}, "has no parameter 'x' (parameters: none)"),
    ],
)
def test_template_parameter_errors(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueProblem, match=re.escape(message)):
        TEMPLATES[name].expand(params)


def test_a_template_inside_a_rule_reports_at_the_template() -> None:
    problems = Problems()
    node = parse_yaml("all:\n  - template: churn_risk\n    params: {days: x}\n", "t.yaml", problems)

    def expander(name: Any, params: Any, pos: Pos) -> Any:
        return expand_template(name, params, pos, problems)

    parser = ConditionParser(SCHEMA, UTC_ZONE, Path("."), problems, expand_template=expander)
    assert parser.condition(node, Pos("t.yaml")) is None
    assert [str(p) for p in problems.items] == [
        "t.yaml:3:13: template 'churn_risk' parameter 'days': expected a whole number, got 'x'"
    ]


# ---- YAML with positions ----------------------------------------------------------------------


def test_yaml_positions_of_keys_and_values() -> None:
    problems = Problems()
    doc = parse_yaml("name: a\nrule:\n  event: login\n  count: {gte: 1}\n", "f.yaml", problems)
    assert isinstance(doc, YMap)
    assert (doc.pos.line, doc.pos.col) == (1, 1)
    assert (doc.key_at("rule").line, doc.at("rule").line, doc.at("rule").col) == (2, 3, 3)
    count = doc["rule"]["count"]
    assert (count.at("gte").line, count.at("gte").col) == (4, 16)


def test_yaml_keys_stay_names_and_merges_resolve() -> None:
    problems = Problems()
    doc = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  on: 2\n", "f.yaml", problems)
    assert problems.items == []
    assert doc["other"] == {"x": 1, "on": 2}  # `on` is not read as the boolean true


def test_yaml_duplicate_keys_are_problems() -> None:
    problems = Problems()
    parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml", problems)
    assert [str(p) for p in problems.items] == [
        "f.yaml:3:1: duplicate key 'a' (a mapping takes each key once: keep one)"
    ]


def test_definition_error_sorts_and_deduplicates_problems() -> None:
    b, a = Problem("b.yaml", 1, 1, "second"), Problem("a.yaml", 9, 2, "first")
    error = DefinitionError([b, a, b])
    assert error.problems == [a, b]
    assert str(error) == "a.yaml:9:2: first\nb.yaml:1:1: second\n2 problems found."
    assert str(DefinitionError("just this")) == "just this"


# ---- loading segment files --------------------------------------------------------------------


def write_segments(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_segments_load_recursively_in_dependency_order(tmp_path: Path) -> None:
    write_segments(
        tmp_path / "segments",
        {
            "a_top.yaml": "name: a_top\nrule: {segment: m_middle}\nexclude: [{segment: z_base}]\n",
            "nested/m_middle.yml": "name: m_middle\nrule: {segment: z_base}\n",
            "z_base.yaml": "name: z_base\nrule: {property: plan, eq: pro}\n",
            "notes.txt": "not a segment",
        },
    )
    problems = Problems()
    segments = load_segments(tmp_path / "segments", tmp_path, SCHEMA, {}, UTC_ZONE, problems)
    assert problems.items == []
    assert list(segments) == ["z_base", "m_middle", "a_top"]
    assert segments["m_middle"].file == "segments/nested/m_middle.yml"
    assert len(segments["a_top"].source_hash) == 16


def test_extra_file_replaces_the_project_segment_of_the_same_name(tmp_path: Path) -> None:
    write_segments(
        tmp_path,
        {
            "segments/vip.yaml": "name: vip\nrule: {property: plan, eq: pro}\n",
            "segments/uses_vip.yaml": "name: uses_vip\nrule: {segment: vip}\n",
            "draft/vip.yaml": "name: vip\nrule: {property: plan, eq: premium}\n",
        },
    )
    problems = Problems()
    segments = load_segments(
        tmp_path / "segments", tmp_path, SCHEMA, {}, UTC_ZONE, problems,
        extra_files=[tmp_path / "draft/vip.yaml"],
    )  # fmt: skip
    assert problems.items == []
    vip = segments["vip"].rule
    assert isinstance(vip, PropertyCondition)
    assert vip.test.comparator.tests[0].value == "premium"
    assert segments["vip"].file == "draft/vip.yaml"
    assert set(segments) == {"vip", "uses_vip"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_reading_the_definitions_without_the_data_makes_up_no_problem(case: Case) -> None:
    """``validate`` with the data unreadable reads the definitions blind, each column's type
    taken from its comparators (:class:`BlindSchema`): over the whole language (the
    differential test's catalogues, valid with their data), it finds no problem."""
    with TemporaryDirectory(prefix="segctl-blind-") as folder:
        root = Path(folder)
        case.write(root)
        project = segctl.Project.load(root)
        blind = load_definitions(project, blind=True)
        assert sorted(blind.segments) == sorted(project.definitions.segments)
