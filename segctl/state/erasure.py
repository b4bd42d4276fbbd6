"""Removing history: a person's data on erasure (``segctl forget``), every run on
``segctl backfill --reset``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from segctl.state import event_rows
from segctl.state.schema import S
from segctl.state.store import StateStore
from segctl.timeutil import now_utc

#: The tables holding a person's snapshot row, tags, wake-up time, row hash and linked ids, by
#: person_id (their transitions are by person_key).
PERSON_TABLES = ("snapshot", "tags", "wakeups", "row_hashes", "identity_map")
#: The tables ``backfill --reset`` empties (the outbox and synced audiences are kept).
HISTORY_TABLES = (
    "runs",
    "run_segments",
    "transition_rows",
    "person_keys",
    "segment_keys",
    "holds",
    "input_files",
)


def subject_hash(person_id: str) -> str:
    """What the erasure audit keeps of a person id: its SHA-256, in hex."""
    return hashlib.sha256(person_id.encode()).hexdigest()


def forget(store: StateStore, person_ids: list[str], details: dict[str, Any]) -> None:
    """Record the erasure of ``person_ids`` (their hashes and ``details``, no PII) and drop
    their history, snapshot rows and tags. Call inside the store's transaction."""
    at = now_utc()
    store.executemany(
        f"INSERT INTO {S}.forgotten VALUES (?, ?, ?)",
        [[subject_hash(p), at, json.dumps(details)] for p in person_ids],
    )
    with store.lock:
        keys = f"SELECT person_key FROM {S}.person_keys WHERE list_contains(?, person_id)"
        store.con.execute(
            f"DELETE FROM {S}.transition_rows WHERE person_key IN ({keys})", [person_ids]
        )
        for table in ("person_keys", *PERSON_TABLES):
            store.con.execute(
                f"DELETE FROM {S}.{table} WHERE list_contains(?, person_id)", [person_ids]
            )
        event_rows.record(store, 0, "", [])  # the copy is written again without them
        event_rows.collect(store)
    store.compact_on_close = True  # their rows' freed blocks too


def reset_history(store: StateStore) -> None:
    """Delete every run, its figures, transitions, holds and inputs, and empty the snapshot,
    in one transaction. The state's origin goes too: run ids start again from 1, and the
    outbox keys of the new runs must not repeat the old ones'."""
    with store.transaction():
        for table in HISTORY_TABLES:
            store.con.execute(f"DELETE FROM {S}.{table}")
        store.con.execute(f"DELETE FROM {S}.meta WHERE key = 'origin'")
        store.con.execute(f"CREATE OR REPLACE TABLE {S}.snapshot (person_id VARCHAR NOT NULL)")
        store.con.execute(f"DELETE FROM {S}.snapshot_layout")
