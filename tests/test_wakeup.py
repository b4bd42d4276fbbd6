"""The wake-up bound of incremental runs (segctl/wakeup.py): each condition's durations apply
to the rows it reads, and the local-midnight term to the local-day conditions' alone.

Its exactness is proved by tests/test_incremental.py's state machines (incremental runs equal
full runs and the reference); these tests show that the bound is tight where it may be."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import reference
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from stateproject import iso, write_events, write_project

import segctl as lib
from segctl.definitions.model import ColumnType, Schema
from segctl.wakeup import Catalogue, Edge, Reads, catalogue, reads, wake_sql

AS_OF = datetime(2026, 3, 10, 12)
MIDNIGHT = datetime(2026, 3, 11)  # the first local (UTC) midnight after AS_OF
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
MICRO = timedelta(microseconds=1)
DAY = timedelta(days=1)
YEAR = timedelta(days=365)
WEEK = timedelta(days=7)
FORTNIGHT = timedelta(days=14)
MONTH = timedelta(days=30)

SEGMENTS = {
    "loyal": "name: loyal\nrule: {event: purchase, within: 365d, count: {gte: 2}}\n",
    "browsing": "name: browsing\nrule: {event: [page_view, search], within: 7d, count: {gte: 1}}\n",
    "streaky": "name: streaky\nrule: {event: login, streak: {gte: 2}}\n",
    # A comparator's duration (no window): last_seen <= as_of - 14d.
    "lapsed": "name: lapsed\nrule: {event: cart_add, last_seen: {older_than: 14d}}\n",
    # The local days of the events in a rolling window: no local-midnight term.
    "regular": "name: regular\nrule: {event: visit, within: 30d, distinct_days: {gte: 3}}\n",
    "funnel": dedent("""\
        name: funnel
        rule:
          sequence: {steps: [{event: signup}, {event: purchase}], within: 7d}
        """),
    "new": "name: new\nrule: {property: created_at, within: 30d}\n",
    "either": dedent("""\
        name: either
        rule:
          any:
            - {segment: loyal}
            - not: {list: {file: vip.csv, key: person_id}}
        """),
}
SCHEMA: Schema = {
    "events": {
        "person_id": ColumnType.STRING,
        "event": ColumnType.STRING,
        "timestamp": ColumnType.TIMESTAMP,
    },
    "persons": {
        "person_id": ColumnType.STRING,
        "created_at": ColumnType.TIMESTAMP,
        "trial_ends": ColumnType.TIMESTAMP,  # no condition compares it
    },
}
STAMPS = {"timestamp", "created_at", "trial_ends"}


@pytest.fixture
def cat(tmp_path: Path) -> Catalogue:
    root = write_project(tmp_path / "proj", SEGMENTS)
    (root / "vip.csv").write_text("person_id\np1\n")
    (root / "persons.csv").write_text("person_id,created_at,trial_ends\np1,2026-01-01,2026-02-01\n")
    return catalogue(lib.Project.load(root).definitions, STAMPS)


def wakes(
    cat: Catalogue,
    events: list[tuple[str, str, datetime]],
    persons: list[tuple[str, datetime | None, datetime | None]] | None = None,
    timezone: str = "UTC",
) -> dict[str, datetime]:
    """The wake-up times (person -> time) of these rows at AS_OF."""
    con = duckdb.connect()
    con.execute("CREATE TABLE events (person_id VARCHAR, event VARCHAR, timestamp TIMESTAMP)")
    con.execute(
        "CREATE TABLE persons (person_id VARCHAR, created_at TIMESTAMP, trial_ends TIMESTAMP)"
    )
    if events:
        con.executemany("INSERT INTO events VALUES (?, ?, ?)", events)
    if persons:
        con.executemany("INSERT INTO persons VALUES (?, ?, ?)", persons)
    rows = con.execute(wake_sql(SCHEMA, cat, AS_OF, timezone, None)).fetchall()
    return {person: wake for person, wake in rows}


def test_each_condition_reads_its_own_rows_with_its_own_durations(cat: Catalogue) -> None:
    """Each condition's rows and durations; a count in a rolling window and a last_seen
    comparison keep the duration 0 for their rows (visible at their time) and an edge."""
    zero = timedelta(0)
    stamp = frozenset({"timestamp"})
    assert set(cat.reads) == {
        Reads("persons", None, frozenset({"created_at"}), frozenset({zero}), False),
        Reads("events", frozenset({"purchase"}), stamp, frozenset({zero}), False),
        Reads("events", frozenset({"page_view", "search"}), stamp, frozenset({zero}), False),
        Reads("events", frozenset({"cart_add"}), stamp, frozenset({zero}), False),
        Reads("events", frozenset({"visit"}), stamp, frozenset({zero}), False),
        Reads(  # every step's events
            "events",
            frozenset({"signup", "purchase"}),
            frozenset({"timestamp"}),
            frozenset({zero, WEEK}),
            False,
        ),
        Reads("events", frozenset({"login"}), frozenset({"timestamp"}), frozenset({zero}), True),
        Reads("persons", None, frozenset({"created_at"}), frozenset({zero, MONTH}), False),
    }
    assert set(cat.edges) == {
        Edge("count", frozenset({"purchase"}), frozenset({YEAR}), (1,)),  # gte 2
        Edge("count", frozenset({"page_view", "search"}), frozenset({WEEK}), (0,)),  # gte 1
        Edge("last_seen", frozenset({"cart_add"}), frozenset({FORTNIGHT})),
        Edge("distinct_days", frozenset({"visit"}), frozenset({MONTH}), (2,)),  # gte 3
    }
    # All durations still (the state machines step as_of by them), and local days are used.
    assert cat.durations == (zero, WEEK, FORTNIGHT, MONTH, YEAR)
    assert cat.calendar


def test_a_duration_wakes_only_the_rows_of_the_events_it_applies_to(cat: Catalogue) -> None:
    """A page_view 365 days before as_of (plus an hour) reaches no page_view duration: its
    person never wakes; the second newest of two purchases at the same time wakes its person
    an hour after as_of, when ``loyal``'s count falls below 2. (The catalogue-wide bound woke
    both then, and both again at the next midnight.)"""
    old = AS_OF - YEAR + HOUR
    found = wakes(
        cat,
        [
            ("viewer", "page_view", old),
            ("buyer", "purchase", old),
            ("buyer", "purchase", AS_OF - DAY),
        ],
    )
    assert found == {"buyer": AS_OF + HOUR}


def test_a_count_wakes_only_when_it_can_cross_a_step(cat: Catalogue) -> None:
    """As time passes a count in a rolling window only falls, the oldest row first: its truth
    can change only when the count crosses a step, so the bound is the row whose leaving
    makes it cross, not the oldest row. ``loyal`` (two purchases in 365 days) with three:
    the second newest; with one: never (no fall makes it a member). ``browsing`` (a
    page_view or search in 7 days): the newest. ``lapsed`` (the last cart_add 14 days
    before as_of): the newest cart_add's edge. The per-row bound woke each at its oldest
    row's edge."""
    found = wakes(
        cat,
        [
            *(("loyal", "purchase", AS_OF - n * DAY) for n in (300, 200, 100)),
            ("single", "purchase", AS_OF - 300 * DAY),
            ("viewer", "page_view", AS_OF - 6 * DAY),
            ("viewer", "search", AS_OF - DAY),
            ("cart", "cart_add", AS_OF - 13 * DAY),
            ("cart", "cart_add", AS_OF - 2 * DAY),
        ],
    )
    assert found == {
        "loyal": AS_OF + 165 * DAY,
        "viewer": AS_OF + 6 * DAY,
        "cart": AS_OF + 12 * DAY,
    }


