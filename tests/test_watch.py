"""`segctl watch` end to end: a real subprocess, real files, a real webhook receiver, real
signals (SPEC section 5)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import TEST_SECRET, WebhookFake
from stateproject import segctl

import segctl as lib
from segctl.errors import UsageError
from segctl.lock import state_lock
from segctl.state import DB_FILE
from segctl.watch import RunLine, Watch, _finished, parse_every, retry_delay

WINDOW = timedelta(days=30)
RECENT = """\
    name: recent
    rule: {event: "*", within: 30d, count: {gte: 1}}
    on_enter:
      - webhook: {destination: crm}
    on_exit:
      - webhook: {destination: crm}
    """


def now() -> datetime:
    return datetime.now(UTC)


def drop(folder: Path, name: str, rows: list[tuple[str, str, datetime]]) -> Path:
    """Land an events file the way a pipeline should: written aside, renamed into place."""
    table = pa.table(
        {
            "person_id": [r[0] for r in rows],
            "event": [r[1] for r in rows],
            "timestamp": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )
    partial = folder / f".{name}.partial"
    pq.write_table(table, partial)
    os.replace(partial, folder / name)
    return folder / name


def make_project(root: Path, url: str, extra: str = "") -> Path:
    (root / "segments").mkdir(parents=True)
    (root / "events").mkdir()
    (root / "segctl.yaml").write_text(
        dedent(f"""\
        data:
          events: events/*.parquet
          persons: persons.csv
        segments: segments/
        state: .segctl/
        destinations:
          crm: {{type: webhook, url: "{url}", secret: "${{CRM_SECRET}}", backoff: 0.01,
                 max_retries: 1, timeout: 5}}
        """)
        + extra
    )
    (root / "persons.csv").write_text(
        "person_id,email\n" + "".join(f"p{i},p{i}@example.com\n" for i in range(1, 7))
    )
    (root / "segments" / "recent.yaml").write_text(dedent(RECENT))
    drop(root / "events", "day-1.parquet", [("p1", "login", now() - timedelta(days=2))])
    return root


STARTED: list[Watching] = []  # every watch a test started, killed after the test if alive


class Watching:
    """A running `segctl watch` whose stdout lines (JSON) are collected as they come."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "segctl", "watch", "-f", "json", "--project", str(root), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CRM_SECRET": TEST_SECRET},
        )
        STARTED.append(self)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        # One reader per pipe, and nothing else reads them (communicate() would race the
        # stdout reader for the last lines).
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def next_run(self, timeout: float = 90) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no run logged in {timeout}s: {''.join(self.stderr)}") from None
        self.seen.append(line)
        return line

    def until(self, check: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                self.proc.wait()
                err = "".join(self.stderr)
                raise AssertionError(f"timed out; runs: {self.seen}; stderr: {err}")
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.proc.returncode, "".join(self.stderr)

    def close(self) -> None:
        """Once the process has ended: read its pipes to the end, then close them."""
        for reader in self._readers:
            reader.join(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(autouse=True)
def _no_watch_left() -> Iterator[None]:
    """A test that fails half-way must not leave its watch running."""
    yield
    while STARTED:
        watching = STARTED.pop()
        if watching.proc.poll() is None:
            watching.proc.kill()
        watching.proc.wait()
        watching.close()


@pytest.fixture
def hook() -> Iterator[WebhookFake]:
    with WebhookFake(secret=TEST_SECRET) as fake:
        yield fake


def transitions(hook: WebhookFake) -> list[tuple[str, str]]:
    return [(e["type"], e["person_id"]) for e in hook.events()]


def lock_is_free(root: Path) -> bool:
    with state_lock(root / ".segctl", wait=0):
        return True


def test_a_landed_file_reaches_the_webhook_and_time_alone_makes_an_exit(
    tmp_path: Path, hook: WebhookFake
) -> None:
    root = make_project(tmp_path / "proj", hook.url)
    watching = Watching(root, "--every", "1s", "--poll", "0.2s")
    first = watching.next_run()
    assert first["run_id"] == 1 and first["new_files"] == 1 and "error" not in first
    assert first["persons"] == 6 and first["entered"] == 1  # p1; no webhook for a first run
    # p3's only event leaves the 30-day window a few seconds from now: with no new file, a run
    # must notice that p3 has exited
    landed = now()
    drop(
        root / "events", "day-2.parquet", [("p3", "login", landed - WINDOW + timedelta(seconds=12))]
    )
    watching.until(lambda: ("segment.entered", "p3") in transitions(hook))
    entered_at = time.monotonic()
    watching.until(lambda: ("segment.exited", "p3") in transitions(hook))
    assert time.monotonic() - entered_at < 60
    assert transitions(hook) == [("segment.entered", "p3"), ("segment.exited", "p3")]
    watching.until(lambda: any(r.get("exited") for r in watching.seen))  # its log line
    runs = [r for r in watching.seen if "error" not in r and r["run_id"] > 1]
    [entry] = [r for r in runs if r["entered"]]
    [exit_] = [r for r in runs if r["exited"]]
    assert entry["new_files"] == 1 and entry["deliveries"]["sent"] == 1
    assert exit_["new_files"] == 0 and exit_["deliveries"]["sent"] == 1
    assert exit_["run_id"] > entry["run_id"]
    code, err = watching.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err and "stopped after" in err
    assert lock_is_free(root)


def test_an_idle_watch_holds_no_lock_and_a_failing_delivery_does_not_stop_it(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port where nothing listens: every delivery fails
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = make_project(tmp_path / "proj", f"http://127.0.0.1:{port}/hook")
    watching = Watching(root, "--every", "1h", "--poll", "0.2s")
    assert watching.next_run()["run_id"] == 1
    # idle: a run and a push beside it work at once
    env = {"CRM_SECRET": TEST_SECRET}
    time.sleep(1.1)  # as_of has a one-second precision and must move forward
    beside = segctl(root, "run", "--wait", "0", env=env)  # --wait 0: fails at once if locked
    assert beside.returncode == 0, beside.stderr
    assert segctl(root, "push", "--wait", "0", env=env).returncode == 0
    drop(root / "events", "day-2.parquet", [("p4", "login", now() - timedelta(seconds=2))])
    failed = watching.next_run()
    assert failed["entered"] == 1 and failed["deliveries"]["sent"] == 0, failed
    assert failed["deliveries"]["failed"] + failed["deliveries"]["pending"] == 1
    drop(root / "events", "day-3.parquet", [("p5", "login", now() - timedelta(seconds=2))])
    later = watching.next_run()  # it goes on, and retries what failed
    assert later["entered"] == 1 and "error" not in later and later["new_files"] == 1
    code, err = watching.stop(signal.SIGINT)
    assert code == 0, err
    assert lock_is_free(root)
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    undelivered = con.execute(
        "SELECT person_id FROM outbox WHERE status <> 'sent' ORDER BY 1"
    ).fetchall()
    con.close()
    assert undelivered == [("p4",), ("p5",)]  # left in the outbox for the next push


def test_a_run_beside_the_watch_in_the_same_second_delays_the_watchs_run_not_fails_it(
    tmp_path: Path, hook: WebhookFake
) -> None:
    """as_of has a one-second precision and moves forward: when another command commits a
    run at (or after) the second the watch's next run would take, the watch waits for the
    second after it instead of logging a failed run (it did, and its new file then waited
    for the retry)."""
    root = make_project(tmp_path / "proj", hook.url)
    watching = Watching(root, "--every", "1h", "--poll", "0.2s")
    assert watching.next_run()["run_id"] == 1
    ahead = now() + timedelta(seconds=3)  # as a run beside it that took this second would
    stamp = ahead.strftime("%Y-%m-%dT%H:%M:%SZ")
    beside = segctl(root, "run", "--as-of", stamp, "--wait", "0", env={"CRM_SECRET": TEST_SECRET})
    assert beside.returncode == 0, beside.stderr
    drop(root / "events", "day-2.parquet", [("p4", "login", now() - timedelta(seconds=2))])
    run = watching.next_run()
    assert "error" not in run and run["run_id"] == 3 and run["new_files"] == 1, run
    assert run["as_of"] > stamp
    code, err = watching.stop(signal.SIGTERM)
    assert code == 0, err


def test_sigterm_during_a_run_lets_it_commit_and_deliver(tmp_path: Path) -> None:
    with WebhookFake(secret=TEST_SECRET, latency=3.0) as slow:
        root = make_project(tmp_path / "proj", slow.url)
        watching = Watching(root, "--every", "1h", "--poll", "0.2s")
        assert watching.next_run()["run_id"] == 1
        drop(root / "events", "day-2.parquet", [("p6", "login", now() - timedelta(seconds=2))])
        watching.until(lambda: slow.max_concurrent >= 1)  # the delivery is in flight
        code, err = watching.stop(signal.SIGTERM)
        assert code == 0, err
        assert [r["run_id"] for r in watching.seen] == [1, 2]
        assert watching.seen[-1]["deliveries"]["sent"] == 1
        assert transitions(slow) == [("segment.entered", "p6")]
        assert lock_is_free(root)


def test_sigterm_while_a_delivery_retries_stops_at_once_and_leaves_it_pending(
    tmp_path: Path, hook: WebhookFake
) -> None:
    """The run commits; its delivery, failing and retried with a long backoff, makes no
    new request and waits for no retry once told to stop (it waited out every retry: 61 s
    for one webhook in the audit, minutes with a slower backoff)."""
    root = make_project(tmp_path / "proj", hook.url)
    config = (root / "segctl.yaml").read_text()
    (root / "segctl.yaml").write_text(
        config.replace("backoff: 0.01", "backoff: 30").replace("max_retries: 1", "max_retries: 5")
    )
    hook.inject(status=500, times=None)
    watching = Watching(root, "--every", "1h", "--poll", "0.2s")
    assert watching.next_run()["run_id"] == 1
    drop(root / "events", "day-2.parquet", [("p6", "login", now() - timedelta(seconds=2))])
    watching.until(lambda: len(hook.requests) >= 1)  # failed once, waiting for its retry
    asked = time.monotonic()
    code, err = watching.stop(signal.SIGTERM)
    assert code == 0, err
    assert time.monotonic() - asked < 20  # not the 30 s of the first retry's wait
    assert len(hook.requests) == 1
    assert [(r["run_id"], r["deliveries"]["pending"]) for r in watching.seen] == [(1, 0), (2, 1)]
    assert lock_is_free(root)
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    left = con.execute("SELECT person_id, status, attempts FROM outbox").fetchall()
    con.close()
    assert left == [("p6", "pending", 0)]  # for the next run or push


def test_a_failed_run_is_logged_and_the_watch_goes_on(tmp_path: Path, hook: WebhookFake) -> None:
    root = make_project(tmp_path / "proj", hook.url)
    watching = Watching(root, "--every", "1h", "--poll", "0.2s")
    assert watching.next_run()["run_id"] == 1
    (root / "events" / ".bad.partial").write_bytes(b"PAR1 this is not parquet")
    os.replace(root / "events" / ".bad.partial", root / "events" / "day-2.parquet")
    failed = watching.next_run()
    assert failed["run_id"] is None and "day-2.parquet" in failed["error"], failed
    assert failed["new_files"] is None  # it read none: no count, not a false 0
    # the pipeline lands the file again, whole: the watch reads it on its next attempt
    drop(root / "events", "day-2.parquet", [("p2", "login", now() - timedelta(seconds=2))])
    fixed = watching.next_run()
    assert fixed["run_id"] == 2 and fixed["entered"] == 1 and fixed["new_files"] == 1, fixed
    watching.until(lambda: transitions(hook) == [("segment.entered", "p2")])
    code, err = watching.stop()
    assert code == 0, err


class FakeTime:
    """The watch's clock and its waits, without waiting: each wait moves the clock."""

    def __init__(self, until: float) -> None:
        self.now = 0.0
        self.until = until

    def monotonic(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.now > self.until

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return self.is_set()


Listing = dict[str, tuple[int, int]]


def loop_on_a_fake_clock(
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeTime,
    listing: Callable[[], Listing],
    run_once: Callable[[Watch], bool],
    every: float,
    read: Listing | None = None,
) -> None:
    """The real watch loop (--poll 1s) on ``clock``, polling ``listing()``, each run being
    ``run_once``; ``read``: the inputs as the last committed run read them."""
    monkeypatch.setattr("segctl.watch.time", clock)
    monkeypatch.setattr("segctl.watch.runfiles.listing", lambda config, extra: listing())
    monkeypatch.setattr("segctl.watch._definition_files", lambda config: ())
    monkeypatch.setattr(Watch, "_load", lambda self: SimpleNamespace(config=None))
    monkeypatch.setattr(Watch, "run_once", run_once)
    watch = Watch(None, every=every, poll=1, emit=lambda line: None)
    watch.stopping = clock  # type: ignore[assignment]
    watch._read = dict(read or {})
    watch.loop()


@pytest.mark.parametrize("locked", [False, True])
def test_a_failing_run_is_tried_again_less_and_less_often_until_an_input_changes(
    monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    """The loop's schedule on a fake clock (--every 1m, --poll 1s): a run that fails the same
    way until an input changes (a broken segment) is tried again after 5, 10, 20, 40 s, then
    every minute; a change runs at once (once settled: two polls alike); a state locked by
    another command is tried every 5 s."""
    clock = FakeTime(until=150)
    # The segment as the last good run read it, broken (the first run fails), then mended.
    read, broken, mended = ({"segments/s.yaml": (size, 1)} for size in (8, 9, 10))
    runs: list[float] = []

    def run_once(self: Watch) -> bool:
        runs.append(clock.now)
        if clock.now >= 100 and not locked:
            self._read = dict(mended)
            return True
        self._locked = locked
        return False

    def listing() -> Listing:
        return mended if clock.now >= 100 else broken

    loop_on_a_fake_clock(monkeypatch, clock, listing, run_once, every=60, read=read)
    if locked:
        assert runs == [5.0 * i for i in range(31)]
    else:
        assert runs == [0, 5, 15, 35, 75, 101]  # a change at 100, settled at 101
    assert [retry_delay(n, 60, False) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert retry_delay(30, 3600, False) == 3600 and retry_delay(9, 3600, True) == 5


@pytest.fixture
def deliveries_stopping() -> Iterator[threading.Event]:
    """segctl.delivery.retry.stopping, which Watch.stop sets, cleared after the test."""
    from segctl.delivery.retry import stopping

    stopping.clear()
    yield stopping
    stopping.clear()


def watch_in_process(
    root: Path, monkeypatch: pytest.MonkeyPatch, run_once: Callable[[Watch], bool]
) -> Watch:
    """A watch of ``root`` in this process whose runs are ``run_once``."""
    monkeypatch.setenv("CRM_SECRET", TEST_SECRET)
    monkeypatch.setattr(Watch, "run_once", run_once)
    return Watch(root, every=3600, poll=0.01, emit=lambda line: None)


def delivering_run(root: Path) -> tuple[int, int]:
    """A run in this process that enters p1 and fires its webhook: (sent, pending)."""
    report = lib.Project.load(root).run(fire_initial=True).report
    assert report is not None
    return report.sent, report.pending


def test_a_run_after_a_watch_stopped_in_the_same_process_still_delivers(
    tmp_path: Path,
    hook: WebhookFake,
    monkeypatch: pytest.MonkeyPatch,
    deliveries_stopping: threading.Event,
) -> None:
    """Stopping a watch tells deliveries to stop; once its loop has ended, they may go
    again: a run or a push later in the same process (a library user, a test suite)
    delivers, it does not leave everything pending as though it were stopping too."""
    root = make_project(tmp_path / "proj", hook.url)

    def run_once(self: Watch) -> bool:
        self.stop()  # SIGTERM during the run
        assert deliveries_stopping.is_set()
        return True

    watch_in_process(root, monkeypatch, run_once).loop()
    assert delivering_run(root) == (1, 0)
    assert transitions(hook) == [("segment.entered", "p1")]


def test_a_watch_stopped_before_its_loop_does_not_stop_the_next_watchs_deliveries(
    tmp_path: Path,
    hook: WebhookFake,
    monkeypatch: pytest.MonkeyPatch,
    deliveries_stopping: threading.Event,
) -> None:
    """A watch stopped before its loop began (a SIGTERM while it started) left deliveries
    stopping; the next watch in the same process delivers what its runs queue."""
    root = make_project(tmp_path / "proj", hook.url)
    Watch(root, every=3600, emit=lambda line: None).stop()
    delivered: list[tuple[int, int]] = []

    def run_once(self: Watch) -> bool:
        delivered.append(delivering_run(root))
        self.stop()
        return True

    watch_in_process(root, monkeypatch, run_once).loop()
    assert delivered == [(1, 0)]
    assert transitions(hook) == [("segment.entered", "p1")]


def a_parquet_file(path: Path, rows: int = 2000) -> bytes:
    """A Parquet file of several row groups (as a writer leaves it, footer last); its bytes."""
    table = pa.table({"person_id": [f"p{i % 97}" for i in range(rows)], "n": list(range(rows))})
    pq.write_table(table, path, row_group_size=rows // 4)
    return path.read_bytes()


def test_a_parquet_file_is_finished_only_once_its_footer_is_written(tmp_path: Path) -> None:
    """A finished Parquet file needs no second poll to settle; no prefix of one (a file still
    being written or copied) passes for finished, nor a file of another format, nor one whose
    size is not the listing's any more."""
    whole = a_parquet_file(tmp_path / "whole.parquet")
    assert _finished(str(tmp_path / "whole.parquet"), len(whole))
    (tmp_path / "WHOLE.PQ").write_bytes(whole)  # any name the loader reads as Parquet
    assert _finished(str(tmp_path / "WHOLE.PQ"), len(whole))
    part = tmp_path / "part.parquet"
    for length in range(len(whole)):
        part.write_bytes(whole[:length])
        assert not _finished(str(part), length), length
    assert not _finished(str(tmp_path / "whole.parquet"), len(whole) - 1)  # grew since
    (tmp_path / "whole.csv").write_bytes(whole)
    assert not _finished(str(tmp_path / "whole.csv"), len(whole))
    assert not _finished(str(tmp_path / "missing.parquet"), len(whole))


def test_a_finished_parquet_file_runs_at_the_first_poll_that_sees_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a fake clock (--every 1h, --poll 1s): a finished Parquet file landing at 10.5 s
    runs at the poll of 11 s, not 12 s; a CSV file landing at 20.5 s waits for two polls
    alike (22 s), as before; a Parquet file written a third at a time from 30.5 s runs at
    the first poll that finds it whole (33 s), not while it grows."""
    clock = FakeTime(until=45)
    whole = a_parquet_file(tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_text("person_id,event,timestamp\np1,login,2026-11-01\n")
    growing = tmp_path / "c.parquet"

    def listing() -> Listing:
        found = {}
        for path, landed in ((tmp_path / "a.parquet", 10.5), (tmp_path / "b.csv", 20.5)):
            if clock.now >= landed:
                found[str(path)] = (path.stat().st_size, 1)
        if clock.now >= 30.5:  # written a third at a time: whole from 32.5 s
            stage = min(int(clock.now - 30.5), 2)
            growing.write_bytes(whole[: len(whole) * (stage + 1) // 3])
            found[str(growing)] = (growing.stat().st_size, stage)
        return found

    runs: list[float] = []

    def run_once(self: Watch) -> bool:
        runs.append(clock.now)
        self._read = listing()
        return True

    loop_on_a_fake_clock(monkeypatch, clock, listing, run_once, every=3600)
    assert runs == [0, 11, 22, 33]


def land(path: Path, text: str) -> None:
    """Re-export a file the way a pipeline should: written aside, renamed into place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def test_a_reexported_persons_or_list_file_runs_without_waiting_for_every(
    tmp_path: Path, hook: WebhookFake
) -> None:
    """The watch polls every input, not the event files alone: a CRM's re-exported persons
    file and a list with a new entry each run within a few polls (--every is an hour here),
    and once the state keeps the row hashes, such a run re-evaluates the persons it changed."""
    root = make_project(tmp_path / "proj", hook.url)
    plans = {f"p{i}": "free" for i in range(1, 7)}

    def persons() -> str:
        return "person_id,email,plan\n" + "".join(
            f"{p},{p}@example.com,{plan}\n" for p, plan in plans.items()
        )

    land(root / "persons.csv", persons())
    land(root / "vip.csv", "person_id\np1\n")
    drop(root / "events", "day-0.parquet", [("p5", "login", now() - timedelta(days=3))])
    hooks = "on_enter: [{webhook: {destination: crm}}]"
    (root / "segments" / "pro.yaml").write_text(
        f"name: pro\nrule: {{property: plan, eq: pro}}\n{hooks}\n"
    )
    (root / "segments" / "vip.yaml").write_text(
        f"name: vip\nrule: {{list: {{file: vip.csv, key: person_id}}}}\n{hooks}\n"
    )
    watching = Watching(root, "--every", "1h", "--poll", "0.2s")
    assert watching.next_run()["run_id"] == 1
    plans["p2"] = "pro"
    land(root / "persons.csv", persons())
    first = watching.next_run(timeout=30)  # the first re-export: a full run, said
    assert (first["run_id"], first["new_files"], first["entered"]) == (2, 0, 1), first
    assert first["persons"] == 6 and first["full_reason"] == "persons.csv changed"
    plans["p3"] = "pro"
    land(root / "persons.csv", persons())
    second = watching.next_run(timeout=30)  # later ones: the persons whose rows changed
    assert (second["run_id"], second["persons"], second["entered"]) == (3, 1, 1), second
    assert second["full_reason"] is None
    land(root / "vip.csv", "person_id\np1\np4\n")
    listed = watching.next_run(timeout=30)
    assert (listed["run_id"], listed["persons"], listed["entered"]) == (4, 1, 1), listed
    (root / "events" / "day-1.parquet").unlink()  # p1's only event: p1 leaves `recent`
    gone = watching.next_run(timeout=30)
    assert (gone["run_id"], gone["exited"]) == (5, 1), gone
    assert gone["full_reason"] == "events/day-1.parquet is gone"
    watching.until(lambda: len(transitions(hook)) == 4)
    assert transitions(hook) == [
        *[("segment.entered", p) for p in ("p2", "p3", "p4")],
        ("segment.exited", "p1"),
    ]
    code, err = watching.stop()
    assert code == 0, err
    assert [r["run_id"] for r in watching.seen] == [1, 2, 3, 4, 5]  # no run without a change


def test_an_edited_added_or_removed_segment_runs_without_waiting_for_every(
    tmp_path: Path, hook: WebhookFake
) -> None:
    """The watch polls the definitions too: an edited segment file, a new one and a removed
    one each run within a few polls (--every is an hour here), in full, saying why; a
    segment edited into an invalid one is a failed run, and removing it runs."""
    root = make_project(tmp_path / "proj", hook.url)
    drop(root / "events", "day-0.parquet", [("p2", "login", now() - timedelta(days=40))])
    watching = Watching(root, "--every", "1h", "--poll", "0.2s")
    assert watching.next_run()["run_id"] == 1  # p1 enters `recent` (no fire: first run)
    recent = root / "segments" / "recent.yaml"
    recent.write_text(dedent(RECENT).replace("within: 30d", "within: 60d"))
    edited = watching.next_run(timeout=30)  # p2's login 40 days ago counts now
    assert (edited["run_id"], edited["entered"], edited["exited"]) == (2, 1, 0), edited
    assert edited["full_reason"] == "segment 'recent' changed", edited
    hooks = "on_enter: [{webhook: {destination: crm}}]"
    (root / "segments" / "old.yaml").write_text(
        f"name: old\nrule: {{event: login, last_seen: {{older_than: 30d}}}}\n{hooks}\n"
    )
    added = watching.next_run(timeout=30)  # a new segment: its members enter, unfired
    assert (added["run_id"], added["entered"]) == (3, 1), added
    assert added["full_reason"] == "segment 'old' is new", added
    (root / "segments" / "old.yaml").write_text("name: old\nrule: {event: login, within: }\n")
    failed = watching.next_run(timeout=30)
    assert failed["run_id"] is None and "old.yaml" in failed["error"], failed
    (root / "segments" / "old.yaml").unlink()
    removed = watching.next_run(timeout=30)
    assert (removed["run_id"], removed["full_reason"]) == (4, "segment 'old' is gone"), removed
    watching.until(lambda: len(transitions(hook)) == 1)
    assert transitions(hook) == [("segment.entered", "p2")]
    code, err = watching.stop()
    assert code == 0, err
    assert [r["run_id"] for r in watching.seen] == [1, 2, 3, None, 4]


def test_a_run_line_says_why_a_run_evaluated_everyone() -> None:
    moment = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    full = RunLine(moment, 0, 1.5, run_id=3, persons=6, full_reason="persons.csv changed")
    assert "6 persons evaluated (full evaluation: persons.csv changed), 0 entered" in full.text()
    assert full.to_dict()["full_reason"] == "persons.csv changed"
    incremental = RunLine(moment, 1, 0.5, run_id=4, persons=2)
    assert "2 persons evaluated, 0 entered" in incremental.text()
    assert incremental.to_dict()["full_reason"] is None


def test_every_takes_seconds_minutes_and_hours() -> None:
    assert [parse_every(t) for t in ("30s", "1m", "2h", "0.5s")] == [30, 60, 7200, 0.5]
    for bad in ("", "5", "5d", "0s", "-1m", "m"):
        with pytest.raises(UsageError, match="s, m or h"):
            parse_every(bad)


def test_watch_refuses_a_bad_every_and_a_broken_project(tmp_path: Path, hook: WebhookFake) -> None:
    root = make_project(tmp_path / "proj", hook.url)
    proc = segctl(root, "watch", "--every", "5d")
    assert proc.returncode == 2 and "--every '5d'" in proc.stderr
    (root / "segments" / "broken.yaml").write_text("name: broken\nrule: {event: x, cnt: 1}\n")
    proc = segctl(root, "watch", "--every", "1s", env={"CRM_SECRET": TEST_SECRET})
    assert proc.returncode == 3 and "broken.yaml" in proc.stderr
    assert not (root / ".segctl" / DB_FILE).exists()
    (root / "segments" / "broken.yaml").unlink()
    # A secret's variable not set stops it at the start, not at every run of the loop.
    environ = {k: v for k, v in os.environ.items() if k != "CRM_SECRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "segctl", "watch", "--every", "1s", "--project", str(root)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3 and "CRM_SECRET is not set" in proc.stderr
    assert not (root / ".segctl" / DB_FILE).exists()
