"""Audiences, reconciled (SPEC 6): desired set vs synced set -> adds and removes.

desired = the segment's members in the last committed snapshot, minus persons without
consent, suppressed or forgotten. synced = what segctl has added there (``audience_members``,
with the identifiers it sent, so a removal never needs the raw data again). The difference is
sent in batches at the platform's limit; every successful batch is recorded at once, so a
failure or a crash leaves a smaller difference for the next push, never a wrong record.
``mirror`` uses the platform's replace where it has one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segctl import progress
from segctl.definitions.destinations import Destination
from segctl.delivery.http import Http
from segctl.delivery.identifiers import (
    PLATFORMS,
    HashedIdentity,
    IdentityStats,
    bulk_hash_sql,
    bulk_identity,
    hash_identity,
)
from segctl.delivery.limits import RateLimiter
from segctl.delivery.retry import DeliveryFailure, Permanent, call, policy_for
from segctl.engine.duckdb import fetch_arrow
from segctl.faults import crash_point
from segctl.state import S, StateStore
from segctl.tempnames import NEW_MEMBERS
from segctl.timeutil import now_utc

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

    from segctl.delivery.worker import Worker

MINIMUM_SIZE = {"meta": 100, "google": 100, "tiktok": 1000}
#: Audiences synced at once by one push (each destination's own limits still apply).
CONCURRENT_SYNCS = 4


@dataclass(frozen=True)
class Member:
    """One person as an audience sees them."""

    person_id: str
    identity: HashedIdentity | None = None  # ad platforms: hashes only
    contact: dict[str, Any] | None = None  # Resend: email and names

    @property
    def identifiers(self) -> str:
        """What is stored of the member (JSON): computed once, since a sync writes it to the
        journal and then to the synced set.

        >>> Member("u1", identity=HashedIdentity("u1", "ab", None)).identifiers
        '{"email": "ab", "phone": null}'
        """
        # Not functools.cached_property: in Python 3.11 it takes one lock for all instances,
        # which the audiences synced at once would queue on.
        cached: str | None = self.__dict__.get("_identifiers")
        if cached is None:
            if self.identity is not None:  # json.dumps of the dict, without building it
                email, phone = json.dumps(self.identity.email), json.dumps(self.identity.phone)
                cached = f'{{"email": {email}, "phone": {phone}}}'
            else:
                cached = json.dumps(self.contact or {}, sort_keys=True, default=str)
            self.__dict__["_identifiers"] = cached  # frozen: a cache, not a field
        return cached

    def known_as(self, identifiers: str) -> Member:
        """This member, with :attr:`identifiers` already computed (by DuckDB, for many)."""
        self.__dict__["_identifiers"] = identifiers
        return self


#: Member.identifiers of a hashed identity, as SQL over the columns of bulk_hash_sql (hex
#: digests need no escaping: the same text as json.dumps gives).
IDENTIFIERS_SQL = """'{"email": ' || coalesce('"' || email_sha256 || '"', 'null')
    || ', "phone": ' || coalesce('"' || phone_sha256 || '"', 'null') || '}'"""


@dataclass
class Figures:
    """What the platform reported for one call (summed over a sync)."""

    received: int = 0
    invalid: int = 0
    match_rate: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, other: Figures) -> None:
        self.received += other.received
        self.invalid += other.invalid
        self.match_rate = other.match_rate or self.match_rate
        self.details.update(other.details)


class AudienceClient:
    """Base of the platform clients: batching limits and retried requests.

    Subclasses set ``platform`` (which normalisation applies), ``max_batch`` and
    ``supports_replace``, and implement :meth:`add`, :meth:`remove` and, if supported,
    :meth:`replace`. Each request goes through :meth:`request`, which paces, retries and
    classifies; a failure raises :class:`DeliveryFailure`.
    """

    platform = "meta"
    max_batch = 10_000
    supports_replace = False
    always_replace = False  # the destination can only take the whole audience (files)

    def __init__(
        self,
        destination: Destination,
        client: httpx.Client | None = None,
        limiter: RateLimiter | None = None,
        *,
        slots: threading.Semaphore | None = None,
    ) -> None:
        self.destination = destination
        self.http = Http(destination, client, self.auth_headers())
        self.policy = policy_for(destination.max_retries, destination.backoff)
        self.limiter = limiter or RateLimiter(destination.rate_limit, burst=1)
        # Requests in flight to the destination, shared by the audiences synced at once.
        self.slots: AbstractContextManager[Any] = slots or nullcontext()

    def auth_headers(self) -> dict[str, str]:
        return {}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        def attempt() -> Any:
            with self.slots:
                return self.http.request(method, path, **kwargs)

        return call(attempt, self.policy, self.limiter)

    def identity(self, person: dict[str, Any], stats: IdentityStats) -> Member | None:
        """The member to send for a person, or None (skipped: no usable identifier)."""
        return self.member(hash_identity(person, self.platform, stats), stats)

    def member(self, identity: HashedIdentity, stats: IdentityStats) -> Member | None:
        """The member to send for a person's hashes, or None (skipped)."""
        return None if identity.empty else Member(identity.person_id, identity=identity)

    def add(self, audience_id: str, members: list[Member]) -> Figures:
        raise NotImplementedError

    def remove(self, audience_id: str, members: list[Member]) -> Figures:
        raise NotImplementedError

    def replace(self, audience_id: str, members: list[Member]) -> Figures:
        raise Permanent(f"{self.platform} has no replace")

    def close(self) -> None:
        self.http.close()