@pytest.mark.parametrize(
    ("comparator", "steps"),
    [
        ("{eq: 0}", (0,)),
        ("{ne: 0}", (0,)),
        ("{gte: 1, lt: 10}", (0, 9)),
        ("{between: [2, 4]}", (1, 4)),
        ("{gt: 2.5}", (2,)),
        ("{lte: 3}", (3,)),
        ("{in: [1, 3]}", (0, 1, 2, 3)),
        ("{not_in: [0]}", (0,)),
        ("{gte: 0}", ()),
        ("{gte: 65}", None),  # 65 rows to keep per person: the per-row bound
    ],
)
def test_a_count_steps_where_its_comparator_changes(
    tmp_path: Path, comparator: str, steps: tuple[int, ...] | None
) -> None:
    """The steps of a count's comparator: the counts j where truth(j) != truth(j + 1)."""
    segment = f"name: s\nrule: {{event: login, within: 30d, count: {comparator}}}\n"
    root = write_project(tmp_path / "proj", {"s": segment})
    edges = catalogue(lib.Project.load(root).definitions, STAMPS).edges
    expected = Edge("count", frozenset({"login"}), frozenset({MONTH}), steps or ())
    assert edges == (() if steps is None else (expected,))


def test_a_count_with_a_where_or_a_step_in_a_calendar_window_has_no_edge(
    tmp_path: Path,
) -> None:
    """A ``where`` narrows the rows (a bound from every row of the name would be too late),
    and a count in a calendar window has an edge only when its truth moves between 0 and 1
    rows alone: neither of these has one. The ``where`` keeps the per-row bound; the
    calendar window's durations give the local-midnight term alone (no ``v + d`` within a
    local day can move it)."""
    segments = {
        "w": (
            "name: w\nrule: {event: login, where: {person_id: {eq: p1}}, within: 30d, "
            "count: {gte: 1}}\n"
        ),
        "c": "name: c\nrule: {event: login, within: 30d, calendar: true, count: {gte: 2}}\n",
    }
    root = write_project(tmp_path / "proj", segments)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)
    assert cat.edges == ()
    month = frozenset({timedelta(0), MONTH})
    assert {(r.durations, r.calendar, r.rolling) for r in cat.reads if r.table == "events"} == {
        (month, False, True),  # the where: per row
        (month, True, False),  # the calendar window: the local-midnight term alone ...
        (frozenset({timedelta(0)}), False, True),  # ... and rows becoming visible
    }


