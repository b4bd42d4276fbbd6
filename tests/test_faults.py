"""Fault suite (SPEC 6): the platforms misbehave and everything still ends delivered.

The fakes of ``fakes.scenario`` inject transient faults into 30% of the requests (5xx, each
platform's throttling answers, timeouts, dropped connections before and after the request took
effect); segctl must deliver everything within its retry budget (no run left incomplete), send
nothing twice in effect, and keep every platform limit: batch sizes, rate limits and requests
in flight, which the fakes count and check. Retry waits are kept short through the
destinations' settings (``backoff``, ``timeout``), not by patching sleep.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.scenario import (
    AS_OF,
    Platforms,
    delivery_problems,
    environment,
    expected_members,
    state_problems,
    write_project,
)

import segctl as lib

#: Fast retries, and a timeout that the fakes' injected delays (up to 0.5 s) often exceed.
FAST = {"max_retries": 10, "backoff": 0.01, "timeout": 0.25}


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    with Platforms(latency=0.002) as started:
        yield started


def run_all(root: Path, steps: int = len(AS_OF)) -> list[Any]:
    """The scenario's runs (the first ``steps``), in process; their delivery reports."""
    reports = []
    for step, moment in enumerate(AS_OF[:steps]):
        project = lib.Project.load(root, environ=environment())
        result = project.run(as_of=moment, fire_initial=step == 0)
        reports.append(result.report)
    return reports


@pytest.mark.parametrize(
    "seed", [1, *(pytest.param(seed, marks=pytest.mark.slow) for seed in range(2, 12))]
)
def test_thirty_percent_transient_faults_everything_delivered_within_the_retry_budget(
    tmp_path: Path, platforms: Platforms, seed: int
) -> None:
    root = write_project(tmp_path / "proj", platforms, common=FAST)
    platforms.chaos(
        0.3, seed, kinds=("status", "platform", "delay", "reset", "lost"), max_delay=0.5
    )
    reports = run_all(root)
    faults, requests = sum(platforms.faults().values()), platforms.request_count()
    assert all(r is not None and r.complete for r in reports), [r and r.messages for r in reports]
    runs = expected_members(root)
    assert delivery_problems(root, platforms, runs) == []  # limits included
    assert state_problems(root, runs) == []
    assert 0.2 * requests <= faults <= 0.4 * requests, (faults, requests)
    assert set(platforms.faults()) == {
        f"{n}Fake" for n in ("Meta", "Google", "TikTok", "Resend", "Webhook")
    }


def test_throttling_answers_are_honoured_and_retried(tmp_path: Path, platforms: Platforms) -> None:
    """Each platform's own throttling answer, twice in a row; with Retry-After, the next
    request waits for it (webhooks one at a time here, so that "next" is well defined)."""
    root = write_project(tmp_path / "proj", platforms, common=FAST, crm={"concurrency": 1})
    platforms.meta.inject(platform_error=80003, times=2)
    platforms.meta.inject(platform_error=613, times=1)
    platforms.google.inject(platform_error="RESOURCE_EXHAUSTED", times=2)
    platforms.tiktok.inject(platform_error=40100, times=2)
    throttled = {
        "resend": platforms.resend.inject(
            platform_error="rate_limit_exceeded", retry_after=0.3, times=2
        ),
        "hook": platforms.hook.inject(status=429, retry_after=0.3, times=2),
    }
    reports = run_all(root, steps=1)
    assert all(r is not None and r.complete for r in reports)
    runs = expected_members(root)[:1]
    assert delivery_problems(root, platforms, runs) == []
    assert state_problems(root, runs) == []
    assert all(f.hits == 2 for f in throttled.values())
    for fake in (platforms.resend, platforms.hook):
        requests = fake.requests
        for before, after in itertools.pairwise(requests):
            if before.status == 429:
                assert after.at - before.at >= 0.29, (type(fake).__name__, before.path)


def test_concurrency_is_real_and_bounded(tmp_path: Path, platforms: Platforms) -> None:
    """Webhook batches go out several at a time, never more than the destination allows."""
    root = write_project(
        tmp_path / "proj", platforms, common=FAST, crm={"concurrency": 3, "timeout": 5}
    )
    platforms.hook.concurrency_limit = 3
    platforms.hook.latency = 0.05
    run_all(root, steps=1)
    assert platforms.limit_problems() == []
    assert 2 <= platforms.hook.max_concurrent <= 3
    assert max(platforms.hook.max_batch.values(), default=0) <= 4


def test_malformed_throttling_answers_are_retried_not_fatal(
    tmp_path: Path, platforms: Platforms
) -> None:
    """A Retry-After that is neither seconds nor a date (or infinite), and a Meta usage header
    that is not a number of minutes, count as absent: the request is retried as usual. (A
    malformed Retry-After used to raise ValueError out of the delivery: exit 70.)"""
    root = write_project(tmp_path / "proj", platforms, common=FAST)
    for value in ("soon", "1, 0.3", "inf"):
        platforms.hook.inject(status=503, headers={"Retry-After": value})
        platforms.google.inject(status=503, headers={"Retry-After": value})
        platforms.tiktok.inject(platform_error=40100, headers={"Retry-After": value})
    platforms.resend.inject(platform_error="rate_limit_exceeded", headers={"retry-after": "nan"})
    usage = '{"1": [{"estimated_time_to_regain_access": "soon"}]}'
    platforms.meta.inject(platform_error=80003, headers={"X-Business-Use-Case-Usage": usage})
    [report] = run_all(root, steps=1)
    assert report is not None and report.complete, report and report.messages
    runs = expected_members(root)[:1]
    assert delivery_problems(root, platforms, runs) == []
    assert sum(platforms.faults().values()) == 11
