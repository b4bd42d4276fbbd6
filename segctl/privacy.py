"""Who may be messaged or uploaded (SPEC 1, privacy), as sqlglot trees.

A person is reachable when the ``privacy.consent_column`` of their persons row says yes (when
one is configured) and neither their person id nor their (trimmed, lower-cased) email is in the
``privacy.suppression_file`` (when one is configured). :class:`Reachability` gives the rule as a
condition over a persons alias, for the delivery queries to embed, and answers it for a batch of
person ids. Both run on the DuckDB connection that holds the persons view, whatever the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import duckdb
from sqlglot import exp

from segctl.config import Config
from segctl.errors import DataError, DefinitionError
from segctl.sources.sql import list_reader
from segctl.tempnames import SUPPRESSED_VIEW

__all__ = ["YES", "Driver", "Reachability"]

#: The consent column's values that mean yes (compared trimmed and lower-cased).
YES = ("true", "1", "yes", "y", "t")


class Driver(Protocol):
    """What the rule needs of an engine: its DuckDB connection (the persons view) and a way to
    read the columns of a file reader with its errors named."""

    con: duckdb.DuckDBPyConnection

    def describe(self, source: exp.Expr, table: str) -> list[tuple[str, str]]: ...


class Reachability:
    """The privacy rule of one project.

    Args:
        config: the project's configuration (``privacy:`` settings, paths shown in errors).
        driver: the engine whose connection holds the ``persons`` view.
        persons: the columns of the persons view.

    >>> rule = project.reachability  # doctest: +SKIP
    >>> rule.condition("p").sql(dialect="duckdb")  # doctest: +SKIP
    'COALESCE(LOWER(TRIM(CAST("p"."opt_in" AS TEXT))) IN (\'true\', \'1\', ...), FALSE)'
    """

    def __init__(self, config: Config, driver: Driver, persons: Sequence[str]) -> None:
        self.config = config
        self.driver = driver
        self.persons = list(persons)

    def condition(self, alias: str = "p") -> exp.Expr:
        """True for the persons row ``alias`` when it may be messaged or uploaded.

        Checks the settings each time: DefinitionError for a consent column that is not in the
        persons data, DataError for a suppression file that is missing or has no key column.
        """
        parts: list[exp.Expr] = []
        consent = self.config.consent_column
        if consent:
            if consent not in self.persons:
                raise DefinitionError(
                    f"privacy.consent_column: '{consent}' is not a column of the persons data "
                    f"(columns are: {', '.join(self.persons)})"
                )
            value = _normalised(exp.cast(_column(consent, alias), "VARCHAR"))
            yes = value.isin(*(exp.Literal.string(v) for v in YES))
            parts.append(exp.func("COALESCE", yes, exp.false()))
        table = self._suppression_view()
        if table:
            keys = exp.select("key").from_(table)
            suppressed: exp.Expr = _column("person_id", alias).isin(query=keys)
            if "email" in self.persons:
                email = _normalised(_column("email", alias)).isin(query=keys.copy())
                suppressed = exp.or_(suppressed, email)
            parts.append(exp.not_(exp.func("COALESCE", suppressed, exp.false())))
        return exp.and_(*parts) if parts else exp.true()

    def reachable(self, person_ids: list[str]) -> set[str]:
        """Which of these persons may be emailed or uploaded."""
        if not person_ids:
            return set()
        ids = exp.select(exp.Unnest(expressions=[exp.cast(exp.Placeholder(), "VARCHAR[]")]))
        query = (
            exp.select(_column("person_id", "p"))
            .from_(exp.alias_(exp.to_table("persons"), "p"))
            .where(_column("person_id", "p").isin(query=ids))
            .where(self.condition("p"))
        )
        rows = self.driver.con.execute(query.sql(dialect="duckdb"), [person_ids]).fetchall()
        return {r[0] for r in rows}

    def _suppression_view(self) -> str | None:
        """The suppression file's keys as a temp view (person ids as text, emails trimmed and
        lower-cased), or None without one."""
        path = self.config.suppression_file
        if path is None:
            return None
        shown = self.config.display(path)
        if not path.is_file():
            raise DataError(f"privacy.suppression_file: file not found: {shown}")
        reader = list_reader(str(path))
        try:
            columns = [c for c, _ in self.driver.describe(reader, "lists")]
        except DataError as exc:  # name the file: the reader's error does not
            raise DataError(f"{shown}: {exc}") from None
        selects = [
            exp.select(exp.alias_(_key(k), "key")).from_(reader.copy())
            for k in ("person_id", "email")
            if k in columns
        ]
        if not selects:
            raise DataError(f"{shown}: a suppression file needs a person_id or email column")
        union: exp.Query = selects[0]
        for select in selects[1:]:
            union = exp.union(union, select, distinct=True)
        view = exp.Create(
            this=exp.to_table(SUPPRESSED_VIEW),
            kind="VIEW",
            replace=True,
            expression=union,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        )
        self.driver.con.execute(view.sql(dialect="duckdb"))
        return SUPPRESSED_VIEW


def _column(name: str, alias: str) -> exp.Column:
    return exp.column(name, table=alias, quoted=True)


def _normalised(value: exp.Expr) -> exp.Expr:
    return exp.Lower(this=exp.Trim(this=value))


def _key(column: str) -> exp.Expr:
    text = exp.cast(exp.column(column, quoted=True), "VARCHAR")
    return _normalised(text) if column == "email" else text
