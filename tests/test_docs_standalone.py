"""The product's docs stand alone (issue 19, 6 and 7).

What a user reads (README, docs/, the example segctl.yaml, what `segctl init` writes, every
--help) must not point to a specification that is not in the repository, and the configuration
reference must list every key segctl accepts: each top-level section's keys, each destination
type's settings, and the audience key each destination type takes in segment files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segctl.cli import app
from segctl.cli.docgen import commands
from segctl.config import DELIVERY_KEYS, ENGINE_KEYS, PRIVACY_KEYS, TOP_KEYS
from segctl.definitions.actions import AUDIENCE_ID_KEYS, AUDIENCE_MODES
from segctl.definitions.destinations import COMMON, TYPES

REPO = Path(__file__).resolve().parents[1]
CONFIGURATION = REPO / "docs" / "configuration.md"
ELSEWHERE = re.compile(r"\bSPEC\b|API_CONTRACTS|shared/")


def user_facing_files() -> list[Path]:
    return [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        REPO / "segctl.yaml",
        REPO / "features.yaml",
        *sorted((REPO / "segments").glob("*.yaml")),
    ]


@pytest.mark.parametrize("path", user_facing_files(), ids=lambda p: p.name)
def test_no_doc_points_to_a_document_outside_the_repository(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert not ELSEWHERE.search(line), f"{path.name}:{number}: {line.strip()}"


def test_the_scaffold_and_the_help_stand_alone(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "new")]).exit_code == 0
    for path in (tmp_path / "new").rglob("*"):
        if path.is_file():
            assert not ELSEWHERE.search(path.read_text(encoding="utf-8")), path
    for name, _, _ in commands():
        result = runner.invoke(app, [*name.split()[1:], "--help"])
        assert not ELSEWHERE.search(result.stdout), name


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``."""
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and the rule


def test_the_configuration_reference_lists_every_key() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    sections = {
        "## Top-level keys": TOP_KEYS,
        "## `privacy`": PRIVACY_KEYS,
        "## `engine`": ENGINE_KEYS,
        "## `delivery`": DELIVERY_KEYS,
    }
    for heading, keys in sections.items():
        listed = {row[0].strip("`") for row in table_rows(text, heading)}
        assert listed == set(keys), f"{heading}: documented {listed}, accepted {set(keys)}"
    common = {row[0].strip("`") for row in table_rows(text, "## `destinations`")}
    assert common == set(COMMON) - {"type"}


def test_the_configuration_reference_lists_each_destination_and_its_audience_keys() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    types = {row[0].strip("`"): row for row in table_rows(text, "Each type's own settings:")}
    assert set(types) == set(TYPES)
    for kind, rules in TYPES.items():
        row = types[kind]
        for column, keys in ((1, rules["required"]), (2, rules["optional"])):
            assert set(re.findall(r"`(\w+)`", row[column])) == set(keys), (kind, row[column])
    audiences = {
        row[0].strip("`"): row for row in table_rows(text, "### Audience keys in segment files")
    }
    assert set(audiences) == set(AUDIENCE_ID_KEYS)
    for kind, key in AUDIENCE_ID_KEYS.items():
        keys = re.findall(r"`(\w+)`", audiences[kind][1])
        assert keys == ["destination", key, "mode"], (kind, keys)
        assert f"{key}:" in audiences[kind][2]  # the example uses it
    assert all(f"`{mode}`" in text for mode in AUDIENCE_MODES)


def test_the_readme_links_the_configuration_reference() -> None:
    assert "docs/configuration.md" in (REPO / "README.md").read_text(encoding="utf-8")
