"""Queue a run's actions and audience syncs in the run's own transaction (SPEC 5 and 6).

Everything is set-based SQL over the staged ``run_entered``/``run_exited`` tables: one INSERT
per (segment, action), never a Python loop over persons. Tags are local state and are applied
right here, inside the transaction; everything that leaves the machine becomes an outbox row
with a stable idempotency key, delivered later by the worker.

The mass-exit guard: when more than ``max_exit_ratio`` of a segment's members exit in one run,
its exit actions are queued as ``held`` and its audience removals wait, until
``segctl push --confirm SEGMENT``. A segment without on_exit actions or audiences has nothing
to hold and is never held. A person whose exit is held and who enters again before it is
confirmed (the data that made them exit was wrong, and is mended) has neither: their held
exit actions are canceled and their entry fires no on_enter action (but a tag, their state),
so a receiver never sees the exit it was spared; a hold none of whose persons is still out
lapses (:func:`~segctl.delivery.queries.settle_holds`, also at a confirm and an erasure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from segctl.definitions.actions import Action, Audience
from segctl.delivery.queries import settle_holds
from segctl.diff import Change, literal
from segctl.state import S, StateStore
from segctl.tempnames import RUN_ENTERED_VIEW, RUN_RETURNED_TABLE
from segctl.timeutil import now_utc


@dataclass(frozen=True)
class QueuePlan:
    """What a run queues, per segment (also what ``run --dry-run`` shows)."""

    segment: str
    actions: int  # outbox rows for on_enter/on_exit actions
    audiences: int  # audience sync requests
    held: bool  # the mass-exit guard held this segment's exits


def exits_held(change: Change, max_exit_ratio: float, *, holdable: bool = True) -> bool:
    """More than ``max_exit_ratio`` of the previous members would exit, and the segment has
    something to hold (``holdable``: on_exit actions or audiences; without them a hold would
    only ask the user to confirm nothing)."""
    previous = _previous(change)
    return holdable and previous > 0 and change.exited / previous > max_exit_ratio


def hold_reason(change: Change, max_exit_ratio: float) -> str:
    """Why a segment's exits are held: "146 of 292 members would exit (max_exit_ratio 0.5)"."""
    return (
        f"{change.exited:,} of {_previous(change):,} members would exit "
        f"(max_exit_ratio {max_exit_ratio:g})"
    )


def _previous(change: Change) -> int:
    """The segment's members at the last run."""
    return change.size - change.entered + change.exited


def queue_run(
    store: StateStore,
    run_id: int,
    as_of: datetime,
    segments: dict[str, tuple[tuple[Action, ...], tuple[Action, ...], tuple[Audience, ...]]],
    changes: dict[str, Change],
    *,
    fire_initial: bool,
    max_exit_ratio: float,
    resync: bool = False,
) -> list[QueuePlan]:
    """Insert the outbox rows of one run (call inside the run's transaction). An audience is
    synced when its segment changed, when its last sync failed (SPEC 6: reconciliation
    self-heals; a push does not retry a refusal, the next run tries the audience again), and
    on every audience when ``resync`` (who may be uploaded changed: consent or suppression)."""
    plans = []
    created = now_utc()
    origin = store.origin()  # the keys of two state folders never meet
    failed = {
        (str(r[0]), str(r[1]))
        for r in store.rows(
            f"SELECT destination, audience FROM {S}.audience_status "
            "WHERE json_extract_string(details, '$.error') IS NOT NULL"
        )
    }
    # Audiences never synced nor waiting for a sync: attached to a segment since its last
    # run, they are reconciled now, whether or not its members changed.
    known = {
        (str(r[0]), str(r[1]))
        for r in store.rows(
            f"SELECT destination, audience FROM {S}.audience_status UNION "
            f"SELECT destination, json_extract_string(spec, '$.audience_id') FROM {S}.outbox "
            "WHERE kind = 'audience' AND status = 'pending'"
        )
    }
    for name, (on_enter, on_exit, audiences) in segments.items():
        change = changes.get(name)
        if change is None:
            continue
        returned = _returned(store, run_id, name) if change.entered else False
        held = exits_held(change, max_exit_ratio, holdable=bool(on_exit or audiences))
        if held:
            store.con.execute(
                f"INSERT INTO {S}.holds VALUES (?, ?, ?, ?, NULL)",
                [name, run_id, hold_reason(change, max_exit_ratio), created],
            )
        count = 0
        fire_enter = not change.first_run or fire_initial
        for transition, actions, source, status in (
            ("enter", on_enter if fire_enter else (), "run_entered", "pending"),
            ("exit", on_exit, "run_exited", "held" if held else "pending"),
        ):
            for index, action in enumerate(actions):
                prefix = f"{origin}:run{run_id}:{name}:{transition}:{index}:"
                # A tag is the person's state, set at once (an on_exit one too, held or not):
                # the entry sets it back.
                spared = returned and transition == "enter" and action.kind != "tag"
                count += _queue_action(
                    store, run_id, as_of, name, transition, prefix, action, source, status,
                    created, spared,
                )  # fmt: skip
        for audience in audiences:
            which = (audience.destination, audience.audience_id)
            again = which in failed or which not in known
            if change.entered or change.exited or change.first_run or resync or again:
                key = f"{origin}:run{run_id}:{name}:audience:{audience.key}"
                store.con.execute(
                    f"""INSERT INTO {S}.outbox (id, run_id, segment, kind, destination,
                        transition, spec, idempotency_key, status, created_at)
                        VALUES (nextval('{S}.outbox_ids'), ?, ?, 'audience', ?, 'sync', ?, ?,
                                'pending', ?)""",
                    [
                        run_id,
                        name,
                        audience.destination,
                        json.dumps({"audience_id": audience.audience_id, "mode": audience.mode}),
                        key,
                        created,
                    ],
                )
        plans.append(QueuePlan(name, count, len(audiences), held))
    settle_holds(store, f"run {run_id}")
    return plans


