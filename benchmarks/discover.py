"""Back-test and speed benchmark of ``segctl discover`` (SPEC 7, issue 7).

    python -m benchmarks.discover               # back-tests, then the 1M-person speed run
    python -m benchmarks.discover --no-speed    # back-tests only (about a minute)
    python -m benchmarks.discover --speed-only  # only discover on 1M persons / 10M events
    python -m benchmarks.discover --speed-only --runs 3  # median of three runs

Back-tests (each clusters at a training as_of and measures conversion in the 30 days after):

- **planted**: a generated project whose persons belong to five behavioural groups (creators,
  learners, casual, lapsing, newcomers), each with its own event mix, activity and
  conversion probability; plan is mildly tied to the group and country not at all. Reported:
  the adjusted Rand index (ARI) between discovered clusters and the planted groups (k=auto and
  k=5), and holdout conversion lift of the discovered segments versus plan and country
  segments.
- **sample**: the committed sample data (``segctl.sample``, archetypes planted around
  2026-11-17): ARI against the archetypes when clustering at the anchor, and lift versus
  plan/country when clustering 30 days before it with ``purchase`` as the conversion.

A segmentation's lift figures: ``max lift`` and ``min lift`` over its segments holding at
least 2% of persons, and ``spread``, the person-weighted mean of |lift - 1| (0 when every
segment converts at the base rate). Discovered segments are scored twice: as clusters and
as the rules written to segment files (``rule`` rows: what `segctl evaluate` would select).

Speed: ``segctl discover --conversion-event purchase`` as a fresh process on the evaluate
benchmark's data (``benchmarks/generate.py``, 1M persons, 10M events, generated if missing),
timed ``--runs`` times (default once): wall, CPU, peak RSS, discover's own phase times and the
load average around each run. Goal: a median wall time under 60 s on 2 cores.
Results go to ``benchmarks/results/discover_<time>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/discover.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
END = datetime(2026, 11, 17, tzinfo=UTC)
WINDOW = timedelta(days=30)
TRAIN = END - WINDOW
SPEED_GOAL_S = 60.0
MIN_SHARE = 0.02

# ---- planted data ------------------------------------------------------------------------

#: group -> (share of persons, purchase probability in the holdout)
GROUPS = {
    "creators": (0.15, 0.30),
    "learners": (0.15, 0.12),
    "casual": (0.35, 0.05),
    "lapsing": (0.20, 0.02),
    "newcomers": (0.15, 0.15),
}
COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR"]


def planted_project(root: Path, persons: int, seed: int) -> dict[str, str]:
    """Write a project with planted behavioural groups; return person_id -> group."""
    rng = np.random.default_rng(seed)
    names = list(GROUPS)
    groups = rng.choice(len(names), size=persons, p=[GROUPS[g][0] for g in names])
    events: dict[str, list[Any]] = {"person_id": [], "event": [], "timestamp": [], "amount": []}
    person_rows = []
    truth = {}

    def emit(pid: str, event: str, days_before_train: np.ndarray) -> None:
        for d in days_before_train:
            events["person_id"].append(pid)
            events["event"].append(event)
            events["timestamp"].append(TRAIN - timedelta(days=float(d)))
            events["amount"].append(None)

    def rate(per_day: float, lo: float, hi: float, scale: float) -> np.ndarray:
        n = rng.poisson(per_day * scale * (hi - lo))
        return rng.uniform(lo, hi, size=n)

    for i, g in enumerate(groups):
        group = names[int(g)]
        pid = f"g{i:07d}"
        truth[pid] = group
        scale = float(rng.lognormal(0, 0.4))
        created = TRAIN - timedelta(days=float(rng.uniform(200, 700)))
        if group == "creators":
            emit(pid, "video_rendered", rate(0.9, 0, 60, scale))
            emit(pid, "export", rate(0.3, 0, 60, scale))
            emit(pid, "login", rate(0.3, 0, 60, scale))
            emit(pid, "video_rendered", -rate(0.9, 0, 30, scale))  # goes on in the holdout
        elif group == "learners":
            emit(pid, "quiz_completed", rate(0.7, 0, 60, scale))
            emit(pid, "login", rate(0.3, 0, 60, scale))
        elif group == "casual":
            emit(pid, "login", rate(0.12, 0, 180, scale))
            emit(pid, "email_opened", rate(0.08, 0, 180, scale))
            emit(pid, "video_rendered", rate(0.02, 0, 180, scale))
        elif group == "lapsing":
            emit(pid, "login", rate(0.2, 45, 150, scale))
            emit(pid, "video_rendered", rate(0.1, 45, 150, scale))
        else:  # newcomers: signed up in the last two weeks, exploring
            age = float(rng.uniform(0.5, 14))
            created = TRAIN - timedelta(days=age)
            emit(pid, "signup", np.array([age]))
            emit(pid, "login", rate(0.6, 0, age, scale))
            emit(pid, "pricing_viewed", rate(0.3, 0, age, scale))
        if rng.random() < GROUPS[group][1]:
            days = -float(rng.uniform(0.1, 29.9))
            events["person_id"].append(pid)
            events["event"].append("purchase")
            events["timestamp"].append(TRAIN - timedelta(days=days))
            events["amount"].append(float(rng.integers(1, 60)) * 5)
        pro = 0.5 if group == "creators" else 0.2
        plan = rng.choice(["free", "pro", "premium"], p=[0.9 - pro, pro, 0.1])
        country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        person_rows.append((pid, f"{pid}@example.com", plan, country, created.isoformat()))
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "person_id": pa.array(events["person_id"], pa.string()),
            "event": pa.array(events["event"], pa.string()),
            "timestamp": pa.array(events["timestamp"], pa.timestamp("us", tz="UTC")),
            "amount": pa.array(events["amount"], pa.float64()),
        }
    )
    pq.write_table(table, data / "events.parquet")
    with (data / "persons.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "email", "plan", "country", "created_at"])
        writer.writerows(person_rows)
    (root / "segments").mkdir(exist_ok=True)
    (root / "segctl.yaml").write_text(
        "data:\n  events: data/events.parquet\n  persons: data/persons.csv\n"
        "segments: segments/\ntimezone: UTC\n"
    )
    return truth


def sample_archetypes(n_persons: int = 3000, seed: int = 7) -> dict[str, str]:
    """The archetype of every sample person, replayed from the sample generator (its first
    random draws make the persons), checked against the committed persons.csv."""
    from segctl.sample import Generator

    people = Generator(random.Random(seed), END).persons(n_persons)
    with (REPO / "sample_data" / "persons.csv").open() as handle:
        committed = [row["person_id"] for row in csv.DictReader(handle)]
    if committed != [p.person_id for p in people]:
        raise SystemExit("sample_data/persons.csv does not match the generator: regenerate it")
    return {p.person_id: p.archetype for p in people}


# ---- scoring -----------------------------------------------------------------------------


@dataclass
class Lifts:
    segmentation: str
    groups: int
    max_lift: float
    min_lift: float
    spread: float


def lifts(name: str, labels: Sequence[Any], converted: np.ndarray) -> Lifts:
    """Conversion lift figures of one segmentation (labels per person)."""
    frame = pl.DataFrame({"g": [str(x) for x in labels], "c": converted.astype(np.int64)})
    base = float(converted.mean())
    stats = frame.group_by("g").agg(pl.len().alias("n"), pl.col("c").mean().alias("rate"))
    share = stats["n"].to_numpy() / len(labels)
    lift = stats["rate"].to_numpy() / base
    big = share >= MIN_SHARE
    return Lifts(
        name,
        stats.height,
        round(float(lift[big].max()), 3),
        round(float(lift[big].min()), 3),
        round(float((share * np.abs(lift - 1)).sum()), 3),
    )


def rule_lifts(found: Any) -> Lifts:
    rows = [(c.rule_size / found.persons, c.rule_lift) for c in found.clusters]
    big = [lift for share, lift in rows if share >= MIN_SHARE]
    spread = sum(share * abs(lift - 1) for share, lift in rows) / max(
        1e-9, sum(share for share, _ in rows)
    )
    return Lifts("discovered rules", len(rows), max(big), min(big), round(spread, 3))


def ari(truth: dict[str, str], found: Any) -> float:
    from sklearn.metrics import adjusted_rand_score

    ids = found.person_ids.to_pylist()
    return round(float(adjusted_rand_score([truth[p] for p in ids], found.labels)), 3)


def converted_flags(found: Any, root: Path) -> np.ndarray:
    """The holdout conversions discover used, recomputed independently with polars."""
    from segctl.project import Project

    project = Project.load(root)
    project.schema  # noqa: B018 (registers the views)
    start, end = found.train_as_of, found.as_of
    rows = project.engine.rows(
        "SELECT DISTINCT person_id FROM events WHERE event = ? AND timestamp > ? "
        "AND timestamp <= ?",
        [found.conversion_event, start, end],
    )
    buyers = {r[0] for r in rows}
    return np.array([p in buyers for p in found.person_ids.to_pylist()])


def person_column(root: Path, ids: list[str], column: str) -> list[Any]:
    from segctl.project import Project

    project = Project.load(root)
    project.schema  # noqa: B018
    values = dict(project.engine.rows(f'SELECT person_id, "{column}" FROM persons'))
    return [values.get(p) for p in ids]


def backtest(
    name: str, root: Path, truth: dict[str, str], k_truth: int, seed: int, ari_as_of: datetime
) -> dict:
    """ARI clustering at ``ari_as_of - 30d`` (when the groups are planted), and lifts of
    clusters found at TRAIN with conversion in the 30 days to END."""
    from segctl.ml.discover import discover
    from segctl.project import Project

    report: dict[str, Any] = {"data": name}
    started = time.perf_counter()
    auto = discover(Project.load(root), as_of=ari_as_of, seed=seed)
    fixed = discover(Project.load(root), k=k_truth, as_of=ari_as_of, seed=seed)
    report["ari"] = {
        "k_auto": auto.k,
        "ari_auto": ari(truth, auto),
        "k_fixed": k_truth,
        "ari_fixed": ari(truth, fixed),
        "rule_precision_recall": [
            (round(c.precision, 3), round(c.recall, 3)) for c in fixed.clusters
        ],
    }
    found = discover(Project.load(root), conversion_event="purchase", as_of=END, seed=seed)
    converted = converted_flags(found, root)
    assert abs(float(converted.mean()) - (found.base_rate or 0)) < 1e-12, "base rate differs"
    ids = found.person_ids.to_pylist()
    table = [
        lifts(f"discovered clusters (k={found.k})", found.labels.tolist(), converted),
        rule_lifts(found),
        lifts("plan", person_column(root, ids, "plan"), converted),
        lifts("country", person_column(root, ids, "country"), converted),
    ]
    report["lift"] = {
        "persons": found.persons,
        "base_rate": round(found.base_rate or 0, 4),
        "rows": [vars(row) for row in table],
        "clusters": [
            {
                "name": c.name,
                "share": round(c.share, 3),
                "lift": round(c.lift or 0, 2),
                "use": c.use,
                "rule": c.rule_text,
            }
            for c in found.clusters
        ],
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def print_backtest(report: dict) -> None:
    a = report["ari"]
    print(f"\n== {report['data']} ==")
    print(
        f"ARI vs planted groups: k=auto ({a['k_auto']}) {a['ari_auto']:.3f}; "
        f"k={a['k_fixed']} {a['ari_fixed']:.3f}"
    )
    lift = report["lift"]
    print(f"holdout conversion (purchase, 30d): {lift['persons']} persons, base rate "
          f"{lift['base_rate']:.2%}")  # fmt: skip
    print(f"{'segmentation':<30} {'groups':>6} {'max lift':>9} {'min lift':>9} {'spread':>7}")
    for row in lift["rows"]:
        print(
            f"{row['segmentation']:<30} {row['groups']:>6} {row['max_lift']:>9.2f} "
            f"{row['min_lift']:>9.2f} {row['spread']:>7.3f}"
        )
    for c in lift["clusters"]:
        print(f"  {c['name']}: {c['share']:.1%}, lift {c['lift']:.2f}, {c['use']}: {c['rule']}")


# ---- speed -------------------------------------------------------------------------------


def speed(persons: int, events: int, runs: int = 1) -> dict:
    """``runs`` timed runs of discover as a fresh process; the verdict is on their median."""
    from benchmarks.generate import ensure_data
    from benchmarks.project import write_project

    project = write_project(ensure_data(persons, events))
    command = [
        sys.executable, "-m", "segctl", "discover", "-p", str(project), "--as-of",
        END.strftime("%Y-%m-%dT%H:%M:%SZ"), "--conversion-event", "purchase", "--seed", "0",
        "--format", "json",
    ]  # fmt: skip
    timed = [run_once(command) for _ in range(runs)]
    walls = sorted(run["wall_s"] for run in timed)
    document = timed[-1].pop("document")
    for run in timed:
        run.pop("document", None)
    return {
        "persons": persons,
        "events": events,
        "clustered_persons": document["persons"],
        "k": document["k"],
        "runs": timed,
        "wall_s": round(float(np.median(walls)), 1),
        "best_wall_s": walls[0],
        "goal_s": SPEED_GOAL_S,
        "clusters": [
            (c["name"], c["size"], c["lift"], c["suggested_use"], c["rule"])
            for c in document["clusters"]
        ],
    }


def run_once(command: list[str]) -> dict:
    """One fresh-process run: wall, CPU, peak RSS, discover's phases, load around it."""
    time_bin = "/usr/bin/time"
    wrapper = [time_bin, "-v"] if os.path.exists(time_bin) else []
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(wrapper + command, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"discover failed ({done.returncode}):\n{done.stderr}")
    document = json.loads(done.stdout)
    rss = after.ru_maxrss / 1024
    for line in done.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) / 1024
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "peak_rss_mib": round(rss),
        "phases_s": document["seconds"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "document": document,
    }


