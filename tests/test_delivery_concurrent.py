"""Audiences synced at once (segctl/delivery/audiences/): limits kept, failures contained,
and the hashes DuckDB computes in bulk equal to segctl's own, value for value."""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import duckdb
import pytest
from fakes import GoogleFake, MetaFake
from stateproject import segctl

import segctl as lib
from segctl.delivery.audiences.stage import IDENTIFIERS_SQL
from segctl.delivery.identifiers import (
    PLATFORMS,
    IdentityStats,
    bulk_hash_sql,
    bulk_identity,
    hash_identity,
)
from segctl.delivery.platforms.base import Member

AS_OF = "2026-06-01T00:00:00Z"
PERSONS = 60
# Values the bulk path must leave to Python (phones without a country code, spaces around,
# unicode), mixed in with the plain ones.
ODD = {
    3: ("  Odd.Case@Example.COM ", "(555) 987 6543"),
    7: ("ünïcode@example.com", "+44 20 7946 0958"),
    11: ("Jefferson.Loves.hiking@gmail.com", "0044 20 7946 0958"),
    13: ("not an email", "12"),
}


def person(i: int) -> tuple[str, str, str]:
    email, phone = ODD.get(i, (f"user{i}@example.com", f"+1 555 000 {i:04d}"))
    return f"u{i:03d}", email, phone


def write_project(root: Path, meta: MetaFake, google: GoogleFake, ids: list[str]) -> Path:
    (root / "segments").mkdir(parents=True)
    rows = ["person_id,email,phone,country,n"] + [
        ",".join([*person(i), "US", str(i)]) for i in range(PERSONS)
    ]
    (root / "persons.csv").write_text("\n".join(rows) + "\n")
    (root / "events.csv").write_text("person_id,event,timestamp\nu000,login,2026-01-01T00:00:00Z\n")
    (root / "segctl.yaml").write_text(
        dedent(f"""\
        data: {{events: events.csv, persons: persons.csv}}
        destinations:
          meta: {{type: meta, ad_account_id: "1", access_token: meta-token,
                  base_url: "{meta.base_url}", backoff: 0.01, concurrency: 2, rate_limit: 40}}
          google: {{type: google, operating_account_id: "1234567890", access_token: google-token,
                    base_url: "{google.base_url}", backoff: 0.01, concurrency: 2,
                    rate_limit: 40}}
        """)
    )
    for name, rule, meta_id, google_id in (
        ("everyone", "{property: n, gte: 0}", ids[0], "7001"),
        ("first", "{property: n, lt: 30}", ids[1], "7002"),
    ):
        (root / "segments" / f"{name}.yaml").write_text(
            dedent(f"""\
            name: {name}
            rule: {rule}
            audiences:
              - {{destination: meta, audience_id: "{meta_id}"}}
              - {{destination: google, user_list_id: "{google_id}"}}
            """)
        )
    return root


def expected(platform: str, persons: range) -> set[str]:
    found = set()
    for i in persons:
        pid, email, phone = person(i)
        identity = hash_identity(
            {"person_id": pid, "email": email, "phone": phone, "country": "US"}, platform
        )
        found |= {identity.email} if identity.email else set()
    return found


@dataclass
class Setup:
    meta: MetaFake
    google: GoogleFake
    ids: list[str]  # the two Meta audiences (Google's lists are 7001 and 7002)
    root: Path


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    from segctl.delivery.platforms.google import GoogleAudience
    from segctl.delivery.platforms.meta import MetaAudience

    # Small batches and slow answers: many requests, overlapping whenever segctl lets them.
    # Google answers in 60 ms, longer than the 25 ms between two requests at 40/s: with a
    # concurrency of 2 they must overlap (at 20 ms, a fast machine sent them one by one).
    monkeypatch.setattr(MetaAudience, "max_batch", 7)
    monkeypatch.setattr(GoogleAudience, "max_batch", 7)
    monkeypatch.setattr(GoogleAudience, "status_polls", (0.0,))
    with (
        MetaFake(latency=0.02, rate_limit=(60, 1.0)) as meta,
        GoogleFake(latency=0.06, rate_limit=(60, 1.0), max_concurrent=2) as google,
    ):
        meta.concurrency_limit = 2
        ids = [meta.create_audience(), meta.create_audience()]
        yield Setup(meta, google, ids, write_project(tmp_path / "proj", meta, google, ids))
        assert meta.pii_leaks == [] and google.pii_leaks == []