def client_for(
    destination: Destination,
    client: httpx.Client | None,
    limiter: RateLimiter | None = None,
    *,
    slots: threading.Semaphore | None = None,
) -> AudienceClient:
    """The audience client of a destination type (``limiter`` and ``slots``: the rate and the
    requests in flight, when shared with other clients of the destination)."""
    from segctl.delivery import platforms

    factory: Callable[..., AudienceClient] = platforms.CLIENTS[destination.type]
    return factory(destination, client, limiter, slots=slots)


@dataclass(frozen=True)
class Replacement:
    """What a replace needs from the state, read before anything is sent."""

    desired: list[tuple[Any, ...]]  # rows of the temp table desired, by person id
    synced: dict[str, str]  # person id -> identifiers stored (not in doubt)
    kept: list[tuple[Any, ...]]  # (person id, identifiers) kept in by an open hold
    doubt: list[list[str]]  # (person id, identifiers) in doubt from interrupted syncs


@dataclass
class SyncResult:
    destination: str
    audience: str
    segment: str
    added: int = 0
    removed: int = 0
    skipped: int = 0  # persons with no usable identifier
    held_removals: int = 0
    figures: Figures = field(default_factory=Figures)
    error: str | None = None


class Reconciler:
    """Reconciles every audience with a pending sync request.

    Different audiences are synced at once (up to :data:`CONCURRENT_SYNCS`): while one waits
    on its platform, another hashes or records. Each destination's ``concurrency`` and rate
    limit still bound the requests sent to it, whichever audiences they come from. The state
    is shared through :attr:`StateStore.lock`: a sync reads what it needs to plan under it,
    and each of its journal entries and records is a transaction of its own, as when syncs
    ran one after the other, so a crash at any point loses nothing.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.store
        self.results: list[SyncResult] = []

    def run(self) -> list[SyncResult]:
        groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        for row in self.worker.due("audience"):
            spec = json.loads(row["spec"])
            key = (row["destination"], row["segment"], spec["audience_id"], spec["mode"])
            group = groups.setdefault(key, [])
            if row["transition"] not in JOURNAL:  # a change in doubt only makes it due
                group.append(row)
        # Syncs of one audience (two segments feeding it) run one after the other, each
        # planned on what the one before recorded.
        lanes: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
        for key in groups:
            lanes.setdefault((key[0], key[2]), []).append(key)
        done: dict[tuple[str, str, str, str], SyncResult] = {}

        def lane(keys: list[tuple[str, str, str, str]]) -> None:
            for key in keys:
                done[key] = self.sync(*key, groups[key])

        if len(lanes) == 1:
            lane(*lanes.values())
        elif lanes:
            progress.phase(f"Syncing {len(lanes)} audiences")
            with ThreadPoolExecutor(max_workers=min(CONCURRENT_SYNCS, len(lanes))) as pool:
                futures = [pool.submit(copy_context().run, lane, keys) for keys in lanes.values()]
            for future in futures:  # every sync has ended: the first error, if any, is raised
                future.result()
        self.results = [done[key] for key in groups]
        return self.results

    def sync(
        self,
        name: str,
        segment: str,
        audience: str,
        mode: str,
        rows: list[dict[str, Any]] | None = None,
        *,
        dry_run: bool = False,
    ) -> SyncResult:
        """Make one audience match its segment (rows: the sync requests it answers).

        Modes: ``sync`` and ``mirror`` add and remove (``mirror`` with the platform's replace
        where it has one), ``add`` only adds, ``remove`` only removes.
        """
        from segctl.delivery.worker import Batch

        result = SyncResult(name, audience, segment)
        progress.phase(f"Syncing audience {audience} on {name}")
        self.results.append(result)
        batch = Batch(f"{name}:{audience}", name, rows or [])
        destination = self.worker.destinations.get(name)
        if destination is None:
            if rows:
                self.worker.fail([batch], f"destination '{name}' is no longer configured")
            return result
        client: AudienceClient | None = None
        try:
            client = client_for(
                destination,
                self.worker.client,
                self.worker.limiters.get(name),
                slots=self.worker.slots.get(name),
            )
            self._reconcile(client, destination, segment, audience, mode, result, dry_run)
        except DeliveryFailure as failure:
            result.error = failure.message
            if rows:
                self.worker.record_failure([batch], failure)
        else:
            if rows:
                self.worker.mark_sent(rows)
        finally:
            if client is not None:
                client.close()
            if not dry_run:
                self._record_status(destination, audience, result)
        return result

    # ---- the difference ---------------------------------------------------------------

    def _reconcile(
        self,
        client: AudienceClient,
        destination: Destination,
        segment: str,
        audience: str,
        mode: str,
        result: SyncResult,
        dry_run: bool = False,
    ) -> None:
        con = self.store.con
        journal = Journal(self.store, destination.name, segment, audience, mode)
        # desired, doubt and synced are temp tables of the connection, shared by every sync:
        # they are made and read in one go, and nothing after uses them.
        with self.store.lock:
            self._stage_desired(segment, client.platform)
            in_doubt = journal.in_doubt()
            con.execute(
                "CREATE OR REPLACE TEMP TABLE doubt (person_id VARCHAR, identifiers VARCHAR)"
            )
            self.store.executemany("INSERT INTO doubt VALUES (?, ?)", in_doubt)
            # Persons in doubt count as not synced: added again if desired, removed otherwise.
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE synced AS SELECT person_id, identifiers
                    FROM {S}.audience_members WHERE destination = ? AND audience = ?
                    AND person_id NOT IN (SELECT person_id FROM doubt)""",
                [destination.name, audience],
            )
            held = bool(
                self.store.rows(
                    f"SELECT count(*) FROM {S}.holds WHERE segment = ? AND confirmed_at IS NULL",
                    [segment],
                )[0][0]
            )
            # A file can only be written whole; elsewhere mirror means the platform's replace.
            mirror = mode == "mirror" and client.supports_replace and not held
            replace = client.always_replace or mirror
            if replace and dry_run:
                result.added = int(self.store.rows("SELECT count(*) FROM desired")[0][0])
                return
            if replace:
                queries = [
                    "SELECT * FROM desired ORDER BY person_id",
                    "SELECT person_id, identifiers FROM synced",
                    # With a hold open, those who would leave stay in the audience.
                    "SELECT person_id, identifiers FROM synced WHERE person_id NOT IN "
                    f"(SELECT person_id FROM desired) AND {held} ORDER BY person_id",
                ]
            else:
                queries = [
                    "SELECT * FROM desired WHERE person_id NOT IN (SELECT person_id FROM "
                    "synced) ORDER BY person_id",
                    "SELECT person_id, identifiers FROM (SELECT * FROM synced UNION ALL SELECT "
                    "* FROM doubt) WHERE person_id NOT IN (SELECT person_id FROM desired) "
                    "ORDER BY person_id",
                ]
            tables = [fetch_arrow(con.sql(sql)) for sql in queries]
        # Arrow tables to Python objects once the lock is released: that needs the GIL, which
        # the other syncs share.
        fetched = [_tuples(table) for table in tables]
        if replace:
            desired, synced, kept = fetched
            plan = Replacement(desired, dict(synced), kept, in_doubt)
            self._replace(client, destination, audience, result, plan, journal)
            return
        adds, removes = fetched
        members = self._members(client, adds, result)
        doubt = dict(in_doubt)
        unusable = doubt.keys() & ({r[0] for r in adds} - {m.person_id for m in members})
        removes += sorted((pid, doubt[pid]) for pid in unusable)  # may be there: take it out
        if held:
            result.held_removals = len(removes)
            removes = []
        if mode == "add":
            removes = []
        if mode == "remove":
            adds, members = [], []
        if dry_run:
            result.added, result.removed = len(adds), len(removes)
            return

        # The batches go at once, up to the destination's concurrency; each is journalled
        # before it is sent and recorded after, on its own, as when they went one by one.
        def remove(chunk: list[tuple[Any, ...]]) -> Figures:
            gone = [_stored_member(pid, ids) for pid, ids in chunk]
            entry = journal.write("remove", gone)
            try:
                figures = client.remove(audience, gone)
            except Permanent:
                journal.done([entry])  # refused: nothing changed, nothing in doubt
                raise
            crash_point("sync:after-remove")
            with self.store.transaction():
                con.execute(
                    f"""DELETE FROM {S}.audience_members WHERE destination = ? AND
                        audience = ? AND person_id IN (SELECT unnest(?::VARCHAR[]))""",
                    [destination.name, audience, [pid for pid, _ in chunk]],
                )
                journal.done([entry], transaction=False)
            return figures

        def add(batch: list[Member]) -> Figures:
            entry = journal.write("add", batch)
            try:
                figures = client.add(audience, batch)
            except Permanent:
                journal.done([entry])
                raise
            crash_point("sync:after-add")
            self._record_synced(destination.name, audience, batch, journal, entry)
            return figures

        size = client.max_batch
        sends: list[tuple[Callable[[Any], Figures], list[Any]]] = [
            (remove, removes[i : i + size]) for i in range(0, len(removes), size)
        ] + [(add, members[i : i + size]) for i in range(0, len(members), size)]
        workers = max(1, min(destination.concurrency, len(sends)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(send, batch) for send, batch in sends]
        # A permanent error on one batch is recorded and the other batches still go; the
        # first such error is raised at the end, so the sync request is marked failed.
        refused: Permanent | None = None
        settled: set[str] = set()
        for (send, batch), future in zip(sends, futures, strict=True):
            try:
                result.figures.add(future.result())
            except Permanent as failure:
                refused = refused or failure
                continue
            if send is remove:
                settled.update(pid for pid, _ in batch)
                result.removed += len(batch)
            else:
                settled.update(m.person_id for m in batch)
                result.added += len(batch)
        if doubt.keys() <= settled:
            journal.done(journal.loaded)
        if refused is not None:
            raise refused

    def _replace(
        self,
        client: AudienceClient,
        destination: Destination,
        audience: str,
        result: SyncResult,
        plan: Replacement,
        journal: Journal,
    ) -> None:
        """Send the whole audience: the desired persons and those kept (a hold is open: they
        stay, from the identifiers stored when they were added). The persons it adds or
        removes are journalled (unless the destination is only ever replaced)."""
        synced = plan.synced
        members = self._members(client, plan.desired, result)
        if plan.kept:
            result.held_removals = len(plan.kept)
            members += [_stored_member(pid, identifiers) for pid, identifiers in plan.kept]
        entry = None
        if not client.always_replace:
            changed = [m for m in members if m.person_id not in synced]
            staying = {m.person_id for m in members}
            changed += [_stored_member(p, ids) for p, ids in synced.items() if p not in staying]
            changed += [_stored_member(pid, ids) for pid, ids in plan.doubt]
            entry = journal.write("replace", changed)
        result.figures.add(client.replace(audience, members))
        table = _synced_table(members)
        with self.store.transaction():
            self.store.con.execute(
                f"DELETE FROM {S}.audience_members WHERE destination = ? AND audience = ?",
                [destination.name, audience],
            )
            self._insert_synced(destination.name, audience, table)
            journal.done([*journal.loaded, *([entry] if entry else [])], transaction=False)
        current = {m.person_id for m in members}
        result.added = len(current - synced.keys())
        result.removed = len(synced.keys() - current)

    def _stage_desired(self, segment: str, platform: str) -> None:
        """The temp table ``desired``: person_id, and for an ad platform the columns of
        :func:`bulk_hash_sql` (DuckDB hashes while it selects: no second pass)."""
        member = self.store.member_test(segment, "s")
        if member is not None:
            reachable = self.worker.project.reachable_condition("p")
            source = (
                f"{S}.snapshot s JOIN persons p USING (person_id) WHERE {member} AND {reachable}"
            )
        else:
            source = "persons p WHERE false"
        query = f"SELECT p.person_id FROM {source}"
        if platform in PLATFORMS:
            hashed = bulk_hash_sql(platform, self.worker.project.schema["persons"], source)
            query = f"SELECT *, {IDENTIFIERS_SQL} AS identifiers FROM ({hashed})"
        self.store.con.execute(f"CREATE OR REPLACE TEMP TABLE desired AS {query}")

    def _members(
        self, client: AudienceClient, rows: list[tuple[Any, ...]], result: SyncResult
    ) -> list[Member]:
        """The members to send for rows of ``desired``, in order; persons without a usable
        identifier are counted as skipped. For ad platforms the rows carry the hashes (see
        :func:`bulk_hash_sql`); the values DuckDB left are hashed here."""
        stats = IdentityStats()
        if client.platform not in PLATFORMS:
            people = self.worker.persons(row[0] for row in rows)
            found = [client.identity(people[row[0]], stats) for row in rows]
        else:  # rows: person_id, the hashes..., exact, identifiers
            people = self.worker.persons(row[0] for row in rows if not row[-2])
            found = []
            for row in rows:
                if not row[-2]:
                    found.append(client.identity(people[row[0]], stats))
                elif member := client.member(bulk_identity(row[:-1], stats), stats):
                    found.append(member.known_as(row[-1]))
        members = [member for member in found if member is not None]
        result.skipped += len(rows) - len(members)
        return members

    def _record_synced(
        self, destination: str, audience: str, members: list[Member], journal: Journal, entry: int
    ) -> None:
        """Record added members (replacing the rows of any who were in doubt) and settle the
        journal entry of the add, in one transaction."""
        ids, table = [m.person_id for m in members], _synced_table(members)
        with self.store.transaction():
            self.store.con.execute(
                f"""DELETE FROM {S}.audience_members WHERE destination = ? AND audience = ?
                    AND person_id IN (SELECT unnest(?::VARCHAR[]))""",
                [destination, audience, ids],
            )
            self._insert_synced(destination, audience, table)
            journal.done([entry], transaction=False)

    def _insert_synced(self, destination: str, audience: str, table: pa.Table) -> None:
        """Bulk insert of a :func:`_synced_table` (built before the transaction: Python work
        under the store's lock would hold up every other sync)."""
        if not table.num_rows:
            return
        self.store.con.register(NEW_MEMBERS, table)
        try:
            self.store.con.execute(
                f"""INSERT INTO {S}.audience_members
                    SELECT ?, ?, person_id, identifiers, ? FROM {NEW_MEMBERS}""",
                [destination, audience, now_utc()],
            )
        finally:
            self.store.con.unregister(NEW_MEMBERS)

    def _record_status(self, destination: Destination, audience: str, result: SyncResult) -> None:
        figures = result.figures
        details = json.dumps(
            {
                "added": result.added,
                "removed": result.removed,
                "skipped": result.skipped,
                "held_removals": result.held_removals,
                "error": result.error,
                **figures.details,
            },
            default=str,
        )
        with self.store.transaction():
            self.store.con.execute(
                f"DELETE FROM {S}.audience_status WHERE destination = ? AND audience = ?",
                [destination.name, audience],
            )
            self.store.con.execute(
                f"INSERT INTO {S}.audience_status VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    destination.name,
                    audience,
                    now_utc(),
                    figures.received,
                    figures.invalid,
                    figures.match_rate,
                    details,
                ],
            )


