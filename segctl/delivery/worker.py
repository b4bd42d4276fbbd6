"""The outbox worker: deliver what is due, exactly once in effect (SPEC 5 and 6).

For each kind of due row:

1. rows are grouped into batches and each batch gets a ``batch_key``, persisted *before*
   anything is sent; a retry after a crash finds the same batches with the same keys, so the
   webhook receiver sees the same ``webhook-id`` and Resend the same ``Idempotency-Key``
   (with the same body: an email's message is stored with its key, since Resend refuses a
   key sent again with another body, and a batch that lost an email since, to an erasure or
   a consent withdrawn, is another request under another key);
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
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from contextvars import copy_context
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl import progress
from segctl.definitions.destinations import Destination
from segctl.delivery import queries
from segctl.delivery.limits import RateLimiter
from segctl.delivery.model import Batch, Reachability, Report
from segctl.delivery.python import DEFAULT_BACKOFF, DEFAULT_RETRIES, Hung, PythonSender
from segctl.delivery.resend import EmailSender, email, why_not_sent
from segctl.delivery.retry import (
    Deferred,
    DeliveryFailure,
    Permanent,
    Stopped,
    call,
    policy_for,
)
from segctl.delivery.webhook import WebhookSender
from segctl.errors import StateError
from segctl.faults import crash_point
from segctl.state import StateStore
from segctl.textfmt import json_text
from segctl.timeutil import now_utc

if TYPE_CHECKING:
    import httpx

EMAIL_BATCH = 100
EMITTED_FILE = "emitted_events.parquet"


#: A ``python`` action's function that failed this many calls in a row (each after its
#: retries) is not called again in the same push: its other records stay pending.
GIVE_UP_AFTER = 3


class Worker:
    """Delivers the due rows of one state store.

    ``reachability`` says who may be emailed or uploaded; ``root`` is the project folder
    (python actions' modules are found from it); ``person_columns`` are the columns of the
    ``persons`` view, which must exist on the store's connection (payloads, emails and
    audiences read it).
    """

    def __init__(
        self,
        store: StateStore,
        reachability: Reachability,
        destinations: dict[str, Destination],
        *,
        client: httpx.Client | None = None,
        root: Path,
        person_columns: Collection[str],
        retry_waiting: bool = True,
    ) -> None:
        self.store = store
        # Rows waiting for a retry after a failure are sent now (push, run), or on the
        # backoff's schedule (watch): queries.due.
        self.retry_waiting = retry_waiting
        self.reachability = reachability
        self.destinations = destinations
        self._given = client  # the caller's client, which the caller closes
        self._client = client
        self._client_lock = threading.Lock()
        self._sharing = False  # inside push(): a client is made on first use
        self.root = root
        self.person_columns = person_columns
        self.report = Report()
        self._people: dict[str, dict[str, Any]] = {}
        self.limiters = {n: RateLimiter(d.rate_limit, burst=1) for n, d in destinations.items()}
        # Requests in flight per destination, whichever audience sync sends them.
        self.slots = {n: threading.BoundedSemaphore(d.concurrency) for n, d in destinations.items()}

    # ---- entry point ------------------------------------------------------------------

    def push(self, confirm: Iterable[str] = (), *, retry_failed: bool = False) -> Report:
        for segment in confirm:
            if not self.confirm(segment):  # said, not silent: nothing of it was held
                self.report.messages.append(
                    f"--confirm {segment}: none of its exits were held; nothing to release"
                )
        if retry_failed:
            queries.retry_failed(self.store)
        with self._shared_client():
            # Audiences sync in the background meanwhile: one's network waits are the
            # other's CPU time. Each records its outcomes on its own, under the store's lock.
            with ThreadPoolExecutor(max_workers=1) as background:
                audiences = background.submit(copy_context().run, self._audiences)
                self.emit()
                self.webhooks()
                self.emails()
                self.python_actions()
            with suppress(Stopped):  # a sync cut short resumes as after a crash
                audiences.result()
        self._count_left()
        return self.report

    def _audiences(self) -> None:
        """Reconcile the audiences with a due sync request. Their code (the platforms'
        clients, the identifiers' normalisers: 0.1 s of imports) is loaded only then."""
        if not self.due("audience"):
            return
        from segctl.delivery.audiences import Reconciler

        Reconciler(self).run()

    @property
    def client(self) -> httpx.Client | None:
        """One HTTP client (and connection pool) for the whole push, the caller's or made on
        first use: a client per sender would each build an SSL context and open its own
        connections, and a push with nothing to send over HTTP builds none. Outside a push,
        the caller's (None: each audience sync makes its own)."""
        with self._client_lock:  # audiences sync in a thread beside the webhooks
            if self._client is None and self._sharing:
                import httpx

                self._client = httpx.Client()  # each request sets its destination's timeout
            return self._client

    @contextmanager
    def _shared_client(self) -> Iterator[None]:
        """Clients are made on first use while inside; the one made (if any) is closed at the
        end."""
        self._sharing = True
        try:
            yield
        finally:
            self._sharing = False
            if self._given is None and self._client is not None:
                self._client.close()
                self._client = None

    def confirm(self, segment: str) -> int:
        """Release a segment's held exits (the mass-exit guard): its held exit actions become
        pending and its audiences are reconciled again, removals included. Returns how many
        holds it released."""
        return queries.confirm(self.store, segment)

    # ---- rows and batches -------------------------------------------------------------

    def due(self, kind: str) -> list[dict[str, Any]]:
        """Due pending rows of a kind, oldest first, with their run's as_of."""
        return queries.due(self.store, kind, waiting=self.retry_waiting)

    def batches(
        self,
        rows: list[dict[str, Any]],
        size: Callable[[dict[str, Any]], int],
        group: Callable[[dict[str, Any]], Any],
        *,
        by_body: bool = False,
    ) -> list[Batch]:
        """Reuse persisted batch keys; give new rows new batches, persisted before sending.
        With ``by_body`` (emails), a key is the digest of its rows and their stored bodies
        (``payload``), and a batch whose rows changed since its key was given (one of them
        erased, or skipped now, or a body made again) is given the key of the rows it has:
        another request. (A batch keyed by an older segctl, which stored no bodies, keeps its
        key while its rows are those it was given.)"""
        keyed: dict[str, Batch] = {}
        fresh: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            if row["batch_key"]:
                keyed.setdefault(
                    row["batch_key"], Batch(row["batch_key"], row["destination"], [])
                ).rows.append(row)
            else:
                fresh.setdefault(group(row), []).append(row)
        batches: list[Batch] = []
        redone: list[list[dict[str, Any]]] = []
        for batch in keyed.values():
            # (A key by rows alone was given by an older segctl, before bodies were stored.)
            if not by_body or batch.key in (_key(batch.rows, True), _key(batch.rows, False)):
                batches.append(batch)
            else:
                redone.append(batch.rows)
        for members in fresh.values():
            limit = max(1, size(members[0]))
            redone += [members[i : i + limit] for i in range(0, len(members), limit)]
        assignments = []
        for chunk in redone:
            key = _key(chunk, by_body)
            for row in chunk:
                row["batch_key"] = key
                assignments.append((key, row["id"]))
            batches.append(Batch(key, chunk[0]["destination"], chunk))
        queries.assign_batch_keys(self.store, assignments)
        crash_point("push:after-batch-keys")
        return batches

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
                    except Stopped:
                        pass  # left pending
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
            queries.mark_sent(self.store, [r["id"] for r in rows])
            self.report.sent += len(rows)

    def mark(self, rows: list[dict[str, Any]], status: str, reason: str) -> None:
        queries.mark(self.store, [r["id"] for r in rows], status, reason)
        if status == "skipped":
            self.report.skipped += len(rows)

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
            queries.mark_attempt(
                self.store, [r["id"] for r in rows], status, failure.message[:1000], next_at
            )
            self.report.failed += len(rows) if status == "failed" else 0
            key = (batches[0].destination, status, failure.message)
            self.report.tally[key] = self.report.tally.get(key, 0) + len(rows)

    def _count_left(self) -> None:
        """pending: held, due, or waiting to be retried; scheduled: delayed, never tried."""
        queries.count_left(self.store, self.report)

    # ---- persons ----------------------------------------------------------------------

    def persons(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Person columns by id (for payloads, emails and audiences), fetched once per push."""
        wanted = sorted(set(ids) - self._people.keys())
        if not wanted:
            return self._people
        found = queries.persons(self.store, wanted)  # audience syncs ask from their threads
        # Two threads may fetch the same person: both get the same columns.
        self._people.update((person["person_id"], person) for person in found)
        return self._people

    # ---- kinds ------------------------------------------------------------------------

    def webhooks(self) -> None:
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
        with self.store.lock:
            gone = queries.gone_endpoints(self.store)
        for name in {b.destination for b in batches}:
            if name in self.destinations:
                senders[name] = WebhookSender(
                    self.destinations[name], self.client, gone=name in gone
                )
        try:
            self.send_all(batches, lambda b: senders[b.destination].send(b, people))
        finally:
            for sender in senders.values():
                sender.close()

    def emails(self) -> None:
        rows = self.due("email")
        if not rows:
            return
        people = self.persons(r["person_id"] for r in rows)
        with self.store.lock:  # the rule's queries run on the state's connection
            allowed = self.reachability.reachable(sorted({r["person_id"] for r in rows}))
        sendable, malformed = [], 0
        for row in rows:
            reason = why_not_sent(people.get(row["person_id"]), row["person_id"] in allowed)
            if reason is None:
                sendable.append(row)
            else:
                self.mark([row], "skipped", reason)
                malformed += reason == "malformed email address"
        if malformed:
            self.report.messages.append(
                f"{malformed} email(s) skipped: malformed email address (see segctl status; "
                "fix the persons' email column)"
            )
        self.store_bodies(sendable, people)
        batches = self.batches(
            sendable, size=lambda r: EMAIL_BATCH, group=lambda r: r["destination"], by_body=True
        )
        senders = {
            n: EmailSender(self.destinations[n], self.client)
            for n in {b.destination for b in batches}
            if n in self.destinations
        }
        try:
            self.send_all(batches, lambda b: senders[b.destination].send(b))
        finally:
            for sender in senders.values():
                sender.close()

    def store_bodies(self, rows: list[dict[str, Any]], people: dict[str, dict[str, Any]]) -> None:
        """Store the message of each email not yet given one (its ``payload``), before its
        first request: every retry sends that message, whatever the persons file says then,
        but to the person's address now (consent and suppression were checked for it): a
        message to an address they no longer have is made again (a new request)."""
        bodies: list[tuple[int, str]] = []
        for row in rows:
            destination = self.destinations.get(row["destination"])
            if destination is None:  # no longer configured: failed, unsent
                continue
            person = people[row["person_id"]]
            stored = json.loads(row["payload"]) if row["payload"] else None
            if stored is not None and stored["to"] == [str(person["email"]).strip()]:
                continue
            body = json_text(email(row, person, str(destination.settings["from"])))
            row["payload"] = body
            bodies.append((row["id"], body))
        queries.store_payloads(self.store, bodies)

    def python_actions(self) -> None:
        """Call the ``python`` actions' functions, one batch at a time in this thread (user
        code need not be thread-safe), each retried with its action's backoff."""
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
        failing: dict[str, int] = {}  # function -> calls failed in a row (retries exhausted)
        left: dict[str, int] = {}  # function -> records not called for that
        root = self.root
        advance = progress.task("Calling python actions", len(batches))
        for batch in batches:
            spec = json.loads(batch.rows[0]["spec"])
            reference = str(spec["function"])
            batch.destination = f"python {reference}"  # for messages: there is no destination
            if failing.get(reference, 0) >= GIVE_UP_AFTER:
                # A function that fails every call (a service down, a bug) would take every
                # record's retries one after the other: an hour for a few hundred records.
                left[reference] = left.get(reference, 0) + len(batch.rows)
                advance(1)
                continue
            sender = senders.setdefault(reference, PythonSender(reference, root))
            policy = policy_for(
                int(spec.get("max_retries", DEFAULT_RETRIES)),
                float(spec.get("backoff", DEFAULT_BACKOFF)),
            )
            try:
                call(functools.partial(sender.send, batch, people), policy)
            except Stopped:
                pass  # left pending
            except DeliveryFailure as failure:
                self.record_failure([batch], failure)
                # A call that timed out may still run: the function's next batches are not
                # called (they fail at once, said), and that is not a failure of theirs.
                failing[reference] = failing.get(reference, 0) + (not isinstance(failure, Hung))
            else:
                crash_point("python:after-call")  # called, not recorded: called again later
                self.mark_sent(batch.rows)
                failing[reference] = 0
            advance(1)
        for reference, count in left.items():
            self.report.messages.append(
                f"python {reference}: {GIVE_UP_AFTER} calls in a row failed; its other "
                f"{count} record(s) were not called and stay pending for the next push"
            )

    def emit(self) -> None:
        """Append emitted events to state/emitted_events.parquet, once per outbox row."""
        rows = self.due("emit")
        if not rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

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


def _key(rows: list[dict[str, Any]], by_body: bool) -> str:
    """A batch's key: the digest of its rows' keys (and, ``by_body``, of their bodies)."""
    parts = [r["idempotency_key"] + ("\t" + (r["payload"] or "") if by_body else "") for r in rows]
    return "msg_" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
