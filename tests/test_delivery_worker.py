"""The outbox worker on its own: a state store, a reachability rule, destinations and an HTTP
client (``httpx.MockTransport``), and no Project (segctl/delivery/worker.py)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fakes import TEST_SECRET
from sqlglot import exp

from segctl.definitions.destinations import Destination
from segctl.delivery.worker import Worker
from segctl.state import S, StateStore

CREATED = datetime(2026, 1, 1)


class OnlyThese:
    """A reachability rule: the persons named may be messaged, no one else."""

    def __init__(self, *person_ids: str) -> None:
        self.allowed = set(person_ids)

    def condition(self, alias: str = "p") -> exp.Expression:
        return exp.column("person_id", alias).isin(*(exp.Literal.string(p) for p in self.allowed))

    def reachable(self, person_ids: list[str]) -> set[str]:
        return self.allowed & set(person_ids)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path, create=True) as store:
        store.con.execute(
            "CREATE TEMP VIEW persons AS SELECT * FROM (VALUES ('u1', 'a@example.com', 'Ann'),"
            " ('u2', 'b@example.com', 'Bo')) AS t(person_id, email, name)"
        )
        yield store


def queue(store: StateStore, kind: str, destination: str, spec: dict[str, object]) -> None:
    """One pending row per person for an action of ``kind`` (as a run queues them)."""
    for number, person in enumerate(("u1", "u2"), start=1):
        store.con.execute(
            f"""INSERT INTO {S}.outbox (id, segment, person_id, kind, destination, transition,
                spec, idempotency_key, status, created_at)
                VALUES (?, 'vip', ?, ?, ?, 'enter', ?, ?, 'pending', ?)""",
            [number, person, kind, destination, json.dumps(spec), f"k{number}", CREATED],
        )


def worker(
    store: StateStore, destination: Destination, handler: httpx.MockTransport, *allowed: str
) -> Worker:
    return Worker(
        store,
        OnlyThese(*allowed),
        {destination.name: destination},
        client=httpx.Client(transport=handler),
        root=store.folder,
        person_columns=["person_id", "email", "name"],
    )


def statuses(store: StateStore) -> list[tuple[str, str, str | None]]:
    return store.rows(f"SELECT person_id, status, last_error FROM {S}.outbox ORDER BY id")


def test_webhooks_go_signed_with_the_persons_and_are_recorded_sent(store: StateStore) -> None:
    hook = Destination(
        name="crm",
        type="webhook",
        settings={"url": "https://hooks.example.com/in"},
        secrets={"secret": TEST_SECRET},
        max_retries=0,
    )
    queue(store, "webhook", "crm", {"batch": 1})
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    report = worker(store, hook, httpx.MockTransport(handler)).push()

    assert (report.sent, report.failed, report.pending, report.complete) == (2, 0, 0, True)
    bodies = sorted((json.loads(r.content) for r in seen), key=lambda b: b["person_id"])
    assert [(b["person_id"], b["person"]["name"]) for b in bodies] == [("u1", "Ann"), ("u2", "Bo")]
    assert all(r.headers["webhook-signature"].startswith("v1,") for r in seen)
    assert statuses(store) == [("u1", "sent", None), ("u2", "sent", None)]


def test_emails_skip_the_persons_the_reachability_rule_refuses(store: StateStore) -> None:
    mail = Destination(
        name="mail",
        type="resend",
        settings={"from": "team@example.com"},
        secrets={"api_key": "re_test"},
        max_retries=0,
    )
    queue(store, "email", "mail", {"template": "welcome", "subject": "Hi"})

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing may be sent: {request.url}")

    report = worker(store, mail, httpx.MockTransport(handler)).push()  # no one reachable

    assert (report.sent, report.skipped, report.complete) == (0, 2, True)
    assert statuses(store) == [
        ("u1", "skipped", "no consent or suppressed"),
        ("u2", "skipped", "no consent or suppressed"),
    ]


# ---- python actions: stops and failures in a row ----------------------------------------

#: A project's module whose function follows a script, one line per call: ``ok`` records the
#: call's person, ``fail`` raises, ``stop`` raises after telling deliveries to stop (as
#: ``segctl watch`` does on SIGTERM while the call runs).
SCRIPTED = """\
import json
from pathlib import Path

from segctl.delivery.retry import stopping

HERE = Path(__file__).parent


def act(record):
    script = (HERE / "script.txt").read_text().split()
    (HERE / "script.txt").write_text(" ".join(script[1:]))
    with open(HERE / "called.txt", "a") as called:
        called.write(record["person_id"] + "\\n")
    if script[0] == "stop":
        stopping.set()
    if script[0] != "ok":
        raise ConnectionError(f"crm down ({script[0]})")
"""


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    """segctl.delivery.retry.stopping, cleared after the test whatever it set."""
    from segctl.delivery.retry import stopping

    stopping.clear()
    try:
        yield stopping
    finally:
        stopping.clear()


@pytest.fixture
def scripted(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The scripted module in the state's folder (the worker's root), imported afresh."""
    (store.folder / "scripted_action.py").write_text(SCRIPTED)
    monkeypatch.syspath_prepend(str(store.folder))
    sys.modules.pop("scripted_action", None)
    yield store.folder
    sys.modules.pop("scripted_action", None)


