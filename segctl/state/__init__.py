"""The state: an embedded DuckDB database in the state folder (SPEC section 5).

- :mod:`~segctl.state.schema`: the tables, as migrations;
- :mod:`~segctl.state.store`: :class:`StateStore`, opening, locking and committing a run;
- :mod:`~segctl.state.queries`: the reads of the committed history (memberships, figures);
- :mod:`~segctl.state.history`: a person's history in one segment (``segctl explain``);
- :mod:`~segctl.state.erasure`: removing a person's history, or every run.
"""

from segctl.state.queries import SNAPSHOT_TABLE, intervals_sql, members_at_sql
from segctl.state.schema import DB_FILE, MIGRATIONS, SCHEMA_VERSION, S
from segctl.state.store import Run, StateStore

__all__ = [
    "DB_FILE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SNAPSHOT_TABLE",
    "Run",
    "S",
    "StateStore",
    "intervals_sql",
    "members_at_sql",
]
