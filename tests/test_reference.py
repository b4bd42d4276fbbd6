"""Hand-computed checks of the reference evaluator (tests/reference.py).

The differential test trusts the reference, so every rule of SPEC section 2 it implements is
pinned here with values worked out by hand, boundaries included.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from textwrap import dedent
from typing import Any

import pytest
import yaml
from reference import MEASURES, Evaluator, Row, evaluate

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
P1: Row = {"person_id": "p1"}


def members(
    segment: str,
    *,
    persons: Iterable[Row] = (P1,),
    events: Iterable[Row] = (),
    subscriptions: Iterable[Row] = (),
    others: Iterable[str] = (),
    as_of: datetime = AS_OF,
    timezone: str = "UTC",
    features: dict[str, Any] | None = None,
    lists: dict[str, list[Row]] | None = None,
) -> set[str]:
    """Members of the segment file ``segment`` (YAML); ``others`` are segments it refers to."""
    parsed = [yaml.safe_load(dedent(text)) for text in (segment, *others)]
    result = evaluate(
        {s["name"]: s for s in parsed},
        list(persons),
        list(events),
        list(subscriptions),
        as_of,
        timezone,
        features,
        lists,
    )
    return result[parsed[0]["name"]]


def holds(rule: dict[str, Any], person: Row, as_of: datetime = AS_OF, tz: str = "UTC") -> bool:
    segment = {"name": "t", "rule": rule}
    return person["person_id"] in evaluate({"t": segment}, [person], [], [], as_of, tz)["t"]


def measured(
    condition: str, events: Iterable[Row], *, as_of: datetime = AS_OF, timezone: str = "UTC"
) -> Any:
    """The value an event condition's measure takes for p1 (before its comparator)."""
    node = yaml.safe_load(dedent(condition))
    evaluator = Evaluator({}, [P1], list(events), [], as_of, timezone, {}, {})
    (kind,) = (k for k in node if k in MEASURES)
    return evaluator.measure(kind, node[kind], evaluator.matching_events(node, P1))


