"""A delivery scenario for the hardening suites: every fake at once, a project whose destinations
point at them, and the checks that everything due arrived, exactly once in effect.

    with Platforms() as platforms:
        root = write_project(tmp_path / "proj", platforms)
        ...  # segctl run / push, killed, faulted...
        members = expected_members(root)
        assert delivery_problems(root, platforms, members) == []
        assert state_problems(root, members) == []

The project: ``PERSONS`` persons (some without consent, one without a phone, one without an
email), logins and purchases spread over three weeks so that memberships change between the
``AS_OF`` times, and two segments that use every kind of action and audience:

- ``active`` (a login in the last 7 days): on enter a batched webhook, an email, a tag, an
  emitted event and a batched ``python`` action; on exit a webhook and a ``python`` action (its
  function, in a module of the project folder, appends each call's records to
  ``python_calls.jsonl``); audiences on Meta, Google, TikTok (add/remove) and a file;
- ``buyers`` (a purchase in the last 30 days): on enter a webhook; audiences on Meta and TikTok
  in mirror mode and a Resend segment.

The first run is made with ``--fire-initial``, so every transition of every run is due.
Secrets are distinctive values (``SECRETS``), so that a test can look for them anywhere.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any, Self

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from stateproject import snapshot_members

from segctl.delivery.identifiers import hash_identity

from .google import GoogleFake
from .meta import MetaFake
from .resend import ResendFake
from .tiktok import TikTokFake
from .webhook import TEST_SECRET, WebhookFake

T0 = datetime(2026, 3, 1, tzinfo=UTC)
AS_OF = [T0 + timedelta(days=d) for d in (10, 13, 20)]
PERSONS = 24
ADVERTISER = "7001"
GOOGLE_LIST = "7001234"
RESEND_SEGMENT = "seg_buyers"

#: Environment variable -> secret value; segctl.yaml refers to them as ``${NAME}``.
SECRETS = {
    "META_TOKEN": "EAAB-meta-secret-token-7f3a9c21",
    "GOOGLE_TOKEN": "ya29.google-secret-token-5d2e80",
    "TIKTOK_TOKEN": "tiktok-secret-token-91b4c7e2",
    "RESEND_KEY": "re_resend_secret_key_4e8d1a6b",
    "CRM_SECRET": TEST_SECRET,
}
#: Strings that must never appear in anything segctl prints or stores (the webhook secret
#: also without its ``whsec_`` prefix).
SECRET_STRINGS = [*SECRETS.values(), TEST_SECRET.removeprefix("whsec_")]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the data -----------------------------------------------------------------------------------


def persons(n: int = PERSONS) -> list[dict[str, Any]]:
    """The persons' rows: u00..; no consent for every 5th from u02; u03, u10, u17 have no phone;
    the last one has no email."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "person_id": f"u{i:02d}",
                "email": "" if i == n - 1 else f"User.{i}@Example.com",
                "phone": "" if i % 7 == 3 else f"(555) 010-{i:04d}",
                "country": "US",
                "opt_in": "false" if i % 5 == 2 else "true",
            }
        )
    return rows


