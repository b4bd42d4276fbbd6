"""The state: an embedded DuckDB database in the state folder (SPEC section 5).

- :mod:`~segctl.state.schema`: the tables, as migrations;
- :mod:`~segctl.state.store`: :class:`StateStore`, opening, locking and committing a run;
- :mod:`~segctl.state.queries`: reusable queries over the state tables;
- :mod:`~segctl.state.history`: a person's history in one segment (``segctl explain``).
"""

from segctl.state.queries import intervals_sql, members_at_sql
from segctl.state.schema import DB_FILE, MIGRATIONS, SCHEMA_VERSION, S
from segctl.state.store import Run, StateStore

__all__ = [
    "DB_FILE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Run",
    "S",
    "StateStore",
    "intervals_sql",
    "members_at_sql",
]
