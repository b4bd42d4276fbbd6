"""Emails through Resend (API_CONTRACTS.md, "Resend"): template variables are strings and numbers
only, and a malformed address is skipped before sending (counted, said) instead of failing its
whole batch of 100 under Resend's strict batch validation. The fake enforces both."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest
from fakes import ResendFake
from stateproject import AS_OF, iso, segctl, write_project

import segctl as lib
from segctl.delivery.resend import template_variables, valid_address

KEY = "re_test_key"


@pytest.fixture
def resend() -> Iterator[ResendFake]:
    with ResendFake(api_key=KEY, rate_limit=None) as fake:
        yield fake


def batch(fake: ResendFake, emails: list[dict[str, object]], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/emails/batch",
        json=emails,
        headers={"authorization": f"Bearer {KEY}", **headers},
    )


def message(to: str, **variables: object) -> dict[str, object]:
    return {"from": "t@example.com", "to": [to], "template": {"id": "t", "variables": variables}}


# ---- the fake enforces the contract ------------------------------------------------------------


def test_the_fake_fails_a_whole_strict_batch_for_one_malformed_address(
    resend: ResendFake,
) -> None:
    emails = [message(f"u{i}@example.com") for i in range(99)] + [message("broken@example")]
    reply = batch(resend, emails)
    assert reply.status_code == 422 and "[99]" in reply.json()["message"]
    assert resend.emails == []  # none of the 100 was sent


def test_the_fake_sends_the_valid_ones_of_a_permissive_batch(resend: ResendFake) -> None:
    emails = [message("a@example.com"), message("not an address"), message("b@example.com")]
    reply = batch(resend, emails, **{"x-batch-validation": "permissive"})
    assert reply.status_code == 200
    assert len(reply.json()["data"]) == 2 and [e["index"] for e in reply.json()["errors"]] == [1]
    assert sorted(e["to"][0] for e in resend.emails) == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize("value", [True, None, {"a": 1}, [1]])
def test_the_fake_takes_strings_and_numbers_only_as_template_variables(
    resend: ResendFake, value: object
) -> None:
    reply = batch(resend, [message("a@example.com", plan="pro", n=3, x=1.5, bad=value)])
    assert reply.status_code == 422 and "template.variables.bad" in reply.json()["message"]
    assert batch(resend, [message("a@example.com", plan="pro", n=3, x=1.5)]).status_code == 200


# ---- what segctl sends ---------------------------------------------------------------------------


def test_template_variables_are_strings_and_numbers() -> None:
    found = template_variables(
        {
            "plan": "pro",
            "orders": 3,
            "spend": 12.5,
            "vip": True,
            "churned": False,
            "signup": date(2026, 3, 1),
            "seen": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
            "signed_up": datetime(2026, 1, 2, 3, 4),  # a persons column: naive UTC
            "paid": datetime(2026, 3, 1, 13, 30, tzinfo=ZoneInfo("Europe/Berlin")),
            "credit": Decimal("10.00"),
            "ratio": Decimal("0.25"),
            "note": None,
            "missing": float("nan"),
            "tags": ["a", "b"],
        }
    )
    assert found == {
        "plan": "pro",
        "orders": 3,
        "spend": 12.5,
        "vip": "true",
        "churned": "false",
        "signup": "2026-03-01",
        "seen": "2026-03-01T12:30:00Z",
        "signed_up": "2026-01-02T03:04:00Z",
        "paid": "2026-03-01T12:30:00Z",
        "credit": 10,
        "ratio": 0.25,
        "tags": '["a", "b"]',
    }  # NULLs left out
    assert all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in found.values())


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("mary@example.com", True),
        (" mary@example.com\n", True),
        ("mary@example", False),
        ("mary smith@example.com", False),
        ("mary@@example.com", False),
        ("<mary@example.com>", False),
        ("", False),
    ],
)
def test_valid_address(address: str, ok: bool) -> None:
    assert valid_address(address) is ok


#: Persons' emails other than ``p<i>@example.com``: p3's malformed, p4 has none.
EMAILS = {3: "broken@example", 4: ""}


def entering(root: Path, expected: set[str]) -> set[str]:
    """The members of ``active`` at the first as_of (all entering), checked to hold
    ``expected`` (the persons a test is about)."""
    active = lib.Project.load(root).evaluate(["active"], as_of=AS_OF[0]).members("active")
    members = set(active["person_id"].to_list())
    assert expected <= members, f"the fixture makes {sorted(expected)} enter"
    return members


def project(tmp_path: Path, resend: ResendFake, persons: list[str]) -> Path:
    root = write_project(tmp_path / "proj")
    (root / "persons.csv").write_text("\n".join(persons) + "\n")
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + dedent(f"""\
        destinations:
          mail: {{type: resend, api_key: "{KEY}", from: "Team <team@example.com>",
                  base_url: "{resend.base_url}", backoff: 0.01, max_retries: 1}}
        """)
    )
    (root / "segments" / "active.yaml").write_text(
        dedent("""\
        name: active
        rule: {event: "*", within: 7d, count: {gte: 1}}
        on_enter:
          - email: {destination: mail, template: welcome, variables: {promo: true, n: 2}}
        """)
    )
    return root


def test_a_run_skips_malformed_addresses_and_sends_only_strings_and_numbers(
    tmp_path: Path, resend: ResendFake
) -> None:
    persons = ["person_id,email,plan,vip,signup,score"] + [
        f"p{i},{EMAILS.get(i, f'p{i}@example.com')},pro,"
        f"{'true' if i % 2 else 'false'},2026-0{i}-01,{'' if i == 1 else i}"
        for i in range(1, 7)
    ]
    root = project(tmp_path, resend, persons)
    members = entering(root, {"p1", "p3", "p4"})

    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 0, proc.stderr  # the malformed address did not fail the batch
    assert "1 email(s) skipped: malformed email address" in proc.stderr
    sent = {e["to"][0]: e["template"]["variables"] for e in resend.emails}
    assert set(sent) == {f"{p}@example.com" for p in members - {"p3", "p4"}}
    for variables in sent.values():
        assert all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in variables.values()
        )
        assert variables["vip"] in ("true", "false") and variables["promo"] == "true"
        assert variables["n"] == 2 and variables["signup"].startswith("2026-0")
    assert "score" not in sent["p1@example.com"]  # NULL left out
    status = json.loads(segctl(root, "status", "-f", "json").stdout)
    skipped = [
        (d["count"], d["last_error"]) for d in status["deliveries"] if d["status"] == "skipped"
    ]
    assert sorted(skipped) == [(1, "malformed email address"), (1, "no email address")]  # each said
    table = segctl(root, "status").stdout  # every row of each table, with its reason
    assert "malformed email address" in table and "no email address" in table


def test_the_dry_run_plan_counts_the_emails_a_run_sends(tmp_path: Path, resend: ResendFake) -> None:
    """The plan's email row counts what a push sends: persons with a valid address, consent,
    not suppressed; the others are its ``skipped`` (it counted every person entering)."""
    persons = ["person_id,email,consent"] + [
        f"p{i},{EMAILS.get(i, f'p{i}@example.com')},{'false' if i == 6 else 'true'}"
        for i in range(1, 7)
    ]
    root = project(tmp_path, resend, persons)
    (root / "suppressed.csv").write_text("email\np1@example.com\n")
    config = (root / "segctl.yaml").read_text()
    (root / "segctl.yaml").write_text(
        config + "privacy: {consent_column: consent, suppression_file: suppressed.csv}\n"
    )
    members = entering(root, {"p1", "p3", "p4", "p6"})
    sendable = members - {"p1", "p3", "p4", "p6"}

    dry_run = ("run", "--dry-run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    proc = segctl(root, *dry_run)
    [row] = [r for r in json.loads(proc.stdout)["plan"] if r["kind"] == "email"]
    assert (row["adds"], row["messages"], row["skipped"]) == (
        len(members),
        len(sendable),
        len(members) - len(sendable),
    )
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(e["to"][0] for e in resend.emails) == sorted(f"{p}@example.com" for p in sendable)
    # Persons without an email column: every email skipped (the plan's query failed on it).
    (root / "persons.csv").write_text("person_id\n" + "".join(f"p{i}\n" for i in range(1, 7)))
    (root / "segctl.yaml").write_text(config)
    shutil.rmtree(root / ".segctl")
    proc = segctl(root, *dry_run)
    assert proc.returncode == 0, proc.stderr
    [row] = [r for r in json.loads(proc.stdout)["plan"] if r["kind"] == "email"]
    assert (row["messages"], row["skipped"]) == (0, row["adds"])


def test_the_dry_run_plan_counts_the_exit_emails_a_run_sends(
    tmp_path: Path, resend: ResendFake
) -> None:
    """The same rule for an ``on_exit`` email: the plan reads the persons exiting."""
    bad = {2: "broken@example", 4: ""}
    persons = ["person_id,email"] + [f"p{i},{bad.get(i, f'p{i}@example.com')}" for i in range(1, 7)]
    root = project(tmp_path, resend, persons)
    segment = root / "segments" / "active.yaml"
    segment.write_text(segment.read_text().replace("on_enter:", "on_exit:"))
    members = entering(root, {"p2", "p4"})
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    as_of = iso(AS_OF[3] + timedelta(days=20))  # every member has exited by then
    assert lib.Project.load(root).evaluate(["active"], as_of=as_of).members("active").is_empty()

    proc = segctl(root, "run", "--dry-run", "--as-of", as_of, "-f", "json")
    [row] = [r for r in json.loads(proc.stdout)["plan"] if r["kind"] == "email"]
    assert (row["removes"], row["messages"], row["skipped"]) == (
        len(members),
        len(members) - 2,
        2,
    )
    segctl(root, "run", "--as-of", as_of)  # every member exiting: held by the guard
    assert segctl(root, "push", "--confirm", "active").returncode == 0
    assert len(resend.emails) == row["messages"]


def test_a_malformed_address_is_said_malformed_whatever_the_consent(
    tmp_path: Path, resend: ResendFake
) -> None:
    """A malformed address is the reason given first, before consent: a person with one who
    also gave no consent is skipped as "malformed email address" and counted in the run's
    message, so the address gets fixed (it would fail its whole batch of 100 the day the
    person consents)."""
    persons = ["person_id,email,consent"] + [
        f"p{i},{EMAILS.get(i, f'p{i}@example.com')},{'false' if i in (3, 6) else 'true'}"
        for i in range(1, 7)
    ]
    root = project(tmp_path, resend, persons)
    config = root / "segctl.yaml"
    config.write_text(config.read_text() + "privacy: {consent_column: consent}\n")
    members = entering(root, {"p3", "p4", "p6"})

    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert "1 email(s) skipped: malformed email address" in proc.stderr
    assert sorted(e["to"][0] for e in resend.emails) == sorted(
        f"{p}@example.com" for p in members - {"p3", "p4", "p6"}
    )
    status = json.loads(segctl(root, "status", "-f", "json").stdout)
    skipped = [
        (d["count"], d["last_error"]) for d in status["deliveries"] if d["status"] == "skipped"
    ]
    assert sorted(skipped) == [
        (1, "malformed email address"),  # p3, who gave no consent either
        (1, "no consent or suppressed"),  # p6
        (1, "no email address"),  # p4
    ]


def test_a_retry_sends_the_body_its_key_was_first_sent_with(
    tmp_path: Path, resend: ResendFake
) -> None:
    """Resend answers a key sent again with another body 409 (API_CONTRACTS), so a retry
    sends the stored message, whatever the persons file says by then: the request that took
    effect, its answer lost, is answered again and nothing is sent twice. A batch that lost an
    email since (an erasure) is another request under another key; --retry-failed makes the
    messages again (the fix may be in them: the sender). Each was a 409, failed for good."""
    persons = ["person_id,email,first_name"] + [
        f"p{i},p{i}@example.com,Name{i}" for i in range(1, 7)
    ]
    root = project(tmp_path, resend, persons)
    members = entering(root, {"p1", "p2"})
    # The first request takes effect, its answer is lost; the retry in the run fails too.
    resend.inject(reset=True, after=True, times=1, endpoint="send_batch")
    resend.inject(status=500, times=None, endpoint="send_batch")
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    assert proc.returncode == 5, proc.stderr
    assert sorted(e["to"][0] for e in resend.emails) == sorted(f"{p}@example.com" for p in members)
    first = [r for r in resend.requests if r.endpoint == "send_batch"]
    # The persons file changes before the next push: the stored message goes, and its key.
    (root / "persons.csv").write_text("\n".join(persons).replace("Name1", "Renamed") + "\n")
    resend.clear_faults()
    proc = segctl(root, "push")
    assert proc.returncode == 0, proc.stderr
    retry = [r for r in resend.requests if r.endpoint == "send_batch"][len(first) :]
    assert [r.json for r in retry] == [first[0].json]
    assert retry[0].headers["idempotency-key"] == first[0].headers["idempotency-key"]
    assert len(resend.emails) == len(members)  # answered again, nothing sent twice
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    kept = con.execute("SELECT count(payload) FROM outbox WHERE kind = 'email'").fetchall()
    con.close()
    assert kept == [(0,)]  # the messages (addresses, names) are not kept once sent

    # A batch that fails, then loses a person to an erasure: the rest go under a new key.
    segment = root / "segments" / "active.yaml"
    segment.write_text(segment.read_text().replace("on_enter:", "on_exit:"))
    resend.inject(status=500, times=None, endpoint="send_batch")
    exiting = AS_OF[3] + timedelta(days=20)
    assert segctl(root, "run", "--as-of", iso(exiting)).returncode == 5
    assert segctl(root, "push", "--confirm", "active").returncode == 5  # the guard held them
    failed = [r for r in resend.requests if r.endpoint == "send_batch"][-1]
    assert segctl(root, "forget", "p1").returncode in (0, 5)
    resend.clear_faults()
    sent_before = len(resend.emails)
    proc = segctl(root, "push")
    assert proc.returncode == 0, proc.stderr
    [again] = [r for r in resend.requests if r.endpoint == "send_batch"][-1:]
    assert again.headers["idempotency-key"] != failed.headers["idempotency-key"]
    assert sorted(m["to"][0] for m in again.json) == sorted(
        f"{p}@example.com" for p in members - {"p1"}
    )
    assert len(resend.emails) == sent_before + len(members) - 1

    # Refused for good (a sender the platform does not take), fixed, retried: made again.
    config = root / "segctl.yaml"
    (root / "persons.csv").write_text("\n".join(persons) + "\n")
    shutil.rmtree(root / ".segctl")
    segment.write_text(segment.read_text().replace("on_exit:", "on_enter:"))
    resend.inject(status=422, times=1, endpoint="send_batch")
    assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 5
    config.write_text(config.read_text().replace("team@example.com", "hello@example.com"))
    proc = segctl(root, "push", "--retry-failed")
    assert proc.returncode == 0, proc.stderr
    last = [r for r in resend.requests if r.endpoint == "send_batch"][-1]
    assert {m["from"] for m in last.json} == {"Team <hello@example.com>"}


def test_a_retry_goes_to_the_address_the_person_has_now(tmp_path: Path, resend: ResendFake) -> None:
    """Consent and suppression are checked for the person's address now: a stored message to
    an address they no longer have (changed, and the old one suppressed since) is made again,
    under a new key. The retry emailed the old, suppressed address."""
    persons = ["person_id,email"] + [f"p{i},p{i}@example.com" for i in range(1, 7)]
    root = project(tmp_path, resend, persons)
    (root / "suppressed.csv").write_text("email\nnobody@example.com\n")
    config = (root / "segctl.yaml").read_text()
    (root / "segctl.yaml").write_text(config + "privacy: {suppression_file: suppressed.csv}\n")
    members = entering(root, {"p1"})
    resend.inject(status=500, times=None, endpoint="send_batch")
    assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 5
    assert resend.emails == []
    (root / "persons.csv").write_text(
        "\n".join(persons).replace("p1,p1@example.com", "p1,p1.new@example.com") + "\n"
    )
    (root / "suppressed.csv").write_text("email\np1@example.com\n")
    resend.clear_faults()
    assert segctl(root, "push").returncode == 0
    assert sorted(e["to"][0] for e in resend.emails) == sorted(
        [f"{p}@example.com" for p in members - {"p1"}] + ["p1.new@example.com"]
    )


def test_an_email_failed_for_good_keeps_no_message(tmp_path: Path, resend: ResendFake) -> None:
    """--retry-failed makes a failed email's message again, so the stored one (the address,
    every person column) is deleted when it fails for good, as when it is sent."""
    persons = ["person_id,email"] + [f"p{i},p{i}@example.com" for i in range(1, 7)]
    root = project(tmp_path, resend, persons)
    entering(root, {"p1"})
    resend.inject(status=422, times=1, endpoint="send_batch")
    assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 5
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    kept = con.execute("SELECT status, count(payload) FROM outbox GROUP BY ALL").fetchall()
    con.close()
    assert kept and all(status == "failed" and n == 0 for status, n in kept), kept


def test_a_batch_keyed_before_bodies_were_stored_keeps_its_key(
    tmp_path: Path, resend: ResendFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state from before the messages were stored: a pending batch has its key (the digest
    of its rows' keys) and no message. Its request took effect, the answer was lost: the push
    after the upgrade sends it under that key (Resend answers it again), not a new one that
    would email everyone twice."""
    from segctl.delivery import queries, worker

    persons = ["person_id,email"] + [f"p{i},p{i}@example.com" for i in range(1, 7)]
    root = project(tmp_path, resend, persons)
    members = entering(root, {"p1"})
    legacy_key = worker._key
    with monkeypatch.context() as old:  # the older segctl: no message stored, keys by rows
        old.setattr(queries, "store_payloads", lambda store, bodies: None)
        old.setattr(worker, "_key", lambda rows, by_body: legacy_key(rows, False))
        resend.inject(reset=True, after=True, times=1, endpoint="send_batch")
        resend.inject(status=500, times=None, endpoint="send_batch")
        lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    assert len(resend.emails) == len(members)  # it took effect once
    first = next(r for r in resend.requests if r.endpoint == "send_batch")
    assert segctl(root, "push").returncode == 5  # fails again: its messages are stored now
    resend.clear_faults()
    assert segctl(root, "push").returncode == 0
    last = [r for r in resend.requests if r.endpoint == "send_batch"][-1]
    assert last.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert len(resend.emails) == len(members)  # answered again, not sent twice
