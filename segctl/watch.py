"""``segctl watch``: keep memberships current (SPEC section 5).

A loop that polls the project's input files and folders (a listing and a ``stat`` per file:
it works on local disks, NFS/SMB and object-store mounts alike, where change notifications do
not) and runs at the current time, then delivers, when an input has landed, changed or gone
and at least every ``every`` seconds, so that time-based exits ("no activity in 30 days")
happen on time without new data. The inputs are the event, persons, subscriptions and
identities files, the segments' list files and the features file, and the definitions (the
segment files and ``segctl.yaml``): a CRM's re-exported persons file, a suppression list with
new addresses or an edited segment is read within a poll or two, not at the next ``every``.

- A new or rewritten file triggers a run once it has *settled*: the same size and
  modification time on two polls in a row, so a file still being copied is not read
  half-written (writers that rename a finished file into place are never caught halfway
  anyway), or, for a Parquet file, at once when its footer is in place (a writer writes it
  last: :func:`_finished`); a file that is gone triggers one once it is missing from two
  polls in a row.
- Each run loads the project afresh (new files, edited segments) and takes the state lock only
  for the run itself; between runs the watch holds nothing, so ``segctl run`` or ``push`` beside
  an idle watch works.
- A run that fails is logged and tried again when an input changes, else after
  :func:`retry_delay`: a lock held by a long ``segctl run`` every few seconds, anything else
  (a bad file, a broken segment, which only a change mends) less and less often. A delivery
  that fails stays in the outbox and each later run retries it.
- :meth:`Watch.stop` (SIGINT/SIGTERM in :func:`serve`) lets the run in progress commit,
  then ends the loop: its delivery makes no new request and waits for no retry
  (:data:`segctl.delivery.retry.stopping`), and what it had not sent stays in the outbox.

Each run is a ``segctl run``: incremental when it can be (it re-evaluates only the persons
whose memberships can have changed, :mod:`segctl.incremental`), else in full; see
docs/realtime.md.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from segctl.delivery.retry import stopping as deliveries_stopping
from segctl.errors import NotAfterLastRun, SegctlError, StateLockedError, UsageError
from segctl.sources import runfiles
from segctl.sources.inputs import PARQUET_MAGIC, file_format
from segctl.timeutil import iso, parse_as_of

if TYPE_CHECKING:
    from segctl.config import Config

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: After a failed run and no input changed, the first wait before trying again.
RETRY_AFTER = 5.0


def retry_delay(failures: int, every: float, locked: bool) -> float:
    """Seconds from the last of ``failures`` failed runs in a row to the next attempt when
    no input changes: :data:`RETRY_AFTER` for a state locked by another command, else
    doubled with each failure (5 s, 10 s, 20 s...: a broken segment or a bad file fails
    the same way until it changes, and a change runs at once), never more than ``every``."""
    backoff = 1 if locked else 2 ** min(failures - 1, 20)
    return min(every, RETRY_AFTER * backoff)


def parse_every(text: str, option: str = "--every") -> float:
    """``30s``, ``1m``, ``2h`` (also ``0.5s``) -> seconds; anything else is a UsageError."""
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0.0
    if not match or seconds <= 0:
        raise UsageError(
            f"{option} {text!r}: give a positive number and a unit, s, m or h (30s, 1m, 2h)"
        )
    return seconds


@dataclass(frozen=True)
class RunLine:
    """The one log line of one run of the watch (or of a run that failed)."""

    as_of: datetime
    new_files: int | None  # None: a run that failed read no file to count
    seconds: float
    run_id: int | None = None
    persons: int = 0
    entered: int = 0
    exited: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)
    full_reason: str | None = None  # why the run evaluated everyone (None: incremental)
    error: str = ""

    def text(self) -> str:
        """``run 12 as_of 2026-11-17T09:00:00Z: 1 new file, 6 persons evaluated, ...``."""

        if self.error or self.new_files is None:
            return f"run failed as_of {iso(self.as_of)}: {self.seconds:.2f}s: {self.error}"
        files = f"{self.new_files} new file{'' if self.new_files == 1 else 's'}"
        sent = self.deliveries
        full = f" (full evaluation: {self.full_reason})" if self.full_reason else ""
        return (
            f"run {self.run_id} as_of {iso(self.as_of)}: {files}, {self.persons:,} persons "
            f"evaluated{full}, {self.entered:,} entered, {self.exited:,} exited, deliveries "
            f"{sent.get('sent', 0)} sent {sent.get('failed', 0)} failed "
            f"{sent.get('pending', 0)} pending, {self.seconds:.2f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The line as one JSON object (``watch --format json`` writes one per line)."""

        document: dict[str, Any] = {
            "run_id": self.run_id,
            "as_of": iso(self.as_of),
            "new_files": self.new_files,
            "persons": self.persons,
            "entered": self.entered,
            "exited": self.exited,
            "deliveries": dict(self.deliveries),
            "seconds": round(self.seconds, 3),
            "full_reason": self.full_reason,
        }
        if self.error:
            document["error"] = self.error
        return document


