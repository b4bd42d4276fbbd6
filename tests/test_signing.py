"""Standard Webhooks signing against the contract's test vector, and the rate limiter."""

from __future__ import annotations

import threading
import time

import pytest

from segctl.delivery.limits import RateLimiter
from segctl.delivery.signing import headers, sign


def test_standard_webhooks_test_vector() -> None:
    assert sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    ) == ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_headers_carry_id_timestamp_and_signature() -> None:
    h = headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1700000000, b"{}")
    assert h["webhook-id"] == "msg_1" and h["webhook-timestamp"] == "1700000000"
    other = headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1700000000, b"{ }")
    assert h["webhook-signature"] != other["webhook-signature"]


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="not base64"):
        sign("whsec_***", "id", 1, b"")


def test_rate_limiter_paces_threads() -> None:
    limiter = RateLimiter(rate=50, burst=1)
    stamps: list[float] = []

    def worker() -> None:
        for _ in range(5):
            limiter.acquire()
            stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    # 20 acquisitions at 50/s with a burst of 1 cannot finish in less than 19/50 s.
    assert stamps[-1] - stamps[0] >= 19 / 50 * 0.9


def test_retry_policy_retries_transient_and_honours_retry_after() -> None:
    from segctl.delivery.retry import Permanent, RetryPolicy, Transient, call

    attempts: list[float] = []

    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise Transient("503", retry_after=0.2 if len(attempts) == 1 else None)
        return "ok"

    policy = RetryPolicy(max_retries=3, initial=0.01, max_wait=1, jitter=0)
    assert call(flaky, policy) == "ok"
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.2  # Retry-After honoured

    permanent: list[int] = []

    def broken() -> None:
        permanent.append(1)
        raise Permanent("invalid parameter")

    with pytest.raises(Permanent, match="invalid parameter"):
        call(broken, policy)
    assert permanent == [1]  # never retried


def test_retry_policy_gives_up_and_defers_long_waits() -> None:
    from segctl.delivery.retry import Deferred, RetryPolicy, Transient, call

    count: list[int] = []

    def down() -> None:
        count.append(1)
        raise Transient("502 bad gateway")

    with pytest.raises(Transient, match="502"):
        call(down, RetryPolicy(max_retries=2, initial=0.001, jitter=0))
    assert len(count) == 3

    def throttled() -> None:
        raise Transient("rate limited", retry_after=3600)

    started = time.monotonic()
    with pytest.raises(Deferred) as deferred:
        call(throttled, RetryPolicy(max_retries=5, max_wait=1))
    assert deferred.value.retry_after == 3600
    assert time.monotonic() - started < 1  # deferred at once, not slept through


def test_redact_masks_registered_secrets_only() -> None:
    from segctl.redact import redact, register

    register(["tok_abcdefgh1234", "ab"])
    assert redact("Bearer tok_abcdefgh1234 failed") == "Bearer *** failed"
    assert redact("ab stays: too short to be a secret") == "ab stays: too short to be a secret"
