"""The outbox worker: deliver what is due, exactly once in effect (SPEC 5 and 6).

For each kind of due row:

1. rows are grouped into batches and each batch gets a ``batch_key``, persisted *before*
   anything is sent; a retry after a crash finds the same batches with the same keys, so the
   webhook receiver sees the same ``webhook-id`` and Resend the same ``Idempotency-Key``;
2. batches are sent concurrently (bounded per destination, paced by a rate limiter, retried
   with backoff per :mod:`segctl.delivery.retry`);
3. each batch's outcome is recorded in its own small transaction: sent, failed (permanent,
   with the platform's message) or still pending with its next attempt time.

A crash between 2 and 3 means the batch is sent again with the same key: harmless.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl import progress
from segctl.definitions.destinations import Destination
from segctl.delivery.limits import RateLimiter
from segctl.delivery.retry import Deferred, DeliveryFailure, Permanent, call, policy_for
from segctl.errors import StateError
from segctl.faults import crash_point
from segctl.state import S, StateStore
from segctl.timeutil import now_utc

if TYPE_CHECKING:
    import httpx

    from segctl.project import Project

EMAIL_BATCH = 100
EMITTED_FILE = "emitted_events.parquet"


@dataclass(frozen=True)
class Held:
    """A segment whose exits the mass-exit guard holds until ``segctl push --confirm``."""

    segment: str
    exits: int  # persons whose exit actions and audience removals wait
    max_exit_ratio: float | None  # the ratio the run exceeded (None: not recorded)
    reason: str  # e.g. "146 of 292 members would exit (max_exit_ratio 0.5)"

    @property
    def command(self) -> str:
        return f"segctl push --confirm {self.segment}"

    @property
    def message(self) -> str:
        """One line for people: how many exits, why, and how to release them.

        >>> print(Held("power_users", 146, 0.5, "").message.replace("; ", ";\\n"))
        power_users: 146 exits held (max_exit_ratio 0.5);
        release with segctl push --confirm power_users
        """
        why = f"max_exit_ratio {self.max_exit_ratio:g}" if self.max_exit_ratio else self.reason
        plural = "exit" if self.exits == 1 else "exits"
        return f"{self.segment}: {self.exits} {plural} held ({why}); release with {self.command}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "exits": self.exits,
            "max_exit_ratio": self.max_exit_ratio,
            "reason": self.reason,
            "release": self.command,
        }


@dataclass
class Report:
    """What one push did, and what is left."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0  # due but not delivered, or held for confirmation
    scheduled: int = 0  # delayed and not yet due
    messages: list[str] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)  # segments whose exits wait for --confirm

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.pending == 0

    def counts(self) -> dict[str, Any]:
        """The ``deliveries`` of ``run --format json``: counts, and the held segments."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "pending": self.pending,
            "held": [h.to_dict() for h in self.held],
        }


@dataclass
class Batch:
    key: str
    destination: str
    rows: list[dict[str, Any]]


class Worker:
    """Delivers the due rows of one state store."""

    def __init__(
        self,
        project: Project,
        store: StateStore,
        destinations: dict[str, Destination],
        *,
        client: httpx.Client | None = None,
    ) -> None:
        self.project = project
        self.store = store
        self.destinations = destinations
        self.client = client
        self.report = Report()
        self._people: dict[str, dict[str, Any]] = {}
        self.limiters = {n: RateLimiter(d.rate_limit, burst=1) for n, d in destinations.items()}
        # Requests in flight per destination, whichever audience sync sends them.
        self.slots = {n: threading.BoundedSemaphore(d.concurrency) for n, d in destinations.items()}

    # ---- entry point ------------------------------------------------------------------

    def push(self, confirm: Iterable[str] = ()) -> Report:
        from segctl.delivery.audiences import Reconciler

        for segment in confirm:
            self.confirm(segment)
        with self._shared_client():
            # Audiences sync in the background meanwhile: one's network waits are the
            # other's CPU time. Each records its outcomes on its own, under the store's lock.
            with ThreadPoolExecutor(max_workers=1) as background:
                audiences = background.submit(copy_context().run, Reconciler(self).run)
                self.emit()
                self.webhooks()
                self.emails()
                self.python_actions()
            audiences.result()
        self._count_left()
        return self.report

    @contextmanager
    def _shared_client(self) -> Iterator[None]:
        """One HTTP client (and connection pool) for the whole push, unless one was given:
        a client per sender would each build an SSL context and open its own connections."""
        if self.client is not None:
            yield
            return
        import httpx

        with httpx.Client() as self.client:  # each request sets its destination's timeout
            try:
                yield
            finally:
                self.client = None

    def confirm(self, segment: str) -> int:
        """Release a segment's held exits (the mass-exit guard): its held exit actions become
        pending and its audiences are reconciled again, removals included."""
        with self.store.transaction():
            held = self.store.rows(
                f"SELECT count(*) FROM {S}.outbox WHERE segment = ? AND status = 'held'",
                [segment],
            )[0][0]
            self.store.con.execute(
                f"""UPDATE {S}.outbox SET status = 'pending', next_attempt_at = NULL
                    WHERE segment = ? AND (status = 'held' OR (kind = 'audience' AND run_id IN
                        (SELECT run_id FROM {S}.holds WHERE segment = ?
                         AND confirmed_at IS NULL)))""",
                [segment, segment],
            )
            self.store.con.execute(
                f"UPDATE {S}.holds SET confirmed_at = ? WHERE segment = ? AND confirmed_at IS NULL",
                [now_utc(), segment],
            )
        return int(held)

    # ---- rows and batches -------------------------------------------------------------

    def due(self, kind: str) -> list[dict[str, Any]]:
        """Due pending rows of a kind, oldest first, with their run's as_of."""
        with self.store.lock:
            cursor = self.store.con.execute(
                f"""SELECT o.id, o.run_id, o.segment, o.person_id, o.destination, o.transition,
                           o.spec, o.idempotency_key, o.batch_key, o.attempts, r.as_of
                    FROM {S}.outbox o LEFT JOIN {S}.runs r USING (run_id)
                    WHERE o.kind = ? AND o.status = 'pending'
                      AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?)
                    ORDER BY o.id""",
                [kind, now_utc()],
            )
            columns = [d[0] for d in cursor.description]
            found = cursor.fetchall()
        return [dict(zip(columns, row, strict=True)) for row in found]

    def batches(
        self,
        rows: list[dict[str, Any]],
        size: Callable[[dict[str, Any]], int],
        group: Callable[[dict[str, Any]], Any],
    ) -> list[Batch]:
        """Reuse persisted batch keys; give new rows new batches, persisted before sending."""
        keyed: dict[str, Batch] = {}
        fresh: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            if row["batch_key"]:
                keyed.setdefault(
                    row["batch_key"], Batch(row["batch_key"], row["destination"], [])
                ).rows.append(row)
            else:
                fresh.setdefault(group(row), []).append(row)
        assignments = []
        for members in fresh.values():
            limit = max(1, size(members[0]))
            for start in range(0, len(members), limit):
                chunk = members[start : start + limit]
                digest = hashlib.sha256(
                    "\n".join(r["idempotency_key"] for r in chunk).encode()
                ).hexdigest()
                key = f"msg_{digest[:32]}"
                for row in chunk:
                    row["batch_key"] = key
                    assignments.append((key, row["id"]))
                keyed[key] = Batch(key, chunk[0]["destination"], chunk)
        if assignments:
            with self.store.transaction():
                self.store.con.execute(
                    f"""UPDATE {S}.outbox SET batch_key = b.batch_key
                        FROM (SELECT unnest(?::VARCHAR[]) AS batch_key,
                                     unnest(?::BIGINT[]) AS id) AS b
                        WHERE outbox.id = b.id""",
                    [[k for k, _ in assignments], [i for _, i in assignments]],
                )
        crash_point("push:after-batch-keys")
        return list(keyed.values())

    def send_all(self, batches: list[Batch], send: Callable[[Batch], Any]) -> None:
        """Send batches concurrently (bounded per destination) and record each outcome."""
        by_destination: dict[str, list[Batch]] = {}
        for batch in batches:
            by_destination.setdefault(batch.destination, []).append(batch)
        for name, group in by_destination.items():
            destination = self.destinations.get(name)
            if destination is None:
                self.fail(group, f"destination '{name}' is no longer configured")
                continue
            policy = policy_for(destination.max_retries, destination.backoff)
            limiter = self.limiters[name]
            workers = max(1, min(destination.concurrency, len(group)))
            advance = progress.task(f"Sending to {name}", len(group))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {
                    pool.submit(call, lambda b=batch: send(b), policy, limiter): batch
                    for batch in group
                }
                for future in as_completed(futures):
                    batch = futures[future]
                    try:
                        future.result()
                    except DeliveryFailure as failure:
                        self.record_failure([batch], failure)
                    else:
                        crash_point("push:after-send")
                        self.mark_sent(batch.rows)
                    advance(1)

    # ---- outcomes ---------------------------------------------------------------------

    # Audience syncs run in threads: an outcome is recorded, and counted, under the store's lock.

    def mark_sent(self, rows: list[dict[str, Any]]) -> None:
        with self.store.lock:
            self.update(
                rows,
                "status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL",
                [now_utc()],
            )
            self.report.sent += len(rows)

    def mark(self, rows: list[dict[str, Any]], status: str, reason: str) -> None:
        self.update(rows, "status = ?, last_error = ?", [status, reason])
        if status == "skipped":
            self.report.skipped += len(rows)

    def update(self, rows: list[dict[str, Any]], assignments: str, params: list[Any]) -> None:
        """One UPDATE of the outbox rows given (a transaction of its own)."""
        if not rows:
            return
        with self.store.transaction():
            self.store.con.execute(
                f"UPDATE {S}.outbox SET {assignments} WHERE id IN (SELECT unnest(?::BIGINT[]))",
                [*params, [r["id"] for r in rows]],
            )

    def fail(self, batches: list[Batch], reason: str) -> None:
        for batch in batches:
            self.record_failure([batch], Permanent(reason))

    def record_failure(self, batches: list[Batch], failure: DeliveryFailure) -> None:
        rows = [r for b in batches for r in b.rows]
        if isinstance(failure, Permanent):
            status, next_at = "failed", None
        else:
            attempts = max(r["attempts"] for r in rows) + 1
            wait = (
                failure.retry_after
                if isinstance(failure, Deferred) and failure.retry_after
                else min(3600.0, 30.0 * 2 ** min(attempts, 7))
            )
            status, next_at = "pending", now_utc() + timedelta(seconds=wait)
        with self.store.lock:
            self.update(
                rows,
                "status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?",
                [status, failure.message[:1000], next_at],
            )
            self.report.failed += len(rows) if status == "failed" else 0
            self.report.messages.append(
                f"{batches[0].destination}: {len(rows)} item(s) {status}: {failure.message}"
            )

    def _count_left(self) -> None:
        """pending: held, due, or waiting to be retried; scheduled: delayed, never tried."""
        moment = now_utc()
        rows = self.store.rows(
            f"""SELECT count(*) FILTER (WHERE status = 'held' OR (status = 'pending' AND
                       (attempts > 0 OR next_attempt_at IS NULL OR next_attempt_at <= ?))),
                       count(*) FILTER (WHERE status = 'pending' AND attempts = 0
                                        AND next_attempt_at > ?)
                FROM {S}.outbox""",
            [moment, moment],
        )
        self.report.pending, self.report.scheduled = int(rows[0][0]), int(rows[0][1])
        self.report.held = held_exits(self.store)

    # ---- persons ----------------------------------------------------------------------

    def persons(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Person columns by id (for payloads, emails and audiences), fetched once per push."""
        wanted = sorted(set(ids) - self._people.keys())
        if not wanted:
            return self._people
        self.project.schema  # noqa: B018 - registers the persons view
        with self.store.lock:  # audience syncs ask for persons from their threads
            cursor = self.store.con.execute(
                "SELECT * FROM persons WHERE person_id IN (SELECT unnest(?::VARCHAR[]))", [wanted]
            )
            columns = [d[0] for d in cursor.description]
            found = cursor.fetchall()
        # Two threads may fetch the same person: both get the same columns.
        self._people.update((row[0], dict(zip(columns, row, strict=True))) for row in found)
        return self._people

    # ---- kinds ------------------------------------------------------------------------

    def webhooks(self) -> None:
        from segctl.delivery.webhook import WebhookSender

        rows = self.due("webhook")
        if not rows:
            return
        senders: dict[str, WebhookSender] = {}
        batches = self.batches(
            rows,
            size=lambda r: int(json.loads(r["spec"]).get("batch", 1)),
            group=lambda r: (r["destination"], r["spec"]),
        )
        people = self.persons(r["person_id"] for r in rows)
        for name in {b.destination for b in batches}:
            if name in self.destinations:
                senders[name] = WebhookSender(self.destinations[name], self.client)
        try:
            self.send_all(batches, lambda b: senders[b.destination].send(b, people))
        finally:
            for sender in senders.values():
                sender.close()

    def emails(self) -> None:
        from segctl.delivery.resend import EmailSender, valid_address

        rows = self.due("email")
        if not rows:
            return
        people = self.persons(r["person_id"] for r in rows)
        with self.store.lock:  # the project's queries run on the state's connection
            allowed = self.project.reachable(sorted({r["person_id"] for r in rows}))
        sendable, malformed = [], 0
        for row in rows:
            person = people.get(row["person_id"])
            if person is None or not person.get("email"):
                self.mark([row], "skipped", "no email address")
            elif not valid_address(person["email"]):  # would fail its whole batch of 100
                self.mark([row], "skipped", "malformed email address")
                malformed += 1
            elif row["person_id"] not in allowed:
                self.mark([row], "skipped", "no consent or suppressed")
            else:
                sendable.append(row)
        if malformed:
            self.report.messages.append(
                f"{malformed} email(s) skipped: malformed email address (see segctl status; "
                "fix the persons' email column)"
            )
        batches = self.batches(
            sendable, size=lambda r: EMAIL_BATCH, group=lambda r: r["destination"]
        )
        senders = {
            n: EmailSender(self.destinations[n], self.client)
            for n in {b.destination for b in batches}
            if n in self.destinations
        }
        try:
            self.send_all(batches, lambda b: senders[b.destination].send(b, people))
        finally:
            for sender in senders.values():
                sender.close()

    def python_actions(self) -> None:
        """Call the ``python`` actions' functions, one batch at a time in this thread (user
        code need not be thread-safe), each retried with its action's backoff."""
        from segctl.delivery.python import DEFAULT_BACKOFF, DEFAULT_RETRIES, PythonSender

        rows = self.due("python")
        if not rows:
            return
        batches = self.batches(
            rows,
            size=lambda r: int(json.loads(r["spec"]).get("batch", 1)),
            group=lambda r: r["spec"],
        )
        people = self.persons(r["person_id"] for r in rows)
        senders: dict[str, PythonSender] = {}
        root = self.project.config.root
        advance = progress.task("Calling python actions", len(batches))
        for batch in batches:
            spec = json.loads(batch.rows[0]["spec"])
            reference = str(spec["function"])
            batch.destination = f"python {reference}"  # for messages: there is no destination
            sender = senders.setdefault(reference, PythonSender(reference, root))
            policy = policy_for(
                int(spec.get("max_retries", DEFAULT_RETRIES)),
                float(spec.get("backoff", DEFAULT_BACKOFF)),
            )
            try:
                call(functools.partial(sender.send, batch, people), policy)
            except DeliveryFailure as failure:
                self.record_failure([batch], failure)
            else:
                crash_point("python:after-call")  # called, not recorded: called again later
                self.mark_sent(batch.rows)
            advance(1)

    def emit(self) -> None:
        """Append emitted events to state/emitted_events.parquet, once per outbox row."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self.due("emit")
        if not rows:
            return
        path = Path(self.store.folder) / EMITTED_FILE
        new = pa.table(
            {
                "person_id": [r["person_id"] for r in rows],
                "event": [str(json.loads(r["spec"])["event"]) for r in rows],
                "timestamp": pa.array([r["as_of"] for r in rows], pa.timestamp("us", tz="UTC")),
                "segment": [r["segment"] for r in rows],
                "run_id": pa.array([r["run_id"] for r in rows], pa.int64()),
                "outbox_id": pa.array([r["id"] for r in rows], pa.int64()),
            }
        )
        if path.exists():
            old = pq.read_table(path)
            seen = set(old.column("outbox_id").to_pylist())
            keep = [
                i for i, oid in enumerate(new.column("outbox_id").to_pylist()) if oid not in seen
            ]  # none, when a push died after writing the file but before marking the rows
            new = pa.concat_tables([old, new.take(pa.array(keep, pa.int64()))])
        for stale in path.parent.glob(f"{path.stem}.*.tmp"):  # a push killed mid-write left it
            stale.unlink(missing_ok=True)  # (safe: this push holds the state lock)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            pq.write_table(new, partial)
        except OSError as exc:  # a full disk: the events stay pending, the old file whole
            partial.unlink(missing_ok=True)
            raise StateError(f"cannot write {path}: {exc}") from None
        os.replace(partial, path)  # atomic: readers see the old file or the new one
        self.mark_sent(rows)


def held_exits(store: StateStore) -> list[Held]:
    """The segments whose exits wait for ``segctl push --confirm``, with how many exits (over
    every run not yet confirmed) and the ratio the latest of them exceeded."""
    found = store.rows(
        f"""SELECT h.segment, sum(coalesce(r.exited, 0)), arg_max(h.reason, h.run_id)
            FROM {S}.holds h LEFT JOIN {S}.run_segments r USING (run_id, segment)
            WHERE h.confirmed_at IS NULL GROUP BY h.segment ORDER BY h.segment"""
    )
    held = []
    for segment, exits, reason in found:
        ratio = re.search(r"max_exit_ratio ([0-9.]+)", str(reason))
        held.append(Held(segment, int(exits), float(ratio.group(1)) if ratio else None, reason))
    return held
