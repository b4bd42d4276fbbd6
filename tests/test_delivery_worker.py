"""The outbox worker on its own: a state store, a reachability rule, destinations and an HTTP
client (``httpx.MockTransport``), and no Project (segctl/delivery/worker.py)."""

from __future__ import annotations

import json
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
