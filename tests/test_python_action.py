"""The ``python`` action and the webhook ``payload:`` (SPEC section 6): references checked by
``validate`` (exit 3, file:line), records with stable ids, retries with backoff on exceptions,
and exactly once in effect after kill -9 (the crash suite also runs the action; see
tests/test_crash.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from collections import Counter
from pathlib import Path
from textwrap import dedent
from typing import Any

import duckdb
import pytest
from fakes import TEST_SECRET, WebhookFake
from stateproject import AS_OF, iso, segctl, write_project

import segctl as lib

# A module kept in the project folder: appends every call's records to calls.jsonl (one line a
# call, written in one write so a kill cannot leave half of it); fails while failures.txt says.
HOOKS = """\
import json, os, time
from pathlib import Path

HERE = Path(__file__).parent
NOT_A_FUNCTION = 42


def leave(records):
    raise SystemExit(0)


def cancelled(records):
    import asyncio
    raise asyncio.CancelledError("the loop was stopped")


def slow(records):
    with open(HERE / "started.txt", "a") as started:
        started.write("call\\n")
    while (HERE / "hold.txt").exists():  # a service that does not answer
        time.sleep(0.05)
    record(records)


def record(records):
    budget = HERE / "failures.txt"
    if budget.exists():
        left = int(budget.read_text() or 0)
        if left > 0:
            budget.write_text(str(left - 1))
            raise ConnectionError(f"crm down ({left} more)")
    fd = os.open(HERE / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (json.dumps(records, sort_keys=True) + "\\n").encode())
    finally:
        os.close(fd)
"""


def project(tmp_path: Path, actions: str, *, hook: WebhookFake | None = None) -> Path:
    root = write_project(tmp_path / "proj")
    (root / "hooks_for_test.py").write_text(HOOKS)
    if hook is not None:
        (root / "segctl.yaml").write_text(
            (root / "segctl.yaml").read_text()
            + dedent(f"""\
            destinations:
              crm: {{type: webhook, url: "{hook.url}", secret: "{TEST_SECRET}", backoff: 0.01}}
            """)
        )
    (root / "segments" / "active.yaml").write_text(
        dedent("""\
        name: active
        rule: {event: "*", within: 7d, count: {gte: 1}}
        """)
        + dedent(actions)
    )
    return root


def calls(root: Path) -> list[Any]:
    path = root / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def members(root: Path, moment: object) -> set[str]:
    result = lib.Project.load(root).evaluate(["active"], as_of=moment)  # type: ignore[arg-type]
    return set(result.members("active")["person_id"].to_list())


# ---- validate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("no_such_module_xyz:record", "cannot import module 'no_such_module_xyz'"),
        (
            "hooks_for_test:recrod",
            "module 'hooks_for_test' has no 'recrod' (did you mean 'record'?)",
        ),
        ("hooks_for_test:NOT_A_FUNCTION", "is a int, not a function"),
        ("hooks_for_test.record", 'must be "package.module:callable"'),
        ("hooks_for_test:rec-ord", 'must be "package.module:callable"'),
    ],
)
def test_validate_refuses_a_bad_reference_with_file_and_line(
    tmp_path: Path, function: str, says: str
) -> None:
    root = project(
        tmp_path,
        f"""\
        on_enter:
          - python: {{function: "{function}"}}
        """,
    )
    proc = segctl(root, "validate")
    assert proc.returncode == 3, proc.stderr
    assert "segments/active.yaml:4:" in proc.stderr and says in proc.stderr
    # and nothing runs: a run refuses the same definitions before committing anything
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 3
    assert not (root / ".segctl" / "state.duckdb").exists()


def test_validate_refuses_a_payload_that_is_not_a_mapping(tmp_path: Path) -> None:
    with WebhookFake() as hook:
        root = project(
            tmp_path,
            """\
            on_enter:
              - webhook: {destination: crm, payload: send_retention_offer}
            """,
            hook=hook,
        )
        proc = segctl(root, "validate")
        assert proc.returncode == 3
        assert "segments/active.yaml:4:" in proc.stderr and "'payload' must be a mapping" in (
            proc.stderr
        )


def test_validate_refuses_a_timeout_that_is_not_a_positive_number(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:record", timeout: 0}
        """,
    )
    proc = segctl(root, "validate")
    assert proc.returncode == 3
    assert "segments/active.yaml:4:" in proc.stderr
    assert "'timeout' must be a number >= 0.001" in proc.stderr