def test_audiences_on_one_destination_synced_at_once_keep_its_limits_and_end_exact(
    setup: Setup,
) -> None:
    meta, google, ids, root = setup.meta, setup.google, setup.ids, setup.root
    planned = lib.Project.load(root).run(as_of=AS_OF, dry_run=True).plan
    assert planned is not None and meta.requests == google.requests == []
    report = lib.Project.load(root).run(as_of=AS_OF).report
    assert report is not None and report.failed == 0 and report.pending == 0
    # The dry run's plan said what the run did: per audience, the persons added and those
    # skipped for want of an identifier the platform takes (u013; the odd values are read
    # by Python, as in the sync).
    done = {
        (a["destination"], a["audience"]): (a["details"]["added"], a["details"]["skipped"])
        for a in lib.Project.load(root).status()["audiences"]
    }
    audience = {("meta", "everyone"): ids[0], ("meta", "first"): ids[1]}
    audience |= {("google", "everyone"): "7001", ("google", "first"): "7002"}
    assert {
        (r.destination, audience[r.destination, r.segment]): (r.adds, r.skipped) for r in planned
    } == done
    assert sorted(done.values()) == [(29, 1), (29, 1), (59, 1), (59, 1)]
    for platform_ids, persons in (
        (("7001", ids[0]), range(PERSONS)),
        (("7002", ids[1]), range(30)),
    ):
        google_id, meta_id = platform_ids
        assert {row[0] for row in meta.audience(meta_id)} - {""} == expected("meta", persons)
        assert set(google.identifiers(google_id, "emailAddress")) == expected("google", persons)
    meta.assert_limits()  # two at a time at most, 40/s (not 40/s each), over both audiences
    google.assert_limits()
    # The batches of one upload share a session and count up from 1 (API_CONTRACTS, Meta).
    for meta_id in ids:
        adds = [json.loads(r.form["session"]) for r in meta.calls("add_users") if meta_id in r.path]
        assert len(adds) > 1 and len({a["session_id"] for a in adds}) == 1
        assert [a["batch_seq"] for a in adds] == list(range(1, len(adds) + 1))
        assert [a["last_batch_flag"] for a in adds] == [False] * (len(adds) - 1) + [True]
    assert google.max_concurrent == 2  # the batches did go at once
    # A dry run plans without sending: only u013, who has no identifier Google takes, is left.
    sent = len(google.requests)
    [plan] = lib.Project.load(root).sync("everyone", "google", mode="mirror", dry_run=True)
    assert (plan.added, plan.removed, plan.skipped, plan.error) == (0, 0, 1, None)
    assert len(google.requests) == sent


def test_a_permanent_failure_of_one_audience_leaves_the_others_synced(
    setup: Setup,
) -> None:
    meta, google, ids, root = setup.meta, setup.google, setup.ids, setup.root
    meta.inject(platform_error=100, path=ids[1], times=None)  # refuses the second audience
    report = lib.Project.load(root).run(as_of=AS_OF).report
    assert report is not None and report.failed == 1
    assert meta.audience(ids[1]) == set()
    assert {row[0] for row in meta.audience(ids[0])} == expected("meta", range(PERSONS))
    assert set(google.identifiers("7002", "emailAddress")) == expected("google", range(30))
    status = lib.Project.load(root).status()
    [failed] = [d for d in status["deliveries"] if d["status"] == "failed"]
    assert failed["destination"] == "meta" and "HTTP 400" in failed["last_error"]