def print_speed(result: dict) -> None:
    print(f"\n== speed: discover on {result['clustered_persons']:,} persons "
          f"({result['events']:,} events), k=auto -> {result['k']} ==")  # fmt: skip
    for run in result["runs"]:
        print(
            f"wall {run['wall_s']} s, CPU {run['cpu_s']} s, peak RSS {run['peak_rss_mib']} MiB; "
            f"load average before {run['load_before']}, after {run['load_after']}"
        )
        print(f"  phases {run['phases_s']}")
    verdict = "PASS" if result["wall_s"] < SPEED_GOAL_S else "FAIL"
    runs = len(result["runs"])
    which = f"median of {runs} runs" if runs > 1 else "one run"
    print(
        f"{verdict}: discover on 1M persons under {SPEED_GOAL_S:.0f} s ({which}: "
        f"{result['wall_s']} s; best {result['best_wall_s']} s). Wall time on a shared "
        "machine: compare the load averages (under ~2 on 2 cores to trust it) and the CPU."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.discover",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--no-speed", action="store_true", help="back-tests only")
    parser.add_argument("--speed-only", action="store_true", help="the speed run only")
    parser.add_argument("--planted-persons", type=int, default=20_000)
    parser.add_argument("--persons", type=int, default=1_000_000, help="speed run persons")
    parser.add_argument("--events", type=int, default=10_000_000, help="speed run events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1, help="speed runs (median is judged)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"started": datetime.now(UTC).isoformat()}
    if not args.speed_only:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "planted"
            truth = planted_project(root, args.planted_persons, args.seed)
            results["planted"] = backtest(
                f"planted ({args.planted_persons:,} persons, 5 groups)",
                root,
                truth,
                len(GROUPS),
                args.seed,
                END,  # the groups are planted around TRAIN = END - 30d
            )
            print_backtest(results["planted"])
        archetypes = sample_archetypes()
        k_sample = len(set(archetypes.values()) - {"future"})
        results["sample"] = backtest(
            "sample data (3,000 persons, archetypes)",
            REPO,
            archetypes,
            k_sample,
            args.seed,
            END + WINDOW,  # the archetypes are planted around END
        )
        print_backtest(results["sample"])
    if not args.no_speed:
        results["speed"] = speed(args.persons, args.events, args.runs)
        print_speed(results["speed"])
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"discover_{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
