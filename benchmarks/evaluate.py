"""Benchmark ``segctl evaluate`` against hand-written queries on the same generated data.

    python -m benchmarks.evaluate                 # 1M persons, 10M events, 3 repeats
    python -m benchmarks.evaluate --quick         # 100k persons, 1M events, smoke test
    python -m benchmarks.evaluate --events 50000000 --persons 5000000 --repeats 1

Every method runs in a fresh process (so wall times and peak memory are comparable), on the
same files, computing the memberships of the same 29 segments (benchmarks/project.py):

    segctl evaluate (CLI)       `segctl evaluate --project DIR --as-of T --format json`
    segctl API evaluate         Project.load(DIR).evaluate(as_of=T), in process
    segctl fused SQL only       Project.compile() for all segments, run as one DuckDB query
    hand-written DuckDB         one scan, written by hand (benchmarks/handwritten.py): baseline
    hand-written polars         the same as a polars lazy query
    one query per segment       Project.compile(name) per segment, run one by one
    segctl CLI, JSON properties the CLI on a copy of the events whose properties sit in one
                                JSON text column (benchmarks/nested.py)
    segctl CLI, STRUCT props    the same with the properties in one STRUCT column

First each method runs once writing its (segment, person_id) pairs, and all are checked to be
identical per segment (any difference stops the benchmark with exit code 1). Then each runs
--repeats times, interleaved (with --quick, the check run is the one timed run). The table
shows medians of the wall time of the whole process, the in-process compute time (after the
imports; "-" for the CLI) and the CPU time (user+system), their ratios to the hand-written
DuckDB query, and the peak RSS. Results also go to benchmarks/results/*.json. Goals are
printed as PASS/FAIL lines but never fail the script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/evaluate.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import (
    DEFAULT_EVENTS,
    DEFAULT_PERSONS,
    DEFAULT_SEED,
    ensure_data,
)
from benchmarks.handwritten import NAMES
from benchmarks.nested import GOALS as NESTED_GOALS
from benchmarks.nested import write_nested_projects
from benchmarks.project import AS_OF, write_project

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
QUICK_PERSONS, QUICK_EVENTS = 100_000, 1_000_000
BASELINE = "duckdb"
GOAL_VS_HANDWRITTEN = 1.2
GOAL_VS_PER_SEGMENT = 5.0


@dataclass
class Method:
    key: str
    label: str
    runner: str | None  # benchmarks.runner method, or None for the segctl CLI
    variant: str | None = None  # benchmarks.nested variant (its own project), for the CLI
    walls: list[float] = field(default_factory=list)
    computes: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def methods() -> list[Method]:
    return [
        Method("segctl_cli", "segctl evaluate (CLI)", None),
        Method("segctl_api", "segctl API evaluate", "segctl_api"),
        Method("segctl_sql", "segctl fused SQL only", "segctl_sql"),
        Method("duckdb", "hand-written DuckDB", "duckdb"),
        Method("polars", "hand-written polars", "polars"),
        Method("per_segment", "one query per segment", "per_segment"),
        Method("segctl_json", "segctl CLI, JSON properties", None, "json"),
        Method("segctl_struct", "segctl CLI, STRUCT props", None, "struct"),
    ]


# ---- running one process -----------------------------------------------------------------


def segctl_command() -> list[str]:
    """The segctl console script next to this interpreter (not a pyenv shim), else PATH."""
    beside = Path(sys.executable).parent / "segctl"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("segctl")
    return [found] if found else [sys.executable, "-m", "segctl"]


def command(method: Method, data: Path, project: Path, as_of: str, out: Path | None) -> list[str]:
    if method.variant is not None:
        project = data / f"project_{method.variant}"
    if method.runner is None:
        cmd = [*segctl_command(), "evaluate", "--project", str(project), "--as-of", as_of]
        cmd += ["--format", "json", "--quiet"]
        return cmd + (["--out", str(out)] if out else [])
    cmd = [sys.executable, "-m", "benchmarks.runner", method.runner, "--data", str(data)]
    cmd += ["--project", str(project), "--as-of", as_of]
    return cmd + (["--out", str(out)] if out else [])


# A fallback when /usr/bin/time is missing: a fresh wrapper process whose RUSAGE_CHILDREN then
# covers exactly one command; it writes what /usr/bin/time -v would.
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'User time (seconds): {u.ru_utime}\\n'\n"
    "    f'System time (seconds): {u.ru_stime}\\n'\n"
    "    f'Maximum resident set size (kbytes): {u.ru_maxrss}\\n')\n"
    "sys.exit(code)\n"
)


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process
    rss_kb: int  # peak resident set size
    stdout: str


def run_measured(cmd: list[str]) -> Sample:
    """Run one command in a fresh process and measure it. Fails loudly on error."""
    env = dict(
        os.environ,
        NO_COLOR="1",
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    with tempfile.NamedTemporaryFile("r", suffix=".rss", delete=False) as handle:
        rss_file = handle.name
    try:
        if Path("/usr/bin/time").is_file():
            wrapped = ["/usr/bin/time", "-v", "-o", rss_file, *cmd]
        else:
            wrapped = [sys.executable, "-c", _RSS_WRAPPER, rss_file, *cmd]
        started = time.perf_counter()
        proc = subprocess.run(wrapped, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"FAILED (exit {proc.returncode}): {' '.join(cmd)}")
        text = Path(rss_file).read_text()
    finally:
        Path(rss_file).unlink(missing_ok=True)

    def number(label: str) -> float:
        found = re.search(re.escape(label) + r": ([0-9.]+)", text)
        return float(found.group(1)) if found else 0.0

    cpu = number("User time (seconds)") + number("System time (seconds)")
    rss = int(number("Maximum resident set size (kbytes)"))
    return Sample(wall, cpu, rss, proc.stdout)


def parse_output(method: Method, stdout: str) -> tuple[float | None, dict[str, int]]:
    """(compute seconds or None, sizes per segment) from a method's stdout."""
    document = json.loads(stdout)
    if method.runner is None:
        return None, {s["name"]: int(s["size"]) for s in document["segments"]}
    return float(document["compute_seconds"]), {k: int(v) for k, v in document["sizes"].items()}


