"""segctl.sample: determinism, the SPEC data contract, and the planted archetypes."""

from __future__ import annotations

import csv
import pathlib
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segctl import sample

ANCHOR = datetime(2026, 11, 17, tzinfo=UTC)
DAY = timedelta(days=1)
SAMPLE_DATA = pathlib.Path(__file__).resolve().parents[1] / "sample_data"
EVENT_NAMES = {
    "signup", "login", "video_rendered", "export", "pricing_viewed", "email_opened",
    "email_clicked", "purchase", "quiz_completed",
}  # fmt: skip
TEXT_FILES = ("persons", "subscriptions", "vip", "suppressed")


def read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def parse_utc(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return datetime.fromisoformat(text)


class Data:
    """The generated files, parsed once, with per-person indexes."""

    def __init__(self, paths: dict[str, pathlib.Path]) -> None:
        self.paths = paths
        self.persons = read_csv(paths["persons"])
        self.subscriptions = read_csv(paths["subscriptions"])
        self.table = pq.read_table(paths["events"])
        self.events: list[dict[str, Any]] = self.table.to_pylist()
        self.by_person: dict[str, list[dict[str, Any]]] = {}
        for e in self.events:
            if e["timestamp"] <= ANCHOR:  # as the SPEC says: events after as_of are ignored
                self.by_person.setdefault(e["person_id"], []).append(e)
        self.plan = {p["person_id"]: p["plan"] for p in self.persons}
        self.created = {p["person_id"]: parse_utc(p["created_at"]) for p in self.persons}
        self.evaluated = [pid for pid, c in self.created.items() if c <= ANCHOR]

    def count(self, pid: str, event: str, lo: datetime, hi: datetime = ANCHOR) -> int:
        return sum(
            1
            for e in self.by_person.get(pid, [])
            if e["event"] == event and lo < e["timestamp"] <= hi
        )

    def matching(self, predicate: Any) -> list[str]:
        return [pid for pid in self.evaluated if predicate(pid)]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """The full default sample at the anchor the example project uses."""
    return Data(sample.generate(tmp_path_factory.mktemp("full"), anchor=ANCHOR))


# ---- determinism ------------------------------------------------------------------------------


def test_same_seed_and_anchor_give_identical_files(tmp_path: pathlib.Path) -> None:
    a = sample.generate(tmp_path / "a", n_persons=300, seed=11, anchor=ANCHOR)
    b = sample.generate(tmp_path / "b", n_persons=300, seed=11, anchor=ANCHOR)
    for name in TEXT_FILES:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    assert pq.read_table(a["events"]).equals(pq.read_table(b["events"]))


def test_different_seed_gives_different_data(tmp_path: pathlib.Path) -> None:
    a = sample.generate(tmp_path / "a", n_persons=300, seed=11, anchor=ANCHOR)
    b = sample.generate(tmp_path / "b", n_persons=300, seed=12, anchor=ANCHOR)
    assert a["persons"].read_bytes() != b["persons"].read_bytes()
    assert a["subscriptions"].read_bytes() != b["subscriptions"].read_bytes()
    assert not pq.read_table(a["events"]).equals(pq.read_table(b["events"]))


def test_naive_anchor_means_utc(tmp_path: pathlib.Path) -> None:
    a = sample.generate(tmp_path / "a", n_persons=100, anchor=datetime(2026, 11, 17))
    b = sample.generate(tmp_path / "b", n_persons=100, anchor=ANCHOR)
    assert a["persons"].read_bytes() == b["persons"].read_bytes()
    assert pq.read_table(a["events"]).equals(pq.read_table(b["events"]))


def test_default_anchor_is_today_at_midnight_utc(tmp_path: pathlib.Path) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    a = sample.generate(tmp_path / "a", n_persons=100)
    if datetime.now(UTC) - today >= DAY:
        pytest.skip("the day changed while generating")
    b = sample.generate(tmp_path / "b", n_persons=100, anchor=today)
    assert a["persons"].read_bytes() == b["persons"].read_bytes()


def test_committed_sample_data_is_up_to_date(data: Data) -> None:
    """sample_data/ is exactly what `python -m segctl.sample sample_data --anchor 2026-11-17`
    writes; regenerate it after changing the generator."""
    committed = {
        "persons": SAMPLE_DATA / "persons.csv",
        "subscriptions": SAMPLE_DATA / "subscriptions.csv",
        "vip": SAMPLE_DATA / "lists" / "vip.csv",
        "suppressed": SAMPLE_DATA / "lists" / "suppressed.csv",
    }
    for name, path in committed.items():
        assert path.read_bytes() == data.paths[name].read_bytes(), f"{path} is stale"
    assert pq.read_table(SAMPLE_DATA / "events.parquet").equals(data.table)


# ---- the data contract (SPEC section 1) --------------------------------------------------------


def test_persons_contract(data: Data) -> None:
    with data.paths["persons"].open(encoding="utf-8") as fh:
        assert fh.readline().strip().split(",") == sample.PERSON_COLUMNS
    ids = [p["person_id"] for p in data.persons]
    assert len(ids) == 3000
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"u\d{5}", i) for i in ids)
    assert {p["plan"] for p in data.persons} == {"free", "trial", "pro", "premium"}
    assert {p["country"] for p in data.persons} >= {"US", "GB", "DE", "FR", "IN", "BR", "NL"}
    assert all(re.fullmatch(r"[A-Z]{2}", p["country"]) for p in data.persons)
    assert {p["marketing_opt_in"] for p in data.persons} == {"true", "false", ""}
    sizes = [p["company_size"] for p in data.persons]
    assert all(s == "" or int(s) >= 1 for s in sizes)
    assert 0.1 < sizes.count("") / len(sizes) < 0.5
    created = sorted(data.created.values())
    assert ANCHOR - created[0] > 600 * DAY  # spread over about two years
    assert sum(1 for c in created if c > ANCHOR) >= 3  # "not yet created" at the anchor