def ev(ts: datetime, event: str = "a", person_id: str = "p1", **properties: Any) -> Row:
    return {"person_id": person_id, "event": event, "timestamp": ts, **properties}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# ---- comparators (SPEC 2.2) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        # eq / ne: exact, case-sensitive; NULL only satisfies ne
        ("eq: pro", "pro", True),
        ("eq: pro", "Pro", False),
        ("eq: pro", None, False),
        ("eq: ''", "", True),
        ("eq: 1", 1.0, True),
        ("ne: pro", "free", True),
        ("ne: pro", "pro", False),
        ("ne: pro", "", True),
        ("ne: pro", None, True),
        # in / not_in
        ("in: [pro, premium]", "premium", True),
        ("in: [pro]", "PRO", False),
        ("in: [pro]", None, False),
        ("in: ['']", "", True),
        ("in: [1, 2]", 2.0, True),
        ("not_in: [pro]", "free", True),
        ("not_in: [pro]", "pro", False),
        ("not_in: [pro]", None, True),
        # ordering on text (code points) and numbers
        ("gt: b", "c", True),
        ("gt: b", "b", False),
        ("gte: b", "b", True),
        ("lt: b", "B", True),
        ("lt: a", "", True),
        ("lte: b", "b", True),
        ("gt: b", None, False),
        ("lt: b", None, False),
        ("gte: 5", 5, True),
        ("gt: 5", 5, False),
        ("lt: 5", 4.5, True),
        ("lte: 5", 5.0, True),
        ("gte: 5", None, False),
        ("lte: 5", None, False),
        # between is inclusive at both ends
        ("between: [b, d]", "b", True),
        ("between: [b, d]", "d", True),
        ("between: [b, d]", "da", False),
        ("between: [1, 2.5]", 2.5, True),
        ("between: [1, 2.5]", 0.5, False),
        ("between: [1, 2.5]", None, False),
        # substring tests: case-insensitive, no wildcards
        ("contains: PRO", "my pro plan", True),
        ("contains: x", "my pro plan", False),
        ("contains: a_b", "axb", False),
        ("contains: 50%", "50% off", True),
        ("contains: pro", None, False),
        ("starts_with: MY", "my pro", True),
        ("starts_with: pro", "my pro", False),
        ("starts_with: pro", None, False),
        ("ends_with: PRO", "my pro", True),
        ("ends_with: my", "my pro", False),
        ("ends_with: pro", None, False),
        # regex: case-sensitive, matches anywhere (search)
        ("regex: 'p.o'", "my pro", True),
        ("regex: '^pro'", "my pro", False),
        ("regex: PRO", "my pro", False),
        ("regex: '^$'", "", True),
        ("regex: '.*'", None, False),
        # is_set: empty string counts as absent on text only
        ("is_set: true", "x", True),
        ("is_set: true", "", False),
        ("is_set: true", None, False),
        ("is_set: true", 0, True),
        ("is_set: true", 0.0, True),
        ("is_set: false", "", True),
        ("is_set: false", None, True),
        ("is_set: false", "x", False),
        ("is_set: false", 0, False),
        # several keys: all must hold
        ("{gte: 5, lte: 30}", 30, True),
        ("{gte: 5, lte: 30}", 31, False),
        ("{ne: 3, gte: 1}", None, False),
        ("{ne: 3, not_in: [4]}", None, True),
        ("{ne: 3, is_set: false}", None, True),
    ],
)
def test_comparator(comparator: str, value: Any, expected: bool) -> None:
    rule = {"property": "x", **yaml.safe_load(comparator)}
    assert holds(rule, {"person_id": "p1", "x": value}) is expected
    # `not` flips every comparator exactly, NULL included.
    assert holds({"not": rule}, {"person_id": "p1", "x": value}) is not expected


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        # within: (as_of - d, as_of]
        ("within: 7d", AS_OF - 7 * DAY, False),
        ("within: 7d", AS_OF - 7 * DAY + SECOND, True),
        ("within: 7d", AS_OF, True),
        ("within: 7d", AS_OF + SECOND, False),
        ("within: 7d", None, False),
        ("within: 36h", AS_OF - timedelta(hours=36), False),
        ("within: 36h", AS_OF - timedelta(hours=36) + SECOND, True),
        ("within: 2w", AS_OF - 14 * DAY, False),
        ("within: 1y", AS_OF - 365 * DAY + SECOND, True),
        ("within: 1y", AS_OF - 365 * DAY, False),
        # older_than: <= as_of - d
        ("older_than: 30d", AS_OF - 30 * DAY, True),
        ("older_than: 30d", AS_OF - 30 * DAY + SECOND, False),
        ("older_than: 30d", None, False),
        # before: <, after: >=; a bare date is midnight in the project timezone (UTC here)
        ("before: 2026-03-01", utc(2026, 3, 1), False),
        ("before: 2026-03-01", utc(2026, 2, 28, 23, 59, 59), True),
        ("after: 2026-03-01", utc(2026, 3, 1), True),
        ("after: 2026-03-01", utc(2026, 2, 28, 23, 59, 59), False),
        ("after: 2026-03-01", None, False),
        ("before: 2026-03-01T10:00:00+02:00", utc(2026, 3, 1, 8), False),
        ("before: 2026-03-01T10:00:00+02:00", utc(2026, 3, 1, 7, 59, 59), True),
        # a datetime without an offset is UTC
        ("before: 2026-03-01T10:00:00", utc(2026, 3, 1, 9, 59, 59), True),
        ("before: '2026-03-01T10:00:00Z'", utc(2026, 3, 1, 10), False),
        # ordering comparators on timestamps
        ("gte: 2026-03-01", utc(2026, 3, 1), True),
        ("gt: 2026-03-01", utc(2026, 3, 1), False),
        ("eq: 2026-03-01T00:00:00Z", utc(2026, 3, 1), True),
        ("ne: 2026-03-01T00:00:00Z", None, True),
        ("between: [2026-03-01, 2026-03-02]", utc(2026, 3, 2), True),
        ("between: [2026-03-01, 2026-03-02]", utc(2026, 3, 2, 0, 0, 1), False),
        ("{after: 2026-03-01, within: 30d}", utc(2026, 3, 1), True),
        # naive data timestamps are UTC
        ("before: 2026-03-01", datetime(2026, 2, 28, 23, 59, 59), True),
    ],
)
def test_timestamp_comparator(comparator: str, value: datetime | None, expected: bool) -> None:
    rule = {"property": "seen_at", **yaml.safe_load(comparator)}
    assert holds(rule, {"person_id": "p1", "seen_at": value}) is expected
    assert holds({"not": rule}, {"person_id": "p1", "seen_at": value}) is not expected


