"""The state of incremental runs (:mod:`segctl.incremental`, state schema v4).

- ``incremental``: the catalogue fingerprint (key -> value) of the last committed run, keyed by
  its run id; a run committed without one makes the next run full;
- ``wakeups``: per person, the earliest instant a membership can change without a new row;
- ``row_hashes`` (v7): per person, a hash of their rows in the persons and subscriptions views
  and of the list entries naming or matching them at the run (:data:`HASHES_FIGURE` among the
  figures says the run kept them);
- ``identity_map`` (v8): each anonymous id of the run's identity map and its person
  (:data:`MAP_FIGURE` says the run kept it).

The ``incremental`` rows whose key starts with :data:`FIGURES` are not part of the fingerprint:
they hold the run's data figures (rows, duplicates, events with no person or no event per
events source, the newest event), which the next run adds its new files' figures to
(``segctl.project.figures``).

Both are written inside the run's commit transaction, so ``kill -9`` leaves the old or the new
version, like the snapshot.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from segctl.packed import quote
from segctl.state.queries import forgotten_sql
from segctl.state.schema import S

if TYPE_CHECKING:
    from segctl.state.store import StateStore

#: The prefix of the ``incremental`` keys that hold data figures, not the fingerprint.
FIGURES = "data figures: "
#: The figure of how many erasures the state held when the run committed: while no erasure
#: follows (``segctl forget`` deletes snapshot rows), the snapshot's segments have the sizes
#: the run recorded.
ERASURES = "erasures"
#: The figure saying that ``row_hashes`` holds the hashes of the run's persons and
#: subscriptions rows and list entries (not after a run that kept none, or a state written
#: before v7).
HASHES_FIGURE = "row hashes"
#: That figure's value (a state whose hashes hash something else keeps none).
HASHED = "persons, subscriptions, list entries"
#: The figure saying that ``identity_map`` holds the run's identity map (its value: "kept").
MAP_FIGURE = "identity map"


def kept(store: StateStore, run_id: int) -> dict[str, str]:
    """The catalogue fingerprint run ``run_id`` kept (empty when it kept none)."""
    rows = store.rows(f"SELECT key, value FROM {S}.incremental WHERE run_id = ?", [run_id])
    return {str(k): str(v) for k, v in rows if not str(k).startswith(FIGURES)}


def figures(store: StateStore, run_id: int) -> dict[str, str]:
    """The data figures run ``run_id`` kept, by key without :data:`FIGURES` (empty when it
    kept none)."""
    rows = store.rows(f"SELECT key, value FROM {S}.incremental WHERE run_id = ?", [run_id])
    return {str(k)[len(FIGURES) :]: str(v) for k, v in rows if str(k).startswith(FIGURES)}


def committed_sizes(store: StateStore, run_id: int) -> dict[str, int] | None:
    """Segment -> members of the committed snapshot, from run ``run_id``'s figures, when the
    snapshot is still that run's (no erasure since it committed); else None."""
    kept = figures(store, run_id).get(ERASURES)
    [(erasures,)] = store.rows(f"SELECT count(*) FROM {S}.forgotten")
    if kept != str(erasures):
        return None
    rows = store.rows(f"SELECT segment, size FROM {S}.run_segments WHERE run_id = ?", [run_id])
    return {str(segment): int(size) for segment, size in rows}


def wakeup_count(store: StateStore) -> int:
    """How many persons have a wake-up time (every person with a timestamp)."""
    [(count,)] = store.rows(f"SELECT count(*) FROM {S}.wakeups")
    return int(count)


def kept_row_hashes(store: StateStore, run_id: int) -> bool:
    """Whether ``row_hashes`` holds the hashes of run ``run_id``'s persons and subscriptions
    rows and list entries."""
    return figures(store, run_id).get(HASHES_FIGURE) == HASHED


def kept_identity_map(store: StateStore, run_id: int) -> bool:
    """Whether ``identity_map`` holds run ``run_id``'s identity map."""
    return figures(store, run_id).get(MAP_FIGURE) == "kept"


def add_relinked(store: StateStore, map_table: str, persons_table: str) -> None:
    """Add to ``persons_table`` both persons of every id that the map in ``map_table`` (as
    it is now) gives to another person than the kept map did, or that only one of them
    holds: the rows of that id moved between them. (An erased person's ids are kept
    nowhere, so they count as unchanged.)"""
    store.con.execute(
        f"INSERT INTO {quote(persons_table)} SELECT unnest([k.person_id, n.person_id]) "
        f"FROM {_map(store, map_table)} AS n FULL JOIN {S}.identity_map AS k ON n.id = k.id "
        "WHERE n.person_id IS DISTINCT FROM k.person_id"
    )


def _map(store: StateStore, map_table: str) -> str:
    """The map in ``map_table`` without the ids of erased persons."""
    return f"(SELECT id, person_id FROM {quote(map_table)}{_not_erased(store)})"


