"""Crash benchmark: random SIGKILLs of `segctl run` / `segctl push` against the platform fakes,
then `segctl push` until done, and the checks that nothing was lost or sent twice.

    python -m benchmarks.crash [--trials 100] [--seed 1000] [--jobs 2]

Each trial is the crash suite's (tests/test_crash.py): the scenario of tests/fakes/scenario.py
(two or three runs, webhooks, emails, tags, emitted events, Meta/Google/TikTok/Resend/file
audiences), one to three faults (a kill at a random time, or at a named crash point), a
restarted run when the kill came before its commit, and the final checks (audiences exact,
every transition delivered once after de-duplication, consistent history). Prints the table of
trials, faults and failures; exits 1 when a trial failed, naming its seed (rerun one trial with
``--trials 1 --seed SEED``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_crash import Trial, run_trials, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="number of trials (100)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first trial (1000)")
    parser.add_argument("--jobs", type=int, default=2, help="trials run at once (2)")
    parser.add_argument("--quiet", action="store_true", help="no line per trial")
    args = parser.parse_args(argv)

    def progress(trial: Trial) -> None:
        if not args.quiet:
            faults = ", ".join(
                f"{c.args[0]}[{c.fault}]{'x' if c.killed else ''}"
                for c in trial.commands
                if c.fault
            )
            verdict = "FAILED" if trial.failures else "ok"
            sys.stdout.write(f"seed {trial.seed}: {verdict} in {trial.seconds:.1f}s; {faults}\n")
            sys.stdout.flush()

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="segctl-crash-") as workdir:
        trials = run_trials(
            range(args.seed, args.seed + args.trials),
            Path(workdir),
            jobs=args.jobs,
            progress=progress,
        )
    rows = [*table(trials), ("wall seconds", f"{time.monotonic() - started:.0f}")]
    width = max(len(name) for name, _ in rows)
    print()
    print(f"{'':{width}}  value")
    for name, value in rows:
        print(f"{name:{width}}  {value:>5}")
    failed = [t for t in trials if t.failures]
    for trial in failed:
        print(f"\nseed {trial.seed} failed:\n  " + "\n  ".join(trial.failures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