def test_sync_in_remove_mode_only_removes(
    setup: Setup,
) -> None:
    google, root = setup.google, setup.root
    lib.Project.load(root).run(as_of=AS_OF)
    persons = root / "persons.csv"  # u000 leaves segment first, u040 enters it
    text = persons.read_text().replace(",US,0\n", ",US,100\n").replace(",US,40\n", ",US,5\n")
    persons.write_text(text)
    google.inject(platform_error="INVALID_ARGUMENT", endpoint="ingest", times=None)
    lib.Project.load(root).run(as_of="2026-06-02T00:00:00Z")  # u040 could not be added
    google.clear_faults()
    [result] = lib.Project.load(root).sync("first", "google", mode="remove")
    assert (result.added, result.removed) == (0, 0)  # u000 was removed by the run
    assert set(google.identifiers("7002", "emailAddress")) == expected("google", range(1, 30))


def test_a_sync_dry_run_counts_the_removals_in_the_size_it_warns_about(setup: Setup) -> None:
    """The dry run's size is the members synced, plus its adds, minus its removals: 59
    synced (u013 has no identifier Meta takes), 10 leaving, an audience of 49, below Meta's
    minimum of 100 (counting the removals as adds said 69)."""
    meta, ids, root = setup.meta, setup.ids, setup.root
    lib.Project.load(root).run(as_of=AS_OF)
    persons = root / "persons.csv"
    kept = [line for line in persons.read_text().splitlines() if not line.startswith("u05")]
    persons.write_text("\n".join(kept) + "\n")  # u050 to u059 leave
    crash = {"SEGCTL_CRASH_AT": "commit:after-commit"}  # the run commits, syncs nothing
    proc = segctl(root, "run", "--as-of", "2026-06-02T00:00:00Z", env=crash)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    sent = len(meta.requests)
    [plan] = lib.Project.load(root).sync("everyone", "meta", mode="mirror", dry_run=True)
    assert (plan.added, plan.removed, plan.error) == (0, 10, None)
    assert plan.warnings == [
        f"meta audience {ids[0]} would hold 49 people, below the platform's minimum of 100"
    ]
    assert len(meta.requests) == sent


# ---- hashes in bulk ---------------------------------------------------------------------------


def tricky_values(rng: random.Random) -> list[tuple[str | None, str | None, str | None]]:
    pieces = [*"abcXYZ09.+@-_ ()/~!#", "\t", "\n", "é", "İ", "ß", "٣", "²", "\u00a0", "@@", "０"]
    domains = ["gmail.com", "GoogleMail.com", "x.io", "", "@b"]

    def junk(n: int) -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, n)))

    def phone() -> str:
        return rng.choice(["+", "", "00", " +", "(+"]) + "".join(
            rng.choice("0123456789 -./()٤") for _ in range(rng.randint(0, 18))
        )

    fixed = [
        (None, None, None),
        ("", "", ""),
        (" Mary@Example.com ", "1-800-555-0100", "US"),
        ("Jefferson.Loves.hiking@gmail.com", "+1 800 555 0100", None),
        ("user.name+NYC@Example.com", "+1.800/555-0100 ", "gb"),
        (".+x@gmail.com", "+0123456789", None),
        ("+@googlemail.com", "+1234567", "US"),
        ("a@b@c", "+1234567890123456", None),
        ("x y@z.com", "+123456789012345", "FR"),
        ("@x", "+٣٣٣٣٣٣٣٣٣", None),
        # issue 16: unicode digits, trunk zeros, no "+", country names, tabs, pre-hashed
        ("mary\t@example.com", "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", None),
        ("MARY@EXAMPLE.COM", "+44 020 7946 0958", None),
        ("a b@c.de", "+4402079460958", "gb"),
        ("x@y.z", "(+44) 20 7946 0958", None),
        ("F1904CF1A9D73A55FA5DE0AC823C4403DED71AFD4C3248D00BDCD0866552BB79", "15559876543", None),
        ("f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79", "374-93-828222", None),
        ("u@v.w", "(555) 987 6543", "USA"),
        ("u@v.w", "(555) 987 6543", "United States"),
        ("u@v.w", "020 7946 0958", "gbr"),
        ("u@v.w", "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e", None),
        ("u@v.w", "+39 06 1234 5678", None),
        ("u@v.w", "+1 (555) 987-6543", "united kingdom"),
    ]
    drawn = [
        (
            rng.choice([junk(12), junk(6) + "@" + rng.choice(domains), None]),
            rng.choice([phone(), junk(10), None]),
            rng.choice(["US", "GB", "fr", "", None, "usa", "United Kingdom", "Narnia"]),
        )
        for _ in range(4000)
    ]
    return fixed + drawn


