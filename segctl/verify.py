"""``segctl verify``: re-evaluate the last committed run from scratch and compare (SPEC 5).

The run is evaluated at its own as_of over exactly the input files it recorded
(:mod:`segctl.sources.runfiles`): files that landed later are not read, and a recorded file that
changed or vanished since is an error naming it, because an evaluation over other bytes would
prove nothing about the run. Lists, the features file and the suppression file are read as they
are now, like the segment definitions: a changed definition shows as a difference.

Per segment, ``missing`` counts the persons the fresh evaluation has and the committed snapshot
lacks, ``extra`` those the snapshot holds and the fresh evaluation does not. Persons erased
with ``segctl forget`` are left out of the fresh side (the snapshot no longer holds them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from segctl.errors import DataError, StateError, UsageError
from segctl.sources import runfiles
from segctl.state import StateStore, run_inputs
from segctl.tempnames import RESULT_TABLE
from segctl.timeutil import iso

if TYPE_CHECKING:
    from segctl.config import Config
    from segctl.definitions.loader import Definitions
    from segctl.engine.duckdb import DuckDBEngine


@dataclass(frozen=True)
class SegmentCheck:
    """One segment's comparison: counts of persons missing from / extra in the snapshot."""

    name: str
    missing: int
    extra: int
    note: str = ""

    @property
    def equal(self) -> bool:
        return self.missing == 0 and self.extra == 0


@dataclass
class VerifyResult:
    """The outcome of :func:`verify`."""

    run_id: int
    as_of: datetime
    segments: list[SegmentCheck]
    files: int  # input files re-read
    warnings: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(s.equal for s in self.segments)

    @property
    def differing(self) -> list[SegmentCheck]:
        return [s for s in self.segments if not s.equal]

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's ``verify --format json`` document (every compared segment), with the
        warnings said on stderr."""

        return {
            "run_id": self.run_id,
            "as_of": iso(self.as_of),
            "equal": self.equal,
            "segments": [
                {"name": s.name, "missing": s.missing, "extra": s.extra} for s in self.segments
            ],
            "warnings": self.warnings,
        }


def verify(
    config: Config,
    engine: DuckDBEngine,
    definitions: Callable[[], Definitions],
    evaluate: Callable[[list[str], datetime], None],
    *,
    wait: float = 10.0,
) -> VerifyResult:
    """Evaluate the last committed run again from scratch and compare it with the committed
    snapshot. ``engine`` has not read its inputs yet (its views are created over exactly the
    files the run read); ``definitions`` loads the project's definitions (which reads them),
    and ``evaluate(names, as_of)`` evaluates into the engine's result table. A recorded input
    file that changed since the run is read as it is now, with a warning naming it; raises
    DataError naming every one that vanished, and UsageError when nothing was committed yet."""
    folder = config.state_dir
    with StateStore.open(folder, wait=wait) as store:
        run = store.last_run()
        if run is None:
            raise UsageError("no committed run yet: run `segctl run` first")
        records = runfiles.load(store, run.run_id)
        committed = run_inputs.committed_segments(store, run.run_id)
    warnings = []
    if records:
        problems, gone = runfiles.changes(config.root, records)
        if gone:
            raise DataError(
                f"cannot verify run {run.run_id}: {len(gone)} of the {len(records)} input "
                f"files it read are gone: {'; '.join(gone)}. verify re-reads exactly the files "
                "a run read; restore them, or commit a new run (`segctl run`) and verify that"
            )
        if problems:  # read as they are now, as today's definitions are
            warnings.append(
                f"{len(problems)} of the {len(records)} input files run {run.run_id} read "
                f"changed since: {'; '.join(problems)}; verified over what they hold now, so a "
                "difference may come from the data rather than the run"
            )
        engine.pinned = runfiles.pinned(config.root, records)
    else:
        warnings.append(
            f"run {run.run_id} was committed by a segctl that did not record its input files: "
            "verifying over the files the configuration matches now"
        )
    defined = definitions().segments
    names = [n for n in committed if n in defined]
    gone = [n for n in committed if n not in defined]
    edited = [n for n in names if committed[n] != defined[n].source_hash]
    if edited:  # compared as they are now, as the changed input files are
        listed = ", ".join(f"'{n}'" for n in edited)
        warnings.append(
            f"the definition of {listed} changed since run {run.run_id}: verified with the "
            "definition as it is now, so a difference may come from the edit rather than the run"
        )
    if names:
        evaluate(names, run.as_of)
    engine.schema()  # the input views must exist before the state is attached
    checks: dict[str, SegmentCheck] = {}
    with StateStore.open(folder, con=engine.con, wait=wait) as store:
        latest = store.last_run()
        if latest is None or latest.run_id != run.run_id:
            raise StateError(
                f"run {latest.run_id if latest else '?'} was committed while verifying run "
                f"{run.run_id}: run `segctl verify` again"
            )
        counts = run_inputs.compare_snapshot(store, RESULT_TABLE, names)
        for name, (missing, extra) in zip(names, counts, strict=True):
            checks[name] = SegmentCheck(name, missing, extra)
        for name in gone:
            held = run_inputs.snapshot_size(store, name)
            checks[name] = SegmentCheck(name, 0, held, "no longer defined")
            warnings.append(
                f"segment '{name}' was committed by run {run.run_id} but is no longer defined: "
                "its committed members all count as extra"
            )
    return VerifyResult(
        run.run_id,
        run.as_of,
        [checks[n] for n in committed],
        sum(len(g.files) for groups in engine.inputs.values() for g in groups),
        warnings,
    )
