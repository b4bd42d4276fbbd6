"""examples/: the scheduled-run workflow and the cron recipe, run for real.

The workflow's shell steps are executed in order by a small stand-in for the Actions runner
(bash -eo pipefail, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, ``${{ steps.X.outputs.Y }}``), with
``segctl`` on PATH, against a project with committed state; the ``uses:`` steps (checkout,
cache, artifacts) are checked for what they must do. Every ``segctl`` command line of the
examples is checked against the CLI's own options.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from conftest import Cli
from stateproject import write_project

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "github-actions" / "segctl-daily.yml"
CRON = ROOT / "examples" / "cron.md"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def workflow() -> dict[Any, Any]:
    document = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(document, dict)
    return document


def job() -> dict[str, Any]:
    [only] = workflow()["jobs"].values()
    return dict(only)


def cron_script() -> str:
    [script] = re.findall(r"```bash\n(.*?)```", CRON.read_text(), re.S)
    return str(script)


def cron_lines() -> list[str]:
    blocks = re.findall(r"```cron\n(.*?)```", CRON.read_text(), re.S)
    return [ln for b in blocks for ln in b.splitlines() if ln.strip() and not ln.startswith("#")]


# ---- the commands exist -----------------------------------------------------------------


def segctl_calls(script: str) -> list[list[str]]:
    """The segctl commands of a shell script: each command of a line (split at &&, ||, ;
    and |) that is ``segctl ...`` (possibly under ``flock -n LOCK``), up to a redirection."""
    calls = []
    for line in script.splitlines():
        line = re.sub(r'"[^"]*"' + r"|'[^']*'", '""', line)  # words in quotes are not commands
        for command in re.split(r"&&|\|\||;|\|", line):
            command = re.sub(r"^\s*flock\s+-n\s+\S+\s+", "", command).strip()
            if command.startswith("segctl "):
                calls.append(shlex.split(re.split(r"[<>]|\s#", command)[0])[1:])
    return calls


def all_calls() -> list[list[str]]:
    scripts = [s["run"] for s in job()["steps"] if "run" in s]
    scripts += [cron_script(), *cron_lines()]
    return [call for script in scripts for call in segctl_calls(script)]


def test_the_examples_use_only_commands_and_options_that_exist(cli: Cli) -> None:
    calls = all_calls()
    commands = {c[0] for c in calls}
    assert {"run", "diff", "report", "push"} <= commands, commands
    for call in calls:
        command, options = call[0], [w.split("=")[0] for w in call[1:] if w.startswith("-")]
        text = cli(command, "--help").stdout
        for option in options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (
                f"segctl {command} has no option {option}"
            )
    runs = [c for c in calls if c[0] == "run"]
    assert all("--format" in c and "json" in c for c in runs)  # the summary reads run.json


def test_the_workflow_runs_daily_and_keeps_the_state() -> None:
    document = workflow()
    triggers = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
    [schedule] = triggers["schedule"]
    assert len(schedule["cron"].split()) == 5 and schedule["cron"].split()[2:] == ["*"] * 3
    assert document["concurrency"]["cancel-in-progress"] is False
    steps = job()["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    restore, save = uses["actions/cache/restore"], uses["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == ".segctl"
    assert restore["with"]["key"] == save["with"]["key"]
    assert "github.run_id" in save["with"]["key"]  # a new cache per run (caches are immutable)
    [prefix] = restore["with"]["restore-keys"].split()
    assert save["with"]["key"].startswith(prefix)
    names = [s.get("name", s.get("uses")) for s in steps]
    run_at = names.index("Run")
    assert names.index("Restore the state") < run_at < names.index("Save the state")
    # Everything after the run happens even when it failed: save, summary, report, verdict.
    assert all(s.get("if") == "always()" for s in steps[run_at + 1 :])


# ---- the workflow, run ------------------------------------------------------------------


@dataclass
class Step:
    name: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Outcome:
    steps: dict[str, Step] = field(default_factory=dict)
    summary: str = ""


def shims(folder: Path) -> dict[str, str]:
    """An environment whose PATH has ``segctl`` and ``python`` of this checkout."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, command in (("segctl", f"{sys.executable} -m segctl"), ("python", sys.executable)):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("SEGCTL_PROJECT", "NO_COLOR")}
    env["PATH"] = f"{folder}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def run_workflow(project: Path, tmp: Path) -> Outcome:
    """Run the job's shell steps in ``project`` as the Actions runner would."""
    spec = job()
    env = shims(tmp / "bin")
    for key, value in spec.get("env", {}).items():
        env[key] = EXPRESSION.sub("dummy-secret", str(value))
    summary = tmp / "summary.md"
    summary.write_text("")
    outputs: dict[str, dict[str, str]] = {}

    def expand(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            found = re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+)", match.group(1))
            assert found, f"the stand-in runner does not know ${{{{ {match.group(1)} }}}}"
            return outputs.get(found.group(1), {}).get(found.group(2), "")

        return EXPRESSION.sub(value, text)

    outcome = Outcome()
    for index, step in enumerate(spec["steps"]):
        if "run" not in step or "pip install" in step["run"]:
            continue
        output = tmp / f"output{index}"
        output.write_text("")
        script = tmp / f"step{index}.sh"
        script.write_text(expand(step["run"]))
        step_env = {k: expand(str(v)) for k, v in step.get("env", {}).items()}
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=project,
            env={
                **env,
                **step_env,
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
            },
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if "id" in step:
            outputs[step["id"]] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
            )
        outcome.steps[step["name"]] = Step(step["name"], proc.returncode, proc.stdout, proc.stderr)
    outcome.summary = summary.read_text()
    return outcome


