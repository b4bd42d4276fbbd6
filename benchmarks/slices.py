"""What a wake-up time per group of segments would let a run read (docs/realtime.md,
"What would reach 10x").

    python -m benchmarks.slices --persons 1000000 --events 50000000 [--hours 24]

An incremental run re-evaluates every segment of each woken person from their whole history.
Kept per group of segments instead (the groups: the segments linked by references, which
must be evaluated together), a person's wake-up time would wake only their group's
segments, and that group's plan reads only the rows its conditions can read (its event
names, after its longest window, as the compiler's own filter of the events says). For a
last run at ``--as-of`` (by default the first run of ``benchmarks/realtime.py``) and
``--hours`` later, with the benchmark's 27 segments, this prints per group: its segments,
how long its wake-up times take over everyone (:func:`segctl.wakeup.wake_sql` over the
group alone), the persons they wake, and the rows its plan would read for them; then the
persons woken by the whole catalogue's times and their whole histories (what a run reads
today), against the sum over the groups.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlglot import exp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.generate import ensure_data  # noqa: E402
from benchmarks.realtime import first_as_of  # noqa: E402
from benchmarks.strips import arguments, catalogue_project  # noqa: E402
from segctl import Project, wakeup  # noqa: E402
from segctl.compiler import Plan  # noqa: E402
from segctl.definitions.loader import Definitions  # noqa: E402
from segctl.definitions.model import ColumnType, SegmentCondition, segment_conditions  # noqa: E402


def groups(definitions: Definitions) -> list[list[str]]:
    """The segments linked by references (directly or not), each group in the catalogue's
    order."""
    segments = definitions.segments
    parent = {name: name for name in segments}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name, segment in segments.items():
        for condition in segment_conditions(segment):
            if isinstance(condition, SegmentCondition):
                parent[root(name)] = root(condition.segment)
    found: dict[str, list[str]] = {}
    for name in segments:
        found.setdefault(root(name), []).append(name)
    return list(found.values())


def events_filter(project: Project, names: list[str], as_of: datetime) -> str | None:
    """The WHERE of the plan's read of the events for the segments ``names`` (None: their
    plan reads no events)."""
    query = Plan(project.definitions, project.plan_context(names, as_of)).segments_query(names)
    for select in query.find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        table = source.this if source is not None else None
        if isinstance(table, (exp.Table, exp.Identifier)) and table.name == "events":
            where = select.args.get("where")
            return where.this.sql("duckdb") if where is not None else "TRUE"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--hours", type=float, default=24.0, help="the step after the last run")
    options = parser.parse_args(argv)

    data = ensure_data(options.persons, options.events)
    last = (options.as_of or first_as_of()).replace(tzinfo=None)  # naive UTC, as a run's
    later = last + timedelta(hours=options.hours)
    with catalogue_project(data, 27) as project:
        definitions = project.definitions
        schema = project.schema
        con = project.engine.driver.con
        stamps = {c for t in schema.values() for c, k in t.items() if k is ColumnType.TIMESTAMP}
        events = schema.get("events", {})
        print(f"the last run at {last:%Y-%m-%d %H:%M} UTC, the next {options.hours:g} h later")
        con.execute("CREATE TEMP TABLE woken (person_id VARCHAR, k INTEGER)")
        total_rows, total_seconds = 0, 0.0
        for k, names in enumerate(groups(definitions)):
            part = Definitions({n: definitions.segments[n] for n in names}, definitions.features)
            sql = wakeup.wake_sql(schema, wakeup.catalogue(part, stamps, events), last, "UTC", None)
            started = time.perf_counter()
            woke = f"SELECT person_id, {k} FROM ({sql}) WHERE wake <= ?"
            con.execute(f"INSERT INTO woken {woke}", [later])
            seconds = time.perf_counter() - started
            total_seconds += seconds
            [(persons,)] = con.execute(f"SELECT count(*) FROM woken WHERE k = {k}").fetchall()
            where = events_filter(project, names, last)
            rows = 0
            if where is not None and persons:
                [(rows,)] = con.execute(
                    f"SELECT count(*) FROM events WHERE ({where}) "
                    f"AND person_id IN (SELECT person_id FROM woken WHERE k = {k})"
                ).fetchall()
            total_rows += rows
            print(
                f"{', '.join(names)[:64]:64} wake-up times {seconds:5.2f} s, "
                f"woken {persons:8,}, rows {rows:10,}"
            )
        whole = wakeup.wake_sql(
            schema, wakeup.catalogue(definitions, stamps, events), last, "UTC", None
        )
        started = time.perf_counter()
        woke = f"SELECT person_id FROM ({whole}) WHERE wake <= ?"
        con.execute(f"CREATE TEMP TABLE everyone AS {woke}", [later])
        seconds = time.perf_counter() - started
        [(persons, rows)] = con.execute(
            "SELECT count(DISTINCT person_id), count(*) FROM events "
            "WHERE person_id IN (SELECT person_id FROM everyone)"
        ).fetchall()
        print(
            f"the whole catalogue's wake-up times {seconds:.2f} s "
            f"(the groups' {total_seconds:.2f} s): "
            f"{persons:,} woken persons with events, their histories {rows:,} rows; "
            f"the groups' rows {total_rows:,} ({rows / max(total_rows, 1):.1f}x fewer)"
        )


if __name__ == "__main__":
    main()
