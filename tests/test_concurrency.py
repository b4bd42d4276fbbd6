"""Concurrency and disk (SPEC 5): two runs at once, writes cut short, a full disk.

- Two `segctl run` at once on one state: the second exits 6 naming the holder, or with
  ``--wait`` runs after the first; either way every action is delivered once.
- A process killed while writing emitted events or an ``--out`` report (SIGXFSZ from a file size
  limit kills it in the middle of a write) leaves the previous file whole: writers write a
  temporary file and rename it.
- The state folder on a full disk (a small tmpfs when this process may mount one, otherwise a
  file size limit on the command) gives a clear error, exit 4 or 70, no traceback, and the
  previous state still opens, unchanged; the next run, with space again, goes through.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from fakes.scenario import (
    AS_OF,
    Platforms,
    delivery_problems,
    environment,
    expected_members,
    iso,
    state_problems,
    write_project,
)

REPO = Path(__file__).resolve().parents[1]
# The CLI; with KILL_AT_LIMIT, SIGXFSZ's default action is back (Python ignores it at startup),
# so that a write beyond the file size limit kills the process in the middle of it, as a crash
# would. Without, the write fails with EFBIG, as on a full disk.
LAUNCH = (
    "import os, signal, sys\n"
    "if os.environ.get('KILL_AT_LIMIT'): signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
    "sys.argv[0] = 'segctl'\n"
    "from segctl.cli import main\n"
    "main()"
)


def start(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
    limit: int | None = None,
    kill_at_limit: bool = True,
) -> subprocess.Popen[str]:
    """`segctl ARGS` as a process; ``limit`` caps the size of any file it writes (RLIMIT_FSIZE):
    beyond it SIGXFSZ kills it mid-write, or without ``kill_at_limit`` the write fails (EFBIG)."""

    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    kill = {"KILL_AT_LIMIT": "1"} if limit is not None and kill_at_limit else {}
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args, "--project", str(root)],
        cwd=REPO,
        env={**os.environ, **environment(), **kill, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limited if limit is not None else None,
    )


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def segctl(root: Path, *args: str, **options: object) -> subprocess.CompletedProcess[str]:
    return finish(start(root, *args, **options))  # type: ignore[arg-type]


def wait_for_lock(root: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until ``proc`` holds the state lock (it writes its pid into the lock file)."""
    lock = root / ".segctl" / "segctl.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, finish(proc).stderr
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("the run never took the lock")


@pytest.fixture
def slow_platforms() -> Iterator[Platforms]:
    """Webhooks that take a while, so that a run holds the lock for seconds."""
    with Platforms() as platforms:
        platforms.hook.latency = 0.3
        yield platforms


def slow_project(tmp_path: Path, platforms: Platforms) -> Path:
    return write_project(tmp_path / "proj", platforms, crm={"concurrency": 1})


