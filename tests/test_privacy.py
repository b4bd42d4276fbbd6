"""The privacy rule (segctl.privacy) on its own: a persons view, a consent column and a
suppression file, without a project."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from segctl.config import Config
from segctl.errors import DataError, DefinitionError
from segctl.privacy import Reachability


class Driver:
    """The two things the rule asks of an engine."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute(
            "CREATE VIEW persons AS SELECT * FROM (VALUES "
            "('p1', 'A@x.com ', 'yes'), ('p2', 'b@x.com', 'no'), ('p3', 'c@x.com', ' TRUE '), "
            "('p4', NULL, NULL)) AS t(person_id, email, opt_in)"
        )

    def describe(self, source: exp.Expr, table: str) -> list[tuple[str, str]]:
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {source.sql(dialect='duckdb')}")
        return [(str(r[0]), str(r[1])) for r in rows.fetchall()]


def rule(
    tmp_path: Path, consent_column: str | None = None, suppression_file: Path | None = None
) -> Reachability:
    config = Config(tmp_path, {}, {}, tmp_path / "segments", None, tmp_path / ".segctl")
    config = replace(config, consent_column=consent_column, suppression_file=suppression_file)
    return Reachability(config, Driver(), ["person_id", "email", "opt_in"])


def everyone(reachability: Reachability) -> set[str]:
    return reachability.reachable(["p1", "p2", "p3", "p4", "nobody"])


def test_without_settings_everyone_known_is_reachable(tmp_path: Path) -> None:
    reachability = rule(tmp_path)
    assert reachability.condition("p").sql(dialect="duckdb") == "TRUE"
    assert everyone(reachability) == {"p1", "p2", "p3", "p4"}
    assert reachability.reachable([]) == set()


def test_consent_column_and_suppression_file(tmp_path: Path) -> None:
    (tmp_path / "suppressed.csv").write_text("email\n a@x.COM\n", encoding="utf-8")
    assert everyone(rule(tmp_path, consent_column="opt_in")) == {"p1", "p3"}
    suppressed = rule(tmp_path, suppression_file=tmp_path / "suppressed.csv")
    assert everyone(suppressed) == {"p2", "p3", "p4"}
    both = rule(tmp_path, consent_column="opt_in", suppression_file=tmp_path / "suppressed.csv")
    assert everyone(both) == {"p3"}


def test_the_condition_is_a_tree_over_any_alias(tmp_path: Path) -> None:
    (tmp_path / "suppressed.csv").write_text("person_id\np2\n", encoding="utf-8")
    reachability = rule(tmp_path, suppression_file=tmp_path / "suppressed.csv")
    condition = reachability.condition("q")
    assert isinstance(condition, exp.Expr)
    assert {c.table for c in condition.find_all(exp.Column) if c.table} == {"q"}
    query = f"SELECT q.person_id FROM persons q WHERE {condition.sql(dialect='duckdb')}"
    ids = {r[0] for r in reachability.driver.con.execute(query).fetchall()}
    assert ids == {"p1", "p3", "p4"}


def test_unknown_consent_column_and_missing_or_keyless_suppression_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="'opt' is not a column of the persons data"):
        rule(tmp_path, consent_column="opt").condition()
    with pytest.raises(DataError, match="file not found"):
        rule(tmp_path, suppression_file=tmp_path / "missing.csv").condition()
    (tmp_path / "who.csv").write_text("who\np1\n", encoding="utf-8")
    with pytest.raises(DataError, match="needs a person_id or email column"):
        rule(tmp_path, suppression_file=tmp_path / "who.csv").condition()
