"""Staging one audience sync: what is desired, what is synced and what is in doubt, read from
the state in one go under the store's lock; and, for an ad platform or Resend, the members
who stay but whose identifiers are made of other values now (``audience_members.source``).

``desired``, ``doubt``, ``synced`` and ``changed`` are temp tables of the connection, shared
by every sync: they are made and read in one go, and nothing after uses them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segctl.delivery import queries
from segctl.delivery.audiences.journal import Journal
from segctl.delivery.identifiers import PLATFORMS, IdentityStats, bulk_hash_sql
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
    #: Members who stay but whose identifiers changed (see :func:`digested`): (person id, the
    #: identifiers sent for them), to remove; they are among the adds, with the new ones.
    changed: list[tuple[Any, ...]] = field(default_factory=list)
    #: The adds' digests of what their identifiers are made of (``audience_members.source``).
    sources: dict[str, str] = field(default_factory=dict)


#: The identifiers of a stored member that persons can share, and that a removal sends: the
#: hashes of an ad platform, the email of a Resend contact.
SHARED_KEYS = ("email", "phone")


def digested(client: AudienceClient) -> bool:
    """Whether an audience's members carry a digest of the values their identifiers are
    made of (``audience_members.source``), so that a member whose identifiers changed is
    sent again: an ad platform's (email, phone, country), a Resend contact's (its email).
    A file is written whole every time."""
    return client.platform in (*PLATFORMS, "resend") and not client.always_replace


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
    *,
    write: bool = True,
) -> Staged:
    """Read the difference of one audience (under the store's lock; the Arrow tables become
    Python rows after it, since that needs the GIL the other syncs share); ``write``: give
    the members synced before their digest was kept theirs (not in a dry run)."""
    con = store.con
    # A digest of what a member's identifiers are made of (`source`) tells a member whose
    # identifiers changed, whose old ones must go.
    digest = digested(client)
    with store.lock:
        _stage_desired(store, target, client.platform, digest)
        in_doubt = journal.in_doubt()
        con.execute("CREATE OR REPLACE TEMP TABLE doubt (person_id VARCHAR, identifiers VARCHAR)")
        store.executemany("INSERT INTO doubt VALUES (?, ?)", in_doubt)
        # Persons in doubt count as not synced: added again if desired, removed otherwise.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE synced AS SELECT person_id, identifiers, source
                FROM {S}.audience_members WHERE destination = ? AND audience = ?
                AND person_id NOT IN (SELECT person_id FROM doubt)""",
            [target.destination, target.audience],
        )
        if digest:
            _changed(store, target, write)
        else:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE changed (person_id VARCHAR, identifiers VARCHAR)"
            )
        held = queries.segment_held(store, target.segment)
        # A file can only be written whole. Elsewhere every mode adds and removes: mirror
        # too removes only what segctl added (a platform's replace would drop the members
        # someone else put in the audience).
        replace = client.always_replace
        columns = "* EXCLUDE (source)" if digest else "*"
        adds = (
            "FROM desired WHERE person_id NOT IN (SELECT person_id FROM synced) "
            "OR person_id IN (SELECT person_id FROM changed) ORDER BY person_id"
        )
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
                f"SELECT {columns} {adds}",
                f"SELECT person_id, identifiers FROM ({LEAVING}) ORDER BY person_id",
                "SELECT person_id, identifiers FROM changed ORDER BY person_id, identifiers",
            ]
            if digest:
                sqls.append(f"SELECT person_id, source {adds}")
        rows = [_tuples(fetch_arrow(con.sql(sql))) for sql in sqls]
        staying = frozenset() if replace else _staying(store)
    if replace:
        return Staged(in_doubt, held, replace, rows)
    sources = {str(pid): str(source) for pid, source in rows[3]} if digest else {}
    return Staged(in_doubt, held, replace, rows[:2], staying, rows[2], sources)


#: The persons to remove: synced (or in doubt) and no longer desired.
LEAVING = (
    "SELECT person_id, identifiers FROM (SELECT person_id, identifiers FROM synced UNION ALL "
    "SELECT person_id, identifiers FROM doubt) WHERE person_id NOT IN "
    "(SELECT person_id FROM desired)"
)