# ---- membership check --------------------------------------------------------------------


def check_memberships(reference: Method, others: list[Method], files: dict[str, Path]) -> None:
    """Every method's (segment, person_id) sets equal the reference's, per segment."""
    import duckdb

    con = duckdb.connect()
    problems: list[str] = []

    def read(key: str) -> str:
        return "read_parquet(" + "'" + str(files[key]).replace("'", "''") + "')"

    for method in others:
        rows = con.execute(
            f"""
            SELECT coalesce(a.segment, b.segment) AS segment,
                   count(*) FILTER (WHERE b.person_id IS NULL) AS only_reference,
                   count(*) FILTER (WHERE a.person_id IS NULL) AS only_method,
                   any_value(coalesce(a.person_id, b.person_id))
                       FILTER (WHERE a.person_id IS NULL OR b.person_id IS NULL) AS example
            FROM (SELECT DISTINCT segment, person_id FROM {read(reference.key)}) a
            FULL OUTER JOIN (SELECT DISTINCT segment, person_id FROM {read(method.key)}) b
              ON a.segment = b.segment AND a.person_id = b.person_id
            GROUP BY 1 HAVING only_reference > 0 OR only_method > 0 ORDER BY 1"""
        ).fetchall()
        for segment, only_ref, only_method, example in rows:
            problems.append(
                f"  {method.label}: {segment}: {only_ref} member(s) only in {reference.label}, "
                f"{only_method} only in {method.label} (e.g. {example})"
            )
        duplicates = con.execute(
            f"SELECT count(*) - count(DISTINCT (segment, person_id)) FROM {read(method.key)}"
        ).fetchone()
        if duplicates and duplicates[0]:
            problems.append(f"  {method.label}: {duplicates[0]} duplicate (segment, person_id)")
        if method.sizes != reference.sizes:
            diff = {
                n: (reference.sizes.get(n), method.sizes.get(n))
                for n in NAMES
                if reference.sizes.get(n) != method.sizes.get(n)
            }
            problems.append(f"  {method.label}: reported sizes differ (reference, method): {diff}")
    if problems:
        print(
            "\nMEMBERSHIP MISMATCH: the methods do not compute the same segments:", file=sys.stderr
        )
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(1)