def test_bare_date_is_midnight_in_the_project_timezone() -> None:
    rule = {"property": "seen_at", "after": yaml.safe_load("2026-03-01")}
    # Midnight in Kolkata (UTC+05:30) is 18:30 UTC the day before.
    assert holds(rule, {"person_id": "p1", "seen_at": utc(2026, 2, 28, 18, 30)}, tz="Asia/Kolkata")
    assert not holds(
        rule, {"person_id": "p1", "seen_at": utc(2026, 2, 28, 18, 29, 59)}, tz="Asia/Kolkata"
    )
    assert not holds(rule, {"person_id": "p1", "seen_at": utc(2026, 2, 28, 18, 30)})


def test_boolean_structure() -> None:
    persons = [
        {"person_id": "p1", "plan": "pro", "country": "US"},
        {"person_id": "p2", "plan": "pro", "country": "DE"},
        {"person_id": "p3", "plan": "free", "country": None},
    ]
    segment = """
        name: t
        rule:
          any:
            - all:
                - {property: plan, eq: pro}
                - not: {property: country, eq: US}
            - {property: country, is_set: false}
    """
    assert members(segment, persons=persons) == {"p2", "p3"}


# ---- windows (SPEC 2.3) ---------------------------------------------------------------------


def test_within_window_edges() -> None:
    events = [ev(AS_OF - 30 * DAY), ev(AS_OF - 30 * DAY + SECOND), ev(AS_OF), ev(AS_OF + SECOND)]
    condition = "{event: a, within: 30d, count: {gte: 0}}"
    assert measured(condition, events) == 2
    first = "{event: a, within: 30d, first_seen: {is_set: true}}"
    assert measured(first, events) == AS_OF - 30 * DAY + SECOND


def test_between_window_edges() -> None:
    events = [
        ev(AS_OF - 90 * DAY),
        ev(AS_OF - 90 * DAY + SECOND),
        ev(AS_OF - 30 * DAY),
        ev(AS_OF - 30 * DAY + SECOND),
    ]
    assert measured("{event: a, between: [90d, 30d], count: {gte: 0}}", events) == 2
    first = measured("{event: a, between: [90d, 30d], first_seen: {is_set: true}}", events)
    last = measured("{event: a, between: [90d, 30d], last_seen: {is_set: true}}", events)
    assert (first, last) == (AS_OF - 90 * DAY + SECOND, AS_OF - 30 * DAY)


def test_from_to_window_edges() -> None:
    events = [
        ev(utc(2026, 2, 28, 23, 59, 59)),
        ev(utc(2026, 3, 1)),
        ev(utc(2026, 3, 9, 23, 59, 59)),
        ev(utc(2026, 3, 10)),
    ]
    condition = "{event: a, from: 2026-03-01, to: 2026-03-10, count: {gte: 0}}"
    assert measured(condition, events) == 2
    # from alone still stops at as_of; to alone has no lower bound.
    late = [ev(utc(2026, 3, 14)), ev(AS_OF), ev(AS_OF + SECOND)]
    assert measured("{event: a, from: 2026-03-14, count: {gte: 0}}", late) == 2
    assert measured("{event: a, to: 2026-03-01, count: {gte: 0}}", events) == 1


def test_from_date_is_local_midnight() -> None:
    events = [ev(utc(2026, 2, 28, 18, 29, 59)), ev(utc(2026, 2, 28, 18, 30))]
    condition = "{event: a, from: 2026-03-01, count: {gte: 0}}"
    assert measured(condition, events, timezone="Asia/Kolkata") == 1
    assert measured(condition, events) == 0


def test_no_window_is_everything_up_to_as_of() -> None:
    events = [ev(AS_OF - 1000 * DAY), ev(AS_OF), ev(AS_OF + SECOND), ev(AS_OF + 1000 * DAY)]
    assert measured("{event: a, count: {gte: 0}}", events) == 2