def test_persons_have_realistic_contact_blemishes(data: Data) -> None:
    emails = [p["email"] for p in data.persons]
    assert 0.01 < emails.count("") / len(emails) < 0.06
    assert sum(1 for e in emails if e and e != e.strip()) >= 10
    assert sum(1 for e in emails if e.strip() != e.strip().lower()) >= 10
    assert sum(1 for e in emails if re.search(r"\..*\+\w+@gmail\.com$", e.strip())) >= 10
    assert all("@" in e for e in emails if e)
    lowered = [e.strip().lower() for e in emails if e]
    assert len(set(lowered)) == len(lowered)
    phones = [p["phone"] for p in data.persons]
    assert 0.05 < phones.count("") / len(phones) < 0.15
    assert any(p.startswith("+1 ") for p in phones)
    assert any(p.startswith("(") for p in phones)  # local format, no country code
    assert any(p.startswith("+44 ") for p in phones)


def test_events_contract(data: Data) -> None:
    schema = data.table.schema
    assert schema.names == [
        "person_id", "event", "timestamp", "amount", "currency", "format", "certification",
        "score", "page", "campaign",
    ]  # fmt: skip
    assert schema.field("person_id").type == pa.string()
    assert schema.field("event").type == pa.string()
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("amount").type == pa.float64()
    assert schema.field("score").type == pa.int64()
    assert 100_000 <= data.table.num_rows <= 150_000
    assert all(e["timestamp"].tzinfo is not None for e in data.events)  # nothing naive
    stamps = [e["timestamp"] for e in data.events]
    assert stamps == sorted(stamps)
    assert {e["event"] for e in data.events} == EVENT_NAMES
    assert {e["person_id"] for e in data.events} <= set(data.plan)