#: Outbox transitions of journalled audience changes (see :class:`Journal`).
JOURNAL = ("add", "remove", "replace")


class Journal:
    """Audience changes in doubt, so that a crash loses nothing (SPEC 5).

    Each add, removal or replace is written down before it is sent (a pending outbox row
    naming the persons and the identifiers sent) and deleted in the transaction that records
    its effect. A crash in between leaves the row: its persons are in doubt, since the
    platform may or may not have applied the change. The next reconciliation counts them as
    not synced, so it adds them again if they are desired and removes them otherwise (both
    idempotent on every platform), then deletes the row. Without it, a person removed, and
    back before the next sync, stayed out of the audience; one added, and gone, stayed in.
    """

    def __init__(
        self, store: StateStore, destination: str, segment: str, audience: str, mode: str
    ) -> None:
        self.store = store
        self.destination = destination
        self.segment = segment
        self.key = f"audience:{destination}:{audience}"
        self.spec = json.dumps({"audience_id": audience, "mode": mode})
        self.loaded: list[int] = []  # the rows in doubt found by in_doubt()

    def in_doubt(self) -> list[list[str]]:
        """(person_id, identifiers) of the persons in doubt, from earlier, interrupted syncs."""
        found: dict[str, str] = {}
        for row_id, payload in self.store.rows(
            f"""SELECT id, payload FROM {S}.outbox WHERE kind = 'audience' AND batch_key = ?
                AND status = 'pending' AND list_contains(?, transition) ORDER BY id""",
            [self.key, list(JOURNAL)],
        ):
            self.loaded.append(int(row_id))
            found.update(json.loads(payload or "{}"))
        return [[pid, identifiers] for pid, identifiers in found.items()]

    def write(self, transition: str, members: list[Member]) -> int:
        """Journal a change about to be sent; returns its row id."""
        payload = json.dumps({m.person_id: m.identifiers for m in members})  # before the lock
        with self.store.transaction():
            row_id = int(self.store.rows(f"SELECT nextval('{S}.outbox_ids')")[0][0])
            self.store.con.execute(
                f"""INSERT INTO {S}.outbox (id, segment, kind, destination, transition, spec,
                    payload, idempotency_key, batch_key, status, created_at)
                    VALUES (?, ?, 'audience', ?, ?, ?, ?, ?, ?, 'pending', ?)""",
                [
                    row_id,
                    self.segment,
                    self.destination,
                    transition,
                    self.spec,
                    payload,
                    f"{self.key}:{transition}:{row_id}",
                    self.key,
                    now_utc(),
                ],
            )
        return row_id

    def done(self, rows: list[int], *, transaction: bool = True) -> None:
        """Forget journal rows whose change is recorded (or was refused: never applied)."""
        if not rows:
            return
        with self.store.transaction() if transaction else nullcontext():
            self.store.con.execute(
                f"DELETE FROM {S}.outbox WHERE id IN (SELECT unnest(?::BIGINT[]))", [rows]
            )


def _synced_table(members: list[Member]) -> pa.Table:
    """person_id and identifiers of the members, for a bulk insert into audience_members."""
    import pyarrow as pa

    return pa.table(
        {
            "person_id": pa.array([m.person_id for m in members], pa.string()),
            "identifiers": pa.array([m.identifiers for m in members], pa.string()),
        }
    )


def _tuples(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow table."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def _stored_member(person_id: str, identifiers: str) -> Member:
    data = json.loads(identifiers)
    if "email" in data and "phone" in data and set(data) <= {"email", "phone"}:
        return Member(person_id, identity=HashedIdentity(person_id, data["email"], data["phone"]))
    return Member(person_id, contact=data)