def _returned(store: StateStore, run_id: int, segment: str) -> bool:
    """Stage, in :data:`RUN_RETURNED_TABLE`, this run's entries into ``segment`` of persons
    whose last exit was in a run a hold still holds (their held exits are canceled by
    :func:`~segctl.delivery.queries.settle_holds`, and their entry fires no action). Whether
    there are any."""
    if not store.rows(f"SELECT count(*) FROM ({OPEN_HOLD_RUNS})", [segment])[0][0]:
        return False
    store.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {RUN_RETURNED_TABLE} AS {RETURNED}", [segment, segment]
    )
    return bool(store.rows(f"SELECT count(*) FROM {RUN_RETURNED_TABLE}")[0][0])


#: The runs of a segment's open holds (its parameter: the segment).
OPEN_HOLD_RUNS = f"SELECT run_id FROM {S}.holds WHERE segment = ? AND confirmed_at IS NULL"
#: The persons of ``run_entered`` entering a segment whose last exit was held by a hold still
#: open (its parameters: the segment, twice).
RETURNED = f"""
    SELECT e.person_id FROM {RUN_ENTERED_VIEW} AS e
    WHERE e.segment = ? AND (
        SELECT max(t.run_id) FROM {S}.transitions AS t
        WHERE t.segment = e.segment AND t.person_id = e.person_id AND t.kind = 'exit'
    ) IN ({OPEN_HOLD_RUNS})"""


def _queue_action(
    store: StateStore,
    run_id: int,
    as_of: datetime,
    segment: str,
    transition: str,
    prefix: str,
    action: Action,
    source: str,
    status: str,
    created: datetime,
    spared: bool = False,
) -> int:
    """Queue ``action`` for the persons of ``segment`` in the view ``source``, each keyed by
    ``prefix`` and their person id (a tag is set at once); how many. ``spared``: not for the
    persons of :data:`RUN_RETURNED_TABLE` (their held exit was canceled)."""
    where = f"FROM {source} WHERE segment = {literal(segment)}"
    if spared:
        where += f" AND person_id NOT IN (SELECT person_id FROM {RUN_RETURNED_TABLE})"
    if action.kind == "tag":
        settings = action.settings
        value = settings.get("value")
        store.con.execute(
            f"""INSERT OR REPLACE INTO {S}.tags
                SELECT person_id, ?, ?, ?, ? {where}""",
            [str(settings["name"]), None if value is None else str(value), as_of, run_id],
        )
        return 0
    next_attempt = created + action.delay if action.delay else None
    before = store.rows(f"SELECT count(*) {where}")[0][0]
    store.con.execute(
        f"""INSERT INTO {S}.outbox (id, run_id, segment, person_id, kind, destination,
            transition, spec, idempotency_key, status, next_attempt_at, created_at)
            SELECT nextval('{S}.outbox_ids'), ?, ?, person_id, ?, ?, ?, ?,
                   ? || person_id, ?, ?, ? {where}""",
        [
            run_id,
            segment,
            action.kind,
            action.destination,
            transition,
            action.options,
            prefix,
            status,
            next_attempt,
            created,
        ],
    )
    return int(before)