def test_events_after_as_of_are_ignored_everywhere() -> None:
    events = [ev(AS_OF + SECOND, amount=5.0)]
    assert measured("{event: a, sum: {of: amount, gte: 0}}", events) == 0
    assert measured("{event: a, last_seen: {is_set: true}}", events) is None
    assert measured("{event: a, streak: {gte: 0}}", events) == 0
    segment = "{name: t, rule: {sequence: {steps: [{event: a}]}}}"
    assert members(segment, events=events) == set()


# ---- event conditions and measures (SPEC 2.4) -------------------------------------------------


def test_event_names_and_where() -> None:
    events = [
        ev(AS_OF, "a", kind="aws"),
        ev(AS_OF, "b", kind="AWS"),
        ev(AS_OF, "c", kind=None),
        ev(AS_OF, "c", kind=""),
    ]
    assert measured("{event: a, count: {gte: 0}}", events) == 1
    assert measured("{event: [a, b], count: {gte: 0}}", events) == 2
    assert measured("{event: '*', count: {gte: 0}}", events) == 4
    assert measured("{event: '*', where: {kind: {eq: aws}}, count: {gte: 0}}", events) == 1
    # NULL fails every where comparator except ne / not_in / is_set: false.
    assert measured("{event: '*', where: {kind: {ne: aws}}, count: {gte: 0}}", events) == 3
    assert measured("{event: '*', where: {kind: {is_set: false}}, count: {gte: 0}}", events) == 2
    where_two = (
        "{event: '*', where: {kind: {contains: W}, amount: {is_set: false}}, count: {gte: 0}}"
    )
    assert measured(where_two, events) == 2


def test_count_eq_0_includes_persons_without_events() -> None:
    persons = [{"person_id": "p1"}, {"person_id": "p2"}, {"person_id": "p3"}]
    events = [ev(AS_OF, "a", "p1"), ev(AS_OF, "b", "p2")]
    segment = "{name: t, rule: {event: a, count: {eq: 0}}}"
    assert members(segment, persons=persons, events=events) == {"p2", "p3"}


def test_aggregates_and_nulls() -> None:
    events = [ev(AS_OF, amount=None), ev(AS_OF, amount=2.0), ev(AS_OF, amount=4.0)]
    assert measured("{event: a, sum: {of: amount, gte: 0}}", events) == 6.0
    assert measured("{event: a, avg: {of: amount, gte: 0}}", events) == 3.0
    assert measured("{event: a, min: {of: amount, gte: 0}}", events) == 2.0
    assert measured("{event: a, max: {of: amount, gte: 0}}", events) == 4.0
    only_nulls = [ev(AS_OF, amount=None)]
    assert measured("{event: a, sum: {of: amount, gte: 0}}", only_nulls) == 0
    assert measured("{event: a, avg: {of: amount, gte: 0}}", only_nulls) is None
    assert measured("{event: a, min: {of: amount, gte: 0}}", []) is None
    assert measured("{event: a, sum: {of: amount, gte: 0}}", []) == 0
    kinds = [ev(AS_OF, kind="gcp"), ev(AS_OF, kind="aws"), ev(AS_OF, kind=None)]
    assert measured("{event: a, min: {of: kind, gte: a}}", kinds) == "aws"
    assert measured("{event: a, max: {of: kind, gte: a}}", kinds) == "gcp"


def test_aggregate_of_nothing_compares_as_null() -> None:
    persons = [{"person_id": "p1"}, {"person_id": "p2"}]
    events = [ev(AS_OF, amount=1.0)]
    avg_low = "{name: t, rule: {event: a, avg: {of: amount, lt: 5}}}"
    assert members(avg_low, persons=persons, events=events) == {"p1"}
    sum_low = "{name: t, rule: {event: a, sum: {of: amount, lt: 5}}}"
    assert members(sum_low, persons=persons, events=events) == {"p1", "p2"}


def test_first_and_last_seen() -> None:
    events = [ev(AS_OF - 3 * DAY), ev(AS_OF - 40 * DAY), ev(AS_OF - DAY, "b")]
    assert measured("{event: a, first_seen: {is_set: true}}", events) == AS_OF - 40 * DAY
    assert measured("{event: a, last_seen: {is_set: true}}", events) == AS_OF - 3 * DAY
    assert measured("{event: c, last_seen: {is_set: true}}", events) is None
    persons = [{"person_id": "p1"}, {"person_id": "p2"}]
    inactive = "{name: t, rule: {event: a, last_seen: {older_than: 30d}}}"
    assert members(inactive, persons=persons, events=events) == set()
    dormant = "{name: t, rule: {not: {event: a, last_seen: {within: 30d}}}}"
    assert members(dormant, persons=persons, events=events) == {"p2"}


