"""Reusable queries over the state tables (membership at a run, membership intervals)."""

from __future__ import annotations

from segctl.state.schema import S


def members_at_sql(run_param: str = "?") -> str:
    """SQL selecting (segment, person_id) of the members as of a committed run: the pairs
    whose last transition at or before that run is an entry."""
    return (
        f"SELECT segment, person_id FROM {S}.transitions WHERE run_id <= {run_param} "
        "GROUP BY segment, person_id HAVING arg_max(kind, run_id) = 'enter'"
    )


def intervals_sql(where: str = "true") -> str:
    """SQL of membership history as intervals: (segment, person_id, entered_at, exited_at,
    entered_run, exited_run), one row per stay; ``where`` filters transitions first."""
    return f"""
        SELECT t.segment, t.person_id, e.as_of AS entered_at, x.as_of AS exited_at,
               t.run_id AS entered_run, t.next_run AS exited_run
        FROM (
            SELECT segment, person_id, run_id, kind,
                   lead(run_id) OVER (PARTITION BY segment, person_id ORDER BY run_id)
                       AS next_run
            FROM {S}.transitions WHERE {where}
        ) AS t
        JOIN {S}.runs AS e ON e.run_id = t.run_id
        LEFT JOIN {S}.runs AS x ON x.run_id = t.next_run
        WHERE t.kind = 'enter'"""
