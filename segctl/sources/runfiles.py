"""The input files a run read, recorded in the state (SPEC section 5, incremental runs).

Every committed run records, per source table, each file it read: its path, size,
modification time and a cheap content fingerprint. ``segctl verify`` re-evaluates a run over
exactly those files (:func:`resolve` with ``pinned``), and a file that changed or vanished
since is named rather than silently read as it is now.

The engine resolves its inputs through :func:`resolve`, the one place where recording and
pinning meet file resolution (:func:`segctl.sources.inputs.resolve_inputs`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl.errors import DataError, SegctlError
from segctl.lock import state_lock
from segctl.sources.inputs import InputFiles, resolve_inputs
from segctl.state import StateStore, incremental, run_inputs

if TYPE_CHECKING:
    from segctl.config import Config

#: Bytes read at each end of a file for its fingerprint. The tail holds a Parquet file's footer
#: (schema, row groups and their statistics), so a rewrite with other rows changes it; reading
#: 128 KiB per file keeps recording ~540 daily files well under a second.
FINGERPRINT_BLOCK = 64 * 1024

#: table -> the absolute paths a run read (what :func:`resolve` pins to).
Pinned = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class FileRecord:
    """One file a run read. ``path`` is relative to the project folder when inside it (so a
    project moved as a whole still verifies), else absolute."""

    source: str  # the table: events, persons, subscriptions
    path: str
    size: int
    mtime_ns: int
    fingerprint: str

    def row(self) -> tuple[str, str, int, int, str]:
        return (self.source, self.path, self.size, self.mtime_ns, self.fingerprint)


def fingerprint(path: Path, size: int) -> str:
    """SHA-256 (hex, 32 digits) of the size and the first and last 64 KiB of the file: cheap,
    and any append, truncation or rewrite of a header or Parquet footer changes it."""
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(FINGERPRINT_BLOCK))
        if size > FINGERPRINT_BLOCK:
            handle.seek(max(FINGERPRINT_BLOCK, size - FINGERPRINT_BLOCK))
            digest.update(handle.read(FINGERPRINT_BLOCK))
    return digest.hexdigest()[:32]


def resolve(
    table: str,
    patterns: tuple[str, ...],
    root: Path,
    pinned: Pinned | None,
    where: str | None = None,
) -> list[InputFiles]:
    """The files of one source: as configured, or (``pinned`` holding its table) only those of
    them that the pinned run read, whatever else the globs match today."""
    groups = resolve_inputs(table, patterns, root, where)
    if pinned is None or table not in pinned:
        return groups
    keep = set(pinned[table])
    kept = [replace(g, files=tuple(f for f in g.files if f in keep)) for g in groups]
    return [g for g in kept if g.files]


def stored_path(root: Path, path: str) -> str:
    """How a file is recorded: relative to the project folder when inside it."""
    resolved = Path(path)
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def absolute(root: Path, stored: str) -> str:
    """A recorded path back to the absolute path the engine reads."""
    path = Path(stored)
    return str(path if path.is_absolute() else (root.resolve() / path))


def record(root: Path, inputs: Mapping[str, Sequence[InputFiles]]) -> list[FileRecord]:
    """A record of every file in ``inputs`` (the engine's resolved inputs), as it is now."""
    records = []
    for table, groups in sorted(inputs.items()):
        for group in groups:
            for file in group.files:
                path = Path(file)
                try:
                    info = path.stat()
                    mark = fingerprint(path, info.st_size)
                except OSError as exc:
                    raise DataError(
                        f"data.{table}: {stored_path(root, file)} could not be read while "
                        f"recording the run's input files: {exc.strerror or exc}; nothing was "
                        "committed, run again"
                    ) from None
                records.append(
                    FileRecord(table, stored_path(root, file), info.st_size, info.st_mtime_ns, mark)
                )
    return records


def changes(root: Path, records: Sequence[FileRecord]) -> tuple[list[str], list[str]]:
    """What happened since to each recorded file that is not as recorded: those that changed
    ("... changed (size 10 -> 12 bytes)") and those that are gone ("... is gone"); both
    empty when every file is as it was."""
    found: list[str] = []
    gone: list[str] = []
    for rec in records:
        path = Path(absolute(root, rec.path))
        try:
            info = path.stat()
        except OSError:
            gone.append(f"{rec.source}: {rec.path} is gone")
            continue
        what = []
        if info.st_size != rec.size:
            what.append(f"size {rec.size:,} -> {info.st_size:,} bytes")
        if info.st_mtime_ns != rec.mtime_ns:
            what.append("modification time")
        try:
            if not what and fingerprint(path, info.st_size) != rec.fingerprint:
                what.append("content")
        except OSError as exc:
            what.append(f"unreadable: {exc.strerror or exc}")
        if what:
            found.append(f"{rec.source}: {rec.path} changed ({', '.join(what)})")
    return found, gone


def pinned(root: Path, records: Sequence[FileRecord]) -> dict[str, tuple[str, ...]]:
    """The recorded files as :func:`resolve` pins them (absolute paths per table)."""
    tables: dict[str, list[str]] = {}
    for rec in records:
        tables.setdefault(rec.source, []).append(absolute(root, rec.path))
    return {table: tuple(files) for table, files in tables.items()}


def load(store: StateStore, run_id: int) -> list[FileRecord]:
    """The files run ``run_id`` recorded (none for runs committed before state schema v3)."""
    return [FileRecord(*row) for row in run_inputs.recorded(store, run_id)]


#: How the sources' rows are read; raised when a version reads some rows otherwise (v20:
#: nanosecond timestamps cut to the microsecond, not rounded; NDJSON ids of JSON values
#: unquoted; v21: numbers of nanoseconds, timestamp_unit: ns, cut in whole numbers, where
#: a division through doubles rounded some up), so that the first run after an upgrade is
#: full and writes the copy again.
READING = 21


def data_hash(config: Config) -> str:
    """A hash of the data configuration (sources, their columns and options), the same in
    every process: sets are sorted (a frozenset's repr follows the process's string hash
    seed, which made most runs of a project naming its columns full, "the data
    configuration changed")."""
    sources: dict[str, Any] = {
        role: [dataclasses.asdict(source) for source in found]
        for role, found in config.sources.items()
    }
    sources["reading"] = READING
    text = json.dumps(sources, sort_keys=True, default=lambda value: sorted(value))
    return hashlib.sha256(text.encode()).hexdigest()


def unchanged(config: Config) -> frozenset[str]:
    """The input files the last committed run read that are as it recorded them (size and
    modification time), when it kept the same data configuration (an incremental run's
    fingerprint): the checks of each file alone passed then and would pass again, so the
    engine skips them (:class:`segctl.sources.load.Loader`'s ``checked``). Empty when the
    state is missing, locked or from another configuration: every file is checked."""
    folder = config.state_dir
    if not StateStore.exists(folder):
        return frozenset()
    try:
        # Before the command has read its definitions: a definition error must leave the state
        # folder byte for byte as it was, so the lock is taken without naming its holder.
        with state_lock(folder, record=False), StateStore.open(folder, locked=True) as store:
            last = store.last_run()
            if last is None:
                return frozenset()
            kept = incremental.kept(store, last.run_id)
            records = load(store, last.run_id)
    except SegctlError:
        return frozenset()
    if kept.get("the data configuration") != data_hash(config):
        return frozenset()
    found = set()
    for rec in records:
        path = absolute(config.root, rec.path)
        try:
            info = os.stat(path)
        except OSError:
            continue
        if (info.st_size, info.st_mtime_ns) == (rec.size, rec.mtime_ns):
            found.add(path)
    return frozenset(found)


def listing(config: Config, extra: Sequence[str] = ()) -> dict[str, tuple[int, int]]:
    """The input files the configuration matches now (events, persons, subscriptions,
    identities), and the ``extra`` files that exist, path -> (size, mtime_ns): what ``segctl
    watch`` polls. A glob that matches nothing yet adds nothing."""
    found: dict[str, tuple[int, int]] = {}
    files = list(extra)
    for table, patterns in config.inputs.items():
        for pattern in patterns:
            try:
                groups = resolve_inputs(table, (pattern,), config.root)
            except DataError:
                continue  # nothing landed yet, or a file type to be reported by the run
            files += [file for group in groups for file in group.files]
    for file in files:
        try:
            info = os.stat(file)
        except OSError:
            continue  # gone between the glob and the stat: the next poll sees it
        found[file] = (info.st_size, info.st_mtime_ns)
    return found
