"""The wake-up bound of incremental runs (segctl/wakeup.py): each condition's durations apply
to the rows it reads, and the local-midnight term to the local-day conditions' alone.

Its exactness is proved by tests/test_incremental.py's state machines (incremental runs equal
full runs and the reference); these tests show that the bound is tight where it may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stateproject import iso, write_project

import segctl as lib
from segctl.definitions.model import ColumnType, Schema
from segctl.wakeup import Catalogue, Reads, catalogue, reads, wake_sql

AS_OF = datetime(2026, 3, 10, 12)
MIDNIGHT = datetime(2026, 3, 11)  # the first local (UTC) midnight after AS_OF
HOUR = timedelta(hours=1)
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
    rows = con.execute(wake_sql(SCHEMA, cat, AS_OF, "UTC", None)).fetchall()
    return {person: wake for person, wake in rows}


def test_each_condition_reads_its_own_rows_with_its_own_durations(cat: Catalogue) -> None:
    zero = timedelta(0)
    assert set(cat.reads) == {
        Reads("persons", None, frozenset({"created_at"}), frozenset({zero}), False),
        Reads(
            "events",
            frozenset({"purchase"}),
            frozenset({"timestamp"}),
            frozenset({zero, YEAR}),
            False,
        ),
        Reads(
            "events",
            frozenset({"page_view", "search"}),
            frozenset({"timestamp"}),
            frozenset({zero, WEEK}),
            False,
        ),
        Reads(
            "events",
            frozenset({"cart_add"}),
            frozenset({"timestamp"}),
            frozenset({zero, FORTNIGHT}),
            False,
        ),
        Reads(
            "events",
            frozenset({"visit"}),
            frozenset({"timestamp"}),
            frozenset({zero, MONTH}),
            False,
        ),
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
    # All durations still (the state machines step as_of by them), and local days are used.
    assert cat.durations == (zero, WEEK, FORTNIGHT, MONTH, YEAR)
    assert cat.calendar


def test_a_duration_wakes_only_the_rows_of_the_events_it_applies_to(cat: Catalogue) -> None:
    """A page_view 365 days before as_of (plus an hour) reaches no page_view duration: its
    person never wakes; a purchase at the same time wakes its person an hour after as_of. (The
    catalogue-wide bound woke both then, and both again at the next midnight.)"""
    old = AS_OF - YEAR + HOUR
    found = wakes(cat, [("viewer", "page_view", old), ("buyer", "purchase", old)])
    assert found == {"buyer": AS_OF + HOUR}


def test_an_event_no_condition_reads_needs_no_wake_up(cat: Catalogue) -> None:
    found = wakes(cat, [("p", "app_open", AS_OF + HOUR), ("q", "search", AS_OF + HOUR)])
    assert found == {"q": AS_OF + HOUR}  # q's search becomes visible then


def test_the_local_midnight_term_is_the_local_day_conditions_alone(cat: Catalogue) -> None:
    """A login two days ago (streak: a local-day measure) wakes at the next midnight; a
    page_view two days ago waits for its 7-day edge, a visit (distinct_days in a rolling
    window) for its 30-day edge, and a purchase whose 365-day edge passed a day ago never wakes
    (the catalogue-wide bound woke them all at the midnight)."""
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
        "visitor": AS_OF + 28 * DAY,
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
    pq.write_table(
        pa.table(
            {
                "person_id": [r[0] for r in rows],
                "event": [r[1] for r in rows],
                "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            }
        ),
        root / "events.parquet",
    )
    (root / "persons.csv").write_text("person_id\nbuyer\nviewer\nshopper\n")
    lib.Project.load(root).run(as_of=iso(first))
    assert set(lib.Project.load(root).members("loyal")["person_id"].to_list()) == {"buyer"}
    assert lib.Project.load(root).members("lapsed")["person_id"].to_list() == []
    later = lib.Project.load(root).run(as_of=iso(first + 2 * HOUR))
    assert later.incremental and later.persons_evaluated == 2  # buyer and shopper
    assert later.changes["loyal"].exited == 1
    assert later.changes["lapsed"].entered == 1
    assert lib.Project.load(root).verify().equal
