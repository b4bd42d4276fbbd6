"""Delivery end to end: runs against the local platform fakes (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent

import duckdb
import pyarrow.parquet as pq
import pytest
from fakes import TEST_SECRET, GoogleFake, MetaFake, ResendFake, WebhookFake
from stateproject import AS_OF, iso, segctl, write_project

import segctl as lib
from segctl.delivery.identifiers import hash_identity

ACTIVE = """\
    name: active
    rule: {event: "*", within: 7d, count: {gte: 1}}
    on_enter:
      - webhook: {destination: crm}
      - email: {destination: mail, template: welcome, subject: Hi}
      - tag: {name: active, value: "yes"}
      - emit: {event: entered_active}
    on_exit:
      - webhook: {destination: crm}
    audiences:
      - {destination: files}
    """


@pytest.fixture
def hook() -> Iterator[WebhookFake]:
    with WebhookFake(secret=TEST_SECRET) as fake:
        yield fake


@pytest.fixture
def resend() -> Iterator[ResendFake]:
    with ResendFake(api_key="re_test_key", rate_limit=None) as fake:
        yield fake


def make(
    tmp_path: Path,
    hook: WebhookFake,
    resend: ResendFake,
    active: str = ACTIVE,
    extra: str = "",
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Path:
    root = write_project(tmp_path / "proj")
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + dedent(f"""\
        delivery: {{max_exit_ratio: 0.5}}
        destinations:
          crm: {{type: webhook, url: "{hook.url}", secret: "${{CRM_SECRET}}", backoff: 0.01,
                 max_retries: 2}}
          mail: {{type: resend, api_key: "${{RESEND_KEY}}", from: "Team <team@example.com>",
                  base_url: "{resend.base_url}", backoff: 0.01, max_retries: 2}}
          files: {{type: file, path: out}}
        """)
        + extra
    )
    (root / "segments" / "active.yaml").write_text(dedent(active))
    return root


#: A segment with a file audience and no actions.
AUDIENCE_ONLY = """\
    name: active
    rule: {event: "*", within: 7d, count: {gte: 1}}
    audiences:
      - {destination: files}
    """


def hooked_project(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake, *, one_at_a_time: bool = False
) -> Path:
    """A project whose one segment sends a webhook on enter (one request at a time)."""
    hooked = """\
        name: active
        rule: {event: "*", within: 7d, count: {gte: 1}}
        on_enter:
          - webhook: {destination: crm}
        """
    root = make(tmp_path, hook, resend, active=hooked)
    if one_at_a_time:
        config = root / "segctl.yaml"
        config.write_text(
            config.read_text().replace("max_retries: 2}", "max_retries: 2, concurrency: 1}")
        )
    return root


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SECRET", TEST_SECRET)
    monkeypatch.setenv("RESEND_KEY", "re_test_key")


def members(root: Path, moment: object) -> set[str]:
    result = lib.Project.load(root).evaluate(["active"], as_of=moment)  # type: ignore[arg-type]
    return set(result.members("active")["person_id"].to_list())


def file_audience(root: Path) -> set[str]:
    with (root / "out" / "active.csv").open() as handle:
        return {row["email_sha256"] for row in csv.DictReader(handle)}


def hashed(ids: set[str]) -> set[str]:
    return {
        str(hash_identity({"person_id": p, "email": f"{p}@example.com"}, "meta").email) for p in ids
    }


def test_first_run_uploads_audiences_but_fires_no_enter_actions(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    result = lib.Project.load(root).run(as_of=AS_OF[0])
    assert result.report is not None and result.report.complete
    assert hook.deliveries == [] and resend.emails == []
    assert file_audience(root) == hashed(members(root, AS_OF[0]))


def test_transitions_fire_actions_exactly_once(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    first = members(root, AS_OF[0])
    events = hook.events()
    assert sorted(e["person_id"] for e in events) == sorted(first)
    assert {e["type"] for e in events} == {"segment.entered"}
    assert all(e["segment"] == "active" and e["run_id"] == 1 for e in events)
    assert events[0]["person"]["email"].endswith("@example.com")
    assert sorted(m["to"][0] for m in resend.emails) == sorted(f"{p}@example.com" for p in first)

    lib.Project.load(root).run(as_of=AS_OF[1])
    second = members(root, AS_OF[1])
    exited = first - second
    assert exited, "the fixture data must make someone exit"
    exits = [e for e in hook.events() if e["type"] == "segment.exited"]
    assert sorted(e["person_id"] for e in exits) == sorted(exited)
    assert len(hook.unique_ids()) == len(hook.deliveries)  # nothing sent twice
    assert file_audience(root) == hashed(second)
    tags = lib.Project.load(root).tags()
    assert set(tags["person_id"].to_list()) == first
    emitted = pq.read_table(root / ".segctl" / "emitted_events.parquet").to_pylist()
    assert sorted(r["person_id"] for r in emitted) == sorted(first)
    assert {r["event"] for r in emitted} == {"entered_active"}


def test_a_webhooks_base_url_takes_the_urls_host(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """SPEC 1: every destination accepts base_url (a proxy, a local receiver). A webhook's is
    put before its url's path and query, where it was accepted and ignored."""
    root = make(tmp_path, hook, resend)
    config = root / "segctl.yaml"
    config.write_text(
        config.read_text().replace(
            f'url: "{hook.url}"',
            f'url: "https://crm.example.com/hooks/segments?src=segctl", '
            f'base_url: "{hook.base_url}"',
        )
    )
    result = lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    assert result.report is not None and result.report.failed == 0
    sent = [r for r in hook.requests if r.method == "POST"]
    assert sent and {(r.path, tuple(r.query.items())) for r in sent} == {
        ("/hooks/segments", (("src", "segctl"),))
    }
    assert {e["person_id"] for e in hook.events()} == members(root, AS_OF[0])