@pytest.mark.parametrize("platform", PLATFORMS)
def test_hashes_in_bulk_equal_hash_identity_wherever_they_are_given(platform: str) -> None:
    rows = [(f"p{i}", *values) for i, values in enumerate(tricky_values(random.Random(7)))]
    con = duckdb.connect()
    con.execute("CREATE TABLE persons (person_id VARCHAR, email VARCHAR, phone VARCHAR, c VARCHAR)")
    con.executemany("INSERT INTO persons VALUES (?, ?, ?, ?)", rows)
    people = {
        r[0]: {"person_id": r[0], "email": r[1], "phone": r[2], "country": r[3]} for r in rows
    }
    hashed = bulk_hash_sql(platform, ["person_id", "email", "phone"], "persons p")
    found = con.execute(f"SELECT *, {IDENTIFIERS_SQL} FROM ({hashed})")
    bulk, python = IdentityStats(), IdentityStats()
    exact = 0
    for *row, identifiers in found.fetchall():
        if row[-1]:  # the others are left to hash_identity
            exact += 1
            identity = hash_identity(people[row[0]], platform, python)
            assert bulk_identity(tuple(row), bulk) == identity
            assert identifiers == Member(identity.person_id, identity=identity).identifiers
    assert bulk == python
    assert exact > 500  # the plain shapes were taken in bulk


def test_hashes_in_bulk_leave_other_column_types_and_missing_columns_to_python() -> None:
    con = duckdb.connect()
    found = con.execute(
        bulk_hash_sql(
            "meta", ["person_id", "phone"], "(SELECT 'p1' AS person_id, 18005550100 AS phone) p"
        )
    ).fetchall()
    assert found == [("p1", None, None, False, True, False)]


def test_a_push_killed_between_writing_emitted_events_and_marking_them_is_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emitted events now go out while audiences sync, so a kill -9 in an audience sync can
    land after the events file is written and before its rows are marked sent."""
    import pyarrow.parquet as pq

    from segctl.delivery.worker import EMITTED_FILE, Worker

    root = tmp_path / "proj"
    (root / "segments").mkdir(parents=True)
    (root / "persons.csv").write_text("person_id,n\nu1,1\nu2,2\n")
    (root / "events.csv").write_text("person_id,event,timestamp\nu1,login,2026-01-01T00:00:00Z\n")
    (root / "segctl.yaml").write_text("data: {events: events.csv, persons: persons.csv}\n")
    (root / "segments" / "all.yaml").write_text(
        "name: all\nrule: {property: n, gte: 0}\non_enter:\n  - emit: {event: joined}\n"
    )

    class Killed(BaseException):
        pass

    def killed(self: Worker, rows: list[object]) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Worker, "mark_sent", killed)
        with pytest.raises(Killed):
            lib.Project.load(root).run(as_of=AS_OF, fire_initial=True)
    report = lib.Project.load(root).push()
    assert report.sent == 2 and report.complete
    events = pq.read_table(root / ".segctl" / EMITTED_FILE)
    assert sorted(events.column("person_id").to_pylist()) == ["u1", "u2"]
