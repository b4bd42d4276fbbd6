"""Real-time figures: a full run, `segctl verify`, and `segctl watch` latency from a file
landing to its webhooks delivered (docs/realtime.md).

    python -m benchmarks.realtime                       # 100k persons, 1M events
    python -m benchmarks.realtime --persons 1000000 --events 10000000 --drops 5
    python -m benchmarks.realtime --persons 1000000 --events 50000000 --catalogue 1000

The generated events (benchmarks/generate.py) are split into one Parquet file per day under
``data/<size>/realtime/events/day=YYYY-MM-DD/``; the project is the benchmark's 27 segments
(``--catalogue 1000``: benchmarks/wide.py's 1,000) plus ``active_now`` (an event in the last
hour) whose entries go to a local webhook receiver (tests/fakes/webhook.py). Then:

1. ``segctl run`` (the first run: a full evaluation, at 10:00 UTC of today, or of yesterday
   before 11:00, so that the steps below fall where they say) and ``segctl verify``, timed;
   then ``segctl run`` (incremental) against ``segctl run --full`` on a copy of the project at
   the same as_of, a minute later after a new day's file, an hour later with no new file, and
   the next day with no new file (past a local midnight: every local-day measure may move);
   the ratio, the persons whose wake-up time had come, and a check that both commit the same
   snapshot and transitions (``--rounds``, 3 by default: each command runs that many times per
   step, alternated, from the same state, and the medians are compared); then a minute later
   with the persons file re-exported (1% of the persons' plan changed), twice: the first
   re-export is a full run (it starts keeping the persons' row hashes), the second
   re-evaluates the changed persons;
2. ``segctl watch --every 1h``: ``--drops`` times, a file of fresh events for ``--new`` persons
   is renamed into the events folder, and the time until the receiver holds all of its
   ``active_now`` entries is measured (the median is reported);
3. the state folder's size against the events' Parquet.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from benchmarks import wide  # noqa: E402
from benchmarks.generate import ensure_data  # noqa: E402
from benchmarks.project import SEGMENTS  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def build(data: Path, hook_url: str, catalogue: int) -> Path:
    """The project over per-day event files (rebuilt from scratch each time)."""
    root = data / "realtime"
    shutil.rmtree(root, ignore_errors=True)
    (root / "segments").mkdir(parents=True)
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT *, strftime(timestamp, '%Y-%m-%d') AS day FROM "
        f"read_parquet('{data / 'events.parquet'}')) TO '{root / 'events'}' "
        "(FORMAT parquet, PARTITION_BY (day))"
    )
    con.close()
    # The project's own persons file: the benchmark re-exports it (compare_incremental).
    shutil.copy(data / "persons.parquet", root / "persons.parquet")
    (root / "segctl.yaml").write_text(
        f"""\
data:
  events: events/**/*.parquet
  persons: persons.parquet
  subscriptions: ../subscriptions.parquet
segments: segments/
state: .segctl/
timezone: UTC
destinations:
  hook: {{type: webhook, url: "{hook_url}", secret: "${{HOOK_SECRET}}"}}