def test_an_event_no_condition_reads_needs_no_wake_up(cat: Catalogue) -> None:
    found = wakes(cat, [("p", "app_open", AS_OF + HOUR), ("q", "search", AS_OF + HOUR)])
    assert found == {"q": AS_OF + HOUR}  # q's search becomes visible then


def test_the_local_midnight_term_is_the_local_day_conditions_alone(cat: Catalogue) -> None:
    """A login two days ago (streak: a local-day measure) wakes at the next midnight; a
    page_view two days ago waits for its 7-day edge; a visit (distinct_days in a rolling
    window, an edge: one day of the three ``regular`` needs) and a purchase whose 365-day
    edge passed a day ago never wake (the catalogue-wide bound woke them all at the
    midnight)."""
    found = wakes(
        cat,
        [
            ("streaker", "login", AS_OF - 2 * DAY),
            ("viewer", "page_view", AS_OF - 2 * DAY),
            ("visitor", "visit", AS_OF - 2 * DAY),
            ("buyer", "purchase", AS_OF - YEAR - DAY),
        ],
    )
    assert found == {
        "streaker": MIDNIGHT,
        "viewer": AS_OF + 5 * DAY,
    }


def test_person_columns_wake_for_the_comparators_that_read_them(cat: Catalogue) -> None:
    """``created_at`` within 30d: its edge; a person created after as_of: when they appear;
    ``trial_ends``, which no condition reads: never."""
    found = wakes(
        cat,
        [],
        [
            ("recent", AS_OF - 29 * DAY, None),
            ("coming", AS_OF + HOUR, None),
            ("trial", None, AS_OF + HOUR),
        ],
    )
    assert found == {"recent": AS_OF + DAY, "coming": AS_OF + HOUR}


def test_a_condition_kind_it_does_not_know_reads_everything_with_every_duration(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "proj", {"loyal": SEGMENTS["loyal"]})
    definitions = lib.Project.load(root).definitions
    loyal = definitions.segments["loyal"]
    strange = object.__new__(type("Strange", (), {}))
    definitions.segments["loyal"] = type(loyal)(name="loyal", rule=strange)  # type: ignore[arg-type]
    definitions.segments["other"] = loyal
    found = reads(definitions, STAMPS)
    assert Reads(None, None, None, frozenset({timedelta(0), YEAR}), False) in found


def test_time_passing_wakes_only_the_persons_of_the_events_whose_edge_it_crossed(
    tmp_path: Path,
) -> None:
    """A purchase and a page_view, each 365 days and an hour before the first as_of: two hours
    later the purchase has left ``loyal``'s window and its person alone is re-evaluated (and
    exits), the page_view's person is not (the catalogue-wide bound re-evaluated both); a
    cart_add 14 days before (plus an hour) enters ``lapsed`` by its comparator's duration. The
    incremental runs commit what a full run does. (The state machines rarely isolate a
    comparator's duration: their cases draw windows and comparators from a few durations.)"""
    segments = {"loyal": SEGMENTS["loyal"].replace("2", "1"), "lapsed": SEGMENTS["lapsed"]}
    root = write_project(tmp_path / "proj", segments)
    (root / "segments" / "browsing.yaml").write_text(SEGMENTS["browsing"])
    first = datetime(2026, 3, 10, 12, tzinfo=UTC)
    old = first - YEAR + HOUR
    rows = [("buyer", "purchase", old), ("viewer", "page_view", old)]
    rows += [("buyer", "login", first - 2 * DAY), ("viewer", "login", first - 2 * DAY)]
    rows += [("shopper", "cart_add", first - FORTNIGHT + HOUR)]
    write_events(root / "events.parquet", rows)
    (root / "persons.csv").write_text("person_id\nbuyer\nviewer\nshopper\n")
    lib.Project.load(root).run(as_of=iso(first))
    assert set(lib.Project.load(root).members("loyal")["person_id"].to_list()) == {"buyer"}
    assert lib.Project.load(root).members("lapsed")["person_id"].to_list() == []
    later = lib.Project.load(root).run(as_of=iso(first + 2 * HOUR))
    assert later.incremental and later.persons_evaluated == 2  # buyer and shopper
    assert later.changes["loyal"].exited == 1
    assert later.changes["lapsed"].entered == 1
    assert lib.Project.load(root).verify().equal