def test_event_properties_belong_to_their_events(data: Data) -> None:
    owners = {
        "amount": {"purchase"}, "currency": {"purchase"}, "format": {"video_rendered", "export"},
        "certification": {"quiz_completed"}, "score": {"quiz_completed"},
        "page": {"pricing_viewed"}, "campaign": {"email_opened", "email_clicked"},
    }  # fmt: skip
    for e in data.events:
        for prop, events in owners.items():
            assert (e[prop] is not None) == (e["event"] in events), (prop, e)
    values: dict[str, set[str | None]] = defaultdict(set)
    for e in data.events:
        for prop in ("currency", "format", "certification", "page"):
            values[prop].add(e[prop])
    assert values["format"] == {None, "mp4", "mov", "gif", "webm"}
    assert values["certification"] == {None, "aws", "gcp", "azure", "k8s"}
    assert values["page"] == {None, "pricing", "pricing_enterprise"}
    assert all(0 <= e["score"] <= 100 for e in data.events if e["score"] is not None)
    assert all(e["amount"] > 0 for e in data.events if e["amount"] is not None)


def test_every_active_person_signs_up_at_created_at(data: Data) -> None:
    signups: dict[str, list[datetime]] = defaultdict(list)
    first: dict[str, datetime] = {}
    for e in data.events:
        first.setdefault(e["person_id"], e["timestamp"])
        if e["event"] == "signup":
            signups[e["person_id"]].append(e["timestamp"])
    assert set(signups) == set(first)
    for pid, times in signups.items():
        assert times == [data.created[pid]] == [first[pid]], pid


def test_subscriptions_contract(data: Data) -> None:
    rows = data.subscriptions
    assert list(rows[0]) == ["person_id", "status", "plan", "mrr", "updated_at"]
    assert {r["status"] for r in rows} == {"trialing", "active", "past_due", "canceled"}
    assert {r["plan"] for r in rows} == {"pro", "premium", "team"}
    assert {int(r["mrr"]) for r in rows} == {0, 2900, 7900, 19900}
    history: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        assert r["person_id"] in data.plan
        history[r["person_id"]].append(r)
    for pid, person_rows in history.items():
        times = [parse_utc(r["updated_at"]) for r in person_rows]
        assert times == sorted(times), pid
        assert person_rows[0]["status"] == "trialing", pid
    assert sum(1 for r in rows if parse_utc(r["updated_at"]) > ANCHOR) >= 3
    assert {"pro", "premium"} <= {data.plan[pid] for pid in history}
    assert all(
        data.plan[p] in ("pro", "premium")
        for p, rs in history.items()
        if rs[-1]["status"] == "active" and parse_utc(rs[-1]["updated_at"]) <= ANCHOR
    )


def test_lists(data: Data) -> None:
    vip = read_csv(data.paths["vip"])
    assert list(vip[0]) == ["person_id"]
    assert len(vip) == 30
    assert {r["person_id"] for r in vip} <= set(data.plan)
    suppressed = read_csv(data.paths["suppressed"])
    assert list(suppressed[0]) == ["email"]
    assert 15 <= len(suppressed) <= 25
    known = {p["email"].strip().lower() for p in data.persons if p["email"]}
    matched = [r["email"] for r in suppressed if r["email"].lower() in known]
    assert len(matched) >= 15
    exact = {p["email"] for p in data.persons}
    assert sum(1 for m in matched if m not in exact) >= 3  # only a case-insensitive match finds


# ---- planted archetypes at the anchor ----------------------------------------------------------


def streak(days: set[date]) -> int:
    end = ANCHOR.date() if ANCHOR.date() in days else ANCHOR.date() - DAY
    n = 0
    while end in days:
        n, end = n + 1, end - DAY
    return n


def test_power_users_and_never_active(data: Data) -> None:
    month = ANCHOR - 30 * DAY
    power = data.matching(
        lambda p: (
            data.count(p, "video_rendered", month) >= 10 and data.plan[p] in ("pro", "premium")
        )
    )
    assert len(power) >= 20
    heavy_free = data.matching(
        lambda p: data.count(p, "video_rendered", month) >= 10 and data.plan[p] == "free"
    )
    assert heavy_free, "heavy renderers on the free plan show what the plan condition does"
    never = data.matching(lambda p: not data.by_person.get(p))
    assert len(never) >= 20