def _changed(store: StateStore, target: Audience, write: bool) -> None:
    """The temp table ``changed``: the members still desired whose identifiers are made of
    other values now, with the identifiers to take away (those on record, and a person in
    doubt's journalled ones). With ``write``, members synced before their digest was kept
    (state schema v9) are given it, as they are: their identifiers are those they were
    added with."""
    # Persons in doubt too: their identifiers on record, or in the journal, may still be on
    # the platform (a removal of old ones refused by an outage), and those no member keeps
    # must go.
    store.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE changed AS
            SELECT m.person_id, m.identifiers FROM {S}.audience_members AS m
            JOIN desired AS d USING (person_id)
            WHERE m.destination = ? AND m.audience = ?
              AND m.source IS NOT NULL AND m.source IS DISTINCT FROM d.source
            UNION SELECT person_id, identifiers FROM doubt
            WHERE person_id IN (SELECT person_id FROM desired)
              AND person_id NOT IN (SELECT person_id FROM {S}.audience_members
                                    WHERE destination = ? AND audience = ?
                                      AND identifiers = doubt.identifiers)""",
        [target.destination, target.audience] * 2,
    )
    if write and store.rows("SELECT count(*) FROM synced WHERE source IS NULL")[0][0]:
        with store.transaction():
            store.con.execute(
                f"""UPDATE {S}.audience_members AS m SET source = d.source FROM desired AS d
                    WHERE m.destination = ? AND m.audience = ? AND m.person_id = d.person_id
                    AND m.source IS NULL""",
                [target.destination, target.audience],
            )


def _staying(store: StateStore) -> frozenset[str]:
    """The identifiers that both a synced member who stays as they are and a person to
    remove (or a changed member's old identifiers) hold."""
    keys = ", ".join(f"json_extract_string(identifiers, '$.{k}')" for k in SHARED_KEYS)
    changed = "SELECT person_id FROM changed"
    removed = (
        f"SELECT unnest([{keys}]) AS k FROM ({LEAVING} UNION ALL "
        "SELECT person_id, identifiers FROM changed)"
    )
    rows = store.rows(
        f"SELECT DISTINCT k FROM (SELECT unnest([{keys}]) AS k FROM synced "
        f"WHERE person_id IN (SELECT person_id FROM desired) AND person_id NOT IN ({changed})) "
        f"WHERE k IS NOT NULL AND k IN ({removed})"
    )
    return frozenset(str(k) for (k,) in rows)


def person_change(
    store: StateStore, target: Audience, client: AudienceClient, journal: Journal, person_id: str
) -> str | None:
    """What the next sync of ``target`` does for one person, read as :func:`stage` and
    :func:`~.plan.changes` read it for everyone (nothing is written): ``add``, ``remove``,
    ``update`` (a member who stays with identifiers made of other values: sent again, the
    old ones removed) or None; ``skip`` for an add with no identifier the platform takes."""
    digest = digested(client)
    member = store.member_test(target.segment, "s")
    desired: list[tuple[Any, ...]] = []
    if member is not None:
        reachable = exp.paren(target.reachability.condition("p")).sql(dialect="duckdb")
        one = exp.Literal.string(person_id).sql(dialect="duckdb")
        source = (
            f"{S}.snapshot s JOIN persons p USING (person_id) "
            f"WHERE {member} AND {reachable} AND p.person_id = {one}"
        )
        query = desired_sql(source, client.platform, target.person_columns, digest=digest)
        desired = store.rows(query)
    doubt = any(pid == person_id for pid, _ in journal.in_doubt(merge=False))
    synced = store.rows(
        f"""SELECT source FROM {S}.audience_members
            WHERE destination = ? AND audience = ? AND person_id = ?""",
        [target.destination, target.audience, person_id],
    )
    if not desired:
        return "remove" if (synced or doubt) and target.mode != "add" else None
    if target.mode != "remove" and (doubt or not synced):
        usable = client.identity(queries.persons_of(store.con, [person_id])[0], IdentityStats())
        return "add" if usable is not None else "skip"
    old = synced[0][0] if synced and not doubt else None
    both_ways = target.mode not in ("add", "remove")
    return "update" if digest and both_ways and old not in (None, desired[0][-1]) else None


def _stage_desired(store: StateStore, target: Audience, platform: str, digest: bool) -> None:
    """The temp table ``desired``: person_id, and for an ad platform the columns of
    :func:`bulk_hash_sql` (DuckDB hashes while it selects: no second pass), with ``digest``
    its ``source`` last."""
    member = store.member_test(target.segment, "s")
    if member is not None:
        reachable = exp.paren(target.reachability.condition("p")).sql(dialect="duckdb")
        source = f"{S}.snapshot s JOIN persons p USING (person_id) WHERE {member} AND {reachable}"
    else:
        source = "persons p WHERE false"
    query = desired_sql(source, platform, target.person_columns, digest=digest)
    store.con.execute(f"CREATE OR REPLACE TEMP TABLE desired AS {query}")


def desired_sql(
    source: str, platform: str, person_columns: Collection[str], *, digest: bool = False
) -> str:
    """The rows of ``desired`` from ``source`` (``FROM`` text whose persons are ``p``): the
    person_id, and for an ad platform the columns of :func:`bulk_hash_sql` and the
    identifiers; with ``digest``, last, the digest of what they are made of (elsewhere
    than an ad platform, a Resend contact's: its email, trimmed and lowercased as Resend
    matches it)."""
    if platform not in PLATFORMS:
        if not digest:
            return f"SELECT p.person_id FROM {source}"
        email = "lower(trim(CAST(p.email AS VARCHAR)))" if "email" in person_columns else "NULL"
        return f"SELECT p.person_id, md5(coalesce({email}, '')) AS source FROM {source}"
    hashed = bulk_hash_sql(platform, person_columns, source, digest=digest)
    if digest:
        return (
            f"SELECT * EXCLUDE (source), {IDENTIFIERS_SQL} AS identifiers, source FROM ({hashed})"
        )
    return f"SELECT *, {IDENTIFIERS_SQL} AS identifiers FROM ({hashed})"


def _tuples(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of an Arrow table."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))