def test_a_count_is_re_evaluated_when_the_row_that_crosses_its_step_leaves(
    tmp_path: Path,
) -> None:
    """``frequent``: three purchases in 30 days. Two hours after the first run the oldest
    purchase of both ``three`` and ``four`` leaves the window: ``three`` falls to two and
    exits, ``four`` stays a member and is not re-evaluated (the per-row bound re-evaluated
    both). The incremental run commits what a full run does."""
    frequent = "name: frequent\nrule: {event: purchase, within: 30d, count: {gte: 3}}\n"
    root = write_project(tmp_path / "proj", {"frequent": frequent})
    first = datetime(2026, 3, 10, 12, tzinfo=UTC)
    leaving = first - MONTH + HOUR
    rows = [("three", leaving), ("three", first - 10 * DAY), ("three", first - 5 * DAY)]
    rows += [("four", leaving), *(("four", first - n * DAY) for n in (20, 10, 5))]
    write_events(root / "events.parquet", [(p, "purchase", t) for p, t in rows])
    (root / "persons.csv").write_text("person_id\nthree\nfour\n")
    lib.Project.load(root).run(as_of=iso(first))
    members = set(lib.Project.load(root).members("frequent")["person_id"].to_list())
    assert members == {"three", "four"}
    later = lib.Project.load(root).run(as_of=iso(first + 2 * HOUR))
    assert later.incremental and later.persons_evaluated == 1
    assert later.changes["frequent"].exited == 1
    assert lib.Project.load(root).members("frequent")["person_id"].to_list() == ["four"]
    assert lib.Project.load(root).verify().equal


def test_an_edge_the_per_row_bound_already_covers_is_dropped(tmp_path: Path) -> None:
    """Two events in ``between: [30d, 7d]`` keep the per-row bound: every event wakes at its
    7- and 30-day edges. A count of any event in 30 days then needs no edge of its own (it
    could only wake later), a count in 14 days does."""
    segments = {
        "twice": "name: twice\nrule: {event: '*', between: [30d, 7d], count: {gte: 2}}\n",
        "month": "name: month\nrule: {event: '*', within: 30d, count: {gte: 1}}\n",
        "fortnight": "name: fortnight\nrule: {event: login, within: 14d, count: {gte: 1}}\n",
    }
    root = write_project(tmp_path / "proj", segments)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)
    assert cat.edges == (Edge("count", frozenset({"login"}), frozenset({FORTNIGHT}), (0,)),)


def test_distinct_days_and_between_windows_wake_at_their_edges(tmp_path: Path) -> None:
    """``regular`` (3 distinct days of visits in 30 days) with visits on four days: when the
    third newest day's newest visit leaves. ``lapsing`` (an order 60 to 30 days ago): with
    orders in that window, when the newest of them leaves (an order entering cannot make it
    false); with none, when the oldest order of the last 30 days enters."""
    segments = {
        "regular": SEGMENTS["regular"],
        "lapsing": "name: lapsing\nrule: {event: order, between: [60d, 30d], count: {gte: 1}}\n",
    }
    root = write_project(tmp_path / "proj", segments)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)
    ten = AS_OF - 10 * DAY
    visits = [ten - 10 * DAY, ten, ten + HOUR, AS_OF - 5 * DAY, AS_OF - DAY]
    found = wakes(
        cat,
        [
            *(("visitor", "visit", t) for t in visits),
            *(("in", "order", AS_OF - n * DAY) for n in (40, 35)),
            ("coming", "order", ten),
            *(("both", "order", t) for t in (AS_OF - 40 * DAY, ten)),
        ],
    )
    assert found == {
        "visitor": ten + HOUR + MONTH,
        "in": AS_OF - 35 * DAY + 60 * DAY,
        "coming": ten + MONTH,
        "both": AS_OF - 40 * DAY + 60 * DAY,
    }


