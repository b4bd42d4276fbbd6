"""1,000 segments in one run: how segctl scales with the number of segments.

    python -m benchmarks.wide                                    # 1M persons, 50M events
    python -m benchmarks.wide --segments 1000 --persons 100000 --events 1000000   # quick

Writes a project with ``--segments`` generated segment files over the benchmark data (see
``benchmarks/generate.py``), then times, each in a fresh process:

- ``segctl run`` at as_of (the first run: everything enters, snapshot and history committed);
- ``segctl run`` one day later (evaluate, diff against the first run, commit);
- the baseline: the hand-written fused DuckDB query for the 29 segments of
  ``benchmarks/evaluate.py`` on the same files, i.e. what one scan of the events costs.

It prints wall time, CPU time and peak memory with the ratio to the baseline, the number of
distinct measures the compiler kept for the segments, and the goal (a run under 2 minutes).

The segments are what a large catalogue looks like: thresholds on counts, distinct days and
sums in windows of 1 to 180 days for every event, filters on event properties, recency,
person properties and subscriptions combined with ``all``/``any``, references and ``exclude``.
They are drawn deterministically (``--seed``) from that grid, so many of them share measures
(the same count compared with another threshold), as in a real catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.evaluate import REPO, machine, run_measured, segctl_command
from benchmarks.generate import EVENT_NAMES, ensure_data
from benchmarks.project import AS_OF, CONFIG

GOAL_SECONDS = 120.0
NEXT_DAY = "2026-11-18T00:00:00Z"
WINDOWS = ["1d", "7d", "14d", "30d", "60d", "90d", "180d"]


def catalogue(count: int, seed: int) -> dict[str, str]:
    """``count`` segment files (name -> YAML), drawn from a grid of realistic rules."""
    rng = random.Random(seed)
    rules: list[str] = []
    for event in EVENT_NAMES:
        for window in WINDOWS:
            for n in (1, 2, 3, 5, 10, 20):
                rules.append(f"{{event: {event}, within: {window}, count: {{gte: {n}}}}}")
            if window in ("7d", "30d", "90d"):
                for n in (2, 5, 10):
                    rules.append(
                        f"{{event: {event}, within: {window}, distinct_days: {{gte: {n}}}}}"
                    )
        for days in (7, 30, 90):
            rules.append(f"{{event: {event}, last_seen: {{older_than: {days}d}}}}")
    for window in WINDOWS:
        for amount in (10, 50, 100, 500):
            rules.append(
                f"{{event: purchase, within: {window}, sum: {{of: amount, gte: {amount}}}}}"
            )
        for fmt in ("mp4", "gif", "webm"):
            rules.append(
                f"{{event: [video_rendered, export], where: {{format: {{eq: {fmt}}}}}, "
                f"within: {window}, count: {{gte: 2}}}}"
            )
        for cert in ("aws", "gcp", "azure", "k8s"):
            rules.append(
                f"{{event: quiz_completed, where: {{certification: {{eq: {cert}}}}}, "
                f"within: {window}, count: {{gte: 3}}}}"
            )
    properties = [
        "{property: plan, in: [pro, premium]}",
        "{property: plan, eq: free}",
        "{property: plan, eq: trial}",
        "{property: country, in: [US, CA]}",
        "{property: country, in: [DE, FR, ES, NL, GB]}",
        "{subscription: {status: {eq: active}}}",
        "{subscription: {mrr: {gte: 2000}}}",
    ]
    rng.shuffle(rules)
    segments: dict[str, str] = {}
    for i in range(count):
        name = f"s{i:04d}"
        base = rules[i % len(rules)]
        shape = rng.random()
        if shape < 0.45 or i < 50:
            rule = f"rule: {base}"
        elif shape < 0.75:
            rule = f"rule:\n  all:\n    - {base}\n    - {rng.choice(properties)}"
        elif shape < 0.85:
            rule = f"rule:\n  any:\n    - {base}\n    - {rng.choice(rules)}"
        elif shape < 0.95:  # a reference to an earlier plain segment
            rule = f"rule:\n  all:\n    - {{segment: s{rng.randrange(50):04d}}}\n    - {base}"
        else:
            rule = f"rule: {base}\nexclude:\n  - {rng.choice(properties)}"
        segments[name] = f"name: {name}\n{rule}\n"
    return segments


def write_project(data_dir: Path, count: int, seed: int) -> Path:
    root = data_dir / f"wide_{count}_s{seed}"
    if root.exists():
        import shutil

        shutil.rmtree(root)  # a fresh state folder: the first run is a first run
    (root / "segments").mkdir(parents=True)
    (root / "segctl.yaml").write_text(CONFIG)
    for name, text in catalogue(count, seed).items():
        (root / "segments" / f"{name}.yaml").write_text(text)
    return root


def distinct_measures(project_dir: Path) -> tuple[int, int]:
    """(distinct event measures, event conditions) of the project's compiled plan."""
    import segctl
    from segctl.compiler import Plan
    from segctl.definitions.model import EventCondition, segment_conditions

    project = segctl.Project.load(project_dir)
    names = project.segment_names(None)
    conditions = sum(
        isinstance(c, EventCondition)
        for n in names
        for c in segment_conditions(project.definitions.segments[n])
    )
    from segctl.timeutil import parse_as_of

    moment = parse_as_of(AS_OF)
    plan = Plan(project.definitions, project.plan_context(names, moment))
    plan.segments_query(names)
    return len(plan.needs.measures), conditions


