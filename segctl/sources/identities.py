"""Identity resolution: which person an anonymous id belongs to (SPEC 1, identities).

The links of all sources (``identities`` rows, event rows that carry both a person id and an
anonymous id) form one graph, whose links hold for all time: stitching is retroactive, so a
person's anonymous events from before the link count too. Person ids are never merged with
each other (a person id always stands for itself), so a person is where a path ends: an
anonymous id belongs to the person ids it is linked to. An anonymous id linked to several
person ids (a device shared by two accounts) is ambiguous: it goes to the first of them in sort
order, and the caller says how many there were.

It is resolved in SQL, where the links are: resolving a million links in Python and
inserting the map row by row took 30 s of a run at 200,000 persons (the row-by-row insert
nearly all of it), for a map DuckDB builds in a fraction of a second
(``benchmarks/identities.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segctl.tempnames import IDENTITY_LINKS

if TYPE_CHECKING:
    import duckdb


def resolve(con: duckdb.DuckDBPyConnection, links: str, into: str) -> int:
    """Create the temp table ``into`` (id, person_id): each anonymous id of the links the
    query ``links`` selects (id, person_id) and the person it belongs to; the number of
    ambiguous ids. Ids and person ids compare as text, as the views' ids do."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {IDENTITY_LINKS} AS SELECT DISTINCT "
        f"CAST(id AS VARCHAR) AS id, CAST(person_id AS VARCHAR) AS person_id FROM ({links})"
    )
    anonymous = (
        f"FROM {IDENTITY_LINKS} WHERE id NOT IN (SELECT person_id FROM {IDENTITY_LINKS}) "
        "GROUP BY id"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {into} AS "
        f"SELECT id, min(person_id) AS person_id {anonymous} ORDER BY id"
    )
    [(ambiguous,)] = con.execute(
        f"SELECT count(*) FROM (SELECT id {anonymous} HAVING count(*) > 1)"
    ).fetchall()
    con.execute(f"DROP TABLE {IDENTITY_LINKS}")
    return int(ambiguous)