def test_a_calendar_window_moves_at_local_midnights_alone(tmp_path: Path) -> None:
    """A login 7 days before as_of plus an hour, in a 7-day calendar window: its rolling edge
    (an hour after as_of) cannot move the window, whose edges are local midnights; it wakes
    at the next one. A login after as_of wakes when it becomes visible."""
    segment = "name: week\nrule: {event: login, within: 7d, calendar: true, count: {gte: 1}}\n"
    root = write_project(tmp_path / "proj", {"week": segment})
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)
    found = wakes(
        cat,
        [("past", "login", AS_OF - WEEK + HOUR), ("coming", "login", AS_OF + HOUR)],
    )
    assert found == {"past": MIDNIGHT, "coming": AS_OF + HOUR}


def test_a_calendar_window_does_not_cover_an_edge(tmp_path: Path) -> None:
    """A calendar window's 7 days (two events: no edge of its own) give the local-midnight
    term alone: they do not wake a row 7 days after it, so a rolling count in 7 days keeps
    its edge."""
    segments = {
        "calendar": (
            "name: calendar\nrule: {event: '*', within: 7d, calendar: true, count: {gte: 2}}\n"
        ),
        "rolling": "name: rolling\nrule: {event: '*', within: 7d, count: {gte: 1}}\n",
    }
    root = write_project(tmp_path / "proj", segments)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)
    assert cat.edges == (Edge("count", None, frozenset({WEEK}), (0,)),)


def test_edges_on_the_same_rows_share_one_and_too_many_keep_the_per_row_bound(
    tmp_path: Path,
) -> None:
    """Two counts of logins in 30 days (one and three) make one edge with both steps (a step
    more can only wake earlier). Each ``distinct_days`` edge is a pass of its own over the
    events of its window: the first two are kept (in the order of the segments' names),
    the third keeps the per-row bound."""
    segments = {
        "one": "name: one\nrule: {event: login, within: 30d, count: {gte: 1}}\n",
        "three": "name: three\nrule: {event: login, within: 30d, count: {gte: 3}}\n",
        "days": "name: days\nrule: {event: login, within: 30d, distinct_days: {gte: 2}}\n",
        "quizzes": "name: quizzes\nrule: {event: quiz, within: 90d, distinct_days: {gte: 5}}\n",
        "visits": "name: visits\nrule: {event: visit, within: 7d, distinct_days: {gte: 2}}\n",
    }
    root = write_project(tmp_path / "proj", segments)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)
    login = frozenset({"login"})
    assert set(cat.edges) == {
        Edge("count", login, frozenset({MONTH}), (0, 2)),
        Edge("distinct_days", login, frozenset({MONTH}), (1,)),
        Edge("distinct_days", frozenset({"quiz"}), frozenset({timedelta(days=90)}), (4,)),
    }
    stamp = frozenset({"timestamp"})
    assert Reads("events", frozenset({"visit"}), stamp, frozenset({timedelta(0), WEEK}), False) in (
        cat.reads
    )


CALENDAR = {
    "week": "name: week\nrule: {event: buy, within: 7d, calendar: true, count: {gte: 1}}\n",
    "earlier": (
        "name: earlier\nrule: {event: view, between: [30d, 7d], calendar: true, count: {gte: 1}}\n"
    ),
    # Logged in during 3 of the last 4 calendar weeks ending yesterday.
    "regulars": dedent("""\
        name: regulars
        rule:
          event: login
          calendar: true
          active_periods: {every: 7d, of_last: 4, offset: 1d, gte: 3}
        """),
}


