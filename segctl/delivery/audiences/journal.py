"""Audience changes in doubt: the journal of adds, removals and replaces (SPEC 5)."""

from __future__ import annotations

import json
from contextlib import nullcontext

from segctl.delivery.identifiers import HashedIdentity
from segctl.delivery.platforms.base import Member
from segctl.delivery.queries import JOURNAL
from segctl.state import S, StateStore
from segctl.timeutil import now_utc

__all__ = ["JOURNAL", "Journal", "stored_member"]


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

    def in_doubt(self, *, merge: bool = True) -> list[list[str]]:
        """(person_id, identifiers) of the persons in doubt, from earlier, interrupted syncs.
        Several rows (a sync failing at each push journals its changes again) become one, the
        later identifiers of a person winning, so that the journal does not grow with the
        attempts; with ``merge`` false nothing is written (a read-only state)."""
        found: dict[str, str] = {}
        rows = self.store.rows(
            f"""SELECT id, payload, transition FROM {S}.outbox WHERE kind = 'audience'
                AND batch_key = ? AND status = 'pending' AND list_contains(?, transition)
                ORDER BY id""",
            [self.key, list(JOURNAL)],
        )
        for row_id, payload, _ in rows:
            self.loaded.append(int(row_id))
            found.update(json.loads(payload or "{}"))
        if merge and len(rows) > 1:
            with self.store.transaction():
                self.done(self.loaded, transaction=False)
                self.loaded = [self._insert(str(rows[-1][2]), json.dumps(found), False)]
        return [[pid, identifiers] for pid, identifiers in found.items()]

    def write(self, transition: str, members: list[Member]) -> int:
        """Journal a change about to be sent; returns its row id."""
        payload = json.dumps({m.person_id: m.identifiers for m in members})  # before the lock
        return self._insert(transition, payload)

    def _insert(self, transition: str, payload: str, transaction: bool = True) -> int:
        with self.store.transaction() if transaction else nullcontext():
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


def stored_member(person_id: str, identifiers: str) -> Member:
    """A member from the identifiers stored when it was sent (a removal never needs the raw
    data again)."""
    data = json.loads(identifiers)
    if "email" in data and "phone" in data and set(data) <= {"email", "phone"}:
        return Member(person_id, identity=HashedIdentity(person_id, data["email"], data["phone"]))
    return Member(person_id, contact=data)
