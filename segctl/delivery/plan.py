"""What a run would send, per segment and destination (``segctl run --dry-run``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segctl.delivery import queries
from segctl.delivery.audiences.plan import Persons, plan_members
from segctl.delivery.audiences.result import SyncResult
from segctl.delivery.audiences.stage import desired_sql, digested
from segctl.delivery.outbox import OPEN_HOLD_RUNS, RETURNED, exits_held, hold_reason
from segctl.delivery.platforms import client_for
from segctl.delivery.platforms.base import MINIMUM_SIZE
from segctl.delivery.resend import why_not_sent
from segctl.diff import Change
from segctl.state import S
from segctl.tempnames import (
    MEMBERS_VIEW,
    PLAN_SYNCED_TABLE,
    RUN_ENTERED_VIEW,
    RUN_EXITED_VIEW,
)

if TYPE_CHECKING:
    import duckdb

    from segctl.definitions.destinations import Destination
    from segctl.definitions.model import Segment
    from segctl.delivery.model import Reachability
    from segctl.state import StateStore


@dataclass
class PlanRow:
    segment: str
    destination: str  # a destination name, or "tags"/"emitted events" for local actions
    kind: str  # webhook | email | tag | emit | python | audience
    #: An action's transition (``enter``: on_enter, ``exit``: on_exit); an audience's mode.
    on: str = ""
    adds: int = 0  # audience adds, or persons entering
    removes: int = 0  # audience removes, or persons exiting
    #: What an action sends (webhook requests, a batch a request; emails; python calls; tags
    #: or emitted rows); an audience's adds and removes are its own figures, 0 here.
    messages: int = 0
    #: An audience's members with no identifier the platform takes: not added (the sync
    #: counts them as skipped); an email's persons with no valid address, no consent or
    #: suppressed: not sent (a push skips them).
    skipped: int = 0
    held: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _back(store: StateStore, segment: str) -> int:
    """The persons entering ``segment`` whose held exit the run will cancel, as it does."""
    if not store.rows(f"SELECT count(*) FROM ({OPEN_HOLD_RUNS})", [segment])[0][0]:
        return 0
    return int(store.rows(f"SELECT count(*) FROM ({RETURNED})", [segment, segment])[0][0])


def initial_unfired(change: Change, segment: Segment, fire_initial: bool) -> str:
    """What a segment's first run does not fire (SPEC 5: its members enter without their
    on_enter actions unless ``--fire-initial``), said; "" when it fires them or has none."""
    if not change.first_run or fire_initial or not change.entered or not segment.on_enter:
        return ""
    return (
        f"the segment's first run: its {change.entered:,} member(s) entered without its "
        "on_enter actions (run with --fire-initial to fire them)"
    )


def plan_run(
    con: duckdb.DuckDBPyConnection,
    store: StateStore | None,
    changes: dict[str, Change],
    *,
    segments: Mapping[str, Segment],
    destinations: Mapping[str, Destination],
    reachability: Reachability,
    max_exit_ratio: float,
    fire_initial: bool = False,
) -> list[PlanRow]:
    """The plan of a run from the staged evaluation (nothing is written).

    ``con`` holds the evaluation's members view and the persons view; ``store`` is the state
    (None before the first run).
    """
    rows: list[PlanRow] = []
    reachable = reachability.condition("p")
    people = _people(con)
    person_columns = [str(d[0]) for d in con.execute("SELECT * FROM persons LIMIT 0").description]
    forgotten: exp.Expr = (
        exp.func("sha256", exp.column("person_id", "r")).isin(
            query=exp.select("subject_hash").from_(exp.table_("forgotten", db=S))
        )
        if store
        else exp.false()
    )
    for name, change in changes.items():
        segment = segments[name]
        held = exits_held(
            change,
            max_exit_ratio,
            holdable=bool(segment.on_exit or segment.audiences),
        )
        holding = (  # said by the dry run as the run says it (SPEC 5)
            f"{hold_reason(change, max_exit_ratio)}: the run holds their exit actions and "
            f"audience removals until segctl push --confirm {name}"
            if held
            else ""
        )
        entered = change.entered if (not change.first_run or fire_initial) else 0
        unfired = initial_unfired(change, segment, fire_initial)
        back = _back(store, name) if store is not None and entered else 0
        for transition, actions, fired in (
            ("enter", segment.on_enter, entered),
            ("exit", segment.on_exit, change.exited),
        ):
            for action in actions:
                # Back before their held exit was confirmed: no action fires (but a tag).
                count = fired - back if transition == "enter" and action.kind != "tag" else fired
                row = PlanRow(
                    name,
                    action.destination or _local(action.kind, action.settings),
                    action.kind,
                    transition,
                    held=held and transition == "exit",
                )
                if transition == "enter":
                    row.adds = count
                    row.warnings += [unfired] if unfired else []
                else:
                    row.removes = count
                    row.warnings += [holding] if holding else []
                if action.kind == "email" and count:
                    view = RUN_ENTERED_VIEW if transition == "enter" else RUN_EXITED_VIEW
                    reached = _emailable(con, view, name, reachable, person_columns)
                    row.skipped = count - reached
                row.messages = -(-(count - row.skipped) // int(action.settings.get("batch") or 1))
                rows.append(row)
        for audience in segment.audiences:
            destination = destinations[audience.destination]
            synced = (
                queries.synced_persons(store, audience.destination, audience.audience_id)
                if store is not None
                else {}
            )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {PLAN_SYNCED_TABLE} AS "
                "SELECT unnest(?::VARCHAR[]) AS person_id, unnest(?::VARCHAR[]) AS source",
                [list(synced), list(synced.values())],
            )
            in_synced = exp.column("person_id", "r").isin(
                query=exp.select("person_id").from_(PLAN_SYNCED_TABLE)
            )
            both = _count(con, name, reachable, in_synced) if synced else 0
            # The persons to add as the sync reads them: members it can reach, not synced
            # yet or synced with identifiers made of other values (an ad platform's, a Resend
            # contact's), with an identifier the platform takes (the others are skipped).
            source = _members(name, reachable, exp.not_(exp.paren(forgotten)))
            skipped = SyncResult(audience.destination, audience.audience_id, name)
            client = client_for(destination, None)
            digest = digested(client)
            try:
                query = desired_sql(source, client.platform, person_columns, digest=digest)
                exclude, changed = " EXCLUDE (source)", "s.source IS DISTINCT FROM d.source"
                if not digest:
                    exclude, changed = "", "false"
                wanted = (
                    f"SELECT d.*{exclude} FROM ({query}) AS d "
                    f"LEFT JOIN {PLAN_SYNCED_TABLE} AS s USING (person_id) "
                    f"WHERE s.person_id IS NULL OR (s.source IS NOT NULL AND {changed})"
                )
                found = con.execute(wanted).fetchall()
                adds = len(plan_members(client, found, skipped, people))
                again = sum(p in synced for p, *_ in found)  # changed: added again
            finally:
                client.close()
            row = PlanRow(
                name,
                audience.destination,
                "audience",
                audience.mode,
                adds=adds,
                removes=len(synced) - int(both) + again,
                skipped=skipped.skipped,
                held=held,
                warnings=[holding] if holding else [],
            )
            minimum = MINIMUM_SIZE.get(destination.type)
            if minimum and both + adds - again < minimum:
                row.warnings.append(
                    f"{destination.type} audience {audience.audience_id} would hold "
                    f"{both + adds - again} people, below the platform's minimum of {minimum}"
                )
            rows.append(row)
    return rows


def _members(segment: str, *conditions: exp.Expr) -> str:
    """``FROM`` text of the members of ``segment`` in the staged evaluation (``r``) whose
    persons (``p``) meet the conditions."""
    where = exp.and_(exp.column(segment, "r", quoted=True), *conditions).sql(dialect="duckdb")
    return f"{MEMBERS_VIEW} r JOIN persons p USING (person_id) WHERE {where}"


def _emailable(
    con: duckdb.DuckDBPyConnection,
    transitions: str,
    segment: str,
    reachable: exp.Expr,
    person_columns: list[str],
) -> int:
    """How many of the persons of ``segment`` in the view ``transitions`` an email reaches,
    by the rule a push applies (:func:`why_not_sent`)."""
    email = "p.email" if "email" in person_columns else "NULL"
    found = con.execute(
        f"SELECT {email}, coalesce({reachable.sql(dialect='duckdb')}, false) "
        f"FROM {transitions} AS t LEFT JOIN persons AS p USING (person_id) WHERE t.segment = ?",
        [segment],
    ).fetchall()
    return sum(why_not_sent({"email": e}, bool(ok)) is None for e, ok in found)


def _count(con: duckdb.DuckDBPyConnection, segment: str, *conditions: exp.Expr) -> int:
    """How many :func:`_members` there are."""
    found = con.execute(f"SELECT count(*) FROM {_members(segment, *conditions)}").fetchall()
    return int(found[0][0])


def _people(con: duckdb.DuckDBPyConnection) -> Persons:
    """Person columns by id, from the ``persons`` view (as a push reads them)."""

    def people(ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {p["person_id"]: p for p in queries.persons_of(con, sorted(set(ids)))}

    return people


def _local(kind: str, settings: dict[str, Any]) -> str:
    """What a destination-less action delivers to (the plan's destination column)."""
    if kind == "python":
        return f"python {settings.get('function')}"
    return {"tag": "tags", "emit": "emitted events"}.get(kind, kind)