def test_calendar_counts_and_periods_have_an_edge_per_window(tmp_path: Path) -> None:
    """A count in a calendar window whose truth moves between 0 and 1 row, and
    ``active_periods`` with ``min_count: 1`` (calendar: local days; rolling), have an edge
    over their periods' boundaries, with the steps of the number of periods active. Two
    events a period are not an edge's 0 and 1: the per-row bound."""
    segments = {
        **CALENDAR,
        "rolling": (
            "name: rolling\nrule: {event: visit, active_periods: {every: 7d, of_last: 2, gte: 1}}\n"
        ),
        "twice": (
            "name: twice\nrule: {event: chat, calendar: true, active_periods: {every: 7d, "
            "of_last: 2, min_count: 2, gte: 1}}\n"
        ),
    }
    root = write_project(tmp_path / "proj", segments)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)

    def days(*counts: int) -> frozenset[timedelta]:
        return frozenset(n * DAY for n in counts)

    assert set(cat.edges) == {
        Edge("calendar", frozenset({"buy"}), days(0, 8), (0,)),  # days D - 7 .. D
        Edge("calendar", frozenset({"view"}), days(8, 31), (0,)),  # days D - 30 .. D - 8
        # Days D - 7 .. D - 1, D - 14 .. D - 8, ...; the number of them crosses 2 to 3.
        Edge("calendar", frozenset({"login"}), days(1, 8, 15, 22, 29), (2,)),
        Edge("periods", frozenset({"visit"}), days(0, 7, 14), (0,)),
    }
    chats = [r for r in cat.reads if r.names == frozenset({"chat"})]
    assert [r.calendar for r in chats if len(r.durations) > 1] == [True]


def test_a_calendar_edge_wakes_at_the_local_midnight_its_measure_crosses_a_step(
    tmp_path: Path,
) -> None:
    """At AS_OF (Tuesday 10 March), ``regulars``' periods are the local days 3-9 March,
    24 February-2 March, 17-23 and 10-16 February; each midnight moves them a day on.
    Logging in daily until today keeps 3 periods active until the 25th (period 1 is then
    empty too). Logins on 5 March, 26 February and 19 February make 3 periods active until
    the 20th (the oldest has left period 3); on the 5th, the 26th and today, 2 until the
    13th, when today's is in period 0, the 5th's in period 1 and the 26th's in period 2. A
    single login never makes 3 periods active: no wake-up. A
    purchase on the 4th leaves ``week`` (days D - 7 .. D) at the start of the 12th, a view
    on the 5th enters ``earlier`` (D - 30 .. D - 8) at the start of the 13th, one on 12
    February leaves it at the start of the 15th. The local-midnight term the calendar
    windows gave before woke them all at the next midnight."""
    root = write_project(tmp_path / "proj", CALENDAR)
    cat = catalogue(lib.Project.load(root).definitions, STAMPS)

    def logins(person: str, *days: tuple[int, int]) -> list[tuple[str, str, datetime]]:
        return [(person, "login", datetime(2026, m, d, 9)) for m, d in days]

    rows = [
        *(("daily", "login", datetime(2026, 2, 5, 9) + n * DAY) for n in range(34)),
        *logins("three", (3, 5), (2, 26), (2, 19)),
        *logins("two", (3, 5), (2, 26), (3, 10)),
        *logins("once", (3, 6)),
        ("buyer", "buy", datetime(2026, 3, 4, 9)),
        ("coming", "view", datetime(2026, 3, 5, 9)),
        ("leaving", "view", datetime(2026, 2, 12, 9)),
    ]
    assert wakes(cat, rows) == {
        "daily": datetime(2026, 3, 25),
        "three": datetime(2026, 3, 20),
        "two": datetime(2026, 3, 13),
        "buyer": datetime(2026, 3, 12),
        "coming": datetime(2026, 3, 13),
        "leaving": datetime(2026, 3, 15),
    }
    # In New York the local midnights are 04:00 UTC (daylight saving time from 8 March),
    # and a row's local day is New York's: 6 March 02:00 UTC is the 5th there.
    york = [("late", "buy", datetime(2026, 3, 6, 2)), ("buyer", "buy", datetime(2026, 3, 4, 9))]
    assert wakes(cat, york, timezone="America/New_York") == {
        "late": datetime(2026, 3, 13, 4),
        "buyer": datetime(2026, 3, 12, 4),
    }


