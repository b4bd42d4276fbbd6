"""Recording what an audience sync changed: the synced set (``audience_members``, with the
identifiers sent) and the sync's figures (``audience_status``).

Each record settles the journal entry of its change in the same transaction, so the synced
set is never wrong: a crash before it leaves the change in doubt (see :class:`Journal`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from segctl.delivery.audiences.journal import Journal
from segctl.delivery.audiences.result import SyncResult
from segctl.delivery.platforms.base import Member
from segctl.state import S, StateStore
from segctl.tempnames import NEW_MEMBERS
from segctl.timeutil import now_utc

if TYPE_CHECKING:
    import pyarrow as pa


def record_removed(
    store: StateStore,
    destination: str,
    audience: str,
    person_ids: list[str],
    journal: Journal,
    entry: int | None,
) -> None:
    """Forget removed members and settle the journal entry of the removal (None: nothing was
    sent), in one transaction."""
    with store.transaction():
        store.con.execute(
            f"""DELETE FROM {S}.audience_members WHERE destination = ? AND
                audience = ? AND person_id IN (SELECT unnest(?::VARCHAR[]))""",
            [destination, audience, person_ids],
        )
        if entry is not None:
            journal.done([entry], transaction=False)


def record_added(
    store: StateStore,
    destination: str,
    audience: str,
    members: list[Member],
    journal: Journal,
    entry: int,
    sources: dict[str, str] | None = None,
) -> None:
    """Record added members (replacing the rows of any who were in doubt or changed, with
    ``sources``: their digests) and settle the journal entry of the add, in one
    transaction."""
    ids, table = [m.person_id for m in members], synced_table(members, sources)
    with store.transaction():
        store.con.execute(
            f"""DELETE FROM {S}.audience_members WHERE destination = ? AND audience = ?
                AND person_id IN (SELECT unnest(?::VARCHAR[]))""",
            [destination, audience, ids],
        )
        _insert(store, destination, audience, table)
        journal.done([entry], transaction=False)


def record_replaced(
    store: StateStore,
    destination: str,
    audience: str,
    members: list[Member],
    journal: Journal,
    entries: list[int],
) -> None:
    """The audience is now exactly ``members``; the journal entries are settled with it."""
    table = synced_table(members)
    with store.transaction():
        store.con.execute(
            f"DELETE FROM {S}.audience_members WHERE destination = ? AND audience = ?",
            [destination, audience],
        )
        _insert(store, destination, audience, table)
        journal.done(entries, transaction=False)


def record_status(store: StateStore, destination: str, audience: str, result: SyncResult) -> None:
    """The audience's last sync: when, its figures and counts (``segctl status``). Its
    ``invalid`` counts the identifiers segctl skipped as invalid (an email without an ``@``, a
    phone of too few digits: not sent) and those the platform reported invalid."""
    figures = result.figures
    details = json.dumps(
        {
            "added": result.added,
            "removed": result.removed,
            "skipped": result.skipped,
            "invalid_emails": result.invalid_emails,
            "invalid_phones": result.invalid_phones,
            "platform_invalid": figures.invalid,
            "held_removals": result.held_removals,
            "error": result.error,
            **figures.details,
        },
        default=str,
    )
    with store.transaction():
        store.con.execute(
            f"DELETE FROM {S}.audience_status WHERE destination = ? AND audience = ?",
            [destination, audience],
        )
        store.con.execute(
            f"INSERT INTO {S}.audience_status VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                destination,
                audience,
                now_utc(),
                figures.received,
                figures.invalid + result.invalid,
                figures.match_rate,
                details,
            ],
        )


def synced_table(members: list[Member], sources: dict[str, str] | None = None) -> pa.Table:
    """person_id, identifiers and the digest of what they are made of (``sources``, when
    kept) of the members, for a bulk insert into audience_members (built before the
    transaction: Python work under the store's lock would hold up every other sync)."""
    import pyarrow as pa

    found = sources or {}
    return pa.table(
        {
            "person_id": pa.array([m.person_id for m in members], pa.string()),
            "identifiers": pa.array([m.identifiers for m in members], pa.string()),
            "source": pa.array([found.get(m.person_id) for m in members], pa.string()),
        }
    )


def _insert(store: StateStore, destination: str, audience: str, table: pa.Table) -> None:
    """Bulk insert of a :func:`synced_table` (inside the caller's transaction)."""
    if not table.num_rows:
        return
    store.con.register(NEW_MEMBERS, table)
    try:
        store.con.execute(
            f"""INSERT INTO {S}.audience_members
                SELECT ?, ?, person_id, identifiers, ?, source FROM {NEW_MEMBERS}""",
            [destination, audience, now_utc()],
        )
    finally:
        store.con.unregister(NEW_MEMBERS)