# ---- reporting ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    import duckdb
    import polars
    import pyarrow

    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pyarrow": pyarrow.__version__,
        "sqlglot": version("sqlglot"),
    }
    try:
        meminfo = Path("/proc/meminfo").read_text()
        total = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        info["ram_gib"] = round(int(total.group(1)) / 2**20, 1) if total else None
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        info["cpu"] = cpu.group(1).strip() if cpu else platform.processor()
    except OSError:
        info["ram_gib"], info["cpu"] = None, platform.processor()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "segctl"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        info["segctl_commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        info["segctl_commit"] = None
    return info


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def summarise(ms: list[Method]) -> list[dict[str, Any]]:
    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def ratio(value: float | None, base: float | None) -> float | None:
        return value / base if value is not None and base else None

    base = next((m for m in ms if m.key == BASELINE), None)
    base_wall = median(base.walls) if base else None
    base_compute = median(base.computes) if base else None
    base_cpu = median(base.cpus) if base else None
    rows = []
    for m in ms:
        if not m.walls:
            continue
        wall, compute, cpu = median(m.walls), median(m.computes), median(m.cpus)
        rows.append(
            {
                "method": m.label,
                "key": m.key,
                "wall_s": wall,
                "ratio_wall": ratio(wall, base_wall),
                "compute_s": compute,
                "ratio_compute": ratio(compute, base_compute),
                "cpu_s": cpu,
                "ratio_cpu": ratio(cpu, base_cpu),
                "peak_rss_mib": max(m.rss_kb) / 1024,
                "walls": m.walls,
                "computes": m.computes,
                "cpus": m.cpus,
                "peak_rss_kib": m.rss_kb,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], repeats: int) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    header = ["method", "wall s", "vs DuckDB", "compute s", "vs DuckDB", "CPU s", "vs DuckDB"]
    header.append("peak RSS MiB")
    body = [
        [
            r["method"],
            seconds(r["wall_s"]),
            fmt_ratio(r["ratio_wall"]),
            seconds(r["compute_s"]),
            fmt_ratio(r["ratio_compute"]),
            seconds(r["cpu_s"]),
            fmt_ratio(r["ratio_cpu"]),
            f"{r['peak_rss_mib']:.0f}",
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print("-" * len(line(header)))
    for row in body:
        print(line(row))
    runs = f"{repeats} run{'s' if repeats > 1 else ''}"
    print(
        f"(median of {runs}; wall = the whole process, incl. interpreter start and imports; "
        "compute = in-process wall time after the imports; CPU = user+system time of the "
        "process, the least noise-sensitive on a busy machine; ratios vs hand-written DuckDB)"
    )


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The goals, judged on wall time; the CPU-time ratio is reported alongside."""
    by = {r["key"]: r for r in rows}
    out = []
    cli, base, naive = by.get("segctl_cli"), by.get(BASELINE), by.get("per_segment")
    if cli and base:
        ratio = cli["wall_s"] / base["wall_s"]
        out.append(
            {
                "goal": f"segctl evaluate within {GOAL_VS_HANDWRITTEN}x of the hand-written "
                "DuckDB query (whole process)",
                "value": f"{ratio:.2f}x (CPU time {cli['cpu_s'] / base['cpu_s']:.2f}x)",
                "pass": ratio <= GOAL_VS_HANDWRITTEN,
            }
        )
    for variant, goal in NESTED_GOALS.items():
        nested = by.get(f"segctl_{variant}")
        if cli and nested:
            ratio = nested["wall_s"] / cli["wall_s"]
            out.append(
                {
                    "goal": f"segctl evaluate with {variant.upper()} properties within {goal:g}x "
                    "of the flat columns (whole process)",
                    "value": f"{ratio:.2f}x (CPU time {nested['cpu_s'] / cli['cpu_s']:.2f}x)",
                    "pass": ratio <= goal,
                }
            )
    if cli and naive:
        speedup = naive["wall_s"] / cli["wall_s"]
        out.append(
            {
                "goal": f"segctl evaluate at least {GOAL_VS_PER_SEGMENT:g}x faster than one "
                "query per segment (whole process)",
                "value": f"{speedup:.2f}x faster (CPU time {naive['cpu_s'] / cli['cpu_s']:.2f}x)",
                "pass": speedup >= GOAL_VS_PER_SEGMENT,
            }
        )
    return out


def memory_goal(data: Path, project: Path, as_of: str, limit: str) -> dict[str, Any]:
    """segctl evaluate under ``engine.memory_limit``: it must finish (spilling to the temp
    directory) with a peak RSS within the limit plus what the process holds before evaluating,
    measured as the peak RSS of ``segctl validate`` on the same project (interpreter, imports,
    DuckDB, the input schema)."""
    bounded = project.parent / "project_bounded"
    if bounded.exists():
        shutil.rmtree(bounded)
    shutil.copytree(project, bounded, ignore=shutil.ignore_patterns(".segctl"))
    spill = data / "spill"
    config = bounded / "segctl.yaml"
    config.write_text(
        config.read_text() + f"engine:\n  memory_limit: {limit}\n  temp_directory: {spill}\n"
    )
    footprint = run_measured([*segctl_command(), "validate", "--project", str(bounded)])
    evaluate = ["evaluate", "--project", str(bounded), "--as-of", as_of, "--format", "json"]
    sample = run_measured([*segctl_command(), *evaluate, "--quiet"])
    limit_mib = _mib(limit)
    peak_mib = sample.rss_kb / 1024
    allowed = limit_mib + footprint.rss_kb / 1024
    return {
        "goal": f"segctl evaluate with memory_limit {limit} peaks within the limit + the "
        f"process footprint ({footprint.rss_kb / 1024:,.0f} MiB)",
        "value": f"peak {peak_mib:,.0f} MiB of {allowed:,.0f} MiB allowed, {sample.wall:.1f} s",
        "pass": peak_mib <= allowed,
    }


def _mib(text: str) -> float:
    """'500MB' / '2GB' / '1GiB' in MiB."""
    found = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B)\s*", text, re.IGNORECASE)
    if not found:
        raise SystemExit(f"--memory-limit: expected e.g. 500MB or 2GB, got {text!r}")
    unit = found.group(2).upper()
    base = 1024 if "I" in unit else 1000
    return float(found.group(1)) * base ** ("KMGT".index(unit[0]) + 1) / 2**20


# ---- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluate",
        description="Benchmark segctl evaluate against hand-written DuckDB/polars queries and "
        "a one-query-per-segment compiler (see benchmarks/README.md).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_PERSONS:,} persons and {QUICK_EVENTS:,} events, and the check "
        "run of each method is its one timed run",
    )
    parser.add_argument("--persons", type=int, help=f"default {DEFAULT_PERSONS:,}")
    parser.add_argument("--events", type=int, help=f"default {DEFAULT_EVENTS:,}")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--repeats", "-n", type=int, help="timed runs per method (default 3)")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument(
        "--methods",
        help="comma-separated subset of: " + ", ".join(m.key for m in methods()),
    )
    parser.add_argument(
        "--memory-limit",
        help="also run segctl evaluate with this engine.memory_limit (e.g. 500MB) and check that "
        "its peak memory stays within the limit plus the process's own footprint",
    )
    args = parser.parse_args(argv)
    persons = args.persons or (QUICK_PERSONS if args.quick else DEFAULT_PERSONS)
    events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    if args.quick and args.repeats not in (None, 1):
        parser.error("--quick times the check run only; drop --repeats or --quick")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    data = ensure_data(persons, events, args.seed)
    project = write_project(data)
    members = data / "members"
    members.mkdir(exist_ok=True)
    selected = methods()
    if args.methods:
        wanted = {k.strip() for k in args.methods.split(",")}
        unknown = wanted - {m.key for m in selected}
        if unknown:
            parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
        selected = [m for m in selected if m.key in wanted]
    if any(m.variant for m in selected):
        write_nested_projects(data)

    info = machine()
    print(
        f"segctl evaluate benchmark: {persons:,} persons, {events:,} events, "
        f"{len(NAMES)} segments, as_of {args.as_of}"
    )
    print(
        f"machine: {info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM; "
        f"python {info['python']}, duckdb {info['duckdb']}, polars {info['polars']}, "
        f"pyarrow {info['pyarrow']}, sqlglot {info['sqlglot']}; segctl {info['segctl_commit']}"
    )
    print(f"data: {data}")
    load_before = load()
    print(f"load average before: {load_before}\n")

    # 1. One run each writing memberships, then the check. It also warms the page cache; with
    #    --quick it is the timed run too (so wall and CPU include writing the members file).
    files: dict[str, Path] = {}
    checks: dict[str, Sample] = {}
    for m in selected:
        out = members / f"{m.key}.parquet"
        out.unlink(missing_ok=True)
        print(f"check run: {m.label} ...", end=" ", flush=True)
        checks[m.key] = sample = run_measured(command(m, data, project, args.as_of, out))
        _, m.sizes = parse_output(m, sample.stdout)
        files[m.key] = out
        print(f"{sample.wall:.1f}s")
    reference = next((m for m in selected if m.key == BASELINE), selected[0])
    check_memberships(reference, [m for m in selected if m is not reference], files)
    total = sum(reference.sizes.values())
    print(
        f"memberships identical across {len(selected)} methods: {len(NAMES)} segments, "
        f"{total:,} (segment, person) pairs"
    )
    print("segment sizes: " + ", ".join(f"{n} {reference.sizes[n]:,}" for n in NAMES) + "\n")

    # 2. Timed runs, interleaved (rotating the order) so that noise spreads over all methods.
    for r in range(args.repeats):
        order = selected[r % len(selected) :] + selected[: r % len(selected)]
        for m in order:
            if args.quick:
                sample = checks[m.key]
            else:
                sample = run_measured(command(m, data, project, args.as_of, None))
            compute, sizes = parse_output(m, sample.stdout)
            if sizes != reference.sizes:
                raise SystemExit(f"{m.label}: sizes changed between runs: {sizes}")
            m.walls.append(sample.wall)
            m.cpus.append(sample.cpu)
            m.rss_kb.append(sample.rss_kb)
            if compute is not None:
                m.computes.append(compute)
            extra = f", compute {compute:.2f}s" if compute is not None else ""
            print(
                f"  run {r + 1}/{args.repeats}: {m.label:24s} wall {sample.wall:7.2f}s{extra}, "
                f"cpu {sample.cpu:.2f}s, peak {sample.rss_kb / 1024:,.0f} MiB",
                flush=True,
            )
    load_after = load()

    rows = summarise(selected)
    print(
        f"\nResults: {persons:,} persons, {events:,} events, {len(NAMES)} segments "
        f"(load average before {load_before}, after {load_after})"
    )
    print_table(rows, args.repeats)
    if args.quick:
        print(
            "(--quick: a smoke test; the timed run is the check run, so wall and CPU include "
            "writing the members file)"
        )
    results = goals(rows)
    if args.memory_limit:
        results.append(memory_goal(data, project, args.as_of, args.memory_limit))
    print()
    for g in results:
        print(f"{'PASS' if g['pass'] else 'FAIL'}: {g['goal']}: {g['value']}")

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"evaluate_{data.name}_{stamp}.json"
    document = {
        "benchmark": "evaluate",
        "timestamp": stamp,
        "params": {
            "persons": persons,
            "events": events,
            "seed": args.seed,
            "as_of": args.as_of,
            "repeats": args.repeats,
        },
        "data": str(data),
        "machine": info,
        "load_average": {"before": load_before, "after": load_after},
        "segments": len(NAMES),
        "sizes": reference.sizes,
        "results": rows,
        "goals": results,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
