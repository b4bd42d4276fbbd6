"""Reads and erasure of the delivery tables (the outbox, synced audiences) for ``segctl
status``, ``segctl person`` and ``segctl forget``."""

from __future__ import annotations

import json
from typing import Any

from segctl.state import S, StateStore

OUTBOX_KEYS = (
    "id",
    "segment",
    "kind",
    "destination",
    "transition",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
)


def pending_for(store: StateStore, person_id: str) -> list[dict[str, Any]]:
    """A person's deliveries still pending or held, by id."""
    rows = store.rows(
        f"""SELECT {", ".join(OUTBOX_KEYS)}
            FROM {S}.outbox WHERE person_id = ? AND status IN ('pending', 'held')
            ORDER BY id""",
        [person_id],
    )
    return [dict(zip(OUTBOX_KEYS, row, strict=True)) for row in rows]


def deliveries(store: StateStore) -> list[dict[str, Any]]:
    """Outbox rows counted per destination (or kind), kind and status, with a last error."""
    rows = store.rows(f"""SELECT coalesce(destination, kind), kind, status, count(*),
                                 max(last_error)
                          FROM {S}.outbox GROUP BY ALL ORDER BY ALL""")
    keys = ("destination", "kind", "status", "count", "last_error")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def audiences(store: StateStore) -> list[dict[str, Any]]:
    """Each synced audience: its last sync's figures and how many members it holds."""
    rows = store.rows(f"""SELECT destination, audience, last_sync_at, received,
                                 invalid, match_rate, details
                          FROM {S}.audience_status ORDER BY ALL""")
    members = {
        (d, a): n
        for d, a, n in store.rows(
            f"SELECT destination, audience, count(*) FROM {S}.audience_members GROUP BY ALL"
        )
    }
    return [
        {
            "destination": d,
            "audience": a,
            "last_sync_at": t,
            "received": rec,
            "invalid": inv,
            "match_rate": rate,
            "synced_members": members.get((d, a), 0),
            "details": json.loads(details) if details else {},
        }
        for d, a, t, rec, inv, rate, details in rows
    ]


def audiences_holding(store: StateStore, person_ids: list[str]) -> list[tuple[str, str, str, str]]:
    """(destination, audience, segment, mode) of every synced audience holding any of the
    persons, with the segment and mode (``sync`` by default) of the action that syncs it."""
    rows = store.rows(
        f"""SELECT DISTINCT m.destination, m.audience, o.segment, o.spec
            FROM {S}.audience_members m JOIN {S}.outbox o
              ON o.kind = 'audience' AND o.destination = m.destination
             AND json_extract_string(o.spec, '$.audience_id') = m.audience
            WHERE list_contains(?, m.person_id)""",
        [person_ids],
    )
    return [(d, a, s, json.loads(spec).get("mode", "sync")) for d, a, s, spec in rows]


def forget_deliveries(store: StateStore, person_ids: list[str]) -> None:
    """Drop the persons' undelivered outbox rows and unlink the delivered ones from them (the
    audit of what was sent stays). Call inside the store's transaction."""
    with store.lock:
        store.con.execute(
            f"""DELETE FROM {S}.outbox WHERE list_contains(?, person_id)
                AND status IN ('pending', 'held', 'failed', 'skipped')""",
            [person_ids],
        )
        store.con.execute(
            f"UPDATE {S}.outbox SET person_id = NULL WHERE list_contains(?, person_id)",
            [person_ids],
        )


def still_in_audiences(store: StateStore, person_ids: list[str]) -> int:
    """How many audience memberships of the persons are still recorded."""
    return int(
        store.rows(
            f"SELECT count(*) FROM {S}.audience_members WHERE list_contains(?, person_id)",
            [person_ids],
        )[0][0]
    )