def test_a_where_on_a_column_of_the_events_narrows_the_edge_to_its_rows(tmp_path: Path) -> None:
    """``where: {format: ...}`` on the events' own column: the count's edge is over the rows
    that pass it. Three mp4 exports (20, 10 and 5 days ago) and a gif yesterday: the third
    newest mp4 leaves in 10 days (over every export, the third newest would be 10 days ago,
    leaving in 20: too late). A nested property or a test of as_of keeps the per-row bound."""
    segments = {
        "mp4": (
            "name: mp4\nrule: {event: export, where: {format: {in: [mp4, mov]}}, within: 30d, "
            "count: {gte: 3}}\n"
        ),
        "nested": (
            "name: nested\nrule: {event: share, where: {properties.plan: {eq: pro}}, "
            "within: 30d, count: {gte: 1}}\n"
        ),
        "recent": (
            "name: recent\nrule: {event: visit, where: {timestamp: {within: 7d}}, within: 30d, "
            "count: {gte: 1}}\n"
        ),
    }
    root = write_project(tmp_path / "proj", segments)
    one = {"person_id": ["p1"], "event": ["export"], "format": ["mp4"]}
    pq.write_table(
        pa.table(
            {
                **one,
                "timestamp": pa.array([AS_OF], pa.timestamp("us", tz="UTC")),
                "properties": [{"plan": "pro"}],
            }
        ),
        root / "events.parquet",
    )
    project = lib.Project.load(root)
    columns = project.schema["events"]
    assert {"format", "properties"} <= set(columns)
    cat = catalogue(project.definitions, STAMPS, columns)
    [edge] = cat.edges
    assert (edge.kind, edge.names, edge.durations, edge.steps) == (
        "count",
        frozenset({"export"}),
        frozenset({MONTH}),
        (2,),
    )
    assert [t.column for t in edge.where] == ["format"]
    assert {r.names for r in cat.reads if r.durations > {timedelta(0)}} >= {
        frozenset({"share"}),
        frozenset({"visit"}),
    }

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (person_id VARCHAR, event VARCHAR, timestamp TIMESTAMP, "
        "format VARCHAR)"
    )
    rows = [("p", "export", AS_OF - n * DAY, "mp4") for n in (20, 10, 5)]
    con.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?)", [*rows, ("p", "export", AS_OF - DAY, "gif")]
    )
    schema: Schema = {"events": {**SCHEMA["events"], "format": ColumnType.STRING}}
    found = dict(
        con.execute(
            wake_sql(schema, dataclasses.replace(cat, reads=()), AS_OF, "UTC", None)
        ).fetchall()
    )
    assert found == {"p": AS_OF + 10 * DAY}


# ---- the bound against the reference evaluator -----------------------------------------------

ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]