def test_a_good_reference_validates(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:record", batch: 2, max_retries: 1, backoff: 0}
        """,
    )
    proc = segctl(root, "validate")
    assert proc.returncode == 0, proc.stderr
    plan = segctl(root, "run", "--dry-run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    assert plan.returncode == 0 and "python hooks_for_test:record" in plan.stdout
    # SPEC 5: the plan gives per segment and destination adds, removes and messages: the
    # calls a batch of 2 makes.
    planned = segctl(root, "run", "--dry-run", "--as-of", iso(AS_OF[0]), "--fire-initial",
                     "--format", "json")  # fmt: skip
    [row] = [r for r in json.loads(planned.stdout)["plan"] if r["kind"] == "python"]
    assert row["adds"] > 2 and row["messages"] == -(-row["adds"] // 2)
    # CSV (SPEC 3: every format prints the data): the segments and the plan in one table
    as_csv = segctl(root, "run", "--dry-run", "--as-of", iso(AS_OF[0]), "--fire-initial",
                    "--format", "csv")  # fmt: skip
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    [python] = [r for r in table if r["kind"] == "python"]
    assert python["segment"] == "active" and python["destination"] == "python hooks_for_test:record"
    assert (int(python["adds"]), int(python["messages"])) == (row["adds"], row["messages"])
    assert int(python["size"]) == int(python["entered"]) == row["adds"]


# ---- the webhook payload -------------------------------------------------------------------------


def test_a_webhook_payload_is_sent_with_each_event(tmp_path: Path) -> None:
    with WebhookFake() as hook:
        root = project(
            tmp_path,
            """\
            on_enter:
              - webhook: {destination: crm, payload: {action: send_retention_offer, tier: 2}}
              - webhook: {destination: crm, batch: 10, payload: {action: batch_offer}}
            """,
            hook=hook,
        )
        assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 0
        events = hook.events()
        expected = members(root, AS_OF[0])
        assert len(events) == 2 * len(expected)
        single = [
            e for e in events if e["payload"] == {"action": "send_retention_offer", "tier": 2}
        ]
        batched = [e for e in events if e["payload"] == {"action": "batch_offer"}]
        assert {e["person_id"] for e in single} == {e["person_id"] for e in batched} == expected
        assert all(e["type"] == "segment.entered" and "person" in e for e in events)


# ---- the python action ---------------------------------------------------------------------------


def test_records_carry_stable_ids_one_call_each_or_in_batches(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:record"}
          - python: {function: "hooks_for_test:record", batch: 2}
        on_exit:
          - python: {function: "hooks_for_test:record", batch: 100}
        """,
    )
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    assert proc.returncode == 0, proc.stderr
    entered = members(root, AS_OF[0])
    made = calls(root)
    singles = [c for c in made if isinstance(c, dict)]
    batches = [c for c in made if isinstance(c, list)]
    assert sorted(r["person_id"] for r in singles) == sorted(entered)
    assert [len(b) for b in batches] == [2] * (len(entered) // 2) + [len(entered) % 2] * (
        len(entered) % 2
    )
    first = singles[0]
    assert set(first) == {"id", "type", "segment", "person_id", "as_of", "run_id", "person"}
    assert first["type"] == "segment.entered" and first["segment"] == "active"
    assert first["as_of"] == iso(AS_OF[0]) and first["run_id"] == 1
    assert first["person"]["email"] == f"{first['person_id']}@example.com"
    ids = [r["id"] for r in singles] + [r["id"] for b in batches for r in b]
    assert len(set(ids)) == len(ids) == 2 * len(entered)  # one id per action and transition
    assert all(i.startswith("evt_") and len(i) == 36 for i in ids)

    later = AS_OF[3]
    assert segctl(root, "run", "--as-of", iso(later)).returncode == 0
    exited = entered - members(root, later)
    new = calls(root)[len(made) :]
    exits = [r for c in new if isinstance(c, list) for r in c if r["type"] == "segment.exited"]
    assert exited and sorted(r["person_id"] for r in exits) == sorted(exited)


def test_exceptions_are_retried_with_backoff_then_left_pending(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:record", batch: 100, max_retries: 2, backoff: 0.01}
        on_exit:
          - python: {function: "hooks_for_test:record", batch: 100, max_retries: 2, backoff: 0.01}
        """,
    )
    (root / "failures.txt").write_text("2")  # two failures, then it works: retried in the push
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    assert proc.returncode == 0, proc.stderr
    [first] = calls(root)
    assert (root / "failures.txt").read_text() == "0"

    (root / "failures.txt").write_text("50")  # down for longer than the retries
    proc = segctl(root, "run", "--as-of", iso(AS_OF[1]))
    exited = members(root, AS_OF[0]) - members(root, AS_OF[1])
    assert exited, "the fixture makes someone exit at the second run"
    assert proc.returncode == 5  # pending, said
    assert "raised ConnectionError: crm down" in proc.stderr
    assert (root / "failures.txt").read_text() == "47"  # 1 call + 2 retries
    status = json.loads(segctl(root, "status", "-f", "json").stdout)
    [pending] = [
        d for d in status["deliveries"] if d["kind"] == "python" and d["status"] == "pending"
    ]
    assert pending["status"] == "pending" and pending["count"] == len(exited)
    assert pending["destination"] == "python hooks_for_test:record"  # each function its row
    assert "ConnectionError" in pending["last_error"]

    (root / "failures.txt").write_text("0")
    con_path = root / ".segctl" / "state.duckdb"
    import duckdb

    con = duckdb.connect(str(con_path))
    con.execute("UPDATE outbox SET next_attempt_at = NULL")  # due now, not in a minute
    con.close()
    assert segctl(root, "push").returncode == 0
    [_, second] = calls(root)
    assert sorted(r["person_id"] for r in second) == sorted(exited)
    assert {r["type"] for r in second} == {"segment.exited"}
    assert first[0]["id"] not in {r["id"] for r in second}


def test_a_function_calling_sys_exit_is_a_failure_left_pending(tmp_path: Path) -> None:
    """sys.exit() in the user's function ended the whole run: exit 0, no output, every
    record pending. It is a failure of the call like an exception: retried, then pending,
    said, exit 5."""
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:leave", batch: 100, max_retries: 1, backoff: 0.01}
        """,
    )
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5, proc.stderr
    assert "raised SystemExit" in proc.stderr
    deliveries = json.loads(proc.stdout)["deliveries"]
    assert deliveries["sent"] == 0 and deliveries["pending"] == len(members(root, AS_OF[0]))


