"""``segctl init``: the scaffolded project works as the README says, end to end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import Cli

import segctl as lib
from segctl import scaffold
from segctl.config import TOP_KEYS, load_config
from segctl.definitions.templates import TEMPLATES

ROOT = Path(__file__).resolve().parent.parent


def segctl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, run from ``cwd`` as a user would (no --project)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SEGCTL_PROJECT", "NO_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "segctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`segctl init demo --sample`, run in a fresh folder."""
    cwd = tmp_path_factory.mktemp("init")
    proc = segctl(cwd, "init", "demo", "--sample")
    assert proc.returncode == 0, proc.stderr
    assert "next: cd demo && segctl validate && segctl run --dry-run" in proc.stderr
    return cwd / "demo"


def test_init_sample_then_dry_run_works(demo: Path) -> None:
    proc = segctl(demo, "run", "--dry-run")  # the README's words exactly
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Plan (dry run, nothing committed) as of ")
    sizes = {row.split()[0]: int(row.split()[1]) for row in lines[3:] if row.strip()}
    assert sorted(sizes) == sorted(scaffold.SEGMENTS)
    # The sample plants every archetype the segments look for, anchored at today.
    assert all(size > 0 for size in sizes.values()), sizes
    assert not (demo / ".segctl" / "state.duckdb").exists()  # a dry run commits nothing


def test_the_sample_of_init_holds_nothing_after_the_moment_it_was_made(demo: Path) -> None:
    """Anchored at the moment `init` runs, the sample is the data a project would have then:
    no event, person or subscription change after it (the bundled sample, anchored at a
    fixed day, plants some after its anchor for the as_of tests)."""
    import duckdb

    made = (demo / "segctl.yaml").stat().st_mtime
    data = demo / "sample_data"
    con = duckdb.connect()
    newest = con.execute(
        f"""SELECT max(epoch(timestamp)) FROM '{data / "events.parquet"}'
            UNION ALL SELECT max(epoch(created_at::TIMESTAMPTZ)) FROM '{data / "persons.csv"}'
            UNION ALL SELECT max(epoch(updated_at::TIMESTAMPTZ))
                      FROM '{data / "subscriptions.csv"}'"""
    ).fetchall()
    assert all(value <= made for (value,) in newest), (newest, made)


