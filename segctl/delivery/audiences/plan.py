"""Planning one audience sync from what was staged: the members to add and the persons to
remove, or the whole audience to send at once (a replace)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from segctl.delivery.audiences.journal import stored_member
from segctl.delivery.audiences.result import SyncResult
from segctl.delivery.audiences.stage import SHARED_KEYS, Staged
from segctl.delivery.identifiers import PLATFORMS, IdentityStats, bulk_identity
from segctl.delivery.platforms.base import AudienceClient, Member

#: Person columns by id, for the persons given (the worker fetches each once per push).
Persons = Callable[[Iterable[str]], dict[str, dict[str, Any]]]


@dataclass
class Changes:
    """Adds and removes, sent in batches at the platform's limit."""

    adds: list[Member]
    removes: list[tuple[Any, ...]]  # (person id, identifiers stored when added)
    doubt: dict[str, str]  # person id -> identifiers, in doubt from interrupted syncs
    #: Persons who leave the audience with nothing to send: every identifier of theirs is a
    #: member's who stays (or is added), and removing it would remove that member.
    shared: list[str] = field(default_factory=list)
    #: Members who stay with new identifiers: among the removes (their old identifiers, but
    #: those they keep) and the adds; their removal is not recorded (the add is).
    changed: set[str] = field(default_factory=set)
    #: The adds' digests of their identifiers' values (recorded with them).
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Replacement:
    """The whole audience, sent with the platform's replace (or written as a file)."""

    members: list[Member]  # the desired persons, and those a hold keeps in
    changed: list[Member]  # those it adds or removes (journalled)
    synced: dict[str, str]  # person id -> identifiers stored (not in doubt)

    def counts(self) -> tuple[int, int]:
        """The persons it adds and removes, against those synced (a sync and its dry run
        say the same)."""
        current = {m.person_id for m in self.members}
        return len(current - self.synced.keys()), len(self.synced.keys() - current)


def changes(
    client: AudienceClient, staged: Staged, mode: str, result: SyncResult, persons: Persons
) -> Changes:
    """Adds and removes by ``mode``: ``add`` only adds, ``remove`` only removes; with a hold
    open, removals wait (counted as held)."""
    adds, removes = staged.rows
    members = plan_members(client, adds, result, persons)
    doubt = dict(staged.in_doubt)
    # The old identifiers of members who stay with new ones (those in doubt among them):
    # only where the new ones are sent (not remove) and removals are (not add).
    old = staged.changed if mode not in ("add", "remove") else []
    # In doubt, and no identifier the platform takes now: what may have been added for them
    # goes (unless the old identifiers above take it already).
    unusable = doubt.keys() & ({r[0] for r in adds} - {m.person_id for m in members})
    unusable -= {str(pid) for pid, _ in old}
    removes += sorted((pid, doubt[pid]) for pid in unusable)
    if mode == "add":
        removes = []
    if staged.held:  # the exits wait; a changed member's old identifiers are no exit
        result.held_removals = len(removes)
        removes = []
    if mode == "remove":
        adds, members = [], []
    kept = staged.staying | {v for m in members for v in _identifiers(m.identifiers).values() if v}
    removes, shared = _unshared(removes, kept)
    gone, quiet = _unshared(old, kept)  # but those kept (their own new ones too)
    # Added again with their new identifiers: their removal is not recorded, their add is
    # (one left with no identifier the platform takes leaves the audience, recorded so).
    changed = {str(pid) for pid, _ in old} & {m.person_id for m in members}
    shared += [pid for pid in quiet if pid not in changed]
    return Changes(members, removes + gone, doubt, shared, changed, staged.sources)


def _identifiers(stored: str) -> dict[str, Any]:
    """The identifiers a stored member can share with others (:data:`SHARED_KEYS`)."""
    data = json.loads(stored)
    return {k: data.get(k) for k in SHARED_KEYS if k in data}


def _unshared(
    removes: list[tuple[Any, ...]], kept: set[str] | frozenset[str]
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The removals without the identifiers in ``kept`` (held by a member who stays: two
    persons with one phone or email make one entry on the platform, and removing it would
    remove both); last, the persons left with none to send."""
    if not kept:
        return removes, []
    sent: list[tuple[Any, ...]] = []
    shared: list[str] = []
    for person_id, stored in removes:
        data = json.loads(stored)
        held = {k for k in SHARED_KEYS if data.get(k) is not None and data[k] in kept}
        if not held:
            sent.append((person_id, stored))
            continue
        hashes = set(data) <= set(SHARED_KEYS)  # an ad platform's; else a contact
        if hashes and any(data.get(k) is not None for k in set(SHARED_KEYS) - held):
            left = [f'"{k}": {json.dumps(None if k in held else data.get(k))}' for k in SHARED_KEYS]
            sent.append((person_id, "{" + ", ".join(left) + "}"))  # as Member.identifiers
        else:
            shared.append(person_id)
    return sent, shared


def replacement(
    client: AudienceClient, staged: Staged, result: SyncResult, persons: Persons
) -> Replacement:
    """The desired persons and those kept (a hold is open: they stay, from the identifiers
    stored when they were added). The persons it adds or removes are journalled (unless the
    destination is only ever replaced)."""
    desired, synced_rows, kept = staged.rows
    synced = dict(synced_rows)
    members = plan_members(client, desired, result, persons)
    if kept:
        result.held_removals = len(kept)
        members += [stored_member(pid, identifiers) for pid, identifiers in kept]
    changed: list[Member] = []
    if not client.always_replace:
        changed = [m for m in members if m.person_id not in synced]
        staying = {m.person_id for m in members}
        changed += [stored_member(p, ids) for p, ids in synced.items() if p not in staying]
        changed += [stored_member(pid, ids) for pid, ids in staged.in_doubt]
    return Replacement(members, changed, synced)


def plan_members(
    client: AudienceClient, rows: list[tuple[Any, ...]], result: SyncResult, persons: Persons
) -> list[Member]:
    """The members to send for rows of ``desired``, in order; persons without a usable
    identifier are counted as skipped. For ad platforms the rows carry the hashes (see
    :func:`bulk_hash_sql`); the values DuckDB left are hashed here."""
    stats = IdentityStats()
    if client.platform not in PLATFORMS:
        people = persons(row[0] for row in rows)
        found = [client.identity(people[row[0]], stats) for row in rows]
    else:  # rows: person_id, the hashes..., exact, identifiers
        people = persons(row[0] for row in rows if not row[-2])
        found = []
        for row in rows:
            if not row[-2]:
                found.append(client.identity(people[row[0]], stats))
            elif member := client.member(bulk_identity(row[:-1], stats), stats):
                found.append(member.known_as(row[-1]))
    members = [member for member in found if member is not None]
    result.skipped += len(rows) - len(members)
    result.invalid_emails += stats.invalid_emails
    result.invalid_phones += stats.invalid_phones
    return members
