"""Sending one audience sync's changes: batches at the platform's limit, at once up to the
destination's concurrency; each journalled before it is sent and recorded after, on its own,
as when they went one by one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from typing import Any

from segctl.delivery.audiences.journal import Journal, stored_member
from segctl.delivery.audiences.plan import Changes, Replacement
from segctl.delivery.audiences.record import record_added, record_removed, record_replaced
from segctl.delivery.audiences.result import SyncResult
from segctl.delivery.platforms.base import AudienceClient, Figures, Member
from segctl.delivery.retry import Permanent
from segctl.faults import crash_point
from segctl.state import StateStore


def send_changes(
    store: StateStore,
    client: AudienceClient,
    concurrency: int,
    audience: str,
    planned: Changes,
    result: SyncResult,
    journal: Journal,
) -> None:
    """Send the removes and adds. A permanent error on one batch is recorded and the other
    batches still go; the first such error is raised at the end, so the sync request is
    marked failed."""
    destination = client.destination.name

    def remove(chunk: list[tuple[Any, ...]]) -> Figures:
        gone = [stored_member(pid, ids) for pid, ids in chunk]
        entry = journal.write("remove", gone)
        try:
            figures = client.remove(audience, gone)
        except Permanent:
            journal.done([entry])  # refused: nothing changed, nothing in doubt
            raise
        crash_point("sync:after-remove")
        ids = [pid for pid, _ in chunk if pid not in planned.changed]  # a changed one's add
        record_removed(store, destination, audience, ids, journal, entry)  # records them
        return figures

    def add(batch: list[Member]) -> Figures:
        entry = journal.write("add", batch)
        try:
            figures = client.add(audience, batch)
        except Permanent:
            journal.done([entry])
            raise
        crash_point("sync:after-add")
        record_added(store, destination, audience, batch, journal, entry, planned.sources)
        return figures

    if planned.shared:  # nothing to send: their identifiers stay for members who stay
        record_removed(store, destination, audience, planned.shared, journal, None)
        result.removed += len(planned.shared)
    size, removes, adds = client.max_batch, planned.removes, planned.adds
    sends: list[tuple[Callable[[Any], Figures], list[Any]]] = [
        (remove, removes[i : i + size]) for i in range(0, len(removes), size)
    ] + [(add, adds[i : i + size]) for i in range(0, len(adds), size)]
    if client.sessions:  # one upload session per kind, its batches in order
        outcomes = _in_sessions(store, client, audience, sends, remove, journal, planned)
    else:
        workers = max(1, min(concurrency, len(sends)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(send, batch) for send, batch in sends]
        outcomes = [_outcome(future) for future in futures]
    refused: Permanent | None = None
    settled: set[str] = set(planned.shared)
    for (send, batch), outcome in zip(sends, outcomes, strict=True):
        if isinstance(outcome, Permanent):
            refused = refused or outcome
            continue
        result.figures.add(outcome)
        if send is remove:
            settled.update(pid for pid, _ in batch)
            result.removed += sum(pid not in planned.changed for pid, _ in batch)
        else:
            settled.update(m.person_id for m in batch)
            result.added += len(batch)
    if planned.doubt.keys() <= settled:
        journal.done(journal.loaded)
    if refused is not None:
        raise refused


def _outcome(future: Future[Figures]) -> Figures | Permanent:
    try:
        return future.result()
    except Permanent as failure:
        return failure


def _in_sessions(
    store: StateStore,
    client: AudienceClient,
    audience: str,
    sends: list[tuple[Callable[[Any], Figures], list[Any]]],
    remove: Callable[[Any], Figures],
    journal: Journal,
    planned: Changes,
) -> list[Figures | Permanent]:
    """The removes, then the adds, of ``sends`` each in one upload session (Meta): every
    batch journalled before its session starts, recorded as soon as the platform took it;
    per batch what it reported, or the permanent error that refused it."""
    outcomes: list[Figures | Permanent] = []
    for method, kind in (("DELETE", "remove"), ("POST", "add")):
        mine = [batch for send, batch in sends if (send is remove) == (kind == "remove")]
        if not mine:
            continue
        members = mine
        if kind == "remove":
            members = [[stored_member(pid, ids) for pid, ids in batch] for batch in mine]
        entries = [journal.write(kind, batch) for batch in members]
        # Closed on any way out: the session holds the audience's lock while it waits.
        with closing(client.in_session(method, audience, members)) as answers:
            for batch, entry, outcome in zip(members, entries, answers, strict=True):
                _record(store, client, audience, kind, batch, entry, outcome, journal, planned)
                outcomes.append(outcome)
    return outcomes


def _record(
    store: StateStore,
    client: AudienceClient,
    audience: str,
    kind: str,
    batch: list[Member],
    entry: int,
    outcome: Figures | Permanent,
    journal: Journal,
    planned: Changes,
) -> None:
    """Record one batch of a session as the platform answered it (its journal entry settled
    either way: a refused batch changed nothing). A changed member's removal is not
    recorded: their add is."""
    destination = client.destination.name
    if isinstance(outcome, Permanent):
        journal.done([entry])
    elif kind == "remove":
        crash_point("sync:after-remove")
        ids = [m.person_id for m in batch if m.person_id not in planned.changed]
        record_removed(store, destination, audience, ids, journal, entry)
    else:
        crash_point("sync:after-add")
        record_added(store, destination, audience, batch, journal, entry, planned.sources)


def send_replacement(
    store: StateStore,
    client: AudienceClient,
    audience: str,
    planned: Replacement,
    result: SyncResult,
    journal: Journal,
) -> None:
    """Send the whole audience and record it as the synced set."""
    entry = None if client.always_replace else journal.write("replace", planned.changed)
    members = planned.members
    result.figures.add(client.replace(audience, members))
    entries = [*journal.loaded, *([entry] if entry else [])]
    record_replaced(store, client.destination.name, audience, members, journal, entries)
    result.added, result.removed = planned.counts()