def events(n: int = PERSONS, seed: int = 2038) -> list[tuple[str, str, datetime]]:
    """Logins on random days (a quarter of the days) and purchases before or between the
    evaluation times, the same for a given seed. With the default seed, u15 and u18 leave
    ``active`` at the second run and come back at the third, u19 enters at the second and
    leaves at the third."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        person = f"u{i:02d}"
        rows += [
            (person, "login", T0 + timedelta(days=d, hours=1))
            for d in range(21)
            if rng.random() < 0.25
        ]
        if i % 4 == 0:
            rows.append((person, "purchase", T0 + timedelta(days=i % 9, hours=2)))
        if i % 4 == 1:
            rows.append((person, "purchase", T0 + timedelta(days=11 + i % 5, hours=2)))
    return rows


# ---- the fakes ----------------------------------------------------------------------------------


class Platforms:
    """Every platform fake, started together, with the audiences the project uses.

    Args:
        latency: seconds every request takes (widens the windows a crash can hit).
        webhook_concurrency: requests in flight the webhook receiver tolerates (the project
            sends at most 4 at once, 200 a second; the receiver takes 250 a second).
        resend_rate: Resend's rate limit (requests, seconds); the project sends 15 a second.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        webhook_concurrency: int = 4,
        resend_rate: tuple[int, float] = (20, 1.0),
    ) -> None:
        self.meta = MetaFake(token=SECRETS["META_TOKEN"], latency=latency)
        self.google = GoogleFake(token=SECRETS["GOOGLE_TOKEN"], latency=latency)
        self.tiktok = TikTokFake(
            token=SECRETS["TIKTOK_TOKEN"],
            min_audience_size=0,
            advertiser_id=ADVERTISER,
            latency=latency,
        )
        self.resend = ResendFake(
            api_key=SECRETS["RESEND_KEY"],
            rate_limit=resend_rate,
            segments=[RESEND_SEGMENT],
            latency=latency,
        )
        self.hook = WebhookFake(
            secret=TEST_SECRET,
            latency=latency,
            max_concurrent=webhook_concurrency,
            rate_limit=(250, 1.0),
        )
        self.audiences: dict[str, str] = {}

    @property
    def all(self) -> list[MetaFake | GoogleFake | TikTokFake | ResendFake | WebhookFake]:
        return [self.meta, self.google, self.tiktok, self.resend, self.hook]

    def __enter__(self) -> Self:
        for fake in self.all:
            fake.start()
        self.audiences = {
            "meta_active": self.meta.create_audience("active", "1"),
            "meta_buyers": self.meta.create_audience("buyers", "1"),
            "tiktok_active": self.tiktok.create_audience(ADVERTISER, name="active"),
            "tiktok_buyers": self.tiktok.create_audience(ADVERTISER, name="buyers"),
        }
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        for fake in self.all:
            fake.__exit__(exc_type, *rest)

    def chaos(self, rate: float, seed: int, **options: Any) -> None:
        """The same chaos on every fake (each its own random stream)."""
        for i, fake in enumerate(self.all):
            fake.chaos(rate, seed + i, **options)

    def clear_faults(self) -> None:
        for fake in self.all:
            fake.clear_faults()

    def faults(self) -> Counter[str]:
        """Requests hit by an injected fault, per fake."""
        return Counter(type(f).__name__ for f in self.all for r in f.requests if r.fault)

    def request_count(self) -> int:
        return sum(len(f.requests) for f in self.all)

    def limit_problems(self) -> list[str]:
        """Raw PII received, platform limits exceeded (batch, rate, concurrency)."""
        problems = []
        for fake in self.all:
            name = type(fake).__name__
            problems += [f"{name} received raw PII: {leak}" for leak in fake.pii_leaks]
            problems += [f"{name} {violation}" for violation in fake.violations]
        return problems

    def destinations(
        self, common: dict[str, Any] | None = None, **overrides: dict[str, Any]
    ) -> str:
        """The ``destinations:`` section: ``common`` settings go to every destination but the
        file, ``overrides`` per destination (``crm={"max_retries": 8}``)."""
        settings: dict[str, dict[str, Any]] = {
            "crm": {"type": "webhook", "url": self.hook.url, "secret": "${CRM_SECRET}",
                    "concurrency": 4, "rate_limit": 200},
            "mail": {"type": "resend", "api_key": "${RESEND_KEY}",
                     "from": "Team <team@example.com>", "base_url": self.resend.base_url,
                     "rate_limit": 15},
            "meta": {"type": "meta", "ad_account_id": "1", "access_token": "${META_TOKEN}",
                     "base_url": self.meta.base_url},
            "google": {"type": "google", "operating_account_id": "1234567890",
                       "access_token": "${GOOGLE_TOKEN}", "base_url": self.google.base_url},
            # TikTok's base_url is the bare host, as for Meta and Google
            "tiktok": {"type": "tiktok", "advertiser_id": ADVERTISER,
                       "access_token": "${TIKTOK_TOKEN}", "base_url": self.tiktok.base_url},
        }  # fmt: skip
        for name, spec in settings.items():
            spec.update(common or {}, **overrides.get(name, {}))
        settings["files"] = {"type": "file", "path": "out"}
        return "destinations:\n" + "".join(
            f"  {name}: {json.dumps(spec)}\n" for name, spec in settings.items()
        )


