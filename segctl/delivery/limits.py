"""Client-side pacing: a token bucket per destination, safe across threads."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``.

    >>> limiter = RateLimiter(rate=1000)
    >>> limiter.acquire()  # returns at once while tokens remain
    """

    def __init__(self, rate: float | None, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else (rate or 1.0))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        """Wait until a request may be sent."""
        if not self.rate:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (the platform asked us to back off)."""
        with self.lock:
            self.tokens = min(self.tokens, 0.0) - seconds * (self.rate or 1.0)