def test_distinct_days_follow_the_project_timezone() -> None:
    # 03:00Z and 06:00Z on March 10th are 23:00 (9th) and 02:00 (10th) in New York (UTC-4).
    events = [ev(utc(2026, 3, 10, 3)), ev(utc(2026, 3, 10, 6)), ev(utc(2026, 3, 10, 7))]
    condition = "{event: a, distinct_days: {gte: 0}}"
    assert measured(condition, events) == 1
    assert measured(condition, events, timezone="America/New_York") == 2
    # Kolkata (UTC+05:30): 18:29:59Z is 23:59:59 local, 18:30Z is the next day's midnight.
    halves = [ev(utc(2026, 3, 9, 18, 29, 59)), ev(utc(2026, 3, 9, 18, 30))]
    assert measured(condition, halves) == 1
    assert measured(condition, halves, timezone="Asia/Kolkata") == 2


@pytest.mark.parametrize(
    ("days_ago", "expected"),
    [
        ([0, 1, 2], 3),  # ends today
        ([1, 2, 3], 3),  # ends yesterday: still counts
        ([2, 3], 0),  # ends two days ago: broken
        ([0, 1, 3, 4], 2),  # a gap stops it
        ([0, 0, 0], 1),  # several events on one day are one day
        ([], 0),
    ],
)
def test_streak(days_ago: list[int], expected: int) -> None:
    events = [ev(AS_OF - d * DAY) for d in days_ago]
    assert measured("{event: a, streak: {gte: 0}}", events) == expected


def test_streak_uses_local_days() -> None:
    # as_of 02:00Z on the 15th is 22:00 on the 14th in New York: "today" is the 14th there.
    as_of = utc(2026, 3, 15, 2)
    events = [ev(utc(2026, 3, 13, 12)), ev(utc(2026, 3, 12, 12))]
    assert measured("{event: a, streak: {gte: 0}}", events, as_of=as_of) == 0
    ny = measured("{event: a, streak: {gte: 0}}", events, as_of=as_of, timezone="America/New_York")
    assert ny == 2


def test_last_n_keeps_the_most_recent_matching_events() -> None:
    events = [
        ev(AS_OF - 4 * DAY, amount=1.0),
        ev(AS_OF - 3 * DAY, amount=10.0),
        ev(AS_OF - 2 * DAY, amount=100.0),
        ev(AS_OF - DAY, "b", amount=1000.0),  # another event: not among a's last 2
        ev(AS_OF + DAY, amount=5000.0),  # after as_of: ignored
    ]
    assert measured("{event: a, last: 2, sum: {of: amount, gte: 0}}", events) == 110.0
    assert measured("{event: a, last: 10, count: {gte: 0}}", events) == 3
    # last applies after the window.
    windowed = "{event: a, last: 2, between: [10d, 3d], sum: {of: amount, gte: 0}}"
    assert measured(windowed, events) == 11.0
    assert measured("{event: a, last: 1, first_seen: {is_set: true}}", events) == AS_OF - 2 * DAY


def test_share() -> None:
    events = [
        ev(AS_OF - 3 * DAY, kind="aws"),
        ev(AS_OF - 2 * DAY, kind="gcp"),
        ev(AS_OF - DAY, kind="aws"),
        ev(AS_OF - DAY, "b", kind="gcp"),
    ]
    share = "{event: a, share: {where: {kind: {eq: aws}}, gte: 0.6}}"
    assert measured(share, events) == 2 / 3
    assert measured("{event: a, last: 2, share: {where: {kind: {eq: aws}}, gte: 0}}", events) == 0.5
    # NULL property: not matching the share's where, still counted in the denominator.
    nulls = [ev(AS_OF, kind=None), ev(AS_OF, kind="aws")]
    assert measured(share, nulls) == 0.5


