"""What a run would send, per segment and destination (``segctl run --dry-run``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segctl.delivery import queries
from segctl.delivery.outbox import exits_held
from segctl.delivery.platforms.base import MINIMUM_SIZE
from segctl.diff import Change
from segctl.state import S
from segctl.tempnames import MEMBERS_VIEW, PLAN_SYNCED_TABLE

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
    kind: str  # webhook | email | tag | emit | audience
    adds: int = 0  # audience adds, or persons entering
    removes: int = 0  # audience removes, or persons exiting
    #: What an action sends (webhook requests, a batch a request; emails; python calls; tags
    #: or emitted rows); an audience's adds and removes are its own figures, 0 here.
    messages: int = 0
    held: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        entered = change.entered if (not change.first_run or fire_initial) else 0
        for transition, actions, count in (
            ("enter", segment.on_enter, entered),
            ("exit", segment.on_exit, change.exited),
        ):
            for action in actions:
                row = PlanRow(
                    name,
                    action.destination or _local(action.kind, action.settings),
                    action.kind,
                    held=held and transition == "exit",
                )
                if transition == "enter":
                    row.adds = count
                else:
                    row.removes = count
                row.messages = -(-count // int(action.settings.get("batch") or 1))
                rows.append(row)
        for audience in segment.audiences:
            desired = _count(con, name, reachable, exp.not_(exp.paren(forgotten)))
            synced = (
                queries.synced_persons(store, audience.destination, audience.audience_id)
                if store is not None
                else set()
            )
            if synced:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {PLAN_SYNCED_TABLE} AS "
                    "SELECT unnest(?) AS person_id",
                    [sorted(synced)],
                )
                in_synced = exp.column("person_id", "r").isin(
                    query=exp.select("person_id").from_(PLAN_SYNCED_TABLE)
                )
                both = _count(con, name, reachable, in_synced)
            else:
                both = 0
            destination = destinations[audience.destination]
            row = PlanRow(
                name,
                audience.destination,
                "audience",
                adds=int(desired - both),
                removes=len(synced) - int(both),
                held=held,
            )
            minimum = MINIMUM_SIZE.get(destination.type)
            if minimum and desired < minimum:
                row.warnings.append(
                    f"{destination.type} audience {audience.audience_id} would hold {desired} "
                    f"people, below the platform's minimum of {minimum}"
                )
            rows.append(row)
    return rows


def _count(con: duckdb.DuckDBPyConnection, segment: str, *conditions: exp.Expr) -> int:
    """Members of ``segment`` in the staged evaluation (``r``) whose persons (``p``) meet
    the conditions."""
    query = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(exp.table_(MEMBERS_VIEW, alias="r"))
        .join(exp.table_("persons", alias="p"), using=["person_id"])
        .where(exp.and_(exp.column(segment, "r", quoted=True), *conditions))
    )
    return int(con.execute(query.sql(dialect="duckdb")).fetchall()[0][0])


def _local(kind: str, settings: dict[str, Any]) -> str:
    """What a destination-less action delivers to (the plan's destination column)."""
    if kind == "python":
        return f"python {settings.get('function')}"
    return {"tag": "tags", "emit": "emitted events"}.get(kind, kind)
