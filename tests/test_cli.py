"""The core commands through Typer's CliRunner: exit codes, output documents, files written.

``cli(*args, code=N)`` (conftest) asserts the exit code and that no traceback was printed. In
this click version ``result.stdout`` and ``result.stderr`` are captured separately (and
``result.output`` interleaves both), so a test can check that stdout holds only the document.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlglot
import typer
import yaml
from conftest import AS_OF, EXPECTED, Cli, MakeProject
from conftest import SEGMENTS as FIXTURE_SEGMENTS
from typer.testing import CliRunner

from segctl.cli import app
from segctl.cli.frames import write_frame
from segctl.definitions.templates import TEMPLATES
from segctl.project import DIALECTS
from segctl.scaffold import SEGMENTS


def parse_csv(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows, "no CSV output"
    assert len({len(r) for r in rows}) == 1, f"ragged CSV:\n{text}"
    return rows


def assert_one_error(result: Any, *fragments: str) -> None:
    """One ``error:`` message on stderr naming ``fragments``, nothing on stdout."""
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("error: ") == 1
    for fragment in fragments:
        assert fragment in result.stderr


# ---- validate ---------------------------------------------------------------------------------


def test_validate_ok(cli: Cli, project: Path) -> None:
    result = cli("validate", "--project", project)
    assert result.stdout.strip() == "ok: 3 segments and 2 features are valid"
    assert result.stderr == ""


def test_validate_json_lists_segments_and_features(cli: Cli, project: Path) -> None:
    result = cli("validate", "--project", project, "--format", "json")
    assert json.loads(result.stdout) == {
        "valid": True,
        "segments": ["big_spenders", "power_users", "vip"],
        "features": ["renders_30d", "ltv"],
        "warnings": [],  # what the data views leave out (none here)
    }


def test_validate_csv(cli: Cli, project: Path) -> None:
    rows = parse_csv(cli("validate", "--project", project, "--format", "csv").stdout)
    assert rows[0] == ["kind", "name"]
    assert ["segment", "vip"] in rows and ["feature", "ltv"] in rows


def test_validate_finds_the_project_from_the_environment(
    cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGCTL_PROJECT", str(project))
    assert "3 segments" in cli("validate").stdout


def test_validate_json_reports_problems_with_locations(cli: Cli, make_project: MakeProject) -> None:
    root = make_project(
        segments={"a": "name: a\nrule: {property: plna, eq: pro}\n", "b": "name: b\nrule: {}\n"}
    )
    result = cli("validate", "--project", root, "--format", "json", code=3)
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert {(p["file"], p["line"], p["col"]) for p in document["problems"]} == {
        ("segments/a.yaml", 2, 18),
        ("segments/b.yaml", 2, 7),
    }
    assert "did you mean 'plan'?" in document["problems"][0]["message"]
    assert "segments/a.yaml:2:18" in result.stderr


def test_no_project_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", "--project", tmp_path, code=3)
    assert_one_error(result, "no segctl.yaml in", "segctl init")


def test_debug_shows_the_traceback(project: Path) -> None:
    (project / "segments" / "vip.yaml").write_text("name: vip\nrule: {list: {file: nope.csv}}\n")
    quiet = CliRunner().invoke(app, ["validate", "--project", str(project)])
    loud = CliRunner().invoke(app, ["validate", "--project", str(project), "--debug"])
    assert quiet.exit_code == loud.exit_code == 3
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "DefinitionError" in loud.stderr


# ---- evaluate ---------------------------------------------------------------------------------


def test_evaluate_json_shape(cli: Cli, project: Path) -> None:
    result = cli("evaluate", "--project", project, "--as-of", AS_OF, "--format", "json")
    document = json.loads(result.stdout)  # stdout holds only the document
    # The SPEC's keys, plus "warnings" (additive: stale data, ignored events), empty here.
    assert list(document) == ["as_of", "segments", "warnings"]
    assert document["warnings"] == []
    assert document["as_of"] == AS_OF
    assert document["segments"] == [
        {"name": name, "size": len(EXPECTED[name]), "entered": len(EXPECTED[name]), "exited": 0}
        for name in sorted(EXPECTED)
    ]
    for segment in document["segments"]:
        assert list(segment) == ["name", "size", "entered", "exited"]


def test_evaluate_named_segments_only(cli: Cli, project: Path) -> None:
    result = cli("evaluate", "vip", "--project", project, "--as-of", AS_OF, "--format", "json")
    assert [s["name"] for s in json.loads(result.stdout)["segments"]] == ["vip"]


def test_evaluate_as_of_in_the_past_ignores_later_events(cli: Cli, project: Path) -> None:
    # At 2026-11-11 p1 has one render in the window and p3 has not purchased yet.
    result = cli("evaluate", "--project", project, "--as-of", "2026-11-11", "--format", "json")
    document = json.loads(result.stdout)
    assert document["as_of"] == "2026-11-11T00:00:00Z"
    sizes = {s["name"]: s["size"] for s in document["segments"]}
    assert sizes == {"big_spenders": 1, "power_users": 0, "vip": 1}


def test_evaluate_as_of_with_an_offset_is_converted_to_utc(cli: Cli, project: Path) -> None:
    result = cli(
        "evaluate", "--project", project, "--as-of", "2026-11-17T01:00:00+01:00", "-f", "json"
    )
    assert json.loads(result.stdout)["as_of"] == AS_OF


def test_evaluate_csv(cli: Cli, project: Path) -> None:
    rows = parse_csv(cli("evaluate", "--project", project, "--as-of", AS_OF, "-f", "csv").stdout)
    assert rows == [
        ["segment", "size", "entered", "exited"],
        ["big_spenders", "2", "2", "0"],
        ["power_users", "1", "1", "0"],
        ["vip", "1", "1", "0"],
    ]


def test_evaluate_table(cli: Cli, project: Path) -> None:
    lines = cli("evaluate", "--project", project, "--as-of", AS_OF).stdout.splitlines()
    assert lines[0] == f"Segments as of {AS_OF}"
    assert lines[1].split() == ["segment", "size", "entered", "exited"]
    assert lines[3].split() == ["big_spenders", "2", "2", "0"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_evaluate_out_writes_memberships(cli: Cli, project: Path, suffix: str) -> None:
    out = project / "out" / f"members{suffix}"
    result = cli("evaluate", "--project", project, "--as-of", AS_OF, "--out", out, "-f", "json")
    json.loads(result.stdout)  # the note about the file goes to stderr
    assert f"wrote 4 memberships to {out}" in result.stderr
    if suffix == ".parquet":
        table = pq.read_table(out)
        assert table.column_names == ["segment", "person_id"]
        rows = [tuple(r.values()) for r in table.to_pylist()]
    else:
        header, *data = parse_csv(out.read_text())
        assert header == ["segment", "person_id"]
        rows = [tuple(r) for r in data]
    assert rows == [(s, p) for s in sorted(EXPECTED) for p in EXPECTED[s]]


def test_evaluate_out_needs_a_known_extension(cli: Cli, project: Path) -> None:
    result = cli("evaluate", "--project", project, "--out", project / "m.txt", code=2)
    assert_one_error(result, "use a .parquet or .csv file name")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "nope"], "unknown segment 'nope'"),
        (["evaluate", "power_user"], "(did you mean 'power_users'?)"),
        (["evaluate", "--as-of", "yesterday"], "--as-of: expected a date or timestamp"),
        (["compile", "--dialect", "oracle"], "unknown dialect 'oracle'"),
        (["preview", "drafts/missing.yaml"], "no such segment file"),
        (["features", "ltvv"], "unknown feature 'ltvv' (did you mean 'ltv'?)"),
    ],
    ids=[
        "unknown-segment",
        "segment-suggestion",
        "bad-as-of",
        "bad-dialect",
        "no-draft",
        "feature",
    ],
)
def test_usage_errors_exit_2(cli: Cli, project: Path, args: list[str], message: str) -> None:
    result = cli(*args, "--project", project, code=2)
    assert_one_error(result, message)


def test_a_segments_first_run_says_its_on_enter_actions_were_not_fired(
    cli: Cli, make_project: MakeProject
) -> None:
    """SPEC 5: a segment's first run fires no on_enter actions unless --fire-initial. It did
    so silently ("2 entered", nothing sent, the plan's adds 0): a user thought delivery
    broken. The plan warns (JSON too) and the run says it, for that segment alone."""
    spenders = dedent(FIXTURE_SEGMENTS["big_spenders"]) + "on_enter:\n  - tag: {name: spender}\n"
    root = make_project(segments={**FIXTURE_SEGMENTS, "big_spenders": spenders})
    said = (
        "big_spenders: the segment's first run: its 2 member(s) entered without its on_enter "
        "actions (run with --fire-initial to fire them)"
    )
    plan = cli("run", "--dry-run", "--as-of", AS_OF, "-f", "json", "--project", root)
    assert f"warning: {said}" in plan.stderr
    [row] = [r for r in json.loads(plan.stdout)["plan"] if r["segment"] == "big_spenders"]
    assert row["adds"] == 0 and row["warnings"] == [said.removeprefix("big_spenders: ")]
    assert said not in cli("run", "--dry-run", "--as-of", AS_OF, "--fire-initial",
                           "--project", root).stderr  # fmt: skip
    run = cli("run", "--as-of", AS_OF, "--project", root)
    assert said in run.stderr and "power_users" not in run.stderr  # it has no on_enter
    later = cli("run", "--as-of", "2026-11-18T00:00:00Z", "--project", root)
    assert "first run" not in later.stderr


def test_status_before_the_first_run_is_empty_and_creates_no_state(cli: Cli, project: Path) -> None:
    """An overview, not a read of a run: a fresh project has no runs and nothing to deliver
    (it was a usage error, exit 2)."""
    result = cli("status", "--format", "json", "--project", project)
    assert json.loads(result.stdout) == {"runs": [], "deliveries": [], "audiences": [], "holds": []}
    assert "no runs yet" in result.stderr
    assert not (project / ".segctl").exists()
    cli("stats", "--project", project, code=2)


def test_project_and_debug_may_come_before_the_command(
    cli: Cli, project: Path, tmp_path: Path
) -> None:
    """``segctl --project DIR validate`` as ``segctl validate --project DIR``; the command's
    own option still wins."""
    assert "are valid" in cli("--project", project, "validate").stdout
    assert "are valid" in cli("-p", tmp_path, "validate", "--project", project).stdout
    result = cli("--project", tmp_path, "validate", code=3)
    assert "no segctl.yaml" in result.stderr
    with pytest.raises(AssertionError, match="Traceback"):  # --debug shows it, as after
        cli("--project", project, "--debug", "members", "nope", code=2)


def test_bad_option_value_exits_2(cli: Cli, project: Path) -> None:
    result = cli("evaluate", "--project", project, "--format", "xml", code=2)
    assert "'xml' is not one of" in result.stderr
    assert result.stdout == ""


# ---- preview ----------------------------------------------------------------------------------


def test_preview_segment_json(cli: Cli, project: Path) -> None:
    result = cli("preview", "big_spenders", "--project", project, "--as-of", AS_OF, "-f", "json")
    document = json.loads(result.stdout)
    assert (document["name"], document["as_of"], document["size"]) == ("big_spenders", AS_OF, 2)
    assert [m["person_id"] for m in document["members"]] == ["p1", "p3"]
    assert document["members"][0]["email"] == "alice@example.com"


def test_preview_limit(cli: Cli, project: Path) -> None:
    result = cli("preview", "big_spenders", "--project", project, "--as-of", AS_OF, "-n", "1")
    assert result.stdout.startswith(f"big_spenders: 2 members as of {AS_OF} (showing 1)")
    assert "p1" in result.stdout and "p3" not in result.stdout


def test_preview_draft_file_referencing_a_project_segment(cli: Cli, project: Path) -> None:
    draft = project / "drafts" / "german_spenders.yaml"
    draft.parent.mkdir()
    draft.write_text("name: german_spenders\nrule:\n  all:\n    - segment: big_spenders\n"
                     "    - property: country\n      eq: DE\n")  # fmt: skip
    result = cli("preview", draft, "--project", project, "--as-of", AS_OF, "-f", "csv")
    rows = parse_csv(result.stdout)
    assert rows[0][:3] == ["person_id", "email", "plan"]
    assert [r[0] for r in rows[1:]] == ["p1"]
    # A preview saves nothing: the draft is not part of the project afterwards.
    assert "german_spenders" not in cli("validate", "--project", project, "-f", "json").stdout


def test_preview_draft_with_problems_names_the_draft(cli: Cli, project: Path) -> None:
    draft = project / "draft.yaml"
    draft.write_text("name: d\nrule:\n  event: login\n  count: {gtee: 1}\n")
    result = cli("preview", draft, "--project", project, code=3)
    assert_one_error(result, ":4:11: unknown operator 'gtee' (did you mean 'gte'?)")


# ---- compile ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_compile_every_dialect(cli: Cli, project: Path, dialect: str) -> None:
    result = cli("compile", "--project", project, "--dialect", dialect, "--as-of", AS_OF)
    statements = sqlglot.parse(result.stdout, read=dialect)
    assert len(statements) == 1
    assert "2026-11-17 00:00:00" in result.stdout  # the as_of is a literal


def test_compile_one_segment_selects_its_sorted_members(cli: Cli, project: Path) -> None:
    sql = cli("compile", "power_users", "--project", project, "--as-of", AS_OF).stdout
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert [c.alias_or_name for c in tree.selects] == ["person_id"]
    assert [o.this.name for o in tree.args["order"].expressions] == ["person_id"]


# ---- features ---------------------------------------------------------------------------------


def test_features_csv(cli: Cli, project: Path) -> None:
    rows = parse_csv(cli("features", "--project", project, "--as-of", AS_OF, "-f", "csv").stdout)
    assert rows == [
        ["person_id", "renders_30d", "ltv"],
        ["p1", "3", "600"],
        ["p2", "1", "20"],
        ["p3", "1", "750"],
        ["p4", "0", "0"],  # no events: count and sum are 0; p5 is created after as_of
    ]


def test_features_json_named(cli: Cli, project: Path) -> None:
    result = cli("features", "ltv", "--project", project, "--as-of", AS_OF, "-f", "json")
    assert json.loads(result.stdout)[0] == {"person_id": "p1", "ltv": 600.0}


def test_features_json_of_a_sum_over_whole_numbers(cli: Cli, tmp_path: Path) -> None:
    """DuckDB sums an integer column as a DECIMAL: JSON holds it as a number."""
    (tmp_path / "segments").mkdir()
    (tmp_path / "events.csv").write_text(
        "person_id,event,timestamp,amount\n"
        "a,purchase,2026-11-10T00:00:00Z,100\nb,purchase,2026-11-11T00:00:00Z,50\n"
        "a,purchase,2026-11-12T00:00:00Z,7\n"
    )
    (tmp_path / "segctl.yaml").write_text("data:\n  events: events.csv\nsegments: segments/\n")
    (tmp_path / "features.yaml").write_text(
        "features:\n  spent: {event: purchase, measure: {sum: amount}}\n"
    )
    result = cli("features", "--project", tmp_path, "--as-of", AS_OF, "-f", "json")
    assert json.loads(result.stdout) == [
        {"person_id": "a", "spent": 107},
        {"person_id": "b", "spent": 50},
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_features_out(cli: Cli, project: Path, suffix: str) -> None:
    out = project / f"features{suffix}"
    result = cli("features", "--project", project, "--as-of", AS_OF, "--out", out)
    assert result.stdout == ""
    assert "wrote 4 rows x 2 features" in result.stderr
    if suffix == ".parquet":
        table = pq.read_table(out)
        assert table.column_names == ["person_id", "renders_30d", "ltv"]
        assert table.column("person_id").to_pylist() == ["p1", "p2", "p3", "p4"]
    else:
        assert out.read_text().splitlines()[0] == "person_id,renders_30d,ltv"


def test_members_out_csv_is_what_format_csv_prints(cli: Cli, project: Path) -> None:
    """Timestamps too (created_at): UTC with a Z in both, where polars' own CSV writes
    ``2026-01-01T00:00:00.000000``."""
    cli("run", "--project", project, "--as-of", AS_OF)
    out = project / "members.csv"
    cli("members", "big_spenders", "--project", project, "--out", out)
    printed = cli("members", "big_spenders", "--project", project, "-f", "csv").stdout
    assert out.read_text() == printed
    assert "created_at" in printed.splitlines()[0] and "T00:00:00Z" in printed


def test_a_zoned_moment_in_a_csv_file_is_utc_with_a_z(tmp_path: Path) -> None:
    moments = [datetime(2026, 3, 1, 13, 30, 0, 250_000, tzinfo=ZoneInfo("Europe/Berlin"))]
    frame = pl.DataFrame({"at": moments, "naive": [datetime(2026, 3, 1, 12, 30)]})
    write_frame(frame, tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_text().splitlines() == [
        "at,naive",
        "2026-03-01T12:30:00.250Z,2026-03-01T12:30:00Z",
    ]


# ---- templates --------------------------------------------------------------------------------


def test_templates_lists_every_template(cli: Cli) -> None:
    rows = parse_csv(cli("templates", "--format", "csv").stdout)
    assert rows[0] == ["name", "signature", "description"]
    assert [r[0] for r in rows[1:]] == list(TEMPLATES)
    signatures = {r[0]: r[1] for r in rows[1:]}
    assert signatures["power_users"] == "power_users(event, min_count=10, window=30d)"
    assert signatures["inactive_users"] == "inactive_users(from_days=7, to_days=30)"


def test_templates_json(cli: Cli) -> None:
    document = json.loads(cli("templates", "--format", "json").stdout)
    assert {t["name"] for t in document} == set(TEMPLATES)


def test_templates_show_prints_the_expanded_rule(cli: Cli) -> None:
    result = cli("templates", "show", "churn_risk", "--param", "days=14")
    header, _, body = result.stdout.partition("\n")
    assert header.startswith("# churn_risk(days=30):")
    assert yaml.safe_load(body) == {"rule": {"event": "*", "within": "14d", "count": {"eq": 0}}}


def test_templates_show_required_params_are_placeholders(cli: Cli) -> None:
    rule = yaml.safe_load(cli("templates", "show", "plan").stdout)["rule"]
    assert rule == {"property": "plan", "eq": "<plan>"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown template 'nope'"),
        (["churn_risk", "--param", "dayz=3"], "has no parameter 'dayz'"),
        (["churn_risk", "--param", "days"], "expected KEY=VALUE"),
        (["churn_risk", "--param", "days=soon"], "expected a whole number"),
    ],
    ids=["unknown", "unknown-param", "no-equals", "bad-value"],
)
def test_templates_show_errors(cli: Cli, args: list[str], message: str) -> None:
    assert_one_error(cli("templates", "show", *args, code=2), message)


# ---- init -------------------------------------------------------------------------------------


def test_init_sample_then_validate_and_evaluate(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("init", "demo", "--sample")
    assert "created demo/segctl.yaml" in result.stderr
    assert (tmp_path / "demo/sample_data/events.parquet").is_file()
    monkeypatch.chdir(tmp_path / "demo")  # commands find segctl.yaml in the current folder
    assert cli("validate").stdout.startswith(f"ok: {len(SEGMENTS)} segments and 3 features")
    # The sample is planted around today's midnight (UTC): every scaffolded segment has members.
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    document = json.loads(cli("evaluate", "--as-of", today, "-f", "json").stdout)
    sizes = {s["name"]: s["size"] for s in document["segments"]}
    assert set(sizes) == set(SEGMENTS)
    assert all(size > 0 for size in sizes.values()), sizes


def test_init_without_sample_points_at_missing_data(cli: Cli, tmp_path: Path) -> None:
    cli("init", tmp_path / "plain")
    assert sorted(p.name for p in (tmp_path / "plain/segments").iterdir()) == sorted(
        f"{name}.yaml" for name in SEGMENTS
    )
    result = cli("validate", "--project", tmp_path / "plain", code=4)
    assert_one_error(result, "data.events: file not found: data/events.parquet")


def test_init_refuses_to_overwrite_unless_forced(cli: Cli, tmp_path: Path) -> None:
    cli("init", tmp_path)
    (tmp_path / "segctl.yaml").write_text("# mine\n")
    assert_one_error(cli("init", tmp_path, code=2), "already exists (use --force")
    assert (tmp_path / "segctl.yaml").read_text() == "# mine\n"
    cli("init", tmp_path, "--force")
    assert "data:" in (tmp_path / "segctl.yaml").read_text()


# ---- help -------------------------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path] if path else []
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_core_commands_are_registered() -> None:
    core = {("validate",), ("evaluate",), ("preview",), ("compile",), ("features",),
            ("templates",), ("templates", "show"), ("init",)}  # fmt: skip
    assert core <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(cli: Cli, command: tuple[str, ...]) -> None:
    text = cli(*command, "--help").stdout
    assert "Usage: segctl " + " ".join(command) in text
    assert "Examples:" in text
    assert "segctl " + command[0] in text.split("Examples:", 1)[1]


def test_root_help_lists_every_command_examples_and_the_exit_codes(cli: Cli) -> None:
    text = cli("--help").stdout
    for command in COMMANDS:
        assert command[-1] in text
    assert "Exit codes:" in text and "70 internal error" in text
    examples = text.split("Examples:", 1)[1].split("Exit codes:", 1)[0]
    assert "segctl init demo --sample" in examples and "segctl run --dry-run" in examples


def test_a_path_that_cannot_be_written_is_a_clear_error_not_an_internal_one(
    tmp_path: Path,
) -> None:
    """init, discover and lookalike let an OSError through: exit 70, "please report it"."""
    blocked = tmp_path / "file"
    blocked.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "segctl", "init", str(blocked / "demo"), "--sample"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 4, proc.stderr
    assert "internal error" not in proc.stderr and str(blocked) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_usage_error_is_plain_text_when_stderr_is_not_a_terminal() -> None:
    """rich drew a usage error in a box even into a log file: click's plain lines instead."""
    proc = subprocess.run(
        [sys.executable, "-m", "segctl", "evaluate", "--bogus"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Error: No such option: --bogus" in proc.stderr
    assert not set("╭╮╰╯│─") & set(proc.stderr)


def test_every_command_takes_project() -> None:
    """SPEC 3: every command takes --project (templates refused it); init takes DIR."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))
        yield path, command

    commands = dict(walk(typer.main.get_command(app), ()))
    assert ("templates", "show") in commands and ("run",) in commands
    missing = [
        " ".join(path)
        for path, command in commands.items()
        if path not in ((), ("init",)) and not any("--project" in p.opts for p in command.params)
    ]
    assert missing == []


def test_version_an_upper_case_format_and_backfills_own_option_names(
    project: Path, cli: Cli
) -> None:
    from segctl.version import __version__

    assert cli("--version").stdout == f"segctl {__version__}\n"
    upper = cli("evaluate", "-f", "JSON", "--as-of", AS_OF, "--project", project).stdout
    assert json.loads(upper)["as_of"] == AS_OF
    bad = cli("backfill", "--from", "bogus", "--to", AS_OF, "--project", project, code=2)
    assert "--from: expected a date or timestamp" in bad.stderr


def test_backfill_names_to_when_its_end_is_not_a_time(project: Path, cli: Cli) -> None:
    """``backfill --to`` that is not a date or timestamp (a word like ``yesterday``) is a usage
    error naming ``--to``, not ``--as-of`` (an option backfill does not have), and nothing
    is evaluated."""
    bad = cli("backfill", "--from", "2026-01-01", "--to", "yesterday", "--project", project, code=2)
    assert "--to: expected a date or timestamp" in bad.stderr
    assert "--as-of" not in bad.stderr
    assert not (project / ".segctl").exists()
