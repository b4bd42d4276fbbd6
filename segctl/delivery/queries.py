"""Every query of the outbox and holds tables outside a run's queueing (:mod:`.outbox`) and
the audience sync (:mod:`.audiences`): due rows and their batch keys, outcomes, releasing
held exits, what is left, and what ``segctl status``, ``person`` and ``forget`` read or erase.

Outcomes are written from the audience syncs' threads too: every statement here takes the
store's lock (through :meth:`StateStore.rows` or :meth:`StateStore.transaction`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from segctl.delivery.model import Held, Report
from segctl.state import S, StateStore
from segctl.timeutil import now_utc

if TYPE_CHECKING:
    import duckdb

# ---- the worker -----------------------------------------------------------------------

#: Outbox transitions of journalled audience changes (``audiences.journal.Journal``) ...
JOURNAL = ("add", "remove", "replace")
#: ... which are not deliveries of their own (the audience's sync request is), so not counted
#: as pending: a change in doubt.
IN_DOUBT = f"(kind = 'audience' AND transition IN {JOURNAL})"


def due(store: StateStore, kind: str, *, waiting: bool = True) -> list[dict[str, Any]]:
    """Due pending rows of a kind, oldest first, with their run's as_of. With ``waiting``,
    a row waiting for its retry after a failure is due too (a delayed email is not)."""
    with store.lock:
        cursor = store.con.execute(
            f"""SELECT o.id, o.run_id, o.segment, o.person_id, o.destination, o.transition,
                       o.spec, o.idempotency_key, o.batch_key, o.attempts, r.as_of,
                       o.payload
                FROM {S}.outbox o LEFT JOIN {S}.runs r USING (run_id)
                WHERE o.kind = ? AND o.status = 'pending' AND {_due("o", waiting)}
                ORDER BY o.id""",
            [kind, now_utc()],
        )
        columns = [d[0] for d in cursor.description]
        found = cursor.fetchall()
    return [dict(zip(columns, row, strict=True)) for row in found]


def anything_due(store: StateStore, *, waiting: bool = True) -> bool:
    """Whether any pending row of any kind is due (what :func:`due` would return for some
    kind): with none, a push has nothing to send."""
    with store.lock:
        found = store.con.execute(
            f"""SELECT 1 FROM {S}.outbox o WHERE status = 'pending' AND {_due("o", waiting)}
                LIMIT 1""",
            [now_utc()],
        ).fetchall()
    return bool(found)


def _due(alias: str, waiting: bool) -> str:
    """SQL: the pending row ``alias`` is due now (one parameter: now). A row tried before
    (``attempts > 0``) waits for ``next_attempt_at`` only when not ``waiting``: ``segctl push``
    and ``segctl run`` retry what is left at once (SPEC 6: pending "for the next push/run"),
    ``segctl watch`` on the backoff's schedule. A delayed email (never tried) waits for its
    time either way."""
    scheduled = f"({alias}.next_attempt_at IS NULL OR {alias}.next_attempt_at <= ?)"
    return f"({alias}.attempts > 0 OR {scheduled})" if waiting else scheduled


def persons(store: StateStore, person_ids: list[str]) -> list[dict[str, Any]]:
    """Every column of the ``persons`` view for these persons (payloads, emails, audiences)."""
    with store.lock:
        return persons_of(store.con, person_ids)


def persons_of(con: duckdb.DuckDBPyConnection, person_ids: list[str]) -> list[dict[str, Any]]:
    """:func:`persons` on a connection."""
    cursor = con.execute(
        "SELECT * FROM persons WHERE person_id IN (SELECT unnest(?::VARCHAR[]))", [person_ids]
    )
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def assign_batch_keys(store: StateStore, assignments: list[tuple[str, int]]) -> None:
    """Persist (batch key, outbox id) pairs, in one transaction, before anything is sent."""
    if not assignments:
        return
    with store.transaction():
        store.con.execute(
            f"""UPDATE {S}.outbox SET batch_key = b.batch_key
                FROM (SELECT unnest(?::VARCHAR[]) AS batch_key,
                             unnest(?::BIGINT[]) AS id) AS b
                WHERE outbox.id = b.id""",
            [[k for k, _ in assignments], [i for _, i in assignments]],
        )


def store_payloads(store: StateStore, bodies: list[tuple[int, str]]) -> None:
    """Persist (outbox id, body) pairs, in one transaction, before anything is sent: what a
    retry sends again (an email's message)."""
    if not bodies:
        return
    with store.transaction():
        store.con.execute(
            f"""UPDATE {S}.outbox SET payload = b.payload
                FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS payload) AS b
                WHERE outbox.id = b.id""",
            [[i for i, _ in bodies], [p for _, p in bodies]],
        )


#: An email's stored message (its address, the person's columns) is kept while a retry may
#: send it, not once it went or will never go.
_DONE_WITH_BODY = "payload = CASE WHEN kind = 'email' THEN NULL ELSE payload END"


def mark_sent(store: StateStore, ids: list[int]) -> None:
    _update(
        store,
        ids,
        f"status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL, "
        f"{_DONE_WITH_BODY}",
        [now_utc()],
    )


def mark(store: StateStore, ids: list[int], status: str, reason: str) -> None:
    """Set rows' status without an attempt (``skipped``: never to be sent)."""
    _update(store, ids, f"status = ?, last_error = ?, {_DONE_WITH_BODY}", [status, reason])


def mark_attempt(
    store: StateStore, ids: list[int], status: str, error: str, next_attempt: datetime | None
) -> None:
    """A failed attempt: ``failed`` for good (an email's message goes: ``--retry-failed``
    makes it again), or ``pending`` until ``next_attempt``."""
    done = f", {_DONE_WITH_BODY}" if status == "failed" else ""
    _update(
        store,
        ids,
        f"status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?{done}",
        [status, error, next_attempt],
    )


def _update(store: StateStore, ids: list[int], assignments: str, params: list[Any]) -> None:
    """One UPDATE of the outbox rows given (a transaction of its own)."""
    if not ids:
        return
    with store.transaction():
        store.con.execute(
            f"UPDATE {S}.outbox SET {assignments} WHERE id IN (SELECT unnest(?::BIGINT[]))",
            [*params, ids],
        )


def confirm(store: StateStore, segment: str) -> int:
    """Release a segment's held exits: its held exit actions become pending, and the audience
    syncs of its unconfirmed held runs are due again. Returns how many holds (runs whose
    exits were held) it released."""
    with store.transaction():
        settle_holds(store, "at the confirm")  # their exits are not sent
        held = store.rows(
            f"SELECT count(*) FROM {S}.holds WHERE segment = ? AND confirmed_at IS NULL",
            [segment],
        )[0][0]
        store.con.execute(
            f"""UPDATE {S}.outbox SET status = 'pending', next_attempt_at = NULL
                WHERE segment = ? AND (status = 'held' OR (kind = 'audience' AND run_id IN
                    (SELECT run_id FROM {S}.holds WHERE segment = ?
                     AND confirmed_at IS NULL)))""",
            [segment, segment],
        )
        store.con.execute(
            f"UPDATE {S}.holds SET confirmed_at = ? WHERE segment = ? AND confirmed_at IS NULL",
            [now_utc(), segment],
        )
    return int(held)


def gone_endpoints(store: StateStore) -> set[str]:
    """The webhook destinations that answered 410 Gone: disabled (Standard Webhooks) while
    that failure stands, until ``segctl push --retry-failed`` makes it pending again."""
    from segctl.delivery.webhook import GONE

    rows = store.rows(
        f"""SELECT DISTINCT destination FROM {S}.outbox WHERE kind = 'webhook'
            AND status = 'failed' AND contains(last_error, ?)""",
        [GONE],
    )
    return {str(r[0]) for r in rows}


def retry_failed(store: StateStore) -> int:
    """Make every failed delivery pending again, due at once (``segctl push --retry-failed``:
    what refused it, a url or a token, has been fixed). Returns how many. An email's stored
    message is made again (the fix may be in it: the sender, a variable), under a new key
    when it differs."""
    with store.transaction():
        [(count,)] = store.rows(f"SELECT count(*) FROM {S}.outbox WHERE status = 'failed'")
        store.con.execute(
            f"""UPDATE {S}.outbox SET status = 'pending', next_attempt_at = NULL,
                  {_DONE_WITH_BODY} WHERE status = 'failed'"""
        )
    return int(count)


def left(store: StateStore) -> tuple[int, int]:
    """(pending, scheduled): held, due or waiting to be retried; delayed and never tried."""
    moment = now_utc()
    rows = store.rows(
        f"""SELECT count(*) FILTER (WHERE status = 'held' OR (status = 'pending' AND
                   (attempts > 0 OR next_attempt_at IS NULL OR next_attempt_at <= ?))),
                   count(*) FILTER (WHERE status = 'pending' AND attempts = 0
                                    AND next_attempt_at > ?)
            FROM {S}.outbox WHERE NOT {IN_DOUBT}""",
        [moment, moment],
    )
    return int(rows[0][0]), int(rows[0][1])


def count_left(store: StateStore, report: Report) -> None:
    """Into ``report``, what a push leaves: pending, scheduled (:func:`left`) and the held
    exits (:func:`held_exits`)."""
    report.pending, report.scheduled = left(store)
    report.held = held_exits(store)


#: The open holds, each with its exits still held: (segment, run_id, reason, held_at,
#: exits). An exit stops being held when its person enters again (the run cancels it).
OPEN_HOLDS = f"""
    WITH open AS (SELECT * FROM {S}.holds WHERE confirmed_at IS NULL),
    still AS (
        SELECT x.segment, x.run_id, count(*) AS exits
        FROM {S}.transitions AS x JOIN open USING (segment, run_id)
        WHERE x.kind = 'exit' AND NOT EXISTS (
            SELECT 1 FROM {S}.transitions AS y
            WHERE y.segment = x.segment AND y.person_id = x.person_id
              AND y.run_id > x.run_id AND y.kind = 'enter')
        GROUP BY ALL)
    SELECT o.segment, o.run_id, o.reason, o.held_at, coalesce(still.exits, 0) AS exits
    FROM open AS o LEFT JOIN still USING (segment, run_id)"""


def settle_holds(store: StateStore, when: str) -> None:
    """What the holds no longer hold (call inside a transaction: a run's, a confirm's, an
    erasure's): a held exit action of a person who is a member again (entered since, by a run
    or a backfill) is canceled, ``when`` saying where they were seen back; a hold none of
    whose persons is still out lapses (confirmed now: nothing is left to confirm)."""
    if not store.rows(f"SELECT count(*) FROM {S}.holds WHERE confirmed_at IS NULL")[0][0]:
        return
    store.con.execute(
        f"""UPDATE {S}.outbox AS o SET status = 'canceled', next_attempt_at = NULL,
              last_error = 'a member again (' || ? || ') before the exit was confirmed'
            WHERE o.status = 'held' AND o.transition = 'exit' AND (
                SELECT arg_max(t.kind, t.run_id) FROM {S}.transitions AS t
                WHERE t.segment = o.segment AND t.person_id = o.person_id) = 'enter'""",
        [when],
    )
    store.con.execute(
        f"""UPDATE {S}.holds SET confirmed_at = ? WHERE confirmed_at IS NULL
            AND (segment, run_id) IN (SELECT (segment, run_id) FROM ({OPEN_HOLDS})
                                      WHERE exits = 0)""",
        [now_utc()],
    )


def held_exits(store: StateStore) -> list[Held]:
    """The segments whose exits wait for ``segctl push --confirm``, with how many exits (over
    every run not yet confirmed, less those whose persons entered again) and the ratio the
    latest of them exceeded."""
    found = store.rows(
        f"""SELECT segment, sum(exits), arg_max(reason, run_id) FROM ({OPEN_HOLDS})
            GROUP BY segment ORDER BY segment"""
    )
    held = []
    for segment, exits, reason in found:
        ratio = re.search(r"max_exit_ratio ([0-9.]+)", str(reason))
        held.append(Held(segment, int(exits), float(ratio.group(1)) if ratio else None, reason))
    return held


def segment_held(store: StateStore, segment: str) -> bool:
    """A hold of the segment waits for confirmation (its audience removals wait too)."""
    return bool(
        store.rows(
            f"SELECT count(*) FROM {S}.holds WHERE segment = ? AND confirmed_at IS NULL",
            [segment],
        )[0][0]
    )


def synced_persons(store: StateStore, destination: str, audience: str) -> dict[str, str | None]:
    """The persons segctl has added to an audience, each with the digest of what their
    identifiers were made of (``run --dry-run`` plans against them)."""
    return {
        str(person): source
        for person, source in store.rows(
            f"""SELECT person_id, source FROM {S}.audience_members
                WHERE destination = ? AND audience = ?""",
            [destination, audience],
        )
    }


# ---- the project: status, person, forget ----------------------------------------------


def status(store: StateStore) -> dict[str, list[dict[str, Any]]]:
    """``deliveries`` (per destination, a python action's function standing for one, kind
    and status, and the skipped per reason; the last error the latest row's),
    ``audiences`` (last sync and figures) and ``holds`` (waiting for confirmation) of
    ``segctl status``."""
    # A delayed email not yet due is "scheduled", as a push reports it (:func:`left`).
    outbox = store.rows(
        f"""SELECT coalesce(destination, CASE kind WHEN 'python'
                            THEN 'python ' || json_extract_string(spec, '$.function')
                            ELSE kind END) AS d, kind,
                   CASE WHEN {IN_DOUBT} THEN 'in doubt'
                        WHEN status = 'pending' AND attempts = 0 AND next_attempt_at > ?
                        THEN 'scheduled' ELSE status END AS s,
                   count(*), arg_max(last_error, id) FILTER (WHERE last_error IS NOT NULL)
            FROM {S}.outbox
            GROUP BY d, kind, s, CASE WHEN status = 'skipped' THEN last_error END
            ORDER BY ALL""",
        [now_utc()],
    )
    audiences = store.rows(f"""SELECT destination, audience, last_sync_at, received,
                                      invalid, match_rate, details
                               FROM {S}.audience_status ORDER BY ALL""")
    members = dict(
        ((d, a), n)
        for d, a, n in store.rows(
            f"SELECT destination, audience, count(*) FROM {S}.audience_members GROUP BY ALL"
        )
    )
    holds = store.rows(f"SELECT * FROM ({OPEN_HOLDS}) ORDER BY run_id")
    return {
        "deliveries": [
            dict(zip(("destination", "kind", "status", "count", "last_error"), r, strict=True))
            for r in outbox
        ],
        "audiences": [
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
            for d, a, t, rec, inv, rate, details in audiences
        ],
        "holds": [
            {
                **dict(zip(("segment", "run_id", "reason", "held_at", "exits"), h, strict=True)),
                "release": f"segctl push --confirm {h[0]}",
            }
            for h in holds
        ],
    }


PENDING_KEYS = (
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
    """A person's deliveries still to go (pending or held), oldest first."""
    rows = store.rows(
        f"""SELECT id, segment, kind, destination, transition, status, attempts,
                   next_attempt_at, last_error
            FROM {S}.outbox WHERE person_id = ? AND status IN ('pending', 'held')
            ORDER BY id""",
        [person_id],
    )
    return [dict(zip(PENDING_KEYS, row, strict=True)) for row in rows]


def sync_requests(store: StateStore) -> list[dict[str, Any]]:
    """The audiences a push will sync (a pending sync request, or changes in doubt), each
    with its oldest request's id and the latest attempt: :data:`PENDING_KEYS` but the
    transition, and the audience id and mode."""
    rows = store.rows(
        f"""SELECT min(id), segment, destination, json_extract_string(spec, '$.audience_id'),
                   json_extract_string(spec, '$.mode'), max(attempts), max(next_attempt_at),
                   arg_max(last_error, coalesce(next_attempt_at, created_at))
            FROM {S}.outbox WHERE kind = 'audience' AND status = 'pending'
            GROUP BY segment, destination, spec ORDER BY 1"""
    )
    keys = (
        "id",
        "segment",
        "destination",
        "audience",
        "mode",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def audiences_of(store: StateStore, person_ids: list[str]) -> list[tuple[str, str, str, str]]:
    """(destination, audience, segment, mode) of every audience synced with these persons."""
    found = store.rows(
        f"""SELECT DISTINCT m.destination, m.audience, o.segment, o.spec
            FROM {S}.audience_members m JOIN {S}.outbox o
              ON o.kind = 'audience' AND o.destination = m.destination
             AND json_extract_string(o.spec, '$.audience_id') = m.audience
            WHERE list_contains(?, m.person_id)""",
        [person_ids],
    )
    return [(d, a, s, json.loads(spec).get("mode", "sync")) for d, a, s, spec in found]


def forget_deliveries(store: StateStore, person_ids: list[str]) -> None:
    """Erase the persons from the outbox (call inside the erasure's transaction): what is
    still to go is dropped, what went loses its person id, and its key (which ends with the
    id: ``...:enter:0:p1``) ends with the id's SHA-256 instead, as the erasure's record."""
    store.con.execute(
        f"""DELETE FROM {S}.outbox WHERE list_contains(?, person_id)
            AND status IN ('pending', 'held', 'failed', 'skipped')""",
        [person_ids],
    )
    store.con.execute(
        f"""UPDATE {S}.outbox SET
              idempotency_key = CASE WHEN suffix(idempotency_key, ':' || person_id)
                THEN left(idempotency_key, length(idempotency_key) - length(person_id))
                  || sha256(person_id)
                ELSE idempotency_key END,
              person_id = NULL
            WHERE list_contains(?, person_id)""",
        [person_ids],
    )


def still_in_audiences(store: StateStore, person_ids: list[str]) -> int:
    """Synced audience memberships of these persons (after a forget: the removals that failed)."""
    return int(
        store.rows(
            f"SELECT count(*) FROM {S}.audience_members WHERE list_contains(?, person_id)",
            [person_ids],
        )[0][0]
    )
