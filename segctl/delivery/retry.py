"""Retry policy: exponential backoff with jitter, honouring the platform's Retry-After.

Destination clients classify every failure as :class:`Transient` (5xx, 429, timeouts, the
platform's throttling codes: retried) or :class:`Permanent` (recorded with the platform's
message, never retried). A transient failure asking for a longer wait than the policy allows
becomes :class:`Deferred`: the item stays pending with a next attempt time, for a later
``segctl push``, instead of blocking the run. While :data:`stopping` is set (``segctl
watch`` told to stop), no request is made and no retry waited for: :class:`Stopped`.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from segctl.delivery.limits import RateLimiter
from segctl.redact import redact

T = TypeVar("T")


#: The longest wait a platform may ask for; beyond it (or not a finite number) is a broken
#: answer, and a date that far away would not even be representable.
MAX_RETRY_AFTER = 86_400.0


class DeliveryFailure(Exception):
    """A failed attempt, with the platform's message (never a secret: a platform or a proxy
    may quote the credential it was sent, and the message is stored and shown)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        if retry_after is not None and not math.isfinite(retry_after):
            retry_after = None
        self.retry_after = None if retry_after is None else min(retry_after, MAX_RETRY_AFTER)


class Transient(DeliveryFailure):
    """Worth retrying: 5xx, 429, timeouts, connection errors, throttling codes."""


class Permanent(DeliveryFailure):
    """Not worth retrying: the request itself is wrong (4xx, invalid parameter...)."""


class Deferred(DeliveryFailure):
    """Retrying now is pointless; try again after ``retry_after`` seconds."""


#: Set while the process is stopping (``segctl watch`` on SIGINT/SIGTERM, once its run has
#: committed): a delivery makes no new request and waits for no retry, so the stop is
#: prompt; what it had not sent stays pending in the outbox, for the next run or push.
stopping = threading.Event()


class Stopped(Exception):
    """An attempt not made, or a retry not waited for, because of :data:`stopping`: the
    item is left as it was (pending), not recorded as a failure."""


def _sleep(seconds: float) -> None:
    """A retry's wait, cut short by :data:`stopping`."""
    if stopping.wait(seconds):
        raise Stopped


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    initial: float = 0.5  # seconds before the first retry
    max_wait: float = 30.0  # longest single wait; longer Retry-After values defer the item
    jitter: float = 0.5


def policy_for(max_retries: int, backoff: float) -> RetryPolicy:
    """A destination's policy: its retries, its first wait, and jitter no larger than it."""
    return RetryPolicy(max_retries=max_retries, initial=backoff, jitter=min(0.5, backoff))


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exponent = max(state.attempt_number - 1, 0)
        delay = policy.initial * float(2**exponent) + random.uniform(0, policy.jitter)
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, policy.max_wait)

    return wait


def call(attempt: Callable[[], T], policy: RetryPolicy, limiter: RateLimiter | None = None) -> T:
    """Run ``attempt`` until it succeeds, fails permanently, or retries run out.

    Raises :class:`Permanent`, :class:`Deferred` (a Retry-After beyond ``max_wait``), or the
    last :class:`Transient` when retries are exhausted.
    """

    def once() -> T:
        if stopping.is_set():
            raise Stopped
        if limiter is not None:
            limiter.acquire()
        try:
            return attempt()
        except Transient as failure:
            if failure.retry_after is not None and failure.retry_after > policy.max_wait:
                if limiter is not None:
                    limiter.pause(min(failure.retry_after, policy.max_wait))
                raise Deferred(failure.message, retry_after=failure.retry_after) from None
            if failure.retry_after and limiter is not None:
                limiter.pause(failure.retry_after)
            raise

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=_wait(policy),
        retry=retry_if_exception_type(Transient),  # Deferred and Permanent are not Transient
        reraise=True,
        sleep=_sleep,
    )
    return retrying(once)