def test_person_columns_json_cannot_hold_as_they_are_reach_the_webhook_and_json_outputs(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """A DECIMAL person column is a JSON number (whole: an integer), a timestamp nested in a
    STRUCT is ISO 8601, in the webhook's body and in members/preview --format json."""
    from decimal import Decimal

    import pyarrow as pa

    root = make(tmp_path, hook, resend)
    ids = [f"p{i}" for i in range(1, 7)]
    paid = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "person_id": ids,
                "email": [f"{p}@example.com" for p in ids],
                "ltv": pa.array([Decimal("12.50")] * 5 + [Decimal("7.00")], pa.decimal128(10, 2)),
                "last_order": pa.array(
                    [{"at": paid, "total": Decimal("3.10")}] * 6,
                    pa.struct([("at", pa.timestamp("us", "UTC")), ("total", pa.decimal128(6, 2))]),
                ),
            }
        ),
        root / "persons.parquet",
    )
    config = root / "segctl.yaml"
    config.write_text(config.read_text().replace("persons.csv", "persons.parquet"))
    lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    person = {e["person_id"]: e["person"] for e in hook.events()}
    assert person and all(p["ltv"] == (7 if i == "p6" else 12.5) for i, p in person.items())
    assert {type(p["ltv"]) for i, p in person.items() if i == "p6"} <= {int}
    assert all(p["last_order"] == {"at": "2026-02-01T09:30:00+00:00", "total": 3.1}
               for p in person.values())  # fmt: skip
    for command in (["members", "active"], ["preview", "active", "--as-of", iso(AS_OF[0])]):
        proc = segctl(root, *command, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        document = json.loads(proc.stdout)
        rows = document if isinstance(document, list) else document["members"]
        assert {r["person_id"]: r["ltv"] for r in rows} == {i: p["ltv"] for i, p in person.items()}


def test_the_same_run_again_after_a_crash_delivers_what_it_left_and_reports_the_run(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """``segctl run --as-of T`` killed after its commit, then the same command again (as a
    scheduler retries it): the second does not evaluate T again (history only moves forward)
    but reports run 1's figures and delivers what the crash left, once; a third sends
    nothing more."""
    root = make(tmp_path, hook, resend)
    args = ("run", "--as-of", iso(AS_OF[0]), "--fire-initial", "--format", "json")
    crashed = segctl(root, *args, env={"SEGCTL_CRASH_AT": "commit:after-commit"})
    assert crashed.returncode == -signal.SIGKILL
    assert hook.deliveries == []
    again = segctl(root, *args)
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    members_now = members(root, AS_OF[0])
    assert document["run_id"] == 1
    assert [d["name"] for d in document["segments"]] == lib.Project.load(root).segment_names()
    assert {
        "name": "active",
        "size": len(members_now),
        "entered": len(members_now),
        "exited": 0,
    } in (document["segments"])
    assert document["deliveries"]["sent"] > 0 and document["deliveries"]["pending"] == 0
    assert "run 1 is committed as of" in again.stderr
    assert sorted(e["person_id"] for e in hook.events()) == sorted(members_now)
    third = segctl(root, *args)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["segments"] == document["segments"]
    assert len(hook.deliveries) == len(hook.unique_ids())  # nothing sent twice
    assert sorted(e["person_id"] for e in hook.events()) == sorted(members_now)
    earlier = segctl(root, "run", "--as-of", iso(AS_OF[0] - timedelta(days=1)))
    assert earlier.returncode == 2 and "history only moves forward" in earlier.stderr


def test_transient_errors_are_retried_and_permanent_ones_recorded(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    hook.inject(status=503, times=2)
    resend.inject(status=422, times=None)
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5, proc.stderr
    document = json.loads(proc.stdout)
    entered = len(members(root, AS_OF[0]))
    assert document["deliveries"]["failed"] == entered  # every email failed permanently
    assert len(hook.events()) == entered  # webhooks got through after two 503s
    assert "HTTP 422" in proc.stderr
    status = json.loads(segctl(root, "status", "-f", "json").stdout)
    failed = [d for d in status["deliveries"] if d["status"] == "failed"]
    assert failed and failed[0]["kind"] == "email" and "422" in failed[0]["last_error"]
    # The CSV, the deliveries' table, has the last error too (it was left out).
    as_csv = segctl(root, "status", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["last_error"] for r in rows if r["status"] == "failed"] == [failed[0]["last_error"]]
    assert "--format json holds the runs, audiences and held exits too" in as_csv.stderr


def test_pending_items_are_delivered_by_push(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    hook.inject(status=500, times=None)
    first = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    assert first.returncode == 5
    assert hook.deliveries == []
    # Left for a retry on the backoff's schedule, which only a watch waits for (SPEC 6:
    # pending "for the next push/run").
    from segctl.delivery import queries
    from segctl.state import StateStore

    with StateStore.open(root / ".segctl") as store:
        assert queries.due(store, "webhook", waiting=False) == []
        assert queries.due(store, "webhook")
    hook.clear_faults()
    second = segctl(root, "push")
    assert second.returncode == 0, second.stderr
    assert sorted(e["person_id"] for e in hook.events()) == sorted(members(root, AS_OF[0]))


def test_two_state_folders_never_send_the_same_message_id(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """webhook-id is unique per message (and Resend's Idempotency-Key per request): two
    projects, or one whose state was reset, send the same run 1 of the same segment with
    other ids."""
    one, two = make(tmp_path / "one", hook, resend), make(tmp_path / "two", hook, resend)
    for root in (one, two):
        lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    shutil.rmtree(one / ".segctl")
    lib.Project.load(one).run(as_of=AS_OF[0], fire_initial=True)
    ids = [d.id for d in hook.deliveries]
    assert len(set(ids)) == len(ids) > 0
    keys = [r.headers["idempotency-key"] for r in resend.requests if r.path.startswith("/emails")]
    assert len(set(keys)) == len(keys) > 0
    assert len(resend.emails) == 3 * len(members(one, AS_OF[0]))  # none taken for a repeat


def test_a_watch_retries_on_the_backoffs_schedule(tmp_path: Path) -> None:
    from segctl.watch import Watch

    root = write_project(tmp_path / "proj")
    assert lib.Project.load(root).retry_waiting
    assert not Watch(root, every=60, emit=print)._load().retry_waiting


def _make_due(root: Path) -> None:
    """Move every pending item's next attempt into the past (as time passing would)."""
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    con.execute("UPDATE outbox SET next_attempt_at = NULL WHERE status = 'pending'")
    con.close()


def test_delayed_emails_wait_for_a_later_push(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(
        tmp_path,
        hook,
        resend,
        ACTIVE.replace("template: welcome, subject: Hi", "template: welcome, delay: 5m"),
    )
    result = lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    assert result.report is not None and result.report.complete
    assert resend.emails == [] and result.report.scheduled == len(members(root, AS_OF[0]))
    # status says "scheduled" too, as run and push do, not "pending" (pending is undelivered)
    emails = [d for d in lib.Project.load(root).status()["deliveries"] if d["kind"] == "email"]
    assert [(d["status"], d["count"]) for d in emails] == [("scheduled", result.report.scheduled)]
    _make_due(root)
    report = lib.Project.load(root).push()
    assert len(resend.emails) == len(members(root, AS_OF[0])) and report.complete


def test_a_410_fails_its_message_alone_and_retry_failed_sends_it_once_fixed(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """Standard Webhooks: 410 disables the endpoint. The message it answered is failed; the
    others are not sent and stay pending (SPEC 6: what could not be delivered stays pending),
    in that push and the next ones (each POSTed to the gone endpoint again); `push
    --retry-failed`, once the endpoint is back, sends them all. Each person's webhook arrives
    once."""
    root = hooked_project(tmp_path, hook, resend, one_at_a_time=True)
    entering = members(root, AS_OF[0])
    assert len(entering) >= 3
    hook.inject(status=410, times=1)
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5
    deliveries = json.loads(proc.stdout)["deliveries"]
    assert (deliveries["sent"], deliveries["failed"]) == (0, 1)
    assert deliveries["pending"] == len(entering) - 1
    assert len(hook.requests) == 1 and hook.events() == []  # the rest never left
    assert "segctl push --retry-failed what failed" in proc.stderr
    waiting = [len(lib.Project.load(root).person(p)["pending"]) for p in sorted(entering)]
    assert sorted(waiting) == [0] + [1] * (len(entering) - 1)  # each their own, no one else's
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))  # due, as at a later push
    con.execute("UPDATE outbox SET next_attempt_at = NULL")
    con.close()
    later = segctl(root, "push", "-f", "json")  # still disabled: nothing POSTed
    assert later.returncode == 5 and len(hook.requests) == 1
    assert "disabled until segctl push --retry-failed" in later.stderr
    pushed = json.loads(later.stdout)
    assert (pushed["sent"], pushed["pending"]) == (0, len(entering) - 1)
    retried = segctl(root, "push", "--retry-failed", "-f", "json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["sent"] == len(entering)
    assert sorted(e["person_id"] for e in hook.events()) == sorted(entering)
    status = json.loads(segctl(root, "status", "-f", "json").stdout)["deliveries"]
    assert {r["status"] for r in status if r["destination"] == "crm"} == {"sent"}


def test_a_person_value_that_is_not_a_finite_number_is_sent_as_null(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """A NaN or an infinity in a persons column (a float in a CSV or Parquet export) was
    written into the webhook's body as Python writes it, NaN and Infinity, which no other
    JSON parser reads (the fake now refuses it, as a receiver would): it is null, in the
    webhooks and in `members --format json` alike."""
    root = hooked_project(tmp_path, hook, resend)
    persons = root / "persons.csv"
    scores = ["1.5", "NaN", "inf", "-inf", "2", "NaN"]
    lines = persons.read_text().splitlines()
    persons.write_text(
        "\n".join(
            [lines[0] + ",score", *(f"{r},{x}" for r, x in zip(lines[1:], scores, strict=True))]
        )
        + "\n"
    )
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    assert proc.returncode == 0, proc.stderr
    sent = {e["person_id"]: e["person"]["score"] for e in hook.events()}
    wanted = {f"p{i}": (float(x) if x in ("1.5", "2") else None) for i, x in enumerate(scores, 1)}
    assert sent and sent == {p: wanted[p] for p in sent}
    listed = segctl(root, "members", "active", "-f", "json").stdout
    strict = json.loads(listed, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert {m["person_id"]: m["score"] for m in strict} == {p: wanted[p] for p in sent}


def test_run_and_push_say_each_failure_once_with_its_count(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """A receiver answering 500 to every webhook: `run` and `push` say, once, how many
    items wait and why (not a line per message), and both end with the same error line and
    exit 5."""
    root = hooked_project(tmp_path, hook, resend)
    entering = members(root, AS_OF[0])
    hook.inject(status=500, times=None)
    for args in (["run", "--as-of", iso(AS_OF[0]), "--fire-initial"], ["push"]):
        proc = segctl(root, *args)
        assert proc.returncode == 5, proc.stderr
        said = [line for line in proc.stderr.splitlines() if "item(s) pending" in line]
        assert len(said) == 1 and said[0].startswith(f"crm: {len(entering)} item(s) pending: "), (
            proc.stderr
        )
        assert f"delivery incomplete: 0 failed, {len(entering)} pending" in proc.stderr
    hook.clear_faults()
    proc = segctl(root, "push")
    assert proc.returncode == 0 and "item(s)" not in proc.stderr, proc.stderr
    before, sent_at = entering, []
    for moment in AS_OF[1:]:  # a table: the deliveries are said when there are some
        later = segctl(root, "run", "--as-of", iso(moment))
        sent = len(members(root, moment) - before)
        said = f"deliveries: {sent} sent, 0 failed, 0 pending"
        assert (said in later.stderr) == (sent > 0), (sent, later.stderr)
        before, sent_at = members(root, moment), [*sent_at, sent]
    assert any(sent_at), sent_at


def test_a_permanent_error_other_than_410_fails_its_message_and_the_rest_go(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """A 400 (even one whose body says 410) fails the message it answered; the endpoint is
    not gone, so the other messages of the push are sent."""
    root = hooked_project(tmp_path, hook, resend, one_at_a_time=True)
    entering = members(root, AS_OF[0])
    hook.inject(status=400, times=1, message="field 410 is invalid")
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5
    deliveries = json.loads(proc.stdout)["deliveries"]
    assert (deliveries["sent"], deliveries["failed"], deliveries["pending"]) == (
        len(entering) - 1,
        1,
        0,
    )


def test_retry_failed_sends_the_failed_again_and_leaves_the_skipped(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """`push --retry-failed` tries again what a destination refused, not what segctl
    skipped on purpose (an email to a malformed address stays skipped)."""
    root = make(tmp_path, hook, resend)
    entering = sorted(members(root, AS_OF[0]))
    persons = root / "persons.csv"
    bad = entering[0]
    persons.write_text(persons.read_text().replace(f"{bad}@example.com", "not-an-address"))
    hook.inject(status=400, times=1)
    assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 5

    def by_status() -> dict[tuple[str, str], int]:
        rows = json.loads(segctl(root, "status", "-f", "json").stdout)["deliveries"]
        return {(r["destination"], r["status"]): r["count"] for r in rows}

    assert by_status()[("crm", "failed")] == 1 and by_status()[("mail", "skipped")] == 1
    assert segctl(root, "push", "--retry-failed").returncode == 0
    after = by_status()
    assert ("crm", "failed") not in after and after[("mail", "skipped")] == 1, after


def test_mass_exit_guard_holds_exits_until_confirmed(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    lib.Project.load(root).run(as_of=AS_OF[2])
    before = members(root, AS_OF[2])
    late = AS_OF[3].replace(day=AS_OF[3].day + 10)
    after = members(root, late)
    assert len(before - after) > len(before) / 2
    proc = segctl(root, "run", "--as-of", iso(late), "-f", "json")
    assert proc.returncode == 5  # held exits are pending work
    exiting = len(before - after)
    # run says it, per segment: how many, why, and the command (on stderr with --format json)
    message = (
        f"active: {exiting} exits held (max_exit_ratio 0.5); "
        "release with segctl push --confirm active"
    )
    assert message in proc.stderr
    assert f"({exiting} held exits)" in proc.stderr
    [held] = json.loads(proc.stdout)["deliveries"]["held"]
    assert held == {
        "segment": "active",
        "exits": exiting,
        "max_exit_ratio": 0.5,
        "reason": f"{exiting} of {len(before)} members would exit (max_exit_ratio 0.5)",
        "release": "segctl push --confirm active",
    }
    assert not [e for e in hook.events() if e["type"] == "segment.exited"]
    assert file_audience(root) == hashed(before)  # removals held too
    waiting = lib.Project.load(root).person(sorted(before - after)[0])["pending"]
    assert {(p["kind"], p["transition"], p["status"]) for p in waiting} == {
        ("webhook", "exit", "held"),
        ("audience", "remove", "held"),
    }
    status = json.loads(segctl(root, "status", "-f", "json").stdout)
    assert [(h["segment"], h["exits"], h["release"]) for h in status["holds"]] == [
        ("active", exiting, "segctl push --confirm active")
    ]
    shown = segctl(root, "status").stdout  # a table of the holds, as of the deliveries
    assert re.search(rf"active\s+\d+\s+{exiting}\s+.*segctl push --confirm active", shown)
    pushed = segctl(root, "push")  # push alone does not release them, and says so
    assert pushed.returncode == 5 and message in pushed.stderr
    released = segctl(root, "push", "--confirm", "active")
    assert released.returncode == 0 and "nothing to release" not in released.stderr
    again = segctl(root, "push", "--confirm", "active")  # released: said, not silent
    assert again.returncode == 0
    assert "--confirm active: none of its exits were held; nothing to release" in again.stderr
    exits = [e["person_id"] for e in hook.events() if e["type"] == "segment.exited"]
    assert sorted(exits) == sorted(before - after)
    assert file_audience(root) == hashed(after)


def test_persons_back_before_their_held_exit_is_confirmed_neither_exit_nor_enter(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """The guard's own case: a bad export makes most members exit (held), the next one
    mends it and they enter again. Their entries fired on_enter, and `push --confirm` then
    sent the held exits after them: the CRM ended with members marked as gone. Now the held
    exits are canceled and the entries fire nothing; the hold lapses (no longer said, run and
    push exit 0), and the audience was never touched."""
    by_plan = """\
        name: active
        rule: {property: plan, eq: pro}
        on_enter: [{webhook: {destination: crm}}, {tag: {name: state, value: "in"}}]
        on_exit: [{webhook: {destination: crm}}, {tag: {name: state, value: "out"}}]
        audiences: [{destination: files}]
        """
    root = make(tmp_path, hook, resend, active=by_plan)
    persons = root / "persons.csv"
    good = persons.read_text().replace(",free", ",pro")
    persons.write_text(good)
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    everyone = members(root, AS_OF[0])
    glitch = good.replace("p1@example.com,pro", "p1@example.com,free")
    for person in ("p2", "p3", "p4", "p5"):
        glitch = glitch.replace(f"{person}@example.com,pro", f"{person}@example.com,free")
    persons.write_text(glitch)
    held = segctl(root, "run", "--as-of", iso(AS_OF[1]))
    assert held.returncode == 5 and "5 exits held" in held.stderr
    persons.write_text(glitch.replace("p1@example.com,free", "p1@example.com,pro").replace(
        "p2@example.com,free", "p2@example.com,pro"))  # fmt: skip
    plan = json.loads(
        segctl(root, "run", "--dry-run", "--as-of", iso(AS_OF[2]), "-f", "json").stdout
    )
    adds = {(r["kind"], r["on"]): r["adds"] for r in plan["plan"] if r["segment"] == "active"}
    assert adds[("webhook", "enter")] == 0 and adds[("tag", "enter")] == 2  # as the run does
    partly = segctl(root, "run", "--as-of", iso(AS_OF[2]))  # p1, p2 back; p3..p5 still out
    assert partly.returncode == 5 and "active: 3 exits held" in partly.stderr
    [hold] = json.loads(segctl(root, "status", "-f", "json").stdout)["holds"]
    assert hold["exits"] == 3
    persons.write_text(good)
    mended = segctl(root, "run", "--as-of", iso(AS_OF[3]), "-f", "json")
    assert mended.returncode == 0, mended.stderr
    assert json.loads(mended.stdout)["deliveries"]["held"] == []
    assert "held" not in mended.stderr
    assert json.loads(segctl(root, "status", "-f", "json").stdout)["holds"] == []
    confirm = segctl(root, "push", "--confirm", "active")
    assert "nothing to release" in confirm.stderr
    assert members(root, AS_OF[3]) == everyone
    assert [e["type"] for e in hook.events()] == []  # nothing either way
    assert file_audience(root) == hashed(everyone)
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    statuses = con.execute(
        "SELECT status, count(*) FROM outbox WHERE kind = 'webhook' GROUP BY ALL"
    ).fetchall()
    tags = con.execute("SELECT DISTINCT value FROM tags WHERE name = 'state'").fetchall()
    con.close()
    assert statuses == [("canceled", 5)]
    # A tag is the person's state, set at once (on exit too, held or not): the entry sets
    # it back, whatever the webhooks.
    assert tags == [("in",)]


def test_a_hold_settles_whoever_brings_its_persons_back(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """A held exit is canceled whenever its person is a member again, a backfill's run
    included (it queues nothing: the held exits stayed, and confirming sent them for
    members); a hold whose last person is erased lapses (it blocked the audience's removals
    and made every run exit 5)."""
    hooked = """\
        name: active
        rule: {property: plan, eq: pro}
        on_exit: [{webhook: {destination: crm}}]
        """
    root = make(tmp_path, hook, resend, active=hooked)
    persons = root / "persons.csv"
    good = persons.read_text().replace(",free", ",pro")
    glitch = good
    for person in ("p1", "p2", "p3", "p4", "p5"):
        glitch = glitch.replace(f"{person}@example.com,pro", f"{person}@example.com,free")
    persons.write_text(good)
    assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 0
    persons.write_text(glitch)
    assert segctl(root, "run", "--as-of", iso(AS_OF[1])).returncode == 5
    persons.write_text(good)
    backfill = segctl(root, "backfill", "--from", iso(AS_OF[2]), "--to", iso(AS_OF[2]))
    assert backfill.returncode == 0, backfill.stderr
    assert segctl(root, "run", "--as-of", iso(AS_OF[3])).returncode == 0
    assert json.loads(segctl(root, "status", "-f", "json").stdout)["holds"] == []
    segctl(root, "push", "--confirm", "active")
    assert hook.events() == [] and members(root, AS_OF[3]) == {f"p{i}" for i in range(1, 7)}

    # An erasure of the last person still out.
    persons.write_text(glitch)
    assert segctl(root, "run", "--as-of", iso(AS_OF[3] + timedelta(days=1))).returncode == 5
    persons.write_text(good.replace("p1@example.com,pro", "p1@example.com,free"))
    back = segctl(root, "run", "--as-of", iso(AS_OF[3] + timedelta(days=2)))
    assert back.returncode == 5 and "active: 1 exit held" in back.stderr
    assert segctl(root, "forget", "p1").returncode == 0
    assert json.loads(segctl(root, "status", "-f", "json").stdout)["holds"] == []
    assert segctl(root, "push").returncode == 0


def test_the_dry_run_plan_says_which_transition_each_action_answers(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """SPEC 3: the plan per segment and destination. A webhook on enter and one on exit are
    two rows told apart by `on` (enter, exit; an audience's mode), in JSON and the table."""
    root = make(tmp_path, hook, resend)
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    proc = segctl(root, "run", "--dry-run", "--as-of", iso(AS_OF[1]), "-f", "json")
    plan = json.loads(proc.stdout)["plan"]
    rows = {(r["destination"], r["kind"], r["on"]): r for r in plan}
    assert {k for k in rows if k[0] in ("crm", "files")} == {
        ("crm", "webhook", "enter"),
        ("crm", "webhook", "exit"),
        ("files", "audience", "sync"),
    }
    change = lib.Project.load(root).evaluate(["active"], as_of=AS_OF[1]).changes["active"]
    assert rows["crm", "webhook", "enter"]["adds"] == change.entered
    assert rows["crm", "webhook", "exit"]["removes"] == change.exited
    table = segctl(root, "run", "--dry-run", "--as-of", iso(AS_OF[1])).stdout
    assert re.search(r"active\s+crm\s+webhook\s+exit\s", table), table


def test_held_audience_removals_leave_the_push_incomplete_until_confirmed(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """SPEC 3, 5: a segment with audiences and no on_exit actions holds its audience
    removals; they are pending work like held exit actions (exit 5, "delivery incomplete",
    counted pending, not sent) until ``segctl push --confirm`` sends them (exit 0)."""
    root = make(tmp_path, hook, resend, active=AUDIENCE_ONLY)
    assert segctl(root, "run", "--as-of", iso(AS_OF[2])).returncode == 0
    late = AS_OF[3].replace(day=AS_OF[3].day + 10)
    before, after = members(root, AS_OF[2]), members(root, late)
    assert len(before - after) > len(before) / 2
    # The dry run says the hold it plans, as the run will (SPEC 5), on stderr and in the row.
    proc = segctl(root, "run", "--dry-run", "--as-of", iso(late), "-f", "json")
    said = (
        f"warning: active: {len(before - after)} of {len(before)} members would exit "
        "(max_exit_ratio 0.5): the run holds their exit actions and audience removals until "
        "segctl push --confirm active"
    )
    assert proc.returncode == 0 and said in proc.stderr.splitlines(), proc.stderr
    [row] = json.loads(proc.stdout)["plan"]
    assert row["held"] and said.removeprefix("warning: active: ") in row["warnings"]
    proc = segctl(root, "run", "--as-of", iso(late), "-f", "json")
    assert proc.returncode == 5, proc.stderr
    deliveries = json.loads(proc.stdout)["deliveries"]
    assert (deliveries["sent"], deliveries["failed"], deliveries["pending"]) == (0, 0, 1)
    assert [h["segment"] for h in deliveries["held"]] == ["active"]
    assert "delivery incomplete: 0 failed, 1 pending" in proc.stderr
    assert file_audience(root) == hashed(before)  # the removals wait
    gone = sorted(before - after)[0]
    pending = lib.Project.load(root).person(gone)["pending"]
    assert [(p["destination"], p["transition"], p["status"]) for p in pending] == [
        ("files", "remove", "held")
    ]
    assert segctl(root, "push").returncode == 5
    assert file_audience(root) == hashed(before)
    confirmed = segctl(root, "push", "--confirm", "active", "-f", "json")
    assert confirmed.returncode == 0, confirmed.stderr
    assert file_audience(root) == hashed(after)
    assert json.loads(segctl(root, "status", "-f", "json").stdout)["holds"] == []


def test_a_segment_with_nothing_to_hold_is_never_held(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """No on_exit actions and no audiences: a mass exit holds nothing, so no hold is recorded,
    run and status say nothing of one, and the report shows no held segment."""
    root = hooked_project(tmp_path, hook, resend)
    assert segctl(root, "run", "--as-of", iso(AS_OF[2])).returncode == 0
    late = AS_OF[3].replace(day=AS_OF[3].day + 10)
    before, after = members(root, AS_OF[2]), members(root, late)
    assert len(before - after) > len(before) / 2  # the guard's ratio is exceeded...
    proc = segctl(root, "run", "--as-of", iso(late), "-f", "json")
    assert proc.returncode == 0, proc.stderr  # ...but nothing is held
    assert json.loads(proc.stdout)["deliveries"]["held"] == []
    assert "held" not in proc.stderr
    status = segctl(root, "status", "-f", "json")
    assert json.loads(status.stdout)["holds"] == []
    assert "Held exits" not in segctl(root, "status").stdout
    report = segctl(root, "report", "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    assert "held segments" not in (tmp_path / "r.html").read_text().lower()


def test_consent_and_forget(tmp_path: Path, hook: WebhookFake, resend: ResendFake) -> None:
    root = make(tmp_path, hook, resend, extra="privacy: {consent_column: opt_in}\n")
    persons = (root / "persons.csv").read_text().splitlines()
    rows = [persons[0] + ",opt_in"] + [
        line + (",false" if line.startswith("p1,") else ",true") for line in persons[1:]
    ]
    (root / "persons.csv").write_text("\n".join(rows) + "\n")
    lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
    first = members(root, AS_OF[0])
    assert "p1" in first
    assert file_audience(root) == hashed(first - {"p1"})
    assert "p1@example.com" not in {m["to"][0] for m in resend.emails}
    assert "p1" in {e["person_id"] for e in hook.events()}  # webhooks are not filtered

    victim = sorted(first - {"p1"})[0]
    result = lib.Project.load(root).forget([victim])
    assert result["still_in_audiences"] == 0
    assert file_audience(root) == hashed(first - {"p1", victim})
    lib.Project.load(root).run(as_of=AS_OF[1])
    assert victim not in members(root, AS_OF[1]) or True
    assert hashed({victim}) & file_audience(root) == set()
    state = duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True)
    try:
        tables = (
            "transitions",
            "person_keys",
            "snapshot",
            "tags",
            "wakeups",
            "row_hashes",
            "identity_map",
            "audience_members",
        )
        for table in tables:
            found = state.execute(
                f"SELECT count(*) FROM {table} WHERE person_id = ?", [victim]
            ).fetchall()[0][0]
            assert found == 0, table
        # Nowhere else either: no text value of any table is the id, or ends with it as a
        # key's last part (the outbox's keys end with the person id).
        columns = state.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR'"
        ).fetchall()
        for table, column in columns:
            held = state.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}" = ? OR "{column}" LIKE ?',
                [victim, f"%:{victim}"],
            ).fetchall()[0][0]
            assert held == 0, (table, column)
        audit = state.execute("SELECT subject_hash FROM forgotten").fetchall()
    finally:
        state.close()
    assert len(audit) == 1 and victim not in audit[0][0]


def test_kill_9_during_delivery_then_push_sends_each_webhook_once(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    proc = segctl(
        root,
        "run",
        "--as-of",
        iso(AS_OF[0]),
        "--fire-initial",
        env={"SEGCTL_CRASH_AT": "push:after-send"},
    )
    assert proc.returncode == -signal.SIGKILL
    assert len(hook.deliveries) >= 1  # one batch went out, its mark did not
    assert segctl(root, "push").returncode == 0
    ids = hook.unique_ids()
    assert len(ids) == len(members(root, AS_OF[0]))  # after dedup by webhook-id: exactly once
    assert sorted(e["person_id"] for e in hook.events()) == sorted(members(root, AS_OF[0]))
    assert file_audience(root) == hashed(members(root, AS_OF[0]))


def test_secrets_are_never_printed_or_stored(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    root = make(tmp_path, hook, resend)
    hook.inject(status=401, times=None)
    resend.inject(status=500, times=None)
    outputs = [segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "--debug")]
    outputs += [segctl(root, *args) for args in (["status"], ["push"], ["status", "-f", "json"])]
    for proc in outputs:
        for secret in (TEST_SECRET, "re_test_key"):
            assert secret not in proc.stdout and secret not in proc.stderr
    for path in (root / ".segctl").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert TEST_SECRET.encode() not in data and b"re_test_key" not in data


def _ad_project(tmp_path: Path, meta: MetaFake, google: GoogleFake) -> tuple[Path, str]:
    root = write_project(tmp_path / "ads")
    audience = meta.create_audience()
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + dedent(f"""\
        privacy: {{consent_column: opt_in}}
        destinations:
          meta: {{type: meta, ad_account_id: "1", access_token: meta-token,
                  base_url: "{meta.base_url}", backoff: 0.01}}
          google: {{type: google, operating_account_id: "1234567890",
                    access_token: google-token, base_url: "{google.base_url}", backoff: 0.01}}
        """)
    )
    persons = (root / "persons.csv").read_text().splitlines()
    (root / "persons.csv").write_text(
        "\n".join([persons[0] + ",opt_in"] + [line + ",true" for line in persons[1:]]) + "\n"
    )
    (root / "segments" / "active.yaml").write_text(
        dedent(f"""\
        name: active
        rule: {{event: "*", within: 7d, count: {{gte: 1}}}}
        audiences:
          - {{destination: meta, audience_id: "{audience}"}}
          - {{destination: google, user_list_id: "7001234"}}
        """)
    )
    return root, audience


def _ad_hashes(ids: set[str], platform: str) -> set[str]:
    return {
        str(hash_identity({"person_id": p, "email": f"{p}@example.com"}, platform).email)
        for p in ids
    }


@pytest.fixture
def ads() -> Iterator[tuple[MetaFake, GoogleFake]]:
    with MetaFake() as meta, GoogleFake() as google:
        yield meta, google
        assert meta.pii_leaks == [] and google.pii_leaks == []
        meta.assert_limits(allow_throttling=True)
        google.assert_limits(allow_throttling=True)


def test_mirror_removes_only_what_segctl_added(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 5: the state records what segctl synced "so mirror removes only what segctl
    added": a member someone else put in the audience stays through runs in mirror mode and
    ``segctl sync --mode mirror``, while the persons who left go."""
    import hashlib

    import httpx

    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    segment = root / "segments" / "active.yaml"
    segment.write_text(
        segment.read_text().replace(f'"{audience}"}}', f'"{audience}", mode: mirror}}')
    )
    outsider = hashlib.sha256(b"someone-else@example.com").hexdigest()
    seeded = httpx.post(
        f"{meta.base_url}/v25.0/{audience}/users",
        data={"access_token": "meta-token",
              "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [[outsider]]})},
    )  # fmt: skip
    assert seeded.status_code == 200, seeded.text
    lib.Project.load(root).run(as_of=AS_OF[0])
    lib.Project.load(root).run(as_of=AS_OF[2])
    left = members(root, AS_OF[0]) - members(root, AS_OF[2])
    assert left, "the fixture data must make someone leave"
    expected = _ad_hashes(members(root, AS_OF[2]), "meta") | {outsider}
    assert {r[0] for r in meta.audience(audience)} == expected
    assert lib.Project.load(root).sync("active", "meta", mode="mirror")
    assert {r[0] for r in meta.audience(audience)} == expected
    assert meta.calls("replace_users") == []


@pytest.mark.parametrize("how", ["consent", "suppression"])
def test_consent_changes_reach_audiences_when_no_one_enters_or_exits(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake], how: str
) -> None:
    """SPEC 6: audiences honour consent changes. A revoked consent or a newly suppressed
    email reaches the audience at the next run, though no membership changed (a second
    later), and a run after it with nothing changed queues no sync."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    config = root / "segctl.yaml"
    config.write_text(
        config.read_text().replace(
            "consent_column: opt_in}", "consent_column: opt_in, suppression_file: supp.csv}"
        )
    )
    (root / "supp.csv").write_text("email\n")
    lib.Project.load(root).run(as_of=AS_OF[0])
    first = members(root, AS_OF[0])
    gone = sorted(first)[0]
    if how == "consent":
        persons = root / "persons.csv"
        line = f"{gone},{gone}@example.com,free,"
        persons.write_text(persons.read_text().replace(line + "true", line + "false"))
    else:
        (root / "supp.csv").write_text(f"email\n{gone}@example.com\n")
    later = AS_OF[0] + timedelta(seconds=1)
    result = lib.Project.load(root).run(as_of=later)
    assert all(c.entered == c.exited == 0 for c in result.changes.values())
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(first - {gone}, "meta")
    assert set(google.identifiers("7001234", "emailAddress")) == _ad_hashes(
        first - {gone}, "google"
    )
    calls = len(meta.requests)
    lib.Project.load(root).run(as_of=later + timedelta(seconds=1))
    assert len(meta.requests) == calls  # nothing changed: no sync


def test_revoked_consent_removes_the_person_from_ad_audiences(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    lib.Project.load(root).run(as_of=AS_OF[0])
    first = members(root, AS_OF[0])
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(first, "meta")
    revoked = sorted(first & members(root, AS_OF[1]))[0]
    text = (
        (root / "persons.csv")
        .read_text()
        .replace(
            f"{revoked},{revoked}@example.com,free,true",
            f"{revoked},{revoked}@example.com,free,false",
        )
    )
    (root / "persons.csv").write_text(text)
    lib.Project.load(root).run(as_of=AS_OF[1])
    expected = members(root, AS_OF[1]) - {revoked}
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(expected, "meta")
    assert set(google.identifiers("7001234", "emailAddress")) == _ad_hashes(expected, "google")


def test_invalid_identifiers_are_skipped_and_counted_where_status_shows_them(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """API_CONTRACTS: an invalid email or phone is skipped and counted, not sent. The
    counts were computed and dropped: status said invalid 0 and nothing said them. p1's email
    has no @, p2's phone is two digits, p3 has both: four identifiers, per upload."""
    meta, google = ads
    root, _ = _ad_project(tmp_path, meta, google)
    bad = {"p1": ("p1 at example.com", ""), "p2": ("p2@example.com", "12"),
           "p3": ("p3 at example.com", "12")}  # fmt: skip
    persons = (root / "persons.csv").read_text().splitlines()
    lines = [persons[0] + ",phone,country"]
    for line in persons[1:]:
        person = line.split(",")[0]
        email, phone = bad.get(person, (f"{person}@example.com", ""))
        lines.append(line.replace(f"{person}@example.com", email) + f",{phone},US")
    (root / "persons.csv").write_text("\n".join(lines) + "\n")
    assert set(bad) <= members(root, AS_OF[0])
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]))
    assert proc.returncode == 0, proc.stderr
    for name in ("meta", "google"):
        assert f"{name}/" in proc.stderr
    assert "4 invalid identifier(s) skipped, not sent (2 email(s), 2 phone(s)" in proc.stderr
    status = json.loads(segctl(root, "status", "-f", "json").stdout)
    for row in status["audiences"]:
        assert row["invalid"] == 4, row
        details = row["details"] if isinstance(row["details"], dict) else json.loads(row["details"])
        assert (details["invalid_emails"], details["invalid_phones"]) == (2, 2)
    synced = json.loads(segctl(root, "sync", "active", "meta", "--dry-run", "-f", "json").stdout)
    # p1 and p3, never synced (no usable identifier), are tried again by each sync: counted
    # again (p2, synced by email, is not): 3 identifiers.
    assert [r["invalid"] for r in synced] == [3]


def test_a_leaving_person_does_not_take_a_shared_identifier_from_one_who_stays(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 6: the audience holds the desired set. Two persons with one phone are one entry
    on the platform (Meta and Google remove every member sharing an identifier with a
    removed one; TikTok keeps one line per hash): p2, leaving, shares p1's phone, so its
    removal sends its own email alone; p4 shares p3's email and phone, so nothing is sent
    for it. p1 and p3 stay whole, and the next run sends nothing."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    phones = {p: f"+1 202 555 010{p[1]}" for p in ("p1", "p3", "p5", "p6")}
    phones |= {"p2": phones["p1"], "p4": phones["p3"]}
    persons = (root / "persons.csv").read_text().splitlines()
    lines = [persons[0] + ",phone,country"]
    for line in persons[1:]:
        person = line.split(",")[0]
        lines.append(line.replace("p4@example.com", "p3@example.com") + f",{phones[person]},US")
    (root / "persons.csv").write_text("\n".join(lines) + "\n")

    def identity(person: str, platform: str) -> tuple[str, str]:
        email = "p3@example.com" if person == "p4" else f"{person}@example.com"
        found = hash_identity({"person_id": person, "email": email, "phone": phones[person],
                               "country": "US"}, platform)  # fmt: skip
        assert found.email and found.phone
        return found.email, found.phone

    lib.Project.load(root).run(as_of=AS_OF[0])
    assert members(root, AS_OF[0]) >= {"p1", "p2", "p3", "p4"}
    result = lib.Project.load(root).run(as_of=AS_OF[2])
    assert members(root, AS_OF[2]) & {"p2", "p4"} == set() and {"p1", "p3"} <= members(
        root, AS_OF[2]
    )

    removed = [json.loads(r.query["payload"])["data"] for r in meta.calls("remove_users")]
    assert removed == [[[identity("p2", "meta")[0], ""]]]  # p2's email, not p1's phone
    held = {value for row in meta.audience(audience) for value in row}
    for person in ("p1", "p3"):
        assert set(identity(person, "meta")) <= held
    assert identity("p2", "meta")[0] not in held
    for kind, index in (("emailAddress", 0), ("phoneNumber", 1)):
        kept = google.identifiers("7001234", kind)
        assert {identity(p, "google")[index] for p in ("p1", "p3")} <= kept
    assert identity("p2", "google")[0] not in google.identifiers("7001234", "emailAddress")
    assert result.deliveries["failed"] == result.deliveries["pending"] == 0
    calls = len(meta.requests) + len(google.requests)
    lib.Project.load(root).run(as_of=AS_OF[2] + timedelta(seconds=1))
    assert len(meta.requests) + len(google.requests) == calls  # p4 is not removed again


def test_a_member_whose_email_changes_is_sent_again_and_the_old_hash_removed(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 6: audiences are the desired set, self-healing. A member who stays while their
    email changes in the persons file has the new hash added and the old one removed (on
    Meta and Google), at the next run though no membership changed; nobody else is sent.
    Members synced before segctl kept what their identifiers were made of (state schema v9)
    are not sent again for it."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    lib.Project.load(root).run(as_of=AS_OF[0])
    members_now = members(root, AS_OF[0])
    assert "p1" in members_now
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    con.execute("UPDATE audience_members SET source = NULL")  # as a v8 state migrated
    con.close()
    lib.Project.load(root).run(as_of=AS_OF[0] + timedelta(seconds=1), dry_run=True)
    lib.Project.load(root).sync("active", "meta", mode="mirror", dry_run=True)
    with duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(source) FROM audience_members").fetchall() == [(0,)]
    persons = root / "persons.csv"
    text = persons.read_text()
    persons.write_text(text.replace("p5,p5@example.com,free,true", "p5,p5@example.com,pro,true"))
    calls = len(meta.requests) + len(google.requests)
    later = AS_OF[0] + timedelta(seconds=1)
    lib.Project.load(root).run(as_of=later)  # the persons changed, no member's identifiers
    assert len(meta.requests) + len(google.requests) == calls
    persons.write_text(persons.read_text().replace("p1,p1@example.com,", "p1,p1.new@example.com,"))
    planned = lib.Project.load(root).run(as_of=later + timedelta(seconds=1), dry_run=True).plan
    assert {(r.destination, r.adds, r.removes) for r in planned or []} == {
        ("meta", 1, 1),
        ("google", 1, 1),
    }  # the dry run counts p1 as the sync will send them
    result = lib.Project.load(root).run(as_of=later + timedelta(seconds=1))
    assert all(c.entered == c.exited == 0 for c in result.changes.values())

    def hashed(platform: str, *emails: str) -> set[str]:
        return {str(hash_identity({"person_id": "x", "email": e}, platform).email) for e in emails}

    emails = [f"{p}@example.com" for p in sorted(members_now - {"p1"})] + ["p1.new@example.com"]
    assert {r[0] for r in meta.audience(audience)} == hashed("meta", *emails)
    assert google.identifiers("7001234", "emailAddress") == hashed("google", *emails)
    [removal] = meta.calls("remove_users")
    assert json.loads(removal.query["payload"])["data"] == [[*hashed("meta", "p1@example.com"), ""]]
    calls = len(meta.requests) + len(google.requests)
    lib.Project.load(root).run(as_of=later + timedelta(seconds=2))
    assert len(meta.requests) + len(google.requests) == calls  # in step: nothing to send
    # An email that is no email now: no identifier to send, so p3 leaves the audience once.
    persons.write_text(persons.read_text().replace("p3,p3@example.com,", "p3,not an email,"))
    lib.Project.load(root).run(as_of=later + timedelta(seconds=3))
    emails.remove("p3@example.com")
    assert {r[0] for r in meta.audience(audience)} == hashed("meta", *emails)
    removals = len(meta.calls("remove_users"))
    assert lib.Project.load(root).sync("active", "meta", mode="mirror")  # a sync, in step
    assert len(meta.calls("remove_users")) == removals  # p3 is not removed again
    # p6 takes p1's email (its own removed), then none: what it held is p1's, so nothing is
    # sent, and p6 leaves segctl's record of the audience.
    persons.write_text(persons.read_text().replace("p6,p6@example.com,", "p6,p1.new@example.com,"))
    lib.Project.load(root).run(as_of=later + timedelta(seconds=4))
    persons.write_text(persons.read_text().replace("p6,p1.new@example.com,", "p6,,"))
    calls = len(meta.requests)
    lib.Project.load(root).run(as_of=later + timedelta(seconds=5))
    assert len(meta.requests) == calls
    emails.remove("p6@example.com")
    assert {r[0] for r in meta.audience(audience)} == hashed("meta", *emails)
    with duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True) as con:
        synced = {p for (p,) in con.execute("SELECT person_id FROM audience_members").fetchall()}
    assert "p6" not in synced and "p1" in synced


def test_a_resend_contact_whose_email_changes_moves_to_the_new_email(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """SPEC 6: a Resend segment holds the segment's members' contacts. A member who stays
    while their email changes is added with the new email and the old contact is taken out
    of the segment, at the next run though no membership changed; an email changed only in
    case or spaces (the same contact to Resend) sends nothing; a member who takes another's
    email leaves their own contact and takes nothing of the other's out."""
    segment = resend.create_segment("seg_active")
    audience = f"""\
        name: active
        rule: {{event: "*", within: 7d, count: {{gte: 1}}}}
        audiences:
          - {{destination: mail, segment_id: {segment}}}
        """
    root = make(tmp_path, hook, resend, active=audience)
    lib.Project.load(root).run(as_of=AS_OF[0])
    inside = sorted(members(root, AS_OF[0]))
    first, second = inside[0], inside[1]
    assert resend.segment(segment) == {f"{p}@example.com" for p in inside}
    persons = root / "persons.csv"
    text = persons.read_text().replace(
        f"{first},{first}@example.com,", f"{first},{first}.new@example.com,"
    )
    persons.write_text(
        text.replace(f"{second},{second}@example.com,", f"{second}, {second.upper()}@Example.com ,")
    )
    later = AS_OF[0] + timedelta(seconds=1)
    planned = lib.Project.load(root).run(as_of=later, dry_run=True).plan or []
    assert [(r.destination, r.adds, r.removes) for r in planned] == [("mail", 1, 1)]
    calls = len(resend.requests)
    result = lib.Project.load(root).run(as_of=later)
    assert all(c.entered == c.exited == 0 for c in result.changes.values())
    expected = {f"{p}@example.com" for p in inside[1:]} | {f"{first}.new@example.com"}
    assert resend.segment(segment) == expected
    sent = [(r.method, r.path) for r in resend.requests[calls:]]
    assert [m for m, _ in sent] == ["DELETE", "POST", "POST"], sent  # out, contact, in
    assert f"{first}@example.com" in sent[0][1]
    calls = len(resend.requests)
    lib.Project.load(root).run(as_of=later + timedelta(seconds=1))
    assert len(resend.requests) == calls  # in step: nothing to send
    # A third member takes the first one's old email: nothing of theirs leaves the segment.
    third = inside[2]
    persons.write_text(
        persons.read_text().replace(
            f"{third},{third}@example.com,", f"{third},{first}.new@example.com,"
        )
    )
    lib.Project.load(root).run(as_of=later + timedelta(seconds=2))
    assert resend.segment(segment) == expected - {f"{third}@example.com"}


def test_a_changed_member_whose_old_hashes_failed_to_go_loses_them_at_the_next_push(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 5, 6: nothing lost. A member's email changes while Meta refuses the removal of
    the old hash (its outage outlasts the retries): the person is in doubt, and the push
    after Meta is back removes the old hash and adds the new one."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    lib.Project.load(root).run(as_of=AS_OF[0])
    inside = members(root, AS_OF[0])
    persons = root / "persons.csv"
    persons.write_text(persons.read_text().replace("p1,p1@example.com,", "p1,p1.new@example.com,"))
    meta.inject(status=503, times=None, endpoint="remove_users")
    later = AS_OF[0] + timedelta(seconds=1)
    assert segctl(root, "run", "--as-of", iso(later)).returncode == 5
    meta.clear_faults()
    assert segctl(root, "push").returncode == 0

    def hashed(*emails: str) -> set[str]:
        return {str(hash_identity({"person_id": "x", "email": e}, "meta").email) for e in emails}

    emails = [f"{p}@example.com" for p in sorted(inside - {"p1"})] + ["p1.new@example.com"]
    assert {r[0] for r in meta.audience(audience)} == hashed(*emails)


def test_a_hold_keeps_ad_audience_removals_until_confirmed(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 5: a mass exit holds the segment's audience removals on the ad platforms too:
    nothing is removed from Meta or Google, `run` and `push` exit 5, and `push --confirm`
    removes the leavers."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    assert segctl(root, "run", "--as-of", iso(AS_OF[2])).returncode == 0
    late = AS_OF[3].replace(day=AS_OF[3].day + 10)
    before, after = members(root, AS_OF[2]), members(root, late)
    assert len(before - after) > len(before) / 2
    assert segctl(root, "run", "--as-of", iso(late)).returncode == 5
    assert segctl(root, "push").returncode == 5
    assert meta.calls("remove_users") == [] and google.calls("remove") == []
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(before, "meta")
    assert segctl(root, "push", "--confirm", "active").returncode == 0
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(after, "meta")
    assert google.identifiers("7001234", "emailAddress") == _ad_hashes(after, "google")


def test_two_segments_on_one_destination_keep_their_own_audiences(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 5: per destination audience, what segctl has synced there. A person leaving one
    segment's Meta audience stays in the other's, on Meta and in segctl's record of it: a
    sync of the other audience finds it in step and sends nothing."""
    meta, google = ads
    root, _ = _ad_project(tmp_path, meta, google)
    everyone = meta.create_audience()
    (root / "segments" / "everyone.yaml").write_text(
        dedent(f"""\
        name: everyone
        rule: {{event: "*", count: {{gte: 1}}}}
        audiences:
          - {{destination: meta, audience_id: "{everyone}"}}
        """)
    )
    lib.Project.load(root).run(as_of=AS_OF[0])
    lib.Project.load(root).run(as_of=AS_OF[1])
    left = members(root, AS_OF[0]) - members(root, AS_OF[1])
    assert left and meta.calls("remove_users")
    all_of_them = {str(p) for p in lib.Project.load(root).evaluate(["everyone"], as_of=AS_OF[1])
                   .members("everyone")["person_id"].to_list()}  # fmt: skip
    assert left <= all_of_them
    assert {r[0] for r in meta.audience(everyone)} == _ad_hashes(all_of_them, "meta")
    calls = len(meta.requests)
    lib.Project.load(root).sync("everyone", "meta", mode="mirror")
    assert len(meta.requests) == calls  # the other audience's record held: in step


def test_sync_add_and_remove_modes_send_one_direction_only(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """`segctl sync --mode add` only adds: leavers stay, and a member whose email changed
    gets the new hash with the old one kept; `--mode remove` then only removes: the leavers
    go, the changed member's hashes stay as they are."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    lib.Project.load(root).run(as_of=AS_OF[0])
    first, second = members(root, AS_OF[0]), members(root, AS_OF[1])
    stays = sorted(first & second)[0]
    persons = root / "persons.csv"
    persons.write_text(
        persons.read_text().replace(
            f"{stays},{stays}@example.com,", f"{stays},{stays}.x@example.com,"
        )
    )
    meta.inject(status=503, times=None)
    assert segctl(root, "run", "--as-of", iso(AS_OF[1])).returncode == 5
    meta.clear_faults()
    removals = len(meta.calls("remove_users"))  # the failed run's attempts
    lib.Project.load(root).sync("active", "meta", mode="add")
    assert len(meta.calls("remove_users")) == removals
    new = str(hash_identity({"person_id": stays, "email": f"{stays}.x@example.com"}, "meta").email)
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(first | second, "meta") | {new}
    lib.Project.load(root).sync("active", "meta", mode="remove")
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(second, "meta") | {new}


def test_removals_beyond_one_batch_all_leave(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removals go in batches of the platform's size: every leaver leaves, whatever the
    number of batches (Google's batches of two here)."""
    from segctl.delivery.platforms.google import GoogleAudience

    monkeypatch.setattr(GoogleAudience, "max_batch", 2)
    meta, google = ads
    root, _ = _ad_project(tmp_path, meta, google)
    lib.Project.load(root).run(as_of=AS_OF[0])
    late = AS_OF[3].replace(day=AS_OF[3].day + 10)
    config = root / "segctl.yaml"
    config.write_text(config.read_text() + "delivery: {max_exit_ratio: 1.0}\n")
    lib.Project.load(root).run(as_of=late)
    gone = members(root, AS_OF[0]) - members(root, late)
    assert len(gone) >= 5
    assert google.identifiers("7001234", "emailAddress") == _ad_hashes(
        members(root, late), "google"
    )
    assert len(google.calls("remove")) >= 3


def test_an_add_in_doubt_of_a_person_now_unreachable_by_email_is_taken_back(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 5: nothing lost. Meta applies the adds but its answers are lost (the person is
    in doubt); the person's email then becomes unusable. The next push removes what may have
    been added for them, and keeps everyone else."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    meta.inject(status=503, times=None, after=True, endpoint="add_users")
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 5
    inside = members(root, AS_OF[0])
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(inside, "meta")  # applied
    meta.clear_faults()
    gone = sorted(inside)[0]
    persons = root / "persons.csv"
    persons.write_text(
        persons.read_text().replace(f"{gone},{gone}@example.com,", f"{gone},not an email,")
    )
    assert segctl(root, "push").returncode == 0
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(inside - {gone}, "meta")


def test_two_file_audiences_on_one_destination_keep_their_own_records(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """Writing one segment's file audience leaves segctl's record of the other's alone."""
    root = make(tmp_path, hook, resend, active=AUDIENCE_ONLY)
    (root / "segments" / "everyone.yaml").write_text(
        'name: everyone\nrule: {event: "*", count: {gte: 1}}\n'
        "audiences:\n  - {destination: files}\n"
    )
    lib.Project.load(root).run(as_of=AS_OF[0])
    lib.Project.load(root).run(as_of=AS_OF[1])
    with duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True) as con:
        kept = dict(
            con.execute("SELECT audience, count(*) FROM audience_members GROUP BY 1").fetchall()
        )
    everyone = lib.Project.load(root).evaluate(["everyone"], as_of=AS_OF[1]).members("everyone")
    assert kept == {"active": len(members(root, AS_OF[1])), "everyone": everyone.height}


def test_a_sync_failing_at_each_push_counts_once_and_converges(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 3, 6: a Meta audience whose platform answers 503 to every request stays one
    pending delivery, push after push (the changes it journalled as in doubt are not
    deliveries and do not pile up: `status` shows them apart), and converges once the
    platform is back."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    meta.inject(status=503, times=None)
    first = segctl(root, "run", "--as-of", iso(AS_OF[0]), "-f", "json")
    assert first.returncode == 5
    assert json.loads(first.stdout)["deliveries"]["pending"] == 1  # google's sync went
    for _ in range(3):
        pushed = segctl(root, "push", "-f", "json")
        assert pushed.returncode == 5
        assert json.loads(pushed.stdout)["pending"] == 1, pushed.stdout
    status = json.loads(segctl(root, "status", "-f", "json").stdout)["deliveries"]
    meta_rows = {r["status"]: r["count"] for r in status if r["destination"] == "meta"}
    assert meta_rows["pending"] == 1 and meta_rows["in doubt"] <= 2, meta_rows
    meta.clear_faults()
    assert segctl(root, "push").returncode == 0
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(members(root, AS_OF[0]), "meta")
    status = json.loads(segctl(root, "status", "-f", "json").stdout)["deliveries"]
    assert {r["status"] for r in status if r["destination"] == "meta"} == {"sent"}


def test_person_lists_the_audience_changes_a_pending_sync_will_make(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """SPEC 3: ``segctl person`` lists the person's pending deliveries, the audiences among
    them: while Meta refuses every request, a member is still to be added there (not on
    Google, which took them), an unreachable one is not, a member with no usable identifier
    is skipped, and after the platform is back and a run later, a member whose email
    changed is to be updated and one who left to be removed."""
    meta, google = ads
    root, _ = _ad_project(tmp_path, meta, google)
    inside = sorted(members(root, AS_OF[0]))
    stays = sorted(set(inside) & members(root, AS_OF[1]))
    leaves = sorted(set(inside) - members(root, AS_OF[1]))
    persons = root / "persons.csv"
    unreachable, bare = stays[1], stays[2]
    text = persons.read_text().replace(
        f"{unreachable}@example.com,free,true", f"{unreachable}@example.com,free,false"
    )
    persons.write_text(text.replace(f"{bare},{bare}@example.com,", f"{bare},,"))
    meta.inject(status=503, times=None)
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 5

    def audience_rows(person: str) -> set[tuple[str, str, str]]:
        found = lib.Project.load(root).person(person)["pending"]
        assert all(r["kind"] == "audience" for r in found)
        return {(r["destination"], r["transition"], r["status"]) for r in found}

    assert audience_rows(stays[0]) == {("meta", "add", "pending")}
    assert audience_rows(unreachable) == set()
    assert audience_rows(bare) == {("meta", "add", "skipped")}
    shown = json.loads(segctl(root, "person", stays[0], "-f", "json").stdout)["pending"]
    assert [(r["destination"], r["transition"], r["attempts"] > 0) for r in shown] == [
        ("meta", "add", True)
    ]
    meta.clear_faults()
    assert segctl(root, "push").returncode == 0
    assert audience_rows(stays[0]) == set()

    changed = stays[0]
    persons.write_text(
        persons.read_text().replace(
            f"{changed},{changed}@example.com,", f"{changed},{changed}.new@example.com,"
        )
    )
    crash = {"SEGCTL_CRASH_AT": "commit:after-commit"}  # committed, nothing sent yet
    assert segctl(root, "run", "--as-of", iso(AS_OF[1]), env=crash).returncode == -signal.SIGKILL
    assert audience_rows(changed) == {
        ("meta", "update", "pending"),
        ("google", "update", "pending"),
    }
    assert audience_rows(leaves[0]) == {
        ("meta", "remove", "pending"),
        ("google", "remove", "pending"),
    }
    assert audience_rows(stays[3]) == set()
    assert segctl(root, "push").returncode == 0
    assert audience_rows(changed) == audience_rows(leaves[0]) == set()


def test_kill_9_during_audience_sync_then_push_converges(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    # Killed after the platform took the first upload, before segctl recorded it.
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), env={"SEGCTL_CRASH_AT": "sync:after-add"})
    assert proc.returncode == -signal.SIGKILL
    assert meta.audience(audience) or google.identifiers("7001234", "emailAddress")
    assert segctl(root, "push").returncode == 0
    expected = members(root, AS_OF[0])
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(expected, "meta")
    assert set(google.identifiers("7001234", "emailAddress")) == _ad_hashes(expected, "google")


def test_a_permanent_error_on_one_batch_does_not_block_the_others(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segctl.delivery.platforms.meta import MetaAudience

    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    monkeypatch.setattr(MetaAudience, "max_batch", 1)  # one person per request
    first = members(root, AS_OF[0])
    victim = sorted(first)[1]
    [victim_hash] = _ad_hashes({victim}, "meta")
    meta.inject(platform_error=100, contains=victim_hash, times=None)
    result = lib.Project.load(root).run(as_of=AS_OF[0])
    assert result.report is not None and result.report.failed == 1  # the meta sync request
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(first - {victim}, "meta")
    assert set(google.identifiers("7001234", "emailAddress")) == _ad_hashes(first, "google")
    status = lib.Project.load(root).status()
    [failed] = [d for d in status["deliveries"] if d["status"] == "failed"]
    assert failed["destination"] == "meta" and "HTTP 400" in failed["last_error"]
    # Reconciliation self-heals (SPEC 6): once the platform takes the member, the next run
    # brings the audience in step, though no one entered or exited.
    meta.clear_faults()
    later = AS_OF[0] + timedelta(minutes=1)
    assert members(root, later) == first
    google_requests = len(google.requests)
    result = lib.Project.load(root).run(as_of=later)
    assert result.report is not None and result.report.failed == 0
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(first, "meta")
    assert len(google.requests) == google_requests  # in step already: not synced again


def test_an_audience_attached_to_a_segment_is_synced_by_the_next_run(tmp_path: Path) -> None:
    """A run queued an audience's sync only when the segment's members changed (or on its
    first run): an audience added to a steady segment was never uploaded by `run`, though
    the dry run's plan listed its adds."""
    root = write_project(tmp_path / "proj")
    config = root / "segctl.yaml"
    config.write_text(config.read_text() + "destinations:\n  files: {type: file, path: out}\n")
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    buyers = root / "segments" / "buyers.yaml"
    buyers.write_text(buyers.read_text() + "audiences:\n  - {destination: files}\n")
    steady = lib.Project.load(root).evaluate(["buyers"], as_of=AS_OF[1]).sizes()
    assert steady.row(0, named=True)["entered"] == steady.row(0, named=True)["exited"] == 0

    proc = segctl(root, "run", "--as-of", iso(AS_OF[1]), "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deliveries"]["sent"] == 1
    with (root / "out" / "buyers.csv").open() as handle:
        assert {row["email_sha256"] for row in csv.DictReader(handle)} == hashed({"p1"})
    proc = segctl(root, "run", "--as-of", iso(AS_OF[2]), "-f", "json")  # synced: not again
    assert json.loads(proc.stdout)["deliveries"]["sent"] == 0


def test_a_sync_dry_run_warns_below_the_platforms_minimum(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake]
) -> None:
    """As the plan of `run --dry-run` does: Meta serves audiences of 100 people and more."""
    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    lib.Project.load(root).run(as_of=AS_OF[0])
    [result] = lib.Project.load(root).sync("active", "meta", mode="mirror", dry_run=True)
    size = len(members(root, AS_OF[0]))
    assert result.warnings == [
        f"meta audience {audience} would hold {size} people, below the platform's minimum of 100"
    ]
    proc = segctl(root, "sync", "active", "meta", "--dry-run", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert f"warning: meta audience {audience} would hold {size} people" in proc.stderr


def test_a_file_audiences_sync_dry_run_counts_as_its_sync_does(
    tmp_path: Path, hook: WebhookFake, resend: ResendFake
) -> None:
    """A file is written whole, and its sync counts the persons added and removed against
    those it had written; the dry run counted every member as added (3 where the sync said
    0), and warned of Meta's minimum audience for a CSV file."""
    root = make(tmp_path, hook, resend, active=AUDIENCE_ONLY)
    lib.Project.load(root).run(as_of=AS_OF[0])
    [planned] = lib.Project.load(root).sync("active", "files", dry_run=True)
    assert (planned.added, planned.removed, planned.warnings) == (0, 0, [])
    # One member the file lacks, one person in it who is no member.
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    [(member, identifiers)] = con.execute(
        "SELECT person_id, identifiers FROM audience_members ORDER BY person_id LIMIT 1"
    ).fetchall()
    con.execute("UPDATE audience_members SET person_id = 'ghost' WHERE person_id = ?", [member])
    con.close()
    [planned] = lib.Project.load(root).sync("active", "files", dry_run=True)
    [synced] = lib.Project.load(root).sync("active", "files")
    assert (planned.added, planned.removed) == (synced.added, synced.removed) == (1, 1)
    assert file_audience(root) == hashed(members(root, AS_OF[0]))
    assert identifiers  # the row moved was a synced member's


def test_a_pending_audience_sync_is_not_queued_again_by_a_run_without_changes(
    tmp_path: Path,
) -> None:
    """An audience never synced is queued by the next run whether or not its segment
    changed; one whose first sync is still pending (the push was cut short) is not: a run
    without changes leaves the one request waiting, not a second sync of the same audience."""
    root = write_project(tmp_path / "proj")
    config = root / "segctl.yaml"
    config.write_text(config.read_text() + "destinations:\n  files: {type: file, path: out}\n")
    (root / "segments" / "active.yaml").write_text(dedent(AUDIENCE_ONLY))
    later = AS_OF[0] + timedelta(minutes=1)
    assert members(root, later) == members(root, AS_OF[0])  # no one enters or exits
    crash = {"SEGCTL_CRASH_AT": "commit:after-commit"}  # committed, nothing sent yet
    for moment in (AS_OF[0], later):
        proc = segctl(root, "run", "--as-of", iso(moment), env=crash)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    with duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True) as con:
        queued = con.execute(
            "SELECT run_id, status FROM outbox WHERE kind = 'audience' ORDER BY id"
        ).fetchall()
    assert queued == [(1, "pending")]
    assert segctl(root, "push").returncode == 0
    assert file_audience(root) == hashed(members(root, AS_OF[0]))


@pytest.fixture
def stopping() -> Iterator[None]:
    """segctl.delivery.retry.stopping (a watch told to stop), cleared after the test."""
    from segctl.delivery.retry import stopping

    stopping.clear()
    yield
    stopping.clear()


def test_a_run_told_to_stop_leaves_its_audience_syncs_pending_for_the_next_push(
    tmp_path: Path, ads: tuple[MetaFake, GoogleFake], stopping: None
) -> None:
    """A watch told to stop while its run delivers (SIGTERM): the run commits and its
    audience syncs, cut short before any request, end the push cleanly (a report, no
    error), pending; the next push, no longer stopping, syncs them as after a crash."""
    from segctl.delivery.retry import stopping as deliveries_stopping

    meta, google = ads
    root, audience = _ad_project(tmp_path, meta, google)
    deliveries_stopping.set()
    result = lib.Project.load(root).run(as_of=AS_OF[0])
    assert result.report is not None
    assert (result.report.sent, result.report.failed, result.report.pending) == (0, 0, 2)
    assert meta.requests == google.requests == []  # not one request made
    deliveries_stopping.clear()
    report = lib.Project.load(root).push()
    assert (report.sent, report.pending) == (2, 0)
    expected = members(root, AS_OF[0])
    assert {r[0] for r in meta.audience(audience)} == _ad_hashes(expected, "meta")
    assert set(google.identifiers("7001234", "emailAddress")) == _ad_hashes(expected, "google")