@st.composite
def edge_rules(draw: st.DrawFn) -> dict[str, Any]:
    """A rule of one of the forms with an edge (or just beside one: a step it lacks, a
    ``min_count`` above 1), over logins or any event, sometimes with a ``where``."""
    rule: dict[str, Any] = {"event": draw(st.sampled_from(["login", "*"]))}
    if draw(st.booleans()):
        rule["where"] = {"format": {"eq": "mp4"}}
    op = draw(st.sampled_from(["gte", "lte", "eq", "gt"]))
    form = draw(
        st.sampled_from(["within", "between", "periods", "calendar periods", "distinct days"])
    )
    calendar = form != "periods" and draw(st.booleans())
    if form in ("within", "distinct days"):
        unit = "d" if calendar else draw(st.sampled_from(["h", "d"]))
        rule["within"] = f"{draw(st.integers(1 if unit == 'h' else 0, 9))}{unit}"
    elif form == "between":
        near = draw(st.integers(0, 6))
        rule["between"] = [f"{near + draw(st.integers(1, 6))}d", f"{near}d"]
    if calendar:
        rule["calendar"] = True
    if form in ("periods", "calendar periods"):
        rule["calendar"] = form == "calendar periods"
        of_last = draw(st.integers(1, 4))
        periods: dict[str, Any] = {
            "every": f"{draw(st.integers(1, 4))}d",
            "of_last": of_last,
            op: draw(st.integers(0, of_last)),
        }
        if draw(st.booleans()):
            periods["offset"] = f"{draw(st.integers(1, 2))}d"
        if draw(st.integers(0, 4)) == 0:
            periods["min_count"] = 2
        rule["active_periods"] = periods
    else:
        measure = "distinct_days" if form == "distinct days" else "count"
        rule[measure] = {op: draw(st.integers(0, 3))}
    return rule


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The shapes where a late bound shows, besides the search: rolling periods, a count crossing
# a step above 0 (the second newest row leaving), distinct days, calendar periods and a
# calendar window with a where.
@example(  # rolling periods: a row leaving the only period, one entering it
    rule={"event": "login", "active_periods": {"every": "1d", "of_last": 1, "gte": 1}},
    timezone="UTC",
    rows=[("login", "mp4", -20, 0)],
)
@example(
    rule={
        "event": "login",
        "active_periods": {"every": "1d", "of_last": 1, "offset": "1d", "gte": 1},
    },
    timezone="UTC",
    rows=[("login", "mp4", -10, 0)],
)
@example(
    rule={"event": "login", "within": "5d", "count": {"gte": 2}},
    timezone="UTC",
    rows=[("login", "mp4", -96, 0), ("login", "mp4", -24, 0), ("visit", "gif", -1, 0)],
)
@example(
    rule={"event": "*", "within": "4d", "distinct_days": {"gte": 2}},
    timezone="Asia/Kolkata",
    rows=[("login", "mp4", -80, 0), ("visit", "gif", -79, 30), ("login", "gif", -2, 0)],
)
@example(
    rule={
        "event": "login",
        "calendar": True,
        "active_periods": {"every": "2d", "of_last": 3, "offset": "1d", "gte": 2},
    },
    timezone="America/New_York",
    rows=[("login", "mp4", -30, 0), ("login", "mp4", -80, 0), ("login", "gif", -130, 0)],
)
@example(
    rule={
        "event": "login",
        "where": {"format": {"eq": "mp4"}},
        "within": "3d",
        "calendar": True,
        "count": {"gte": 1},
    },
    timezone="Pacific/Auckland",
    rows=[("login", "mp4", -70, 0), ("login", "gif", -2, 0)],
)
@given(
    rule=edge_rules(),
    timezone=st.sampled_from(ZONES),
    rows=st.lists(
        st.tuples(
            st.sampled_from(["login", "visit"]),
            st.sampled_from(["mp4", "gif"]),
            # Hours from AS_OF (plus minutes): near it for windows of hours, within days of
            # it for windows of days, up to 40 days back for periods.
            st.one_of(st.integers(-12, 2), st.integers(-10 * 24, 2 * 24), st.integers(-960, 0)),
            st.integers(0, 59),
        ),
        max_size=8,
    ),
)
def test_no_membership_changes_before_the_wake_up_time(
    rule: dict[str, Any], timezone: str, rows: list[tuple[str, str, int, int]]
) -> None:
    """For one person's rows around AS_OF and a rule of each form with an edge (or beside
    one), in several timezones, the reference evaluator's membership is the same at every
    instant from AS_OF up to the wake-up time. It is checked where a membership can change:
    at each local midnight, at each row's ``v`` and ``v + d`` for the catalogue's
    durations (and a day later, for calendar windows), each plus a microsecond, and just
    before the wake-up time. The bound may be early, never late."""
    events = [
        {"person_id": "p", "event": name, "format": fmt, "timestamp": AS_OF + h * HOUR + m * MINUTE}
        for name, fmt, h, m in rows
    ]
    segment = {"name": "s", "rule": rule}
    with tempfile.TemporaryDirectory() as folder:
        root = write_project(Path(folder) / "proj", {"s": yaml.safe_dump(segment)})
        table = {
            "person_id": ["p1"],
            "event": ["login"],
            "format": ["mp4"],
            "timestamp": pa.array([AS_OF], pa.timestamp("us", tz="UTC")),
        }
        pq.write_table(pa.table(table), root / "events.parquet")
        project = lib.Project.load(root)
        cat = catalogue(project.definitions, STAMPS, project.schema["events"])
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (person_id VARCHAR, event VARCHAR, timestamp TIMESTAMP, "
        "format VARCHAR)"
    )
    for e in events:
        con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            [e["person_id"], e["event"], e["timestamp"], e["format"]],
        )
    schema: Schema = {"events": {**SCHEMA["events"], "format": ColumnType.STRING}}
    found = dict(con.execute(wake_sql(schema, cat, AS_OF, timezone, None)).fetchall())
    wake = found.get("p", AS_OF + 80 * DAY)
    assert wake >= AS_OF

    def member(at: datetime) -> bool:
        utc = [{**e, "timestamp": e["timestamp"].replace(tzinfo=UTC)} for e in events]
        members = reference.evaluate(
            {"s": segment}, [{"person_id": "p"}], utc, [], at.replace(tzinfo=UTC), timezone
        )
        return "p" in members["s"]

    zone = ZoneInfo(timezone)
    first = datetime.combine(AS_OF.date() - timedelta(days=1), datetime.min.time(), zone)
    midnights = [(first + n * DAY).astimezone(UTC).replace(tzinfo=None) for n in range(80)]
    crossings = [e["timestamp"] + d for e in events for d in (timedelta(0), *cat.durations)]
    marks = {
        t + j
        for t in [*midnights, *crossings, *[c + DAY for c in crossings]]
        for j in (timedelta(0), MICRO)
    }
    now = member(AS_OF)
    for instant in sorted(m for m in marks | {wake - MICRO} if AS_OF <= m < wake):
        assert member(instant) == now, (instant, wake, found)