class Watch:
    """The watch loop over one project. ``emit`` receives one :class:`RunLine` per run."""

    def __init__(
        self,
        path: str | Path | None,
        *,
        every: float,
        poll: float = 1.0,
        wait: float = 5.0,
        emit: Callable[[RunLine], None],
        engine: str | None = None,
        spark_master: str | None = None,
    ) -> None:
        self.path = path
        self.every = every
        self.poll = min(poll, every)
        self.wait = wait
        self.emit = emit
        self.engine = engine
        self.spark_master = spark_master
        self.stopping = threading.Event()
        self.runs = 0
        self._seen: set[str] = set()  # the event files a committed run has read
        # Every input file as the listing found it just before the last committed run
        # (path -> size, mtime), and the list and features files the project reads besides
        # its sources, which the listing polls too.
        self._read: dict[str, tuple[int, int]] = {}
        self._side: tuple[str, ...] = ()
        self._last_as_of: datetime | None = None
        self._locked = False  # whether the last failed run found the state locked

    def stop(self) -> None:
        """End the loop after the run in progress (if any) has committed; its delivery
        stops at once, leaving what it had not sent pending."""
        self.stopping.set()
        deliveries_stopping.set()

    def _load(self) -> Any:
        from segctl.project import Project

        project = Project.load(self.path, engine=self.engine, spark_master=self.spark_master)
        project.retry_waiting = False  # retries on the backoff's schedule, not every run
        return project

    def start(self) -> None:
        """Check the project loads (config and definitions; errors raise, the loop has not
        started) and learn which event files the last committed run read."""
        from segctl.state import StateStore

        project = self._load()
        self._side = _side_files(project)  # a broken project fails now, not in the loop
        folder = project.config.state_dir
        if StateStore.exists(folder):
            with StateStore.open(folder, wait=self.wait) as store:
                last = store.last_run()
                if last is not None:
                    self._last_as_of = last.as_of
                    self._seen = {
                        runfiles.absolute(project.root, r.path)
                        for r in runfiles.load(store, last.run_id)
                        if r.source == "events"
                    }
        self._close(project)

    def loop(self) -> None:
        """Poll and run until :meth:`stop`. The first run comes at once."""
        deliveries_stopping.clear()  # a watch stopped before in this process
        try:
            self._loop()
        finally:
            deliveries_stopping.clear()

    def _loop(self) -> None:
        config = self._load().config
        observed: dict[str, tuple[int, int]] = {}
        next_due = time.monotonic()  # when time alone makes a run due
        failures = 0  # failed runs in a row
        tried: dict[str, tuple[int, int]] | None = None  # the inputs a failed run was tried on
        while not self.stopping.is_set():
            listing = self._listing(config)
            since = self._read if tried is None else tried
            changed = [
                p
                for p, seen in listing.items()
                if seen != since.get(p) and (observed.get(p) == seen or _finished(p, seen[0]))
            ]
            changed += [p for p in since if p not in listing and p not in observed]
            observed = listing
            if changed or time.monotonic() >= next_due:
                ok = self.run_once()
                config = self._load_config(config)
                failures, tried = (0, None) if ok else (failures + 1, listing)
                wait = self.every if ok else retry_delay(failures, self.every, self._locked)
                next_due = time.monotonic() + wait
            self.stopping.wait(self.poll)

    def _listing(self, config: Config) -> dict[str, tuple[int, int]]:
        """What the watch polls, path -> (size, mtime_ns): the input files, the list and
        features files (:func:`_side_files`) and the definitions."""
        return runfiles.listing(config, self._side + _definition_files(config))

    def _load_config(self, previous: Any) -> Any:
        try:
            return self._load().config
        except SegctlError:
            return previous  # the failure is the next run's log line

    def _after(self, last: datetime | None) -> datetime:
        """The current time, once it is after ``last``: as_of has a precision of one second
        and must move forward."""
        moment = parse_as_of(None)
        if last is not None and moment <= last:
            self.stopping.wait((last - moment + timedelta(seconds=1)).total_seconds())
            moment = parse_as_of(None)
        return moment

    def run_once(self) -> bool:
        """One run at the current time (delivering), logged; False when it failed."""

        if self.stopping.is_set():
            return True
        moment = self._after(self._last_as_of)
        started = time.monotonic()
        project = None
        try:
            project = self._load()
            # The inputs as the run will read them, unless one changes meanwhile: then the
            # next polls find it differ from this and run again. (A list file the edited
            # segments name for the first time makes one more run, once.)
            before = self._listing(project.config)
            try:
                result = project.run(as_of=moment, wait=self.wait)
            except NotAfterLastRun as exc:  # another command (a `segctl run`) committed
                moment = self._after(exc.last)  # this second: the next one, not an error
                result = project.run(as_of=moment, wait=self.wait)
            self._side = _side_files(project)  # the run loaded the definitions
            read = {f for g in project.engine.driver.inputs.get("events", []) for f in g.files}
            persons = result.persons_evaluated  # D for an incremental run
        except SegctlError as exc:
            from segctl.redact import redact

            self._locked = isinstance(exc, StateLockedError)
            line = RunLine(moment, None, time.monotonic() - started, error=redact(str(exc)))
            self.emit(line)
            return False
        finally:
            if project is not None:
                self._close(project)
        new = len(read - self._seen)
        self._seen = read
        self._read = before
        self._last_as_of = moment
        self.runs += 1
        changes = result.changes.values()
        self.emit(
            RunLine(
                moment,
                new,
                time.monotonic() - started,
                run_id=result.run_id,
                persons=int(persons),
                entered=sum(c.entered for c in changes),
                exited=sum(c.exited for c in changes),
                deliveries=dict(result.deliveries),
                full_reason=result.full_reason,
            )
        )
        return True

    @staticmethod
    def _close(project: Any) -> None:
        """Free the run's DuckDB connection now rather than at garbage collection: a watch
        runs for months."""
        if "engine" in vars(project):
            with suppress(Exception):
                project.engine.driver.con.close()