def per_segment(project_dir: Path) -> int:
    """Fused evaluation of the catalogue against one query per segment (``Project.compile``
    per segment, each its own DuckDB query, as in ``benchmarks/evaluate.py``), in this
    process, with the sizes checked equal."""
    import segctl

    project = segctl.Project.load(project_dir)
    names = project.segment_names(None)
    started = time.perf_counter()
    fused = {n: c.size for n, c in project.evaluate(as_of=AS_OF).changes.items()}
    fused_seconds = time.perf_counter() - started
    project = segctl.Project.load(project_dir)
    con = project.engine.con
    started = time.perf_counter()
    sizes = {}
    for name in names:
        sql = project.compile(name, as_of=AS_OF, pretty=False)
        row = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        sizes[name] = int(row[0]) if row else 0
    naive_seconds = time.perf_counter() - started
    same = sizes == fused
    print(f"machine: {json.dumps(machine())}", file=sys.stderr)
    print(f"{len(names)} segments, load average {os.getloadavg()[0]:.1f}")
    print(f"segctl evaluate (fused)      {fused_seconds:8.1f} s")
    print(f"one query per segment        {naive_seconds:8.1f} s")
    print(f"fused is {naive_seconds / fused_seconds:.1f}x faster; sizes identical: {same}")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--per-segment",
        action="store_true",
        help="instead of runs, time one fused evaluation against one query per segment",
    )
    args = parser.parse_args(argv)

    data = ensure_data(args.persons, args.events, args.seed)
    project = write_project(data, args.segments, args.seed)
    if args.per_segment:
        return per_segment(project)
    measures, conditions = distinct_measures(project)
    print(f"machine: {json.dumps(machine())}", file=sys.stderr)
    print(
        f"{args.segments} segments, {conditions} event conditions -> {measures} distinct "
        f"measures; data {data.name}",
        file=sys.stderr,
    )
    segctl = segctl_command()
    common = ["--project", str(project), "--format", "json", "--quiet"]
    steps: list[tuple[str, list[str]]] = [
        (
            "hand-written DuckDB, 29 segments (baseline)",
            [
                sys.executable,
                "-m",
                "benchmarks.runner",
                "duckdb",
                "--data",
                str(data),
                "--project",
                str(data / "project"),
                "--as-of",
                AS_OF,
            ],
        ),
        (
            f"segctl run, {args.segments} segments, first run",
            [*segctl, "run", *common, "--as-of", AS_OF],
        ),
        (
            f"segctl run, {args.segments} segments, next day",
            [*segctl, "run", *common, "--as-of", NEXT_DAY],
        ),
    ]
    from benchmarks.project import write_project as write_baseline_project

    write_baseline_project(data)
    rows: list[dict[str, Any]] = []
    for label, cmd in steps:
        started = time.perf_counter()
        sample = run_measured(cmd)
        rows.append({"label": label, "wall": sample.wall, "cpu": sample.cpu, "rss": sample.rss_kb})
        print(f"  {label}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        if "segctl run" in label:
            document = json.loads(sample.stdout)
            entered = sum(s["entered"] for s in document["segments"])
            exited = sum(s["exited"] for s in document["segments"])
            rows[-1]["changes"] = f"entered {entered:,}, exited {exited:,}"
    base = rows[0]
    print(f"\n{'step':52} {'wall s':>7} {'ratio':>6} {'CPU s':>7} {'ratio':>6} {'peak MiB':>9}")
    for row in rows:
        print(
            f"{row['label']:52} {row['wall']:7.1f} {row['wall'] / base['wall']:5.1f}x "
            f"{row['cpu']:7.1f} {row['cpu'] / base['cpu']:5.1f}x {row['rss'] / 1024:9.0f}"
            + (f"  ({row['changes']})" if "changes" in row else "")
        )
    worst = max(r["wall"] for r in rows[1:])
    verdict = "PASS" if worst < GOAL_SECONDS else "FAIL"
    print(
        f"\n{verdict}: a {args.segments}-segment run in {worst:.1f} s (goal < {GOAL_SECONDS:.0f} s)"
    )
    results = REPO / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = results / f"wide_{args.segments}_{data.name}_{stamp}.json"
    out.write_text(json.dumps({"rows": rows, "measures": measures, "machine": machine()}, indent=2))
    print(f"wrote {out.relative_to(REPO)}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