def _not_erased(store: StateStore) -> str:
    """A WHERE clause leaving out the rows of erased persons (none when nobody is)."""
    if store.rows(f"SELECT count(*) FROM {S}.forgotten")[0][0]:
        return f" WHERE sha256(person_id) NOT IN ({forgotten_sql()})"
    return ""


def add_changed_rows(store: StateStore, hashes_table: str, persons_table: str) -> None:
    """Add to ``persons_table`` the persons whose hash in ``hashes_table`` (the rows as they
    are now) differs from the kept one, or who have only one of them (rows added, removed)."""
    store.con.execute(
        f"INSERT INTO {quote(persons_table)} SELECT coalesce(n.person_id, k.person_id) "
        f"FROM {quote(hashes_table)} AS n FULL JOIN {S}.row_hashes AS k "
        "ON n.person_id = k.person_id WHERE n.hash IS DISTINCT FROM k.hash"
    )


def add_woken(store: StateStore, persons_table: str, moment: datetime) -> None:
    """Add to ``persons_table`` the persons whose wake-up time is at or before ``moment``."""
    store.con.execute(
        f"INSERT INTO {quote(persons_table)} SELECT person_id FROM {S}.wakeups WHERE wake <= ?",
        [moment],
    )


def save(
    store: StateStore,
    run_id: int,
    fingerprint: dict[str, str] | None,
    wake_table: str,
    persons_table: str | None,
    keep_hashes: bool,
    hashes_table: str | None,
    *,
    map_table: str | None,
) -> None:
    """Inside the commit's transaction: run ``run_id``'s catalogue ``fingerprint`` (with its
    data figures, under keys starting with :data:`FIGURES`) and the wake-up times in
    ``wake_table``, which replace those of the persons in ``persons_table`` (None: of
    everyone, after a full run); with ``keep_hashes``, the row hashes in ``hashes_table``
    (None: the kept ones, which still describe the run's rows), else none; the identity map
    in ``map_table``, else none. ``fingerprint`` None keeps nothing, so the next run is
    full."""
    store.con.execute(f"DELETE FROM {S}.incremental")
    if fingerprint is None:
        for table in ("wakeups", "row_hashes", "identity_map"):
            store.con.execute(f"DELETE FROM {S}.{table}")
        return
    if fingerprint:  # one statement: executemany costs a millisecond a row
        if keep_hashes:
            fingerprint = {**fingerprint, FIGURES + HASHES_FIGURE: HASHED}
        if map_table is not None:
            fingerprint = {**fingerprint, FIGURES + MAP_FIGURE: "kept"}
        keys = sorted(fingerprint)
        store.con.execute(
            f"INSERT INTO {S}.incremental SELECT ?, unnest(?), unnest(?)",
            [run_id, keys, [fingerprint[k] for k in keys]],
        )
        store.con.execute(
            f"INSERT INTO {S}.incremental SELECT ?, ?, count(*)::VARCHAR FROM {S}.forgotten",
            [run_id, FIGURES + ERASURES],
        )
    if persons_table is None:
        store.con.execute(f"DELETE FROM {S}.wakeups")
    else:
        store.con.execute(
            f"DELETE FROM {S}.wakeups "
            f"WHERE person_id IN (SELECT person_id FROM {quote(persons_table)})"
        )
    erased = _not_erased(store)  # an erased person's id is kept nowhere (segctl forget)
    store.con.execute(
        f"INSERT INTO {S}.wakeups SELECT person_id, wake FROM {quote(wake_table)}{erased}"
    )
    if not keep_hashes or hashes_table is not None:
        store.con.execute(f"DELETE FROM {S}.row_hashes")
    if keep_hashes and hashes_table is not None:
        store.con.execute(
            f"INSERT INTO {S}.row_hashes SELECT person_id, hash FROM {quote(hashes_table)}"
            f"{erased} ORDER BY person_id"
        )
    _save_map(store, map_table)


def _save_map(store: StateStore, map_table: str | None) -> None:
    """The identity map in ``map_table`` replaces the kept one (None: none is kept). Only
    the ids whose person changed are written: most runs link few new ids."""
    if map_table is None:
        store.con.execute(f"DELETE FROM {S}.identity_map")
        return
    now = _map(store, map_table)
    store.con.execute(
        f"DELETE FROM {S}.identity_map WHERE id IN (SELECT k.id FROM {S}.identity_map AS k "
        f"LEFT JOIN {now} AS n ON n.id = k.id WHERE n.person_id IS DISTINCT FROM k.person_id)"
    )
    store.con.execute(
        f"INSERT INTO {S}.identity_map SELECT id, person_id FROM {now} "
        f"WHERE id NOT IN (SELECT id FROM {S}.identity_map)"
    )