def test_the_scaffold_validates_and_its_files_are_in_place(demo: Path) -> None:
    proc = segctl(demo, "validate", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["valid"] and sorted(document["segments"]) == sorted(scaffold.SEGMENTS)
    assert sorted(document["features"]) == ["active_days_30d", "last_active", "ltv"]
    for name in ("events.parquet", "persons.csv", "subscriptions.csv"):
        assert (demo / "sample_data" / name).is_file()
    assert (demo / ".gitignore").read_text().split().count(".segctl/") == 1


def test_every_segment_comes_from_a_template(demo: Path) -> None:
    for name in scaffold.SEGMENTS:
        document = yaml.safe_load((demo / "segments" / f"{name}.yaml").read_text())
        assert document["name"] == name
        used = re.findall(r"template: (\w+)", (demo / "segments" / f"{name}.yaml").read_text())
        assert used and all(t in TEMPLATES for t in used), (name, used)


def uncommented(text: str) -> str:
    """segctl.yaml with its commented-out option blocks switched on."""
    out = []
    for line in text.splitlines():
        body = line[2:] if line.startswith("# ") else None
        if body is not None and re.match(r"(\w+:|  +\S)", body) and not body.startswith("  #"):
            out.append(body)
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def test_segctl_yaml_documents_every_option_and_the_comments_are_valid(demo: Path) -> None:
    text = (demo / "segctl.yaml").read_text()
    for key in TOP_KEYS:
        assert re.search(rf"^(# )?{key}:", text, re.M), f"segctl.yaml does not mention {key}"
    assert "columns:" in text  # the renames, commented
    # Switching every commented block on gives a configuration segctl accepts.
    (demo / "all_options").mkdir(exist_ok=True)
    full = demo / "all_options" / "segctl.yaml"
    full.write_text(uncommented(text).replace("sample_data/", "../sample_data/"))
    environ = {
        "CRM_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "RESEND_API_KEY": "re_key",
        "META_ACCESS_TOKEN": "meta",
        "GOOGLE_ACCESS_TOKEN": "google",
        "TIKTOK_ACCESS_TOKEN": "tiktok",
    }
    config = load_config(full.parent, environ)
    assert sorted(config.destinations) == [
        "crm_hook",
        "export",
        "google",
        "meta",
        "resend",
        "tiktok",
    ]
    assert config.max_exit_ratio == 0.5
    assert config.consent_column == "marketing_opt_in"
    assert config.suppression_file is not None and config.suppression_file.is_file()
    assert config.engine.memory_limit == "4GB" and config.engine.threads == 2
    assert not any(config.columns.values())  # renames stay off: they name other files


def test_init_refuses_to_overwrite_and_force_rewrites_the_config_alone(
    tmp_path: Path, cli: Cli
) -> None:
    """--force replaces segctl.yaml, as its help says; it also replaced every segment file
    and features.yaml a user had edited, silently. They are kept, and said."""
    target = tmp_path / "proj"
    cli("init", target)
    (target / "segments" / "churn_risk.yaml").write_text("edited")
    (target / "features.yaml").write_text("features: {}\n")
    (target / "segctl.yaml").write_text("edited: config\n")
    result = cli("init", target, code=2)
    assert "already exists (use --force to overwrite)" in result.stderr
    assert (target / "segments" / "churn_risk.yaml").read_text() == "edited"
    (target / "segments" / "active_users.yaml").unlink()
    forced = cli("init", target, "--force")
    assert (target / "segctl.yaml").read_text() != "edited: config\n"
    assert (target / "segments" / "churn_risk.yaml").read_text() == "edited"
    assert (target / "features.yaml").read_text() == "features: {}\n"
    said = (target / "segments" / "active_users.yaml").read_text()
    assert said == scaffold.SEGMENTS["active_users"]  # a missing one is written again
    assert f"kept {target / 'segments' / 'churn_risk.yaml'} (it exists)" in forced.stderr
    assert f"created {target / 'segments' / 'active_users.yaml'}" in forced.stderr


def test_init_keeps_an_existing_gitignore(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    cli("init", tmp_path)
    assert (tmp_path / ".gitignore").read_text().splitlines()[0] == "*.pyc"
    assert ".segctl/" in (tmp_path / ".gitignore").read_text().split()
    cli("init", tmp_path, "--force")
    assert (tmp_path / ".gitignore").read_text().split().count(".segctl/") == 1


def test_without_sample_the_next_step_is_your_data(tmp_path: Path, cli: Cli) -> None:
    result = cli("init", tmp_path / "mine")
    assert "put your events, persons and subscriptions files in" in result.stderr
    assert not (tmp_path / "mine" / "sample_data").exists()
    validation = cli("validate", "--project", tmp_path / "mine", code=4)
    assert "data/events.parquet" in validation.stderr


def test_init_refuses_a_file_in_the_way(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "taken").write_text("")
    result = cli("init", tmp_path / "taken", code=2)
    assert "is not a folder" in result.stderr


def test_a_sample_project_runs_and_reports(demo: Path, tmp_path: Path) -> None:
    proc = segctl(demo, "run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["run_id"] == 1
    out = tmp_path / "report.html"
    proc = segctl(demo, "report", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert 'id="chart-sizes"' in out.read_text()
    assert lib.Project.load(demo).history("active_users")[0].size > 0


def test_a_reader_that_stops_early_ends_it_quietly(demo: Path) -> None:
    """``segctl features -f json | head -1``: the rest of the output has nowhere to go, which
    is the reader's choice, not an internal error (exit 70 and a plea to report it)."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "segctl", "features", "--format", "json"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with subprocess.Popen(
        command, cwd=demo, env={**os.environ, "PYTHONPATH": path}, **pipes
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"[\n"
        proc.stdout.close()  # the sample's ~3,000 persons are more than a pipe holds
        errors = proc.stderr.read().decode()
        assert (proc.wait(timeout=120), errors) == (0, "")


def test_forget_leaves_no_byte_of_the_person_in_the_state(demo: Path, tmp_path: Path) -> None:
    """Erasure drops the person's data from the state: not only from its tables, from the
    files' bytes too (DuckDB keeps the blocks a delete frees, readable, until rewritten)."""
    root = tmp_path / "demo"
    shutil.copytree(demo, root, ignore=shutil.ignore_patterns(".segctl"))
    assert segctl(root, "run", "--as-of", "2026-12-05T00:00:00Z").returncode == 0
    state = root / ".segctl"

    def holding(text: str) -> list[str]:
        found = [f for f in state.rglob("*") if f.is_file() and text.encode() in f.read_bytes()]
        return sorted(str(f.relative_to(state)) for f in found)

    members = segctl(root, "members", "active_users", "--format", "json").stdout
    victim = json.loads(members)[5]["person_id"]
    assert holding(victim) == ["state.duckdb"]  # before: the id is readable in the file
    assert segctl(root, "forget", victim).returncode == 0
    assert holding(victim) == []