def test_two_runs_at_once_one_exits_6_one_waits(tmp_path: Path, slow_platforms: Platforms) -> None:
    """While a run holds the state: another exits 6 at once, naming it; one with --wait runs
    after it. Every action is delivered once, the history holds both runs in order."""
    root = slow_project(tmp_path, slow_platforms)
    first = start(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial")
    wait_for_lock(root, first)
    waiting = start(root, "run", "--as-of", iso(AS_OF[1]), "--wait", "300")
    refused = segctl(root, "run", "--as-of", iso(AS_OF[1]))
    done, after = finish(first), finish(waiting)
    assert done.returncode == 0, done.stderr
    assert refused.returncode == 6, refused.stderr
    holders = (f"pid {first.pid} ", f"pid {waiting.pid} ")  # on a slow machine, the waiter
    assert any(h in refused.stderr for h in holders) and "segctl run" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
    assert after.returncode == 0, after.stderr
    runs = expected_members(root)[:2]
    assert delivery_problems(root, slow_platforms, runs) == []
    assert state_problems(root, runs) == []


# ---- writes cut short -------------------------------------------------------------------------


def test_a_push_killed_while_writing_emitted_events_leaves_the_file_whole(
    tmp_path: Path,
) -> None:
    with Platforms() as platforms:
        root = write_project(tmp_path / "proj", platforms)
        assert segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial").returncode == 0
        emitted = root / ".segctl" / "emitted_events.parquet"
        before = emitted.read_bytes()
        # Run 2 commits, then dies before delivering: its entries are left for a push.
        crashed = segctl(
            root, "run", "--as-of", iso(AS_OF[1]), env={"SEGCTL_CRASH_AT": "commit:after-commit"}
        )
        assert crashed.returncode == -signal.SIGKILL
        # The push dies (SIGXFSZ) in the middle of writing the larger events file.
        killed = segctl(root, "push", limit=len(before))
        assert killed.returncode == -signal.SIGXFSZ, killed.stderr
        assert emitted.read_bytes() == before
        assert segctl(root, "push").returncode == 0
        runs = expected_members(root)[:2]
        assert delivery_problems(root, platforms, runs) == []
        assert state_problems(root, runs) == []
        assert [p.name for p in (root / ".segctl").iterdir() if ".tmp" in p.name] == []


@pytest.mark.parametrize("suffix", [".parquet", pytest.param(".csv", marks=pytest.mark.slow)])
def test_a_report_cut_short_leaves_the_previous_one_whole(tmp_path: Path, suffix: str) -> None:
    from stateproject import AS_OF as TIMES
    from stateproject import write_project as simple_project

    root = simple_project(tmp_path / "proj")
    out = tmp_path / f"members{suffix}"
    args = ("evaluate", "--as-of", iso(TIMES[0]), "--out", str(out))
    assert segctl(root, *args).returncode == 0
    before = out.read_bytes()
    read: Callable[[Path], pl.DataFrame] = pl.read_csv if suffix == ".csv" else pl.read_parquet
    # A wider report (more persons) under a size limit just above the old one.
    persons = (root / "persons.csv").read_text()
    extra = "".join(f"q{i},q{i}@example.com,free\n" for i in range(2000))
    (root / "persons.csv").write_text(persons + extra)
    (root / "segments" / "everyone.yaml").write_text(
        "name: everyone\nrule: {property: plan, eq: free}\n"
    )
    killed = segctl(root, *args, limit=len(before) + 64)
    assert killed.returncode == -signal.SIGXFSZ
    assert out.read_bytes() == before and read(out).height > 0
    refused = segctl(root, *args, limit=len(before) + 64, kill_at_limit=False)
    assert refused.returncode in (4, 70), refused.stderr
    assert "Traceback" not in refused.stderr and "File too large" in refused.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [out.name]
    assert segctl(root, *args).returncode == 0
    assert read(out).height > read_before(before, suffix).height


def read_before(data: bytes, suffix: str) -> pl.DataFrame:
    import io

    return pl.read_csv(io.BytesIO(data)) if suffix == ".csv" else pl.read_parquet(io.BytesIO(data))


# ---- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 16 MiB tmpfs at tmp_path/disk, or None when this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk up; returns the filler file (remove it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        block = b"\0" * 65536
        while True:
            try:
                os.write(fd, block)
            except OSError:
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return filler


def committed(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(folder / "state.duckdb"), read_only=True)
    try:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("runs", "run_segments", "transitions", "snapshot", "outbox", "tags")
        }
    finally:
        con.close()


@pytest.mark.parametrize("disk", ["tmpfs", pytest.param("file size limit", marks=pytest.mark.slow)])
def test_the_state_on_a_full_disk_gives_a_clear_error_and_stays_whole(
    tmp_path: Path, small_disk: Path | None, disk: str
) -> None:
    """A tmpfs filled up (ENOSPC) when this process may mount one; otherwise, and always for the
    second case, a file size limit of 0 on the command (EFBIG on its first write)."""
    from stateproject import AS_OF as TIMES
    from stateproject import write_project as simple_project

    if small_disk is None:
        disk = "file size limit"  # cannot mount a tmpfs here (needs root)
    root = simple_project(tmp_path / "proj")
    folder = (small_disk if disk == "tmpfs" else tmp_path) / "state"  # type: ignore[operator]
    config = root / "segctl.yaml"
    config.write_text(config.read_text().replace("state: .segctl/", f"state: {folder}/"))
    assert segctl(root, "run", "--as-of", iso(TIMES[0])).returncode == 0
    before = committed(folder)
    if disk == "tmpfs":
        filler = fill(small_disk)  # type: ignore[arg-type]
        failed = segctl(root, "run", "--as-of", iso(TIMES[1]))
        filler.unlink()
        reason = "No space left on device"
    else:
        failed = segctl(root, "run", "--as-of", iso(TIMES[1]), limit=0, kill_at_limit=False)
        reason = "File too large"
    assert failed.returncode == 4, failed.stderr
    assert failed.stderr.startswith(f"error: cannot write the state in {folder}"), failed.stderr
    assert reason in failed.stderr and "nothing of this step was committed" in failed.stderr
    assert "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1
    assert committed(folder) == before
    assert segctl(root, "status").returncode == 0
    again = segctl(root, "run", "--as-of", iso(TIMES[1]))
    assert again.returncode == 0, again.stderr
    assert len(committed(folder)["runs"]) == 2