def queue_python(store: StateStore, persons: list[str], **spec: object) -> None:
    """One pending python action row per person, oldest first (one call each)."""
    spec = {"function": "scripted_action:act", **spec}
    for number, person in enumerate(persons, start=1):
        store.con.execute(
            f"""INSERT INTO {S}.outbox (id, segment, person_id, kind, transition, spec,
                idempotency_key, status, created_at)
                VALUES (?, 'vip', ?, 'python', 'enter', ?, ?, 'pending', ?)""",
            [number, person, json.dumps(spec), f"k{number}", CREATED],
        )


def python_worker(store: StateStore) -> Worker:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing goes over HTTP: {request.url}")

    return Worker(
        store,
        OnlyThese("u1", "u2"),
        {},
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        root=store.folder,
        person_columns=["person_id", "email", "name"],
    )


def called(root: Path) -> list[str]:
    path = root / "called.txt"
    return path.read_text().split() if path.exists() else []


def test_a_success_between_failures_starts_the_count_of_failures_in_a_row_again(
    store: StateStore, scripted: Path
) -> None:
    """A function is given up on for the push after GIVE_UP_AFTER (3) failed calls *in a
    row*: failing, succeeding, then failing twice is two in a row, not three, and every
    record is still called."""
    (scripted / "script.txt").write_text("fail ok fail fail ok ok")
    persons = [f"u{i}" for i in range(1, 7)]
    queue_python(store, persons, max_retries=0, backoff=0.01)

    report = python_worker(store).push()

    assert called(scripted) == persons
    assert not any("calls in a row failed" in m for m in report.messages), report.messages
    assert [s for _, s, _ in statuses(store)] == [
        "pending", "sent", "pending", "pending", "sent", "sent"
    ]  # fmt: skip


def test_a_stop_during_a_python_actions_retry_ends_the_push_leaving_its_records_pending(
    store: StateStore, scripted: Path, stopping: threading.Event
) -> None:
    """Told to stop (``segctl watch`` on SIGTERM) while a call failed and waits for its
    retry: the push waits for no retry and calls nothing more; it ends with a report, and
    every record stays pending, attempted zero times, for the next run or push."""
    (scripted / "script.txt").write_text("stop ok ok")
    queue_python(store, ["u1", "u2", "u3"], max_retries=5, backoff=30)

    report = python_worker(store).push()

    assert stopping.is_set()
    assert called(scripted) == ["u1"]  # no retry, and no other record called
    assert (report.sent, report.failed, report.pending) == (0, 0, 3)
    assert store.rows(f"SELECT person_id, status, attempts, last_error FROM {S}.outbox") == [
        ("u1", "pending", 0, None),
        ("u2", "pending", 0, None),
        ("u3", "pending", 0, None),
    ]


def test_a_call_while_stopping_makes_no_attempt(stopping: threading.Event) -> None:
    """While deliveries are stopping, :func:`retry.call` raises Stopped before its first
    attempt: a request not yet made is not made (what it would send stays pending)."""
    from segctl.delivery.retry import RetryPolicy, Stopped, call

    attempts: list[int] = []
    stopping.set()
    with pytest.raises(Stopped):
        call(lambda: attempts.append(1), RetryPolicy(max_retries=3, initial=0.01, jitter=0))
    assert attempts == []


# ---- status --------------------------------------------------------------------------------


def test_status_shows_each_groups_latest_error(store: StateStore) -> None:
    """`segctl status` shows a group's last error: the newest row's that has one (not the
    greatest text: HTTP 500 after HTTP 400 alphabetically), and a newer row without an
    error (pending, not yet tried) does not blank it."""
    from segctl.delivery import queries

    rows = [  # id, person, status, attempts, last_error (ids in the order they were tried)
        (1, "u1", "failed", 1, "HTTP 500: Internal Server Error"),
        (2, "u2", "failed", 1, "HTTP 400: bad request"),
        (3, "u1", "pending", 2, "HTTP 503: Service Unavailable"),
        (4, "u2", "pending", 1, None),
    ]
    for number, person, status, attempts, error in rows:
        store.con.execute(
            f"""INSERT INTO {S}.outbox (id, segment, person_id, kind, destination, transition,
                spec, idempotency_key, status, attempts, last_error, created_at)
                VALUES (?, 'vip', ?, 'webhook', 'crm', 'enter', '{{}}', ?, ?, ?, ?, ?)""",
            [number, person, f"k{number}", status, attempts, error, CREATED],
        )

    shown = {
        d["status"]: (d["count"], d["last_error"]) for d in queries.status(store)["deliveries"]
    }

    assert shown == {
        "failed": (2, "HTTP 400: bad request"),
        "pending": (2, "HTTP 503: Service Unavailable"),
    }