#: The python action's function: each call's records appended as one line, in one write (a
#: kill cannot leave half a line), to python_calls.jsonl beside the module.
HOOKS = """\
import json, os
from pathlib import Path


def record(records):
    line = json.dumps(records if isinstance(records, list) else [records], sort_keys=True)
    path = Path(__file__).parent / "python_calls.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)
"""
PYTHON_CALLS = "python_calls.jsonl"


def hooks_module(root: Path) -> str:
    """The hooks module's name for a project: one per folder, since a process (a test) that
    loads several projects imports each module once."""
    return "scenario_hooks_" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]


def segments(platforms: Platforms, hooks: str = "scenario_hooks") -> dict[str, str]:
    ids = platforms.audiences
    return {
        "active": dedent(f"""\
            name: active
            rule: {{event: login, within: 7d, count: {{gte: 1}}}}
            on_enter:
              - webhook: {{destination: crm, batch: 4}}
              - email: {{destination: mail, template: welcome}}
              - tag: {{name: active, value: "yes"}}
              - emit: {{event: entered_active}}
              - python: {{function: "{hooks}:record", batch: 3, backoff: 0.01}}
            on_exit:
              - webhook: {{destination: crm}}
              - python: {{function: "{hooks}:record", backoff: 0.01}}
            audiences:
              - {{destination: meta, audience_id: "{ids["meta_active"]}"}}
              - {{destination: google, user_list_id: "{GOOGLE_LIST}"}}
              - {{destination: tiktok, audience_id: "{ids["tiktok_active"]}"}}
              - {{destination: files}}
            """),
        "buyers": dedent(f"""\
            name: buyers
            rule: {{event: purchase, within: 30d, count: {{gte: 1}}}}
            on_enter:
              - webhook: {{destination: crm}}
            audiences:
              - {{destination: meta, audience_id: "{ids["meta_buyers"]}", mode: mirror}}
              - {{destination: tiktok, audience_id: "{ids["tiktok_buyers"]}", mode: mirror}}
              - {{destination: mail, segment_id: "{RESEND_SEGMENT}"}}
            """),
    }


