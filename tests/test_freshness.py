"""Stale data: run and evaluate warn when as_of is far past the newest event (issue 19, 1).

The default project's newest event is 2026-11-20 10:00 UTC (one after AS_OF, on purpose).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import AS_OF, CONFIG, Cli, MakeProject

import segctl
from segctl.freshness import DEFAULT_STALE_AFTER, stale_warning

NEWEST = "2026-11-20T10:00:00Z"
LATER = "2026-12-20T10:00:00Z"  # 30 days after the newest event


def test_evaluate_warns_on_stderr_and_in_json_when_as_of_is_past_the_data(
    project: Path, cli: Cli
) -> None:
    result = cli("evaluate", "--project", project, "--as-of", LATER, "--format", "json")
    document = json.loads(result.stdout)
    (warning,) = document["warnings"]
    assert warning.startswith(f"as_of {LATER} is 30 days past the newest event ({NEWEST})")
    assert f"pass --as-of {NEWEST}" in warning and "stale_after" in warning
    assert f"warning: {warning}" in result.stderr
    # The SPEC's shape is intact: warnings is an additional key.
    assert set(document) == {"as_of", "segments", "warnings"}
    assert set(document["segments"][0]) == {"name", "size", "entered", "exited"}


def test_evaluate_without_as_of_on_old_data_warns(project: Path, cli: Cli) -> None:
    result = cli("evaluate", "--project", project)
    assert f"past the newest event ({NEWEST})" in result.stderr


def test_run_warns_too(project: Path, cli: Cli) -> None:
    result = cli("run", "--project", project, "--as-of", LATER, "--format", "json")
    document = json.loads(result.stdout)
    assert len(document["warnings"]) == 1 and "30 days past" in document["warnings"][0]
    assert {"run_id", "as_of", "segments", "deliveries"} <= set(document)
    assert "warning: as_of" in result.stderr


def test_no_warning_when_the_data_is_current(project: Path, cli: Cli) -> None:
    for command in ("evaluate", "run"):
        result = cli(command, "--project", project, "--as-of", AS_OF, "--format", "json")
        assert json.loads(result.stdout)["warnings"] == []
        assert "warning" not in result.stderr


def test_the_threshold_is_a_setting(make_project: MakeProject, cli: Cli) -> None:
    month = make_project(config=CONFIG + "stale_after: 31d\n")
    assert (
        json.loads(
            cli("evaluate", "--project", month, "--as-of", LATER, "--format", "json").stdout
        )["warnings"]
        == []
    )
    result = cli("evaluate", "--project", month, "--as-of", "2027-01-01", "--format", "json")
    assert "(stale_after in segctl.yaml sets this threshold: 31d)" in result.stderr
    off = make_project(config=CONFIG + "stale_after: off\n")
    assert segctl.Project.load(off).evaluate(as_of="2030-01-01").warnings == []


def test_a_bad_threshold_is_a_config_error_with_its_place(
    make_project: MakeProject, cli: Cli
) -> None:
    root = make_project(config=CONFIG + "stale_after: soon\n")
    result = cli("evaluate", "--project", root, code=3)
    assert result.stderr.startswith("error: segctl.yaml:8:14: stale_after: expected a duration")
    assert "got 'soon'; or off to never warn" in result.stderr


def test_the_library_result_carries_the_warning(project: Path) -> None:
    result = segctl.Project.load(project).evaluate(as_of=LATER)
    assert len(result.warnings) == 1 and result.to_dict()["warnings"] == result.warnings


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (DEFAULT_STALE_AFTER, None),
        (DEFAULT_STALE_AFTER + timedelta(seconds=1), "3 days past"),
        (timedelta(days=1, hours=5), None),
        (timedelta(days=40, hours=1), "40 days 1 hour past"),
    ],
)
def test_stale_warning_edges(gap: timedelta, expected: str | None) -> None:
    newest = datetime(2026, 11, 17)
    warning = stale_warning(newest, newest + gap, DEFAULT_STALE_AFTER)
    assert (warning is None) if expected is None else (expected in (warning or ""))
    assert stale_warning(None, newest, DEFAULT_STALE_AFTER) is None  # no events at all
    assert stale_warning(newest, newest + gap, None) is None


def test_csv_events_without_a_raw_timestamp_column(make_project: MakeProject, cli: Cli) -> None:
    """Text timestamps are converted per row (no source column to read the max from)."""
    events = "person_id,event,timestamp,amount,format\n"
    events += "p1,login,2026-11-20 10:00:00,,\np2,purchase,2026-11-01,20.0,\n"
    config = CONFIG.replace("data/events.parquet", "data/events.csv")
    root = make_project(config=config, files={"data/events.csv": events})
    project = segctl.Project.load(root)
    (warning,) = project.evaluate(as_of=LATER).warnings
    assert project.engine.driver.raw_timestamp is None
    assert f"30 days past the newest event ({NEWEST})" in warning
