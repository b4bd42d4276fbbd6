"""The import contract (pyproject's ``[tool.importlinter]``): imports run one way, with no
cycles between sibling modules. import-linter checks it; this test runs it in the suite, and
checks that docs/architecture.md draws the same layers."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_run_one_way_and_have_no_cycles() -> None:
    # `lint-imports` itself, run by this interpreter wherever pip put the console script.
    script = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # import-linter is a dev dependency: missing, the command fails here (it is not skipped).
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
