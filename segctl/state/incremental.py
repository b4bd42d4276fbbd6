"""The state of incremental runs (:mod:`segctl.incremental`, state schema v4).

- ``incremental``: the catalogue fingerprint (key -> value) of the last committed run, keyed by
  its run id; a run committed without one makes the next run full;
- ``wakeups``: per person, the earliest instant a membership can change without a new row;
- ``row_hashes`` (v7): per person, a hash of their rows in the persons and subscriptions views
  and of the list entries naming or matching them at the run (:data:`HASHES_FIGURE` among the
  figures says the run kept them).

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
) -> None:
    """Inside the commit's transaction: run ``run_id``'s catalogue ``fingerprint`` (with its
    data figures, under keys starting with :data:`FIGURES`) and the wake-up times in
    ``wake_table``, which replace those of the persons in ``persons_table`` (None: of
    everyone, after a full run); with ``keep_hashes``, the row hashes in ``hashes_table``
    (None: the kept ones, which still describe the run's rows), else none. ``fingerprint``
    None keeps nothing, so the next run is full."""
    store.con.execute(f"DELETE FROM {S}.incremental")
    if fingerprint is None:
        store.con.execute(f"DELETE FROM {S}.wakeups")
        store.con.execute(f"DELETE FROM {S}.row_hashes")
        return
    if fingerprint:  # one statement: executemany costs a millisecond a row
        if keep_hashes:
            fingerprint = {**fingerprint, FIGURES + HASHES_FIGURE: HASHED}
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
    erased = ""  # an erased person's id is kept nowhere (segctl forget)
    if store.rows(f"SELECT count(*) FROM {S}.forgotten")[0][0]:
        erased = f" WHERE sha256(person_id) NOT IN ({forgotten_sql()})"
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