def test_share_with_no_events_is_null() -> None:
    assert measured("{event: a, share: {where: {kind: {eq: aws}}, gte: 0}}", []) is None
    persons = [{"person_id": "p1"}, {"person_id": "p2"}]
    events = [ev(AS_OF, kind="aws")]
    share = "{event: a, share: {where: {kind: {eq: aws}}, gte: 0}}"
    assert members(f"{{name: t, rule: {share}}}", persons=persons, events=events) == {"p1"}
    assert members(f"{{name: t, rule: {{not: {share}}}}}", persons=persons, events=events) == {"p2"}


# ---- features, subscriptions, segments, sequences, lists ---------------------------------------


def test_feature() -> None:
    features = {
        "active_days_30d": {"event": "*", "within": "30d", "measure": "distinct_days"},
        "ltv": {"event": "purchase", "measure": {"sum": "amount"}},
        "best": {"event": "purchase", "last": 2, "measure": {"max": "amount"}},
    }
    persons = [{"person_id": "p1"}, {"person_id": "p2"}]
    events = [
        ev(AS_OF - 40 * DAY, "purchase", amount=50.0),
        ev(AS_OF - 2 * DAY, "purchase", amount=5.0),
        ev(AS_OF - DAY, "purchase", amount=6.0),
        ev(AS_OF - DAY, "login"),
        ev(AS_OF, "purchase", "p2", amount=None),
    ]

    def of(rule: str) -> set[str]:
        segment = f"{{name: t, rule: {rule}}}"
        return members(segment, persons=persons, events=events, features=features)

    assert of("{feature: active_days_30d, gte: 2}") == {"p1"}
    assert of("{feature: ltv, gte: 61}") == {"p1"}
    assert of("{feature: ltv, eq: 0}") == {"p2"}
    assert of("{feature: best, eq: 6}") == {"p1"}
    assert of("{feature: best, is_set: false}") == {"p2"}


def test_subscription_uses_the_current_row() -> None:
    persons = [{"person_id": "p1"}, {"person_id": "p2"}]
    subscriptions = [
        {"person_id": "p1", "status": "active", "plan": "pro", "mrr": 2900,
         "updated_at": utc(2026, 3, 1)},
        {"person_id": "p1", "status": "canceled", "plan": "pro", "mrr": 0,
         "updated_at": AS_OF},
        {"person_id": "p1", "status": "active", "plan": "max", "mrr": 9900,
         "updated_at": AS_OF + SECOND},
    ]  # fmt: skip

    def of(rule: str) -> set[str]:
        segment = f"{{name: t, rule: {{subscription: {rule}}}}}"
        return members(segment, persons=persons, subscriptions=subscriptions)

    assert of("{status: {eq: canceled}}") == {"p1"}
    assert of("{status: {eq: active}}") == set()
    # No subscription: every column is NULL.
    assert of("{status: {ne: active}}") == {"p1", "p2"}
    assert of("{mrr: {gte: 0}}") == {"p1"}
    assert of("{mrr: {lt: 1}, plan: {eq: pro}}") == {"p1"}
    assert of("{mrr: {lt: 1}, plan: {eq: max}}") == set()
    assert of("{updated_at: {is_set: false}}") == {"p2"}


def test_segment_reference_includes_its_exclusions() -> None:
    persons = [
        {"person_id": "p1", "plan": "pro", "banned": False},
        {"person_id": "p2", "plan": "pro", "banned": True},
        {"person_id": "p3", "plan": "free", "banned": False},
    ]
    paid = """
        name: paid
        rule: {property: plan, eq: pro}
        exclude:
          - {property: banned, eq: true}
          - {property: plan, eq: nothing}
    """
    assert members(paid, persons=persons) == {"p1"}
    assert members("{name: t, rule: {segment: paid}}", persons=persons, others=[paid]) == {"p1"}
    unpaid = "{name: t, rule: {not: {segment: paid}}}"
    assert members(unpaid, persons=persons, others=[paid]) == {"p2", "p3"}


def test_segment_cycle_is_an_error() -> None:
    one = "{name: one, rule: {segment: two}}"
    two = "{name: two, rule: {not: {segment: one}}}"
    with pytest.raises(ValueError, match="one -> two -> one"):
        members(one, others=[two])


