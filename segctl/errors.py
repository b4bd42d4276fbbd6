"""The exceptions segctl raises, one root and a handful of kinds.

Every error a user can cause is a :class:`SegctlError`; the CLI maps each kind to one exit code
in one place (``segctl.cli.exits``), and anything else is an internal error (exit 70)::

    SegctlError
    ├── UsageError          exit 2  bad command-line arguments
    ├── DefinitionError     exit 3  segctl.yaml, segment or feature files are wrong
    │   └── ConfigError             ... specifically segctl.yaml (or its environment)
    ├── DataError           exit 4  input files are missing or do not fit the data contract
    │   └── StateError              ... the state folder is unreadable, corrupt or too new
    ├── DeliveryError       exit 5  something could not be delivered
    └── StateLockedError    exit 6  another run holds the state folder

A :class:`DefinitionError` carries every :class:`Problem` found, each with a source location,
so that a user fixes all of them in one pass instead of one per run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ConfigError",
    "DataError",
    "DataProblems",
    "DefinitionError",
    "DeliveryError",
    "Problem",
    "SegctlError",
    "StateError",
    "StateLockedError",
    "UsageError",
]


class SegctlError(Exception):
    """Root of every error segctl raises on purpose."""

    exit_code = 70


class UsageError(SegctlError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class NotAfterLastRun(UsageError):
    """A run's as_of is not after the last committed run's (``last``): history only moves
    forward."""

    def __init__(self, message: str, last: datetime) -> None:
        super().__init__(message)
        self.last = last


class ValueProblem(ValueError):
    """A literal that does not fit where it stands (a definition reader turns it into a
    :class:`Problem` with the file and line)."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a definition file, with where it is and how to fix it."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{self.file}: {self.message}"


class DefinitionError(SegctlError):
    """One or more problems in segctl.yaml, segment files or features.yaml."""

    exit_code = 3

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", 0, 0, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(set(problems))
        super().__init__(listed(self.problems))


class ConfigError(DefinitionError):
    """segctl.yaml (or an environment variable it names) is wrong. ``partial``: the
    configuration as far as it reads (a ``segctl.config.Config``), so that ``validate`` says
    the segment files' problems too; ``named``: every destination name segctl.yaml gives
    (None when its ``destinations`` is not a mapping)."""

    partial: Any = None
    named: frozenset[str] | None = None


class DataError(SegctlError):
    """An input file is missing or does not fit the data contract."""

    exit_code = 4


class StateError(DataError):
    """The state folder cannot be used: corrupt, written by a newer segctl, or unwritable."""


class DeliveryError(SegctlError):
    """Something could not be delivered and is left pending or failed."""

    exit_code = 5


class StateLockedError(SegctlError):
    """Another run holds the state folder."""

    exit_code = 6


class DataProblems:
    """The data errors of checks that do not depend on each other (two missing files, a
    column missing from two files of a glob, bad timestamps in two files, repeated person ids
    beside a bad timestamp), said at once as SPEC 2 asks of every problem of a run: one
    :class:`DataError`, a line each (the first one alone, as it was, when it is the only
    one).

    >>> found = DataProblems()
    >>> for name in ("a.csv", "b.csv"):
    ...     with found.check():
    ...         raise DataError(f"{name}: file not found")
    >>> try:
    ...     found.raise_any()
    ... except DataError as error:
    ...     print(error)
    a.csv: file not found
    b.csv: file not found
    2 problems found.
    """

    def __init__(self) -> None:
        self.errors: list[DataError] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except DataError as error:
            self.errors.append(error)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            problems = [p for error in self.errors for p in problems_of(error)]
            raise DataError(listed(list(dict.fromkeys(problems)))) from None


def problems_of(error: DataError) -> list[Problem]:
    """The problems a data error says (several when :class:`DataProblems` gathered them)."""
    lines = str(error).split("\n")
    if len(lines) > 2 and re.fullmatch(r"\d+ problems found\.", lines[-1]):
        return [Problem("", 0, 0, line) for line in lines[:-1]]
    return [Problem("", 0, 0, str(error))]


def listed(problems: list[Problem]) -> str:
    """Problems as one message: a line each, every one of them (SPEC 2: all problems at
    once), then how many when more than one."""
    lines = [str(p) if p.file else p.message for p in problems]
    if len(problems) > 1:
        lines.append(f"{len(problems)} problems found.")
    return "\n".join(lines)
