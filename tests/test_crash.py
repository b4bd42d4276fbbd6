"""Crash suite (SPEC 5 and 6): `segctl run` and `segctl push` as real processes against the local
platform fakes, killed with SIGKILL at random moments, then `segctl push` until done.

A trial (seeded) runs the scenario of ``fakes.scenario`` (three runs, every kind of action and
audience) and kills some of its commands: either at a random time (uniform over the command's
usual duration) or at one of segctl's named crash points (``SEGCTL_CRASH_AT``), which sit in
the narrow windows a random time rarely hits (between a platform's answer and its record). A run
killed before it committed is started again, as a scheduler would; a killed command may be
followed by a `segctl push`, itself perhaps killed. At the end, `segctl push` runs until it
exits 0, and the trial checks:

- every fake holds exactly the desired audience (members with consent of the last run);
- every due webhook, email, emitted event and python action record arrived, once after
  de-duplication by id;
- the state's history is consistent: runs in order, stays that alternate and never overlap,
  the snapshot and the figures equal to each run's memberships, an empty outbox;
- no command failed otherwise (exit codes 0, 5 or killed; never a traceback), no fake saw raw
  PII or a platform limit exceeded.

The default suite runs a few trials; ``pytest -m slow tests/test_crash.py`` runs 100, and
``python -m benchmarks.crash`` prints the table.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from fakes.scenario import (
    AS_OF,
    Members,
    Platforms,
    delivery_problems,
    environment,
    expected_members,
    iso,
    state_problems,
    write_project,
)

REPO = Path(__file__).resolve().parents[1]

#: Crash points each command passes (a point it does not reach lets the command finish).
POINTS = {
    "run": (
        "run:after-evaluate",
        "commit:after-run-row",
        "commit:after-transitions",
        "commit:before-commit",
        "commit:after-commit",
        "push:after-batch-keys",
        "push:after-send",
        "python:after-call",
        "sync:after-add",
        "sync:after-remove",
    ),
    "push": (
        "push:after-batch-keys",
        "push:after-send",
        "python:after-call",
        "sync:after-add",
        "sync:after-remove",
    ),
}
USUAL_SECONDS = {"run": 3.0, "push": 2.5}  # before any command of the kind was timed
MAX_ATTEMPTS = 6  # per step: a run that never commits is a failure, not an endless loop


@dataclass(frozen=True)
class Fault:
    kind: str  # "point" (SEGCTL_CRASH_AT) or "timer" (SIGKILL after ``seconds``)
    point: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        return self.point if self.kind == "point" else f"kill after {self.seconds:.2f}s"


@dataclass
class Command:
    args: tuple[str, ...]
    fault: Fault | None
    code: int
    seconds: float
    stderr: str

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


@dataclass
class Trial:
    seed: int
    commands: list[Command] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def faults(self) -> int:
        """Faults injected: commands given a kill time or a crash point."""
        return sum(c.fault is not None for c in self.commands)

    @property
    def kills(self) -> int:
        """Faults that landed: commands that died of SIGKILL."""
        return sum(c.killed for c in self.commands)


class Timings:
    """How long each kind of command usually takes (random kill times are drawn from it)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[float]] = {}

    def usual(self, kind: str) -> float:
        seen = sorted(self.seen.get(kind, []))
        return seen[len(seen) // 2] if seen else USUAL_SECONDS[kind]

    def add(self, kind: str, seconds: float) -> None:
        self.seen.setdefault(kind, []).append(seconds)


def segctl(root: Path, args: Iterable[str], fault: Fault | None, timings: Timings) -> Command:
    """Run one command as a process, killing it as ``fault`` says."""
    args = tuple(args)
    env = {**os.environ, **environment()}
    env.pop("SEGCTL_CRASH_AT", None)
    if fault is not None and fault.kind == "point":
        env["SEGCTL_CRASH_AT"] = fault.point
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "segctl", *args, "--project", str(root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if fault is not None and fault.kind == "timer":
            try:
                proc.wait(timeout=fault.seconds)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # pragma: no cover - a hung command
            proc.kill()
            proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != -signal.SIGKILL:
        timings.add(args[0], seconds)
    return Command(args, fault, proc.returncode, seconds, stderr)


def committed_runs(root: Path) -> int:
    """How many runs the state holds (read as the next process would find it)."""
    db = root / ".segctl" / "state.duckdb"
    if not db.exists():
        return 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return (
            int(con.execute("SELECT count(*) FROM runs").fetchall()[0][0])
            if "runs" in tables
            else 0
        )
    finally:
        con.close()


def pick_fault(rng: random.Random, kind: str, timings: Timings) -> Fault:
    if rng.random() < 0.4:
        return Fault("point", point=rng.choice(POINTS[kind]))
    return Fault("timer", seconds=rng.uniform(0.0, 1.1 * timings.usual(kind)))


def run_trial(
    seed: int,
    workdir: Path,
    members: Callable[[Path], list[Members]],
    timings: Timings | None = None,
    steps: int = len(AS_OF),
) -> Trial:
    """One seeded trial in ``workdir`` (see the module docstring) making the scenario's first
    ``steps`` runs; ``members(root)`` gives the expected memberships at the scenario's times."""
    rng = random.Random(seed)
    timings = timings or Timings()
    trial = Trial(seed)
    started = time.monotonic()
    with Platforms(latency=0.005) as platforms:
        root = write_project(workdir / f"trial{seed}", platforms)
        budget = rng.randint(1, 3)  # faults to inject over the trial

        def command(args: tuple[str, ...], may_fail: bool = True) -> Command:
            nonlocal budget
            fault = None
            if may_fail and budget and rng.random() < 0.6:
                fault = pick_fault(rng, args[0], timings)
                budget -= 1
            done = segctl(root, args, fault, timings)
            trial.commands.append(done)
            # A push before any state exists says so (exit 2): not a failure.
            no_state = args[0] == "push" and done.code == 2 and "no state in" in done.stderr
            if (
                done.code not in (0, 5, -signal.SIGKILL) and not no_state
            ) or "Traceback" in done.stderr:
                trial.failures.append(
                    f"segctl {' '.join(args)} ({fault or 'no fault'}) exited {done.code}: "
                    f"{done.stderr.strip()[-500:]}"
                )
            return done

        for step, moment in enumerate(AS_OF[:steps]):
            args = ("run", "--as-of", iso(moment), *(("--fire-initial",) if step == 0 else ()))
            for _ in range(MAX_ATTEMPTS):
                if committed_runs(root) > step or trial.failures:
                    break
                if command(args).killed and rng.random() < 0.5:
                    command(("push",))
            if not trial.failures and committed_runs(root) <= step:
                trial.failures.append(f"run {step + 1} never committed")
        # Then push until done (a last command that exited 0 left nothing to do).
        for _ in range(MAX_ATTEMPTS):
            if trial.failures or trial.commands[-1].code == 0:
                break
            command(("push",), may_fail=False)
        if not trial.failures and trial.commands[-1].code != 0:
            trial.failures.append("segctl push never completed")
        if not trial.failures:
            runs = members(root)[:steps]
            trial.failures += delivery_problems(root, platforms, runs)
            trial.failures += state_problems(root, runs)
    trial.seconds = time.monotonic() - started
    return trial


def run_trials(
    seeds: Iterable[int],
    workdir: Path,
    *,
    jobs: int = 1,
    steps: Callable[[int], int] = lambda seed: 2 + seed % 2,
    progress: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Run trials (``jobs`` at a time, ``steps(seed)`` runs each); the expected memberships
    are computed once."""
    cache: list[list[Members]] = []
    lock = threading.Lock()

    def members(root: Path) -> list[Members]:
        with lock:
            if not cache:
                cache.append(expected_members(root))
            return cache[0]

    timings = Timings()

    def one(seed: int) -> Trial:
        trial = run_trial(seed, workdir, members, timings, steps(seed))
        if progress is not None:
            progress(trial)
        return trial

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, seeds))


def table(trials: list[Trial]) -> list[tuple[str, str]]:
    """The figures of a set of trials, as (name, value) rows."""
    commands = [c for t in trials for c in t.commands]
    landed = Counter(
        str(c.fault) if c.fault.kind == "point" else "timer"
        for c in commands
        if c.fault and c.killed
    )
    rows = [
        ("trials", str(len(trials))),
        ("commands run", str(len(commands))),
        ("faults injected", str(sum(t.faults for t in trials))),
        ("kills landed (SIGKILL)", str(sum(t.kills for t in trials))),
        ("  at a random time", str(landed.pop("timer", 0))),
        *((f"  at {point}", str(n)) for point, n in sorted(landed.items())),
        ("failed trials", str(sum(bool(t.failures) for t in trials))),
        ("seconds per trial", f"{sum(t.seconds for t in trials) / max(len(trials), 1):.1f}"),
    ]
    return rows


def _assert_no_failures(trials: list[Trial]) -> None:
    failed = [t for t in trials if t.failures]
    assert not failed, "\n".join(
        f"seed {t.seed}: "
        + "; ".join(t.failures)
        + "\n  commands: "
        + ", ".join(f"{' '.join(c.args[:1])}[{c.fault or '-'}]->{c.code}" for c in t.commands)
        for t in failed
    )


def test_a_random_crash_loses_nothing(tmp_path: Path) -> None:
    """One trial by default (-m slow runs a hundred); the crash points have tests of their own
    in test_state, test_delivery and below."""
    trials = run_trials([3], tmp_path, steps=lambda seed: 2)
    _assert_no_failures(trials)
    assert sum(t.faults for t in trials) >= 1


@pytest.mark.slow
def test_a_hundred_random_crashes_lose_nothing(tmp_path: Path) -> None:
    trials = run_trials(range(1000, 1100), tmp_path, jobs=2)
    _assert_no_failures(trials)
    assert sum(t.kills for t in trials) >= 100


def test_a_first_run_killed_while_creating_the_state_leaves_no_state(tmp_path: Path) -> None:
    """A kill between creating the database file and committing its schema used to leave an
    empty state.duckdb, on which every later command (run included) exited 70."""
    from stateproject import AS_OF as TIMES
    from stateproject import iso as text
    from stateproject import segctl as command
    from stateproject import write_project as simple_project

    root = simple_project(tmp_path / "proj")
    killed = command(
        root, "run", "--as-of", text(TIMES[0]), env={"SEGCTL_CRASH_AT": "state:before-rename"}
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (root / ".segctl" / "state.duckdb").exists()
    status = command(root, "status")
    assert status.returncode == 0 and "no runs yet" in status.stderr
    assert command(root, "run", "--as-of", text(TIMES[0])).returncode == 0
    # The lock, the database and the copy of the events (one file): nothing half-made.
    state = root / ".segctl"
    assert sorted(p.name for p in state.iterdir()) == ["events", "segctl.lock", "state.duckdb"]
    assert [p.suffix for p in (state / "events").iterdir()] == [".parquet"]
    assert committed_runs(root) == 1


class Crash(BaseException):
    """Raised at a crash point in process: what follows the point never runs, as after kill -9
    (only what was committed before it is on disk)."""


@pytest.mark.parametrize(
    ("point", "who"),
    [
        ("sync:after-add", "u19 (added at run 2, gone at run 3) stays in the Meta audience"),
        ("sync:after-remove", "u15, u18 (removed at run 2, back at run 3) stay out of it"),
    ],
)
def test_a_crash_between_an_audience_change_and_its_record_is_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, who: str
) -> None:
    """The platform took an add or a removal, segctl died before recording it; the next runs
    must still end with exactly the desired audiences (before the fix: {who})."""
    import segctl as lib
    from segctl.delivery.audiences import send

    def crash_at(name: str) -> None:
        if name == point:
            raise Crash(name)

    with Platforms() as platforms:
        root = write_project(tmp_path / "proj", platforms)
        runs = expected_members(root)
        for step, moment in enumerate(AS_OF):
            project = lib.Project.load(root, environ=environment())
            if step == 1:
                with monkeypatch.context() as patch, pytest.raises(Crash):
                    patch.setattr(send, "crash_point", crash_at)
                    project.run(as_of=moment)
            else:
                report = project.run(as_of=moment, fire_initial=step == 0).report
                assert report is not None
        assert lib.Project.load(root, environ=environment()).push().complete
        assert delivery_problems(root, platforms, runs) == []
        assert state_problems(root, runs) == []