def test_the_workflow_summarises_each_run_and_passes(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    first = run_workflow(project, tmp_path / "first")
    assert first.steps["Run"].returncode == 0, first.steps["Run"]
    assert first.steps["Fail on an incomplete delivery or a locked state"].returncode == 0
    run = json.loads((project / "run.json").read_text())
    assert "## segctl run 1" in first.summary
    for segment in run["segments"]:
        row = f"| {segment['name']} | {segment['size']:,} | {segment['entered']:,} | "
        assert row in first.summary
    buyers = next(s for s in run["segments"] if s["name"] == "buyers")
    assert buyers["entered"] and f"buyers: {buyers['entered']} entered" in first.summary
    assert (project / "report.html").is_file()
    # The state survives to the next run, which diffs against the first.
    second = run_workflow(project, tmp_path / "second")
    assert "## segctl run 2" in second.summary and "changes since run 1" in second.summary


def test_the_workflow_fails_on_an_incomplete_delivery(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    (project / "segctl.yaml").write_text(
        (project / "segctl.yaml").read_text()
        + dedent("""\
        destinations:
          meta: {type: meta, ad_account_id: "1", access_token: token,
                 base_url: "http://127.0.0.1:9", max_retries: 0, timeout: 2}
        """)
    )
    (project / "segments" / "buyers.yaml").write_text(
        dedent("""\
        name: buyers
        rule: {event: purchase, count: {gte: 1}}
        audiences:
          - {destination: meta, audience_id: "23850000000000000"}
        """)
    )
    outcome = run_workflow(project, tmp_path / "ci")
    verdict = outcome.steps["Fail on an incomplete delivery or a locked state"]
    assert verdict.returncode == 5
    assert "::error title=segctl run::delivery incomplete (exit 5)" in verdict.stdout
    deliveries = json.loads((project / "run.json").read_text())["deliveries"]
    assert deliveries["pending"] >= 1
    assert f"**Delivery incomplete**: 0 failed, {deliveries['pending']} pending" in outcome.summary
    assert "## segctl run 1" in outcome.summary  # the snapshot was committed all the same
    assert (project / ".segctl" / "state.duckdb").is_file()


@pytest.mark.slow
def test_the_workflow_reports_a_definition_error(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    (project / "segments" / "broken.yaml").write_text("name: broken\nrule: {event: x}\n")
    outcome = run_workflow(project, tmp_path / "ci")
    assert "## segctl run failed (exit 3)" in outcome.summary
    verdict = outcome.steps["Fail on an incomplete delivery or a locked state"]
    assert verdict.returncode == 3 and "segctl run failed (exit 3)" in verdict.stdout


# ---- the cron recipe, run ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed")
def test_the_cron_line_runs_the_script_under_a_lock_and_logs(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    script = project / "segctl-daily.sh"
    script.write_text(cron_script())
    script.chmod(0o750)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("UNUSED_TOKEN=x\n")
    [daily] = [line for line in cron_lines() if "segctl-daily.sh" in line]
    fields = daily.split(None, 5)
    assert fields[:5] == ["17", "5", "*", "*", "*"]
    command = (
        fields[5]
        .replace("/srv/segments", str(project))
        .replace("/var/log/segctl", str(tmp_path))
        .replace("/tmp/segctl-daily.lock", str(tmp_path / "lock"))
    )
    env = {**shims(tmp_path / "bin"), "SEGCTL_SECRETS": str(secrets)}
    proc = subprocess.run(["sh", "-c", command], env=env, timeout=300, check=False)
    assert proc.returncode == 0
    log = (tmp_path / "daily.log").read_text()
    assert "segctl run" in log and log.rstrip().endswith("ok")
    [run_json] = (project / "runs").glob("*.run.json")
    assert json.loads(run_json.read_text())["run_id"] == 1
    assert (project / "runs" / "report.html").is_file()
    # While the lock is held, the next run is skipped, not queued behind it.
    with (tmp_path / "lock").open("w") as held:
        import fcntl

        fcntl.flock(held, fcntl.LOCK_EX)
        skipped = subprocess.run(["sh", "-c", command], env=env, timeout=60, check=False)
    assert skipped.returncode == 1
    assert len(list((project / "runs").glob("*.run.json"))) == 1
