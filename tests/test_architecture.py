"""The import contract (pyproject's ``[tool.importlinter]``): imports run one way, with no
cycles between sibling modules. import-linter checks it; this test runs it in the suite, and
checks that docs/architecture.md draws the same layers."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_imports_run_one_way_and_have_no_cycles() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' installs import-linter")
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


def test_the_architecture_page_draws_the_contract_s_layers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = page.split("```", 2)[1].splitlines()[1:]
    drawn = [re.split(r"\s{2,}", line.strip())[0] for line in drawing if line.strip()]
    assert drawn == layers, "docs/architecture.md: the drawing of the layers is out of date"