def write_project(
    root: Path,
    platforms: Platforms,
    *,
    seed: int = 2038,
    common: dict[str, Any] | None = None,
    **overrides: dict[str, Any],
) -> Path:
    """The scenario's project in ``root`` (see the module docstring); destination settings as
    for ``Platforms.destinations``; returns ``root``."""
    (root / "segments").mkdir(parents=True)
    (root / "segctl.yaml").write_text(
        dedent("""\
            data:
              events: events.parquet
              persons: persons.csv
            segments: segments/
            state: .segctl/
            privacy: {consent_column: opt_in}
            delivery: {max_exit_ratio: 1.0}
            """)
        + platforms.destinations(common, **overrides)
    )
    with (root / "persons.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["person_id", "email", "phone", "country", "opt_in"])
        writer.writeheader()
        writer.writerows(persons())
    rows = events(seed=seed)
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
    hooks = hooks_module(root)
    (root / f"{hooks}.py").write_text(HOOKS)
    for name, text in segments(platforms, hooks).items():
        (root / "segments" / f"{name}.yaml").write_text(text)
    return root


def environment() -> dict[str, str]:
    """The environment variables segctl.yaml needs."""
    return dict(SECRETS)


# ---- what should have happened ------------------------------------------------------------------

Members = dict[str, set[str]]  # segment -> person ids


def expected_members(root: Path, moments: list[datetime] = AS_OF) -> list[Members]:
    """Memberships at each moment, by evaluation (which changes no state)."""
    import segctl

    project = segctl.Project.load(root, environ={**environment()})
    out = []
    for moment in moments:
        result = project.evaluate(as_of=moment)
        out.append({n: set(result.members(n)["person_id"].to_list()) for n in result.segments})
    return out


def transitions(runs: list[Members]) -> list[tuple[int, str, str, str]]:
    """(run_id, segment, person_id, enter|exit) of consecutive committed runs."""
    out = []
    before: Members = {}
    for run_id, now in enumerate(runs, start=1):
        for segment, members in now.items():
            old = before.get(segment, set())
            out += [(run_id, segment, p, "enter") for p in sorted(members - old)]
            out += [(run_id, segment, p, "exit") for p in sorted(old - members)]
        before = now
    return out


def _people() -> dict[str, dict[str, Any]]:
    return {p["person_id"]: p for p in persons()}


def _consenting() -> set[str]:
    return {pid for pid, p in _people().items() if p["opt_in"] == "true"}


def delivery_problems(root: Path, platforms: Platforms, runs: list[Members]) -> list[str]:
    """What the platforms hold and received, against the committed runs' memberships
    (``runs[k]`` is run k+1's): an empty list when everything arrived exactly once in effect."""
    problems = platforms.limit_problems()
    people, consenting = _people(), _consenting()
    moves = transitions(runs)

    # Webhooks: each transition once after de-duplication by webhook-id, and a retried id
    # always carries the same body.
    want = Counter(
        (f"segment.{'entered' if kind == 'enter' else 'exited'}", seg, pid, run)
        for run, seg, pid, kind in moves
        if kind == "enter" or seg == "active"
    )
    got = Counter(
        (e["type"], e["segment"], e["person_id"], e["run_id"]) for e in platforms.hook.events()
    )
    problems += _compare("webhooks", want, got)
    bodies: dict[str, bytes] = {}
    for delivery in platforms.hook.deliveries:
        if bodies.setdefault(delivery.id, delivery.body) != delivery.body:
            problems.append(f"webhook-id {delivery.id} was sent with two different bodies")

    # Python actions: each transition of active once after de-duplication by id, and an id
    # called again always with the same record.
    want = Counter(
        (f"segment.{'entered' if kind == 'enter' else 'exited'}", seg, pid, run)
        for run, seg, pid, kind in moves
        if seg == "active"
    )
    calls = root / PYTHON_CALLS
    records: dict[str, Any] = {}
    for line in calls.read_text().splitlines() if calls.exists() else []:
        for rec in json.loads(line):
            if records.setdefault(rec["id"], rec) != rec:
                problems.append(f"python record {rec['id']} was called with two different bodies")
    got = Counter((r["type"], r["segment"], r["person_id"], r["run_id"]) for r in records.values())
    problems += _compare("python actions", want, got)

    # Emails: one per entry into active, to persons with consent and an email.
    enters = [(run, pid) for run, seg, pid, kind in moves if seg == "active" and kind == "enter"]
    want = Counter(
        people[pid]["email"].strip()
        for _, pid in enters
        if pid in consenting and people[pid]["email"]
    )
    got = Counter(to for e in platforms.resend.emails for to in e["to"])
    problems += _compare("emails", want, got)

    # Emitted events: one row per entry, readable.
    emitted = root / ".segctl" / "emitted_events.parquet"
    try:
        rows = pq.read_table(emitted).to_pylist() if enters else []
    except (OSError, pa.ArrowInvalid) as exc:
        problems.append(f"emitted events unreadable: {exc}")
        rows = []
    problems += _compare(
        "emitted events",
        Counter((pid, run) for run, pid in enters),
        Counter((r["person_id"], r["run_id"]) for r in rows),
    )

    # Audiences: exactly the desired set (members with consent) of the last run.
    last = runs[-1] if runs else {"active": set(), "buyers": set()}
    desired = {seg: members & consenting for seg, members in last.items()}
    ids = platforms.audiences

    def hashed(segment: str, platform: str) -> list[Any]:
        return [hash_identity(people[p], platform) for p in sorted(desired[segment])]

    for segment in ("active", "buyers"):
        want_meta = {(h.email or "", h.phone or "") for h in hashed(segment, "meta") if not h.empty}
        problems += _compare_sets(
            f"meta audience of {segment}",
            want_meta,
            platforms.meta.audience(ids[f"meta_{segment}"]),
        )
        want_tiktok = {h.email for h in hashed(segment, "tiktok") if h.email}
        problems += _compare_sets(
            f"tiktok audience of {segment}",
            want_tiktok,
            platforms.tiktok.audience(ids[f"tiktok_{segment}"]),
        )
    want_google = {
        frozenset((k, v) for k, v in (("emailAddress", h.email), ("phoneNumber", h.phone)) if v)
        for h in hashed("active", "google")
        if not h.empty
    }
    problems += _compare_sets(
        "google audience", want_google, platforms.google.audience(GOOGLE_LIST)
    )
    want_resend = {people[p]["email"] for p in desired["buyers"] if people[p]["email"]}
    problems += _compare_sets(
        "resend segment", want_resend, platforms.resend.segment(RESEND_SEGMENT)
    )
    file = root / "out" / "active.csv"
    with file.open(newline="") as handle:
        got_file = {(r["email_sha256"], r["phone_sha256"]) for r in csv.DictReader(handle)}
    want_file = {(h.email or "", h.phone or "") for h in hashed("active", "meta") if not h.empty}
    problems += _compare_sets("file audience", want_file, got_file)
    return problems


def state_problems(root: Path, runs: list[Members]) -> list[str]:
    """The state's history against the expected memberships of its runs: runs in order, no
    overlapping stays, the snapshot and the figures equal to the runs' memberships, tags of
    every entry, nothing left in the outbox."""
    problems: list[str] = []
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True)
    try:
        committed = con.execute("SELECT run_id, as_of FROM runs ORDER BY run_id").fetchall()
        want_runs = [(i, m.replace(tzinfo=None)) for i, m in enumerate(AS_OF[: len(runs)], 1)]
        if committed != want_runs:
            problems.append(f"runs {committed} != {want_runs}")
        rows = con.execute(
            "SELECT segment, person_id, run_id, kind FROM transitions ORDER BY ALL"
        ).fetchall()
        stays: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for segment, person, run_id, kind in rows:
            stays.setdefault((segment, person), []).append((run_id, kind))
        for (segment, person), items in stays.items():
            kinds = [k for _, k in items]
            run_ids = [r for r, _ in items]
            if kinds != ["enter", "exit"] * (len(kinds) // 2) + ["enter"] * (len(kinds) % 2):
                problems.append(f"{segment}/{person}: transitions {items} do not alternate")
            if run_ids != sorted(set(run_ids)):
                problems.append(f"{segment}/{person}: overlapping stays {items}")
        got_moves = sorted((r, s, p, k) for s, p, r, k in rows)
        problems += _compare("transitions", Counter(transitions(runs)), Counter(got_moves))
        if runs:
            snapshot = snapshot_members(con)
            for segment, members in runs[-1].items():
                snap = snapshot.get(segment, set())
                problems += _compare_sets(f"snapshot of {segment}", members, snap)
        figures = con.execute(
            "SELECT run_id, segment, size, entered, exited FROM run_segments ORDER BY ALL"
        ).fetchall()
        want_figures = []
        before: Members = {}
        for run_id, now in enumerate(runs, start=1):
            for segment in sorted(now):
                old = before.get(segment, set())
                want_figures.append(
                    (
                        run_id,
                        segment,
                        len(now[segment]),
                        len(now[segment] - old),
                        len(old - now[segment]),
                    )
                )
            before = now
        if figures != want_figures:
            problems.append(f"run figures {figures} != {want_figures}")
        left = con.execute(
            "SELECT status, kind, count(*) FROM outbox WHERE status NOT IN ('sent', 'skipped') "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        if left:
            problems.append(f"outbox rows not delivered: {left}")
        tagged = {r[0] for r in con.execute("SELECT person_id FROM tags").fetchall()}
        entered = {p for _, s, p, k in transitions(runs) if s == "active" and k == "enter"}
        problems += _compare_sets("tags", entered, tagged)
    finally:
        con.close()
    return problems


def _compare(what: str, want: Counter[Any], got: Counter[Any]) -> list[str]:
    missing, extra = want - got, got - want
    out = []
    if missing:
        out.append(f"{what}: {sum(missing.values())} missing, e.g. {_some(missing)}")
    if extra:
        out.append(f"{what}: {sum(extra.values())} extra (duplicates?), e.g. {_some(extra)}")
    return out


def _compare_sets(what: str, want: set[Any], got: set[Any]) -> list[str]:
    return _compare(what, Counter(want), Counter(got))


def _some(items: Counter[Any]) -> list[Any]:
    return sorted(items, key=repr)[:3]
