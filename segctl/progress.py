"""Progress of long work: the library names its phases and counts its steps; a listener, if
one is installed, shows them.

The library calls :func:`phase` ("Evaluating 17 segments") and :func:`task` (a counted job:
delivery batches, backfill times). Nothing happens unless a :class:`Listener` is installed with
:func:`listening`; the CLI installs one that draws rich progress bars on a terminal
(``segctl.cli.output.progress``), and scripts can install their own::

    class Log:
        def phase(self, description: str) -> None:
            print(description)

        def task(self, description: str, total: int) -> Callable[[int], None]:
            return lambda steps: None

    with segctl.progress.listening(Log()):
        project.run()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Listener(Protocol):
    def phase(self, description: str) -> None:
        """A new phase of the work began."""

    def task(self, description: str, total: int) -> Callable[[int], None]:
        """A job of ``total`` steps began; returns the function that advances it by N steps
        (the job ends when ``total`` steps are done)."""


_listener: ContextVar[Listener | None] = ContextVar("segctl_progress", default=None)


def _nothing(steps: int = 1) -> None:
    return None


def phase(description: str) -> None:
    """Report that a phase of the work began (shown by the listener, if any)."""
    listener = _listener.get()
    if listener is not None:
        listener.phase(description)


def task(description: str, total: int) -> Callable[[int], None]:
    """Report a job of ``total`` steps; call the returned function after each step (or N)."""
    listener = _listener.get()
    if listener is None or total <= 0:
        return _nothing
    return listener.task(description, total)


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Send this context's progress reports to ``listener``."""
    token = _listener.set(listener)
    try:
        yield listener
    finally:
        _listener.reset(token)
