"""Small queries over a table of person ids that segctl materialised (a preview, the members
of a committed run): their count, and their rows with the persons' columns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

PERSONS = "persons"


def row_count(table: str) -> exp.Select:
    """``SELECT count(*) FROM table``."""
    return exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(table))


def with_persons(
    table: str, columns: Sequence[str], *, keep_unknown: bool = False, limit: int | None = None
) -> exp.Select:
    """The person ids of ``table`` with the persons' ``columns`` (person_id first), sorted by
    person id; ``keep_unknown`` keeps ids with no persons row (their columns NULL)."""

    def column(name: str, alias: str) -> exp.Column:
        return exp.column(name, table=alias, quoted=True)

    query = (
        exp.select(column("person_id", "m"), *(column(c, "p") for c in columns if c != "person_id"))
        .from_(exp.alias_(exp.to_table(table), "m"))
        .join(
            exp.alias_(exp.to_table(PERSONS), "p"),
            on=exp.EQ(this=column("person_id", "p"), expression=column("person_id", "m")),
            join_type="left" if keep_unknown else None,
        )
        .order_by(column("person_id", "m"))
    )
    return query.limit(int(limit)) if limit is not None else query


def newest(column: str, table: str = "events") -> exp.Select:
    """``SELECT max("column") FROM table``: the newest value of a timestamp column."""
    return exp.select(exp.Max(this=exp.column(column, quoted=True))).from_(exp.to_table(table))
