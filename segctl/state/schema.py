"""The state database's schema: its tables as migrations.

:data:`MIGRATIONS` maps each version to the statements that reach it from the one before; a
database from a newer segctl is refused, not guessed at (:class:`segctl.state.StateStore`).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from segctl import packed
from segctl.packed import literal, quote

DB_FILE = "state.duckdb"
S = "segctl_state"  # the alias the state database is attached under

Migration = str | Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: dict[int, list[Migration]] = {
    1: [
        f"CREATE TABLE {S}.meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        f"""CREATE TABLE {S}.runs (
            run_id INTEGER PRIMARY KEY,
            kind VARCHAR NOT NULL,              -- run | backfill
            as_of TIMESTAMP NOT NULL,           -- UTC
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            segctl_version VARCHAR NOT NULL,
            config_hash VARCHAR)""",
        f"""CREATE TABLE {S}.run_segments (
            run_id INTEGER NOT NULL,
            segment VARCHAR NOT NULL,
            definition_hash VARCHAR NOT NULL,   -- sha256 of the segment file
            size BIGINT NOT NULL,
            entered BIGINT NOT NULL,
            exited BIGINT NOT NULL,
            first_run BOOLEAN NOT NULL)""",
        # Append-only: a row per entry into or exit from a segment. Intervals (the SPEC's
        # history shape) are derived from it; a commit never rewrites history.
        f"""CREATE TABLE {S}.transitions (
            run_id INTEGER NOT NULL,
            segment VARCHAR NOT NULL,
            person_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL)              -- enter | exit""",
        # The last committed membership, one row per person and (since v2, packed into words)
        # one flag per segment ever committed: a diff is one join on person_id, not a set
        # operation over every (segment, person) pair.
        f"CREATE TABLE {S}.snapshot (person_id VARCHAR NOT NULL)",
        f"CREATE SEQUENCE {S}.outbox_ids START 1",
        f"""CREATE TABLE {S}.outbox (
            id BIGINT PRIMARY KEY,
            run_id INTEGER,
            segment VARCHAR NOT NULL,
            person_id VARCHAR,                  -- NULL for audience batches
            kind VARCHAR NOT NULL,              -- webhook | email | tag | emit | audience
            destination VARCHAR,
            transition VARCHAR,                 -- enter | exit | add | remove | replace
            spec VARCHAR,                       -- the action's definition, JSON
            payload VARCHAR,                    -- what is sent, JSON (never secrets)
            idempotency_key VARCHAR NOT NULL UNIQUE,
            batch_key VARCHAR,                  -- set before a batch is sent; reused on retry
            status VARCHAR NOT NULL,            -- pending | sent | failed | held
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TIMESTAMP,
            last_error VARCHAR,
            created_at TIMESTAMP NOT NULL,
            sent_at TIMESTAMP)""",
        f"""CREATE TABLE {S}.audience_members (
            destination VARCHAR NOT NULL,
            audience VARCHAR NOT NULL,
            person_id VARCHAR NOT NULL,
            identifiers VARCHAR NOT NULL,       -- what was sent (hashes, or a contact id)
            synced_at TIMESTAMP NOT NULL)""",
        f"""CREATE TABLE {S}.audience_status (
            destination VARCHAR NOT NULL,
            audience VARCHAR NOT NULL,
            last_sync_at TIMESTAMP,
            received BIGINT,
            invalid BIGINT,
            match_rate VARCHAR,
            details VARCHAR)""",
        f"""CREATE TABLE {S}.tags (
            person_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            value VARCHAR,
            set_at TIMESTAMP NOT NULL,
            run_id INTEGER,
            PRIMARY KEY (person_id, name))""",
        f"""CREATE TABLE {S}.holds (
            segment VARCHAR NOT NULL,
            run_id INTEGER NOT NULL,
            reason VARCHAR NOT NULL,
            held_at TIMESTAMP NOT NULL,
            confirmed_at TIMESTAMP)""",
        f"""CREATE TABLE {S}.forgotten (
            subject_hash VARCHAR NOT NULL,      -- sha256 of the person id: no PII
            forgotten_at TIMESTAMP NOT NULL,
            details VARCHAR)""",
    ],
    # The snapshot's memberships packed into BIGINT words (segctl.packed): a thousand BOOLEAN
    # columns made every commit and diff a thousand columns wide.
    2: [
        f"""CREATE TABLE {S}.snapshot_layout (
            slot INTEGER PRIMARY KEY,           -- bit slot % 63 of word w{{slot // 63}}
            segment VARCHAR NOT NULL UNIQUE)""",
        lambda con: _pack_snapshot(con),
    ],
    # The input files each run read (segctl.sources.runfiles): what `segctl verify` re-reads, and
    # what an incremental run compares to find new, changed and vanished files. Runs
    # committed before v3 have no rows here.
    3: [
        f"""CREATE TABLE {S}.run_inputs (
            run_id INTEGER NOT NULL,
            source VARCHAR NOT NULL,            -- events | persons | subscriptions
            path VARCHAR NOT NULL,              -- relative to the project folder when inside
            size BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL,
            fingerprint VARCHAR NOT NULL)       -- sha256 of size, first and last 64 KiB""",
    ],
    # Incremental runs (segctl.incremental): the catalogue fingerprint of the run they belong
    # to, and per person the earliest instant a membership can change without a new row.
    4: [
        f"""CREATE TABLE {S}.incremental (
            run_id INTEGER NOT NULL,
            key VARCHAR NOT NULL,
            value VARCHAR NOT NULL)""",
        f"CREATE TABLE {S}.wakeups (person_id VARCHAR NOT NULL, wake TIMESTAMP NOT NULL)",
    ],
    # The events clustered by person (segctl.state.event_rows): the files of the copy, the
    # run whose input files they hold the rows of, and the DuckDB version that hashed them.
    5: [
        f"""CREATE TABLE {S}.event_copy (
            file VARCHAR NOT NULL,              -- in <state>/events/
            run_id INTEGER NOT NULL,
            version VARCHAR NOT NULL)""",
    ],
    # The transitions keyed by integers: each person id and segment name is stored once (in
    # person_keys and segment_keys) instead of on every row, and a run's rows are inserted
    # sorted by segment and person, so DuckDB bit-packs them. A million persons' first entries
    # into 1,000 segments took 333 MiB as strings and take 52 MiB so. ``transitions`` is a
    # view with the columns the table had.
    6: [
        f"CREATE TABLE {S}.person_keys (person_key INTEGER NOT NULL, person_id VARCHAR NOT NULL)",
        f"CREATE TABLE {S}.segment_keys (segment_key INTEGER NOT NULL, segment VARCHAR NOT NULL)",
        f"""CREATE TABLE {S}.transition_rows (
            run_id INTEGER NOT NULL,
            segment_key INTEGER NOT NULL,
            person_key INTEGER NOT NULL,
            entered BOOLEAN NOT NULL)""",
        lambda con: _key_transitions(con),
        f"DROP TABLE {S}.transitions",
        # Unqualified, the view's tables are its own database's under any name it is opened
        # as (no temp table of segctl's has these names: a temp table would come first).
        f"""CREATE VIEW {S}.transitions AS
            SELECT t.run_id, g.segment, p.person_id,
                   CASE WHEN t.entered THEN 'enter' ELSE 'exit' END AS kind
            FROM transition_rows AS t
            JOIN segment_keys AS g ON g.segment_key = t.segment_key
            JOIN person_keys AS p ON p.person_key = t.person_key""",
    ],
    # Per person, a hash of their rows in the persons and subscriptions views and of the list
    # entries naming or matching them (segctl.incremental): a re-exported persons,
    # subscriptions or list file re-evaluates the persons whose hash changed instead of
    # everyone. Kept once such a file has been re-exported; 12.75 MiB at a million persons.
    7: [
        f"CREATE TABLE {S}.row_hashes (person_id VARCHAR NOT NULL, hash UBIGINT NOT NULL)",
    ],
    # The identity map of the last run (each anonymous id and the person its rows belong to),
    # kept when the events carry anonymous ids (segctl.incremental): a re-exported identities
    # file, or a new link, re-evaluates the persons whose ids moved instead of everyone.
    8: [
        f"CREATE TABLE {S}.identity_map (id VARCHAR NOT NULL, person_id VARCHAR NOT NULL)",
    ],
    # Per audience member, a digest of the identifiers they were hashed from (the persons'
    # email, phone and country as read): a member whose email or phone changed is sent again
    # with the new hashes, the old ones removed (segctl.delivery.audiences). NULL for the
    # members added before v9: they are given theirs at their audience's next sync.
    9: [
        f"ALTER TABLE {S}.audience_members ADD COLUMN source VARCHAR",
    ],
    # The input files as spans of runs: a file read as it was by consecutive runs is one
    # row, where it was a row per run (a watch running every minute over 547 daily files
    # added 788,000 rows a day). ``run_inputs`` is a view of the same rows per run.
    10: [
        f"""CREATE TABLE {S}.input_files (
            source VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            size BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL,
            fingerprint VARCHAR NOT NULL,
            from_run INTEGER NOT NULL,          -- the first run that read it so
            to_run INTEGER NOT NULL)            -- the last, every run between too""",
        f"""INSERT INTO {S}.input_files
            SELECT source, path, size, mtime_ns, fingerprint, min(run_id), max(run_id)
            FROM (SELECT *, run_id - row_number() OVER (PARTITION BY source, path, size,
                         mtime_ns, fingerprint ORDER BY run_id) AS span
                  FROM {S}.run_inputs)
            GROUP BY source, path, size, mtime_ns, fingerprint, span
            ORDER BY min(run_id), source, path""",
        f"DROP TABLE {S}.run_inputs",
        f"""CREATE VIEW {S}.run_inputs AS
            SELECT r.run_id, f.source, f.path, f.size, f.mtime_ns, f.fingerprint
            FROM input_files AS f JOIN runs AS r ON r.run_id BETWEEN f.from_run AND f.to_run""",
    ],
}
SCHEMA_VERSION = max(MIGRATIONS)


def _pack_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    """Migration to v2: the v1 snapshot's BOOLEAN columns packed into words."""
    layout = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND "
            "table_name = 'snapshot' AND column_name <> 'person_id' ORDER BY column_index",
            [S],
        ).fetchall()
    ]
    if not layout:
        return
    flags = [f"coalesce({quote(n)}, false)" for n in layout]
    columns = packed.pack_as(flags)
    con.execute(
        f"CREATE OR REPLACE TABLE {S}.snapshot AS SELECT person_id, {', '.join(columns)} "
        f"FROM {S}.snapshot"
    )
    con.execute(insert_layout(layout))


def _key_transitions(con: duckdb.DuckDBPyConnection) -> None:
    """Migration to v6: the string transitions' rows as keyed rows."""
    for table, column in (("person_keys", "person_id"), ("segment_keys", "segment")):
        con.execute(
            f"""INSERT INTO {S}.{table}
                SELECT row_number() OVER (ORDER BY {column}) - 1, {column}
                FROM (SELECT DISTINCT {column} FROM {S}.transitions)"""
        )
    con.execute(
        f"""INSERT INTO {S}.transition_rows
            SELECT t.run_id, g.segment_key, p.person_key, t.kind = 'enter'
            FROM {S}.transitions AS t
            JOIN {S}.segment_keys AS g ON g.segment = t.segment
            JOIN {S}.person_keys AS p ON p.person_id = t.person_id
            ORDER BY t.run_id, g.segment_key, p.person_key"""
    )


def insert_layout(layout: list[str]) -> str:
    """SQL recording ``layout`` as the snapshot's slots (into an empty snapshot_layout)."""
    slots = ", ".join(f"({i}, {literal(n)})" for i, n in enumerate(layout))
    return f"INSERT INTO {S}.snapshot_layout VALUES {slots}"
