"""What every audience client is: a :class:`Member` as an audience sees it, the
:class:`Figures` a platform reports, and :class:`AudienceClient`, the base of the platform
clients (batching limits, paced and retried requests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segctl.definitions.destinations import Destination
from segctl.delivery.http import Http
from segctl.delivery.identifiers import HashedIdentity, IdentityStats, hash_identity
from segctl.delivery.limits import RateLimiter
from segctl.delivery.retry import Permanent, call, policy_for

if TYPE_CHECKING:
    import httpx

#: The smallest audience each ad platform serves (``run --dry-run`` warns below it).
MINIMUM_SIZE = {"meta": 100, "google": 100, "tiktok": 1000}


@dataclass(frozen=True)
class Member:
    """One person as an audience sees them."""

    person_id: str
    identity: HashedIdentity | None = None  # ad platforms: hashes only
    contact: dict[str, Any] | None = None  # Resend: email and names

    @property
    def identifiers(self) -> str:
        """What is stored of the member (JSON): computed once, since a sync writes it to the
        journal and then to the synced set.

        >>> Member("u1", identity=HashedIdentity("u1", "ab", None)).identifiers
        '{"email": "ab", "phone": null}'
        """
        # Not functools.cached_property: in Python 3.11 it takes one lock for all instances,
        # which the audiences synced at once would queue on.
        cached: str | None = self.__dict__.get("_identifiers")
        if cached is None:
            if self.identity is not None:  # json.dumps of the dict, without building it
                email, phone = json.dumps(self.identity.email), json.dumps(self.identity.phone)
                cached = f'{{"email": {email}, "phone": {phone}}}'
            else:
                cached = json.dumps(self.contact or {}, sort_keys=True, default=str)
            self.__dict__["_identifiers"] = cached  # frozen: a cache, not a field
        return cached

    def known_as(self, identifiers: str) -> Member:
        """This member, with :attr:`identifiers` already computed (by DuckDB, for many)."""
        self.__dict__["_identifiers"] = identifiers
        return self


@dataclass
class Figures:
    """What the platform reported for one call (summed over a sync)."""

    received: int = 0
    invalid: int = 0
    match_rate: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, other: Figures) -> None:
        self.received += other.received
        self.invalid += other.invalid
        self.match_rate = other.match_rate or self.match_rate
        self.details.update(other.details)


class AudienceClient:
    """Base of the platform clients: batching limits and retried requests.

    Subclasses set ``platform`` (which normalisation applies) and ``max_batch``, and
    implement :meth:`add`, :meth:`remove` and, where the platform has one, :meth:`replace`
    (the reconciler replaces only a destination that takes the whole audience alone, a file:
    ``always_replace``). Each request goes through :meth:`request`, which paces, retries and
    classifies; a failure raises :class:`DeliveryFailure`.
    """

    platform = "meta"
    max_batch = 10_000
    always_replace = False  # the destination can only take the whole audience (files)
    #: Whether a sync's batches of adds (of removes) must go one after another in one upload
    #: session (Meta): then :meth:`in_session` sends them, else :meth:`add` and
    #: :meth:`remove` each batch, several at once.
    sessions = False

    def __init__(
        self,
        destination: Destination,
        client: httpx.Client | None = None,
        limiter: RateLimiter | None = None,
        *,
        slots: threading.Semaphore | None = None,
    ) -> None:
        self.destination = destination
        self.http = Http(destination, client, self.auth_headers())
        self.policy = policy_for(destination.max_retries, destination.backoff)
        self.limiter = limiter or RateLimiter(destination.rate_limit, burst=1)
        # Requests in flight to the destination, shared by the audiences synced at once.
        self.slots: AbstractContextManager[Any] = slots or nullcontext()

    def auth_headers(self) -> dict[str, str]:
        return {}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        def attempt() -> Any:
            with self.slots:
                return self.http.request(method, path, **kwargs)

        return call(attempt, self.policy, self.limiter)

    def identity(self, person: dict[str, Any], stats: IdentityStats) -> Member | None:
        """The member to send for a person, or None (skipped: no usable identifier)."""
        return self.member(hash_identity(person, self.platform, stats), stats)

    def member(self, identity: HashedIdentity, stats: IdentityStats) -> Member | None:
        """The member to send for a person's hashes, or None (skipped)."""
        return None if identity.empty else Member(identity.person_id, identity=identity)

    def in_session(
        self, method: str, audience_id: str, batches: list[list[Member]]
    ) -> Generator[Figures | Permanent, None, None]:
        """Send ``batches`` (adds: POST, removes: DELETE) in one upload session, in order;
        per batch what the platform reported, or the permanent error that refused it (the
        others still go)."""
        raise NotImplementedError(f"{self.platform} has no upload sessions")

    def add(self, audience_id: str, members: list[Member]) -> Figures:
        raise NotImplementedError

    def remove(self, audience_id: str, members: list[Member]) -> Figures:
        raise NotImplementedError

    def replace(self, audience_id: str, members: list[Member]) -> Figures:
        raise Permanent(f"{self.platform} has no replace")

    def close(self) -> None:
        self.http.close()