def test_persons_created_after_as_of_are_never_members() -> None:
    persons = [
        {"person_id": "early", "created_at": AS_OF},
        {"person_id": "unknown", "created_at": None},
        {"person_id": "late", "created_at": AS_OF + SECOND},
    ]
    nobody = "{name: nobody, rule: {event: '*', count: {eq: 0}}}"
    assert members(nobody, persons=persons) == {"early", "unknown"}
    negated = "{name: t, rule: {not: {segment: nobody}}}"
    assert members(negated, persons=persons, others=[nobody]) == set()
    new = "{name: t, rule: {property: created_at, within: 7d}}"
    assert members(new, persons=persons) == {"early"}


def test_sequence_order_and_max_gap() -> None:
    t0 = AS_OF - 20 * DAY
    events = [ev(t0, "signup"), ev(t0 + 3 * DAY, "purchase", amount=60.0)]

    def of(sequence: str, data: list[Row] = events) -> bool:
        return members(f"{{name: t, rule: {{sequence: {sequence}}}}}", events=data) == {"p1"}

    assert of("{steps: [{event: signup}, {event: purchase}]}")
    assert not of("{steps: [{event: purchase}, {event: signup}]}")
    assert of("{steps: [{event: signup}, {event: purchase}], max_gap: 3d}")  # gap == max_gap
    assert not of("{steps: [{event: signup}, {event: purchase}], max_gap: 2d}")
    assert of("{steps: [{event: signup}, {event: purchase, where: {amount: {gte: 50}}}]}")
    assert not of("{steps: [{event: signup}, {event: purchase, where: {amount: {gt: 60}}}]}")
    # The whole sequence must fall in the window.
    assert of("{steps: [{event: signup}, {event: purchase}], within: 20d}") is False
    assert of("{steps: [{event: signup}, {event: purchase}], within: 21d}")
    assert not of("{steps: [{event: signup}, {event: purchase}], between: [30d, 18d]}")
    assert of("{steps: [{event: signup}, {event: purchase}], between: [30d, 17d]}")


def test_sequence_needs_strictly_increasing_timestamps() -> None:
    tied = [ev(AS_OF - DAY, "signup"), ev(AS_OF - DAY, "purchase")]
    segment = "{name: t, rule: {sequence: {steps: [{event: signup}, {event: purchase}]}}}"
    assert members(segment, events=tied) == set()
    repeated = "{name: t, rule: {sequence: {steps: [{event: a}, {event: a}]}}}"
    assert members(repeated, events=[ev(AS_OF)]) == set()
    assert members(repeated, events=[ev(AS_OF), ev(AS_OF - SECOND)]) == {"p1"}


def test_sequence_searches_every_candidate() -> None:
    # The first signup is too far from the purchase, the second one is close enough.
    events = [
        ev(AS_OF - 20 * DAY, "signup"),
        ev(AS_OF - 10 * DAY, "signup"),
        ev(AS_OF - 9 * DAY, "purchase"),
        ev(AS_OF - 30 * DAY, "purchase"),
    ]
    segment = """
        name: t
        rule:
          sequence:
            steps: [{event: signup}, {event: purchase}]
            max_gap: 2d
    """
    assert members(segment, events=events) == {"p1"}
    assert members(segment, events=events[:1] + events[2:]) == set()


def test_list_by_person_id_and_email() -> None:
    persons = [
        {"person_id": "p1", "email": "ann@example.com"},
        {"person_id": "P2", "email": " BOB@example.com"},
        {"person_id": "p3", "email": None},
    ]
    lists = {
        "lists/ids.csv": [{"person_id": "p1"}, {"person_id": "p2"}],
        "lists/emails.csv": [{"email": "Bob@Example.com  "}, {"email": "nobody@example.com"}],
    }
    by_id = "{name: t, rule: {list: {file: lists/ids.csv, key: person_id}}}"
    assert members(by_id, persons=persons, lists=lists) == {"p1"}
    by_email = "{name: t, rule: {list: {file: lists/emails.csv, key: email}}}"
    assert members(by_email, persons=persons, lists=lists) == {"P2"}


def test_exclude_any_entry_suppresses() -> None:
    persons = [
        {"person_id": "p1", "plan": "pro", "country": "US"},
        {"person_id": "p2", "plan": "pro", "country": "DE"},
        {"person_id": "p3", "plan": "pro", "country": None},
    ]
    segment = """
        name: t
        rule: {property: plan, eq: pro}
        exclude:
          - {property: country, eq: DE}
          - {property: country, is_set: false}
    """
    assert members(segment, persons=persons) == {"p1"}
