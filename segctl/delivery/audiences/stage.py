"""Staging one audience sync: what is desired, what is synced and what is in doubt, read from
the state in one go under the store's lock.

``desired``, ``doubt`` and ``synced`` are temp tables of the connection, shared by every sync:
they are made and read in one go, and nothing after uses them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segctl.delivery import queries
from segctl.delivery.audiences.journal import Journal
from segctl.delivery.identifiers import PLATFORMS, bulk_hash_sql
from segctl.delivery.model import Reachability
from segctl.delivery.platforms.base import AudienceClient
from segctl.engine.duckdb import fetch_arrow
from segctl.state import S, StateStore

if TYPE_CHECKING:
    import pyarrow as pa

#: Member.identifiers of a hashed identity, as SQL over the columns of bulk_hash_sql (hex
#: digests need no escaping: the same text as json.dumps gives).
IDENTIFIERS_SQL = """'{"email": ' || coalesce('"' || email_sha256 || '"', 'null')
    || ', "phone": ' || coalesce('"' || phone_sha256 || '"', 'null') || '}'"""


@dataclass(frozen=True)
class Staged:
    """What one sync read from the state before sending anything."""

    in_doubt: list[list[str]]  # (person id, identifiers) from interrupted syncs
    held: bool  # a hold of the segment is open: removals wait
    replace: bool  # send the whole audience (a file)
    #: replace: desired, synced and kept rows; otherwise: adds and removes. Each row of
    #: ``desired`` (or of adds) is person_id, and for an ad platform the hashes and identifiers.
    rows: list[list[tuple[Any, ...]]]
    #: Not a replace: the identifiers (:data:`SHARED_KEYS`) of the removals that a synced
    #: member who stays holds too (two persons with one phone): a removal must not send them.
    staying: frozenset[str] = frozenset()


#: The identifiers of a stored member that persons can share, and that a removal sends: the
#: hashes of an ad platform, the email of a Resend contact.
SHARED_KEYS = ("email", "phone")


@dataclass(frozen=True)
class Audience:
    """One audience of one destination, fed by one segment, and how its persons are read."""

    destination: str
    audience: str
    segment: str
    mode: str
    reachability: Reachability
    person_columns: Collection[str]


def stage(
    store: StateStore,
    target: Audience,
    client: AudienceClient,
    journal: Journal,
) -> Staged:
    """Read the difference of one audience (under the store's lock; the Arrow tables become
    Python rows after it, since that needs the GIL the other syncs share)."""
    con = store.con
    with store.lock:
        _stage_desired(store, target, client.platform)
        in_doubt = journal.in_doubt()
        con.execute("CREATE OR REPLACE TEMP TABLE doubt (person_id VARCHAR, identifiers VARCHAR)")
        store.executemany("INSERT INTO doubt VALUES (?, ?)", in_doubt)
        # Persons in doubt count as not synced: added again if desired, removed otherwise.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE synced AS SELECT person_id, identifiers
                FROM {S}.audience_members WHERE destination = ? AND audience = ?
                AND person_id NOT IN (SELECT person_id FROM doubt)""",
            [target.destination, target.audience],
        )
        held = queries.segment_held(store, target.segment)
        # A file can only be written whole. Elsewhere every mode adds and removes: mirror
        # too removes only what segctl added (a platform's replace would drop the members
        # someone else put in the audience).
        replace = client.always_replace
        if replace:
            sqls = [
                "SELECT * FROM desired ORDER BY person_id",
                "SELECT person_id, identifiers FROM synced",
                # With a hold open, those who would leave stay in the audience.
                "SELECT person_id, identifiers FROM synced WHERE person_id NOT IN "
                f"(SELECT person_id FROM desired) AND {held} ORDER BY person_id",
            ]
        else:
            sqls = [
                "SELECT * FROM desired WHERE person_id NOT IN (SELECT person_id FROM "
                "synced) ORDER BY person_id",
                "SELECT person_id, identifiers FROM (SELECT * FROM synced UNION ALL SELECT "
                "* FROM doubt) WHERE person_id NOT IN (SELECT person_id FROM desired) "
                "ORDER BY person_id",
            ]
        tables = [fetch_arrow(con.sql(sql)) for sql in sqls]
        staying = frozenset() if replace else _staying(store)
    return Staged(in_doubt, held, replace, [_tuples(table) for table in tables], staying)


def _staying(store: StateStore) -> frozenset[str]:
    """The identifiers that both a synced member who stays and a person to remove hold."""
    keys = ", ".join(f"json_extract_string(identifiers, '$.{k}')" for k in SHARED_KEYS)
    leaving = (
        f"SELECT unnest([{keys}]) AS k FROM (SELECT * FROM synced UNION ALL SELECT * FROM doubt) "
        "WHERE person_id NOT IN (SELECT person_id FROM desired)"
    )
    rows = store.rows(
        f"SELECT DISTINCT k FROM (SELECT unnest([{keys}]) AS k FROM synced "
        "WHERE person_id IN (SELECT person_id FROM desired)) "
        f"WHERE k IS NOT NULL AND k IN ({leaving})"
    )
    return frozenset(str(k) for (k,) in rows)


def _stage_desired(store: StateStore, target: Audience, platform: str) -> None:
    """The temp table ``desired``: person_id, and for an ad platform the columns of
    :func:`bulk_hash_sql` (DuckDB hashes while it selects: no second pass)."""
    member = store.member_test(target.segment, "s")
    if member is not None:
        reachable = exp.paren(target.reachability.condition("p")).sql(dialect="duckdb")
        source = f"{S}.snapshot s JOIN persons p USING (person_id) WHERE {member} AND {reachable}"
    else:
        source = "persons p WHERE false"
    query = desired_sql(source, platform, target.person_columns)
    store.con.execute(f"CREATE OR REPLACE TEMP TABLE desired AS {query}")


def desired_sql(source: str, platform: str, person_columns: Collection[str]) -> str:
    """The rows of ``desired`` from ``source`` (``FROM`` text whose persons are ``p``): the
    person_id, and for an ad platform the columns of :func:`bulk_hash_sql` and the
    identifiers."""
    if platform not in PLATFORMS:
        return f"SELECT p.person_id FROM {source}"
    hashed = bulk_hash_sql(platform, person_columns, source)
    return f"SELECT *, {IDENTIFIERS_SQL} AS identifiers FROM ({hashed})"


def _tuples(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow table."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))
