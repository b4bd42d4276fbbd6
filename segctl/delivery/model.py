"""The words every delivery module shares: a :class:`Batch` of outbox rows, the
:class:`Report` of a push (with the segments :class:`Held` by the mass-exit guard), the
:class:`Reachability` rule the worker asks who may be messaged or uploaded, and the
:class:`Push` an audience sync runs in."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx
    from sqlglot import exp

    from segctl.definitions.destinations import Destination
    from segctl.delivery.limits import RateLimiter
    from segctl.delivery.retry import DeliveryFailure
    from segctl.state import StateStore


class Reachability(Protocol):
    """Who may be emailed or uploaded (consent given, not suppressed): SPEC 1, privacy."""

    def condition(self, alias: str = "p") -> exp.Expr:
        """A condition over the persons row ``alias``, true when the person is reachable."""
        ...

    def reachable(self, person_ids: list[str]) -> set[str]:
        """Which of these persons are reachable."""
        ...


class Push(Protocol):
    """What an audience sync uses of the push it runs in (a :class:`~.worker.Worker`): the
    store, the destinations with the limits their syncs share, the persons, and where the
    outcome of a sync request is recorded (and what is said of it: ``report``)."""

    store: StateStore
    report: Report
    reachability: Reachability
    destinations: dict[str, Destination]
    limiters: dict[str, RateLimiter]
    slots: dict[str, threading.BoundedSemaphore]
    person_columns: Collection[str]

    @property
    def client(self) -> httpx.Client | None: ...

    def due(self, kind: str) -> list[dict[str, Any]]: ...

    def persons(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def mark_sent(self, rows: list[dict[str, Any]]) -> None: ...

    def fail(self, batches: list[Batch], reason: str) -> None: ...

    def record_failure(self, batches: list[Batch], failure: DeliveryFailure) -> None: ...


@dataclass
class Batch:
    """Outbox rows sent in one request, under one key (a retry sends the same key)."""

    key: str
    destination: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Held:
    """A segment whose exits the mass-exit guard holds until ``segctl push --confirm``."""

    segment: str
    exits: int  # persons whose exit actions and audience removals wait
    max_exit_ratio: float | None  # the ratio the run exceeded (None: not recorded)
    reason: str  # e.g. "146 of 292 members would exit (max_exit_ratio 0.5)"

    @property
    def command(self) -> str:
        return f"segctl push --confirm {self.segment}"

    @property
    def message(self) -> str:
        """One line for people: how many exits, why, and how to release them.

        >>> print(Held("power_users", 146, 0.5, "").message.replace("; ", ";\\n"))
        power_users: 146 exits held (max_exit_ratio 0.5);
        release with segctl push --confirm power_users
        """
        why = f"max_exit_ratio {self.max_exit_ratio:g}" if self.max_exit_ratio else self.reason
        plural = "exit" if self.exits == 1 else "exits"
        return f"{self.segment}: {self.exits} {plural} held ({why}); release with {self.command}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "exits": self.exits,
            "max_exit_ratio": self.max_exit_ratio,
            "reason": self.reason,
            "release": self.command,
        }


@dataclass
class Report:
    """What one push did, and what is left."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0  # due but not delivered, or held for confirmation
    scheduled: int = 0  # delayed and not yet due
    messages: list[str] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)  # segments whose exits wait for --confirm
    #: Items that failed or wait for a retry, by (destination, status, reason): said once
    #: each, however many batches they went in.
    tally: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What to tell the user: the messages, then one line per destination, status and
        reason (``crm: 12 item(s) pending: HTTP 500``)."""
        said = [f"{d}: {n} item(s) {status}: {why}" for (d, status, why), n in self.tally.items()]
        return [*self.messages, *said]

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.pending == 0

    def counts(self) -> dict[str, Any]:
        """The ``deliveries`` of ``run --format json``: counts, and the held segments."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "pending": self.pending,
            "held": [h.to_dict() for h in self.held],
        }