def test_lifecycle_archetypes(data: Data) -> None:
    last = {p: max(e["timestamp"] for e in evs) for p, evs in data.by_person.items() if evs}
    churning = [p for p, t in last.items() if ANCHOR - 90 * DAY < t <= ANCHOR - 30 * DAY]
    churned = [p for p, t in last.items() if t <= ANCHOR - 90 * DAY]
    lapsing = [p for p, t in last.items() if ANCHOR - 30 * DAY < t <= ANCHOR - 7 * DAY]
    new = data.matching(lambda p: data.created[p] > ANCHOR - 7 * DAY)
    trial_pricing = data.matching(
        lambda p: data.plan[p] == "trial" and data.count(p, "pricing_viewed", ANCHOR - 14 * DAY) > 0
    )
    for group in (churning, churned, lapsing, new, trial_pricing):
        assert len(group) >= 20


def test_value_and_habit_archetypes(data: Data) -> None:
    ltv: dict[str, float] = defaultdict(float)
    for p, evs in data.by_person.items():
        for e in evs:
            if e["event"] == "purchase" and e["timestamp"] > ANCHOR - 365 * DAY:
                ltv[p] += e["amount"]
    assert sum(1 for v in ltv.values() if v >= 500) >= 20
    streakers = [
        p for p, evs in data.by_person.items() if streak({e["timestamp"].date() for e in evs}) >= 7
    ]
    assert len(streakers) >= 20
    onboarded = []
    for p, evs in data.by_person.items():
        signup = data.created[p]
        if signup > ANCHOR - 30 * DAY and any(
            e["event"] == "purchase" and signup <= e["timestamp"] <= signup + 7 * DAY for e in evs
        ):
            onboarded.append(p)
    assert len(onboarded) >= 10


def test_quiz_focus_and_the_last_100_rule(data: Data) -> None:
    quizzes = {
        p: [e["certification"] for e in evs if e["event"] == "quiz_completed"]
        for p, evs in data.by_person.items()
    }
    aws_share = {
        p: (q[-100:].count("aws") / len(q[-100:]), q.count("aws") / len(q))
        for p, q in quizzes.items()
        if q
    }
    assert sum(1 for last, _ in aws_share.values() if last >= 0.6) >= 20
    # Persons for whom `last: 100` changes the verdict, in both directions.
    assert any(last >= 0.6 > whole for last, whole in aws_share.values())
    assert any(whole >= 0.6 > last for last, whole in aws_share.values())


def test_events_after_the_anchor_would_change_verdicts(data: Data) -> None:
    late = [e for e in data.events if e["timestamp"] > ANCHOR]
    assert len(late) >= 20
    renders_after: dict[str, int] = defaultdict(int)
    for e in late:
        if e["event"] == "video_rendered":
            renders_after[e["person_id"]] += 1
    future_power = [
        p
        for p, n in renders_after.items()
        if n >= 10
        and data.plan[p] in ("pro", "premium")
        and data.count(p, "video_rendered", ANCHOR - 30 * DAY) < 10
    ]
    assert future_power, "a paid person who becomes a power user only after the anchor"
    not_yet_created = [p for p, c in data.created.items() if c > ANCHOR]
    assert any(e["person_id"] in not_yet_created for e in late)


# ---- command line -----------------------------------------------------------------------------


def test_main_writes_the_files(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path), "--persons", "50", "--seed", "3", "--anchor", "2026-11-17T00:00:00Z"]
    assert sample.main(argv) == 0
    for name in ("persons.csv", "events.parquet", "subscriptions.csv", "lists/vip.csv"):
        assert (tmp_path / name).is_file()
    assert len(read_csv(tmp_path / "persons.csv")) == 50
    assert "events.parquet" in capsys.readouterr().out


def test_main_rejects_a_bad_anchor(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SystemExit) as exc:
        sample.main([str(tmp_path), "--anchor", "next tuesday"])
    assert exc.value.code == 2