def _finished(path: str, size: int) -> bool:
    """Whether ``path`` is a finished Parquet file of ``size`` bytes, which needs no second
    poll to settle: a Parquet writer writes the footer last (its metadata, the metadata's
    length and the magic number), so a file still being written or copied ends in row-group
    data and settles the usual way, two polls alike. (A half-copied file that happens to end
    in a plausible footer fails its run, logged, and runs again once the copy changes it.)"""
    if file_format(path) != "parquet" or size < 12:
        return False
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != size:
                return False  # it changed since the listing: not settled
            head = handle.read(4)
            handle.seek(size - 8)
            tail = handle.read(8)
    except OSError:
        return False
    footer = int.from_bytes(tail[:4], "little")
    return head == tail[4:] == PARQUET_MAGIC and 0 < footer <= size - 12


def _side_files(project: Any) -> tuple[str, ...]:
    """The files a project's runs read besides its sources: the segments' list files and the
    features file (loading the definitions, if the project has not)."""
    from segctl.definitions.model import list_conditions

    segments = project.definitions.segments.values()
    files = {c.path for c in list_conditions(segments)}
    features = project.config.features_file
    if features is not None:
        files.add(str(features.resolve()))
    return tuple(sorted(files))


def _definition_files(config: Config) -> tuple[str, ...]:
    """The files the definitions are read from: every segment file and ``segctl.yaml``
    (features and list files are :func:`_side_files`)."""
    from segctl.definitions.loader import segment_files

    folder = config.segments_dir
    files = segment_files(folder.resolve()) if folder.is_dir() else []
    return tuple(str(f) for f in [*files, (config.root / config.file).resolve()])


@contextmanager
def stop_on_signals(watch: Watch) -> Iterator[None]:
    """SIGINT and SIGTERM stop the watch cleanly (after the run in progress) while inside."""

    def handler(signum: int, frame: FrameType | None) -> None:
        watch.stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(watch: Watch) -> None:
    """Start the watch and loop until SIGINT/SIGTERM (the CLI's ``segctl watch``)."""
    with stop_on_signals(watch):
        watch.start()
        watch.loop()