def test_a_function_raising_a_base_exception_is_a_failure_not_a_delivery(tmp_path: Path) -> None:
    """asyncio.CancelledError is not an Exception: raised in the call's thread, it ended the
    call as if it had returned, and its records were marked sent."""
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:cancelled", batch: 100, max_retries: 0}
        """,
    )
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5, proc.stderr
    assert "raised CancelledError: the loop was stopped" in proc.stderr
    deliveries = json.loads(proc.stdout)["deliveries"]
    assert deliveries["sent"] == 0 and deliveries["pending"] == len(members(root, AS_OF[0]))


def test_a_function_failing_every_call_is_not_called_again_in_the_same_push(
    tmp_path: Path,
) -> None:
    """Unbatched, each record took its own retries one after the other (about an hour for a
    few hundred records against a service that is down): after GIVE_UP_AFTER failed calls
    in a row, the function's other records stay pending, said, for the next push."""
    from segctl.delivery.worker import GIVE_UP_AFTER

    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:record", max_retries: 1, backoff: 0.01}
        """,
    )
    (root / "failures.txt").write_text("1000")
    entering = members(root, AS_OF[0])
    assert len(entering) > GIVE_UP_AFTER, "the fixture makes more persons enter"
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5
    calls_made = 1000 - int((root / "failures.txt").read_text())
    assert calls_made == GIVE_UP_AFTER * 2  # each call and its one retry
    rest = len(entering) - GIVE_UP_AFTER
    assert f"{GIVE_UP_AFTER} calls in a row failed; its other {rest} record(s)" in proc.stderr
    assert json.loads(proc.stdout)["deliveries"]["pending"] == len(entering)

    (root / "failures.txt").write_text("0")  # the service is back: the next push calls all
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    con.execute("UPDATE outbox SET next_attempt_at = NULL")
    con.close()
    assert segctl(root, "push").returncode == 0
    assert sorted(r["person_id"] for r in calls(root)) == sorted(entering)


def test_a_call_that_does_not_return_in_time_leaves_its_records_pending(tmp_path: Path) -> None:
    """A hung function hung the run: a call is bounded by the action's timeout, like a
    webhook's request. The call may still be running, so the function is not called again in
    that push (user code need not be thread-safe); its records stay pending, said, exit 5."""
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:slow", timeout: 0.5, max_retries: 3}
        """,
    )
    (root / "hold.txt").write_text("")
    entering = members(root, AS_OF[0])
    assert len(entering) > 1
    proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", "-f", "json")
    assert proc.returncode == 5, proc.stderr
    assert "hooks_for_test:slow did not return within 0.5 s" in proc.stderr
    assert "a call that timed out is still running" in proc.stderr
    assert (root / "started.txt").read_text().count("call") == 1  # not retried, no other call
    assert json.loads(proc.stdout)["deliveries"]["pending"] == len(entering)

    (root / "hold.txt").unlink()  # the service answers again
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"))
    con.execute("UPDATE outbox SET next_attempt_at = NULL")
    con.close()
    assert segctl(root, "push").returncode == 0
    assert sorted(r["person_id"] for r in calls(root)) == sorted(entering)


def test_a_push_killed_after_the_call_calls_again_with_the_same_ids(tmp_path: Path) -> None:
    """kill -9 between the function's return and its record: the next push calls again with
    the same records and ids; de-duplicated on id, each transition took effect once."""
    root = project(
        tmp_path,
        """\
        on_enter:
          - python: {function: "hooks_for_test:record", batch: 2}
        """,
    )
    killed = segctl(
        root,
        "run",
        "--as-of",
        iso(AS_OF[0]),
        "--fire-initial",
        env={**os.environ, "SEGCTL_CRASH_AT": "python:after-call"},
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(calls(root)) == 1  # the first batch was called, not recorded
    assert segctl(root, "push").returncode == 0
    made = calls(root)
    assert made[0] == made[1]  # the same batch again, the same ids
    received = Counter(r["id"] for call in made for r in call)
    once = {r["id"]: r["person_id"] for call in made for r in call}
    assert sorted(once.values()) == sorted(members(root, AS_OF[0]))
    assert max(received.values()) == 2 and sum(received.values()) == len(once) + 2
    assert segctl(root, "push").returncode == 0 and calls(root) == made  # nothing left