"""
    )
    if catalogue == 1000:
        for name, text in wide.catalogue(1000, 42).items():
            (root / "segments" / f"{name}.yaml").write_text(text)
    else:
        for name, body in SEGMENTS.items():
            (root / "segments" / f"{name}.yaml").write_text(f"name: {name}\n{body.lstrip()}")
    (root / "segments" / "active_now.yaml").write_text(
        "name: active_now\nrule: {event: '*', within: 1h, count: {gte: 1}}\n"
        "on_enter:\n  - webhook: {destination: hook, batch: 100}\n"
    )
    return root


def environment() -> dict[str, str]:
    """The commands' environment: the hook's secret, and Python's bytecode cache allowed (an
    installed segctl has its modules compiled; without it each command compiles them again,
    a second of every run on a busy machine)."""
    env = {**os.environ, "HOOK_SECRET": SECRET}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(args: list[str], root: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "segctl", *args, "--project", str(root)],
        capture_output=True,
        text=True,
        env=environment(),
        check=False,
    )
    return time.perf_counter() - started, proc


def clone(source: Path, target: Path) -> None:
    """Copy a project: its Parquet files (never rewritten in place: the events, the state's
    copy of them) as hard links, the rest as copies; then flush the writes, so that the
    kernel's write-back of a copied state database does not run during the timed command."""
    shutil.rmtree(target, ignore_errors=True)

    def link_or_copy(src: str, dst: str) -> object:
        return os.link(src, dst) if src.endswith(".parquet") else shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)
    os.sync()


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def snapshot(root: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The committed snapshot and the last run's transitions, sorted."""
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT * FROM snapshot ORDER BY ALL").fetchall()
        moves = con.execute(
            "SELECT segment, person_id, kind FROM transitions "
            "WHERE run_id = (SELECT max(run_id) FROM runs) ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    return rows, moves


def woken(root: Path, as_of: datetime) -> int:
    """The persons whose kept wake-up time has come at ``as_of``."""
    con = duckdb.connect(str(root / ".segctl" / "state.duckdb"), read_only=True)
    try:
        [(count,)] = con.execute(
            "SELECT count(*) FROM wakeups WHERE wake <= ?", [as_of.replace(tzinfo=None)]
        ).fetchall()
    finally:
        con.close()
    return int(count)


def first_as_of() -> datetime:
    """10:00 UTC today, or yesterday before 11:00: the steps of :func:`compare_incremental`
    (a minute, an hour) stay within its day, the last one crosses a midnight."""
    now = datetime.now(UTC)
    day = now.replace(hour=10, minute=0, second=0, microsecond=0)
    return day if now >= day + timedelta(hours=1) else day - timedelta(days=1)


#: The share of persons whose row the re-exported persons file changes.
REEXPORTED = 0.01


def reexport_persons(path: Path, seed: int) -> None:
    """The persons file written again, as a CRM export would be the next day, with the plan
    of :data:`REEXPORTED` of the persons changed (renamed into place: the state's clones
    hold the old file as a hard link). The first re-export is a full run, which keeps the
    persons' row hashes; the next ones re-evaluate the persons whose rows changed."""
    table = pq.read_table(path)
    rng = random.Random(seed)
    plans = table.column("plan").to_pylist()
    for i in rng.sample(range(len(plans)), int(len(plans) * REEXPORTED)):
        plans[i] = "premium" if plans[i] != "premium" else "free"
    index = table.schema.get_field_index("plan")
    changed = table.set_column(index, "plan", pa.array(plans, table.schema.field("plan").type))
    pq.write_table(changed, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)


def compare_incremental(root: Path, data: Path, new: int, start: datetime, rounds: int = 1) -> None:
    """``segctl run`` (incremental) against ``segctl run --full`` on a copy of the project
    and its state, at the same as_of: a minute after ``start`` (the last run's as_of) after a
    new day's file of ``new`` persons' events, an hour later with no new file, the next
    day with no new file, and a minute after that with the persons file re-exported, twice
    (:func:`reexport_persons`). Checks
    both commit the same snapshot and transitions. Works on a copy of ``root``, which the
    watch then runs at the current time."""
    work = root.with_name(root.name + "-incremental")
    clone(root, work)
    root = work
    moment = start + timedelta(minutes=1)
    ids = pq.read_table(data / "persons.parquet", columns=["person_id"]).column(0).to_pylist()
    chosen = random.Random(11).sample(ids, new)
    table = pa.table(
        {
            "person_id": chosen,
            "event": ["page_view"] * len(chosen),
            "timestamp": pa.array(
                [moment - timedelta(minutes=5)] * len(chosen), pa.timestamp("us", tz="UTC")
            ),
        }
    )
    # A hive folder like the others' (day=<a date>): DuckDB types the partition column as a
    # DATE only while every folder's value reads as one.
    folder = root / "events" / f"day={moment:%Y-%m-%d}"
    folder.mkdir(exist_ok=True)
    pq.write_table(table, folder / "part-incremental.parquet")
    copy = root.with_name(root.name + "-full")
    for label, as_of in (
        ("new day's file", moment),
        ("no new file, 1h later", moment + timedelta(hours=1)),
        ("no new file, next day", moment + timedelta(days=1)),
        ("persons re-exported, a first time", moment + timedelta(days=1, minutes=1)),
        ("persons re-exported again", moment + timedelta(days=1, minutes=2)),
    ):
        if label.startswith("persons"):
            reexport_persons(root / "persons.parquet", seed=len(label))
        due = woken(root, as_of)
        beside_a_full_run(root, copy, as_of, label, f", {due:,} persons woken", rounds)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def beside_a_full_run(
    root: Path, copy: Path, as_of: datetime, label: str, note: str = "", rounds: int = 1
) -> None:
    """``segctl run`` in ``root`` against ``segctl run --full`` in ``copy`` (a clone taken
    now) at ``as_of``: prints both times and their ratio, after checking both committed the
    same snapshot and transitions. With ``rounds`` above 1, each command runs that many
    times, alternated, each from the state before the step (the incremental ones on clones
    but the last, which runs in ``root`` and goes on from it), and the medians are compared:
    one pair of commands varies by 10 to 30% on this shared machine."""
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    trial = root.with_name(root.name + "-trial")
    incremental: list[float] = []
    full: list[float] = []
    reasons: set[str] = set()
    for turn in range(rounds):
        clone(root, copy)
        here = root if turn == rounds - 1 else trial
        if here is trial:
            clone(root, trial)
        seconds, proc = timed(["run", "--as-of", stamp, "--format", "json"], here)
        assert proc.returncode == 0, proc.stderr
        incremental.append(seconds)
        reasons.update(r for r in proc.stderr.splitlines() if r.startswith("full evaluation"))
        seconds, proc = timed(["run", "--as-of", stamp, "--full", "--format", "json"], copy)
        assert proc.returncode == 0, proc.stderr
        full.append(seconds)
        same = snapshot(here) == snapshot(copy)
        assert same, f"{label}: incremental and full runs committed different results"
    shutil.rmtree(trial, ignore_errors=True)
    spread = ""
    if rounds > 1:
        ratios = sorted(f / i for f, i in zip(full, incremental, strict=True))
        spread = (
            f" [medians of {rounds} rounds: incremental {min(incremental):.2f} to "
            f"{max(incremental):.2f} s, ratios {ratios[0]:.1f} to {ratios[-1]:.1f}x]"
        )
    inc, ful = statistics.median(incremental), statistics.median(full)
    print(
        f"{label}: incremental {inc:6.2f} s, --full {ful:6.2f} s "
        f"({ful / inc:.1f}x){note}, identical snapshot and transitions"
        f"{''.join(f' [{r}]' for r in sorted(reasons))}{spread}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--drops", type=int, default=5)
    parser.add_argument("--new", type=int, default=1000, help="persons per dropped file")
    parser.add_argument("--catalogue", type=int, choices=(27, 1000), default=27)
    parser.add_argument("--no-watch", action="store_true", help="skip the watch latency")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each command per step (medians compared)"
    )
    options = parser.parse_args(argv)

    from fakes import WebhookFake

    data = ensure_data(options.persons, options.events)
    with WebhookFake(secret=SECRET) as hook:
        root = build(data, hook.url, options.catalogue)
        files = len(list((root / "events").rglob("*.parquet")))
        print(f"project: {root} ({files} event files, the {options.catalogue}-segment catalogue)")
        start = first_as_of()
        stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        seconds, proc = timed(["run", "--as-of", stamp, "--format", "json"], root)
        assert proc.returncode == 0, proc.stderr
        print(f"segctl run (full):   {seconds:6.2f} s")
        seconds, proc = timed(["verify", "--format", "json"], root)
        assert proc.returncode == 0 and json.loads(proc.stdout)["equal"], proc.stdout + proc.stderr
        print(f"segctl verify:       {seconds:6.2f} s (equal)")
        compare_incremental(root, data, options.new, start, options.rounds)
        if options.no_watch:
            return

        command = ["watch", "--every", "1h", "--format", "json", "--project", str(root)]
        watch = subprocess.Popen(
            [sys.executable, "-m", "segctl", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment(),
        )
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())
        print(f"watch first run:     {first['seconds']:6.2f} s in the loop")
        persons = pq.read_table(data / "persons.parquet", columns=["person_id"]).column(0)
        ids = persons.to_pylist()
        latencies, runs = [], []
        rng = random.Random(7)
        for drop in range(options.drops):
            chosen = rng.sample(ids, options.new)
            ids = sorted(set(ids) - set(chosen))  # a later drop's persons are not members yet
            moment = datetime.now(UTC) - timedelta(seconds=5)
            table = pa.table(
                {
                    "person_id": chosen,
                    "event": ["page_view"] * len(chosen),
                    "timestamp": pa.array([moment] * len(chosen), pa.timestamp("us", tz="UTC")),
                }
            )
            # Today's day= folder, like the others': a folder outside the hive layout would
            # drop the `day` column from the view (a full run, rightly, on the first drop).
            folder = root / "events" / f"day={moment:%Y-%m-%d}"
            folder.mkdir(exist_ok=True)
            partial = folder / f".drop-{drop}.partial"
            pq.write_table(table, partial)
            before = len(hook.events())
            landed = time.perf_counter()
            os.replace(partial, folder / f"drop-{drop}.parquet")
            line = json.loads(watch.stdout.readline())
            assert "error" not in line, line
            wanted = set(chosen)  # each enters active_now: their last event was days ago
            while len({e["person_id"] for e in hook.events()[before:]} & wanted) < len(wanted):
                time.sleep(0.01)
            latencies.append(time.perf_counter() - landed)
            runs.append(line["seconds"])
            print(
                f"drop {drop}: {line['new_files']} new file, {line['entered']} entered, "
                f"run {line['seconds']:.2f} s, landing -> all webhooks {latencies[-1]:.2f} s"
            )
        watch.terminate()
        code = watch.wait(timeout=300)
        print(f"watch stopped with exit {code}")
        print(
            f"watch latency, file landing -> webhooks delivered: median "
            f"{statistics.median(latencies):.2f} s (runs: median {statistics.median(runs):.2f} s)"
        )
        events_bytes = size(root / "events")
        state_bytes = size(root / ".segctl")
        print(
            f"state {state_bytes / 2**20:,.1f} MiB vs events Parquet {events_bytes / 2**20:,.1f} "
            f"MiB ({state_bytes / events_bytes:.2f}x)"
        )


if __name__ == "__main__":
    main()
