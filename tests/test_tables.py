"""Numbers for people in stats and overlap tables; exact ratios in JSON (issue 19, 3)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import AS_OF, SEGMENTS, Cli, MakeProject

from segctl.textfmt import percent

PERCENT = re.compile(r"^[+-]?(\d+(\.\d)?|<0\.1|>99\.9)%$")


@pytest.fixture
def two_runs(project: Path, cli: Cli) -> Path:
    cli("run", "--project", project, "--as-of", "2026-11-11T00:00:00Z")
    cli("run", "--project", project, "--as-of", AS_OF)
    return project


def table(stdout: str) -> list[dict[str, str]]:
    """A plain (piped) table as rows of header -> cell."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if set(line) <= {"-", " "}) - 1
    header = lines[start].split()
    return [dict(zip(header, line.split(), strict=False)) for line in lines[start + 2 :]]


def test_stats_table_shows_growth_as_a_signed_percentage(two_runs: Path, cli: Cli) -> None:
    rows = table(cli("stats", "--project", two_runs).stdout)
    document = json.loads(cli("stats", "--project", two_runs, "--format", "json").stdout)
    exact = {d["segment"]: d["growth_rate"] for d in document}
    assert rows and all(r["segment"] in exact for r in rows)
    shown = 0
    for row in rows:
        ratio = exact[row["segment"]]
        if ratio is None:
            continue
        assert PERCENT.match(row["growth_rate"]), row
        assert row["growth_rate"] == percent(ratio, signed=True)
        shown += 1
    assert shown > 0
    # JSON keeps the ratio as a number, not the percentage text.
    assert all(v is None or isinstance(v, (int, float)) for v in exact.values())


def test_overlap_table_shows_percentages_and_json_the_exact_ratios(
    two_runs: Path, cli: Cli
) -> None:
    args = ("overlap", "power_users", "big_spenders", "vip", "--project", two_runs)
    output = cli(*args).stdout
    assert output.rstrip().endswith("in all 3: 0 person(s)")
    rows = table(output.rstrip().rsplit("\n", 1)[0])
    pairs = json.loads(cli(*args, "--format", "json").stdout)["pairs"]
    assert len(rows) == len(pairs) == 3
    for row, pair in zip(rows, pairs, strict=True):
        assert row["pct_of_a"] == percent(pair["pct_of_a"])
        assert row["pct_of_b"] == percent(pair["pct_of_b"])
        assert row["jaccard"] == f"{pair['jaccard']:.3f}"
        assert PERCENT.match(row["pct_of_a"]) and PERCENT.match(row["pct_of_b"])
    # power_users (p1) is all in big_spenders (p1, p3): 100% of a, 50% of b, exactly.
    assert (rows[0]["pct_of_a"], rows[0]["pct_of_b"]) == ("100%", "50.0%")
    assert (pairs[0]["pct_of_a"], pairs[0]["pct_of_b"]) == (1.0, 0.5)
    csv_lines = cli(*args, "--format", "csv").stdout.splitlines()
    assert csv_lines[1].endswith(",1,0.5,0.5")


def test_overlap_lists_the_persons_in_all_and_writes_them(
    two_runs: Path, cli: Cli, tmp_path: Path, make_project: MakeProject
) -> None:
    """SPEC 3: "the persons in all", in the table too (up to --limit), and whole with --out
    (the table gave their count alone)."""
    args = ("overlap", "power_users", "big_spenders", "--project", two_runs)
    in_all = json.loads(cli(*args, "--format", "json").stdout)["in_all"]["person_ids"]
    assert in_all == ["p1"]
    assert cli(*args).stdout.rstrip().endswith("in all 2: 1 person(s): p1")
    assert cli(*args, "--limit", "0").stdout.rstrip().endswith("in all 2: 1 person(s)")
    as_csv = cli(*args, "--format", "csv")
    assert as_csv.stdout.splitlines()[0].startswith("a,b,") and "in all" not in as_csv.stdout
    assert "in all 2: 1 person(s)" in as_csv.stderr
    out = tmp_path / "both.csv"
    cli(*args, "--out", out)
    assert out.read_text().splitlines() == ["person_id", "p1"]

    spenders = SEGMENTS["big_spenders"].replace("name: big_spenders", "name: spenders_too")
    root = make_project(segments={**SEGMENTS, "spenders_too": spenders})
    cli("run", "--project", root, "--as-of", AS_OF)
    wider = ("overlap", "big_spenders", "spenders_too", "--project", root, "-n", "1")
    assert cli(*wider).stdout.rstrip().endswith("in all 2: 2 person(s): p1 ... and 1 more")


@pytest.mark.parametrize(
    ("ratio", "signed", "shown"),
    [
        (0.913462, False, "91.3%"),
        (0.0492958, False, "4.9%"),
        (1.02815, True, "+102.8%"),
        (-0.0492958, True, "-4.9%"),
        (0.0, True, "0%"),
        (1.0, False, "100%"),
        (0.00001, False, "<0.1%"),
        (0.99999, False, ">99.9%"),
        (None, False, ""),
    ],
)
def test_percent(ratio: float | None, signed: bool, shown: str) -> None:
    assert percent(ratio, signed=signed) == shown
