"""The docs cannot go stale: every YAML block of docs/language.md and docs/cookbook.md is
evaluated against the sample project, the cookbook's member counts and its explain output are
checked, the language reference covers every kind, measure, window and comparator, and
docs/cli.md is what ``python -m segctl.cli.docgen`` generates from the commands' help."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Cli

from segctl.cli.docgen import commands, parse_help, render
from segctl.definitions.comparisons import COMPARATORS
from segctl.definitions.conditions import KINDS
from segctl.definitions.measures import PERIOD_KEYS, WINDOW_KEYS
from segctl.definitions.model import MEASURES
from segctl.definitions.templates import TEMPLATES
from segctl.project import Project

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
AS_OF = "2026-11-17T00:00:00Z"
REGENERATE = "regenerate it: python -m segctl.cli.docgen > docs/cli.md"


def fenced(path: Path, language: str) -> list[tuple[int, str]]:
    """(line number of the first line, text) of every ```language block of a Markdown file."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if current is None and line.strip() == f"```{language}":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


# ---- a copy of the sample project with a document's blocks in it ----------------------------

DocProject = Callable[[str], tuple[Project, dict[int, str]]]


@pytest.fixture(scope="module")
def doc_project(tmp_path_factory: pytest.TempPathFactory) -> DocProject:
    """The sample project (data linked, no state) plus the YAML blocks of one document:
    segment files as they are (replacing a sample segment of the same name), conditions
    wrapped in a segment named after their line, features merged into features.yaml.
    Returns the project and block line -> segment name."""

    def make(document: str) -> tuple[Project, dict[int, str]]:
        root = tmp_path_factory.mktemp(document.replace(".", "_"))
        (root / "sample_data").symlink_to(REPO / "sample_data")
        shutil.copy(REPO / "segctl.yaml", root / "segctl.yaml")
        features = yaml.safe_load((REPO / "features.yaml").read_text())
        own: dict[str, str] = {}
        names: dict[int, str] = {}
        stem = document.removesuffix(".md")
        for line, text in fenced(DOCS / document, "yaml"):
            data = yaml.safe_load(text)
            if isinstance(data, dict) and "name" in data:
                names[line] = data["name"]
            elif isinstance(data, dict) and "features" in data:
                features["features"].update(data["features"])
                continue
            elif isinstance(data, dict) and "custom_events" in data:
                features.setdefault("custom_events", {}).update(data["custom_events"])
                continue
            elif isinstance(data, (dict, list)):
                names[line] = f"{stem}_line_{line}"
                rule = data if isinstance(data, dict) else {"any": data}  # separate examples
                text = yaml.safe_dump({"name": names[line], "rule": rule}, sort_keys=False)
            else:  # pragma: no cover - a block this test does not know how to check
                pytest.fail(f"docs/{document}:{line}: not a segment, condition or features")
            own[f"{stem}_line_{line}.yaml"] = text
        segments = root / "segments"
        segments.mkdir()
        for path in (REPO / "segments").glob("*.yaml"):
            if yaml.safe_load(path.read_text())["name"] not in names.values():
                shutil.copy(path, segments / path.name)
        for file, text in own.items():
            (segments / file).write_text(text, encoding="utf-8")
        (root / "features.yaml").write_text(yaml.safe_dump(features), encoding="utf-8")
        return Project.load(root), names

    return make


def sizes(project: Project, names: list[str]) -> dict[str, int]:
    """Members per segment at AS_OF (validating the data and definitions first: every problem
    names the block's file, segments/<doc>_line_<N>.yaml)."""
    project.validate()
    result = project.evaluate(names, as_of=AS_OF)
    return {name: size for name, size, _, _ in result.size_rows()}


def test_every_language_example_validates_and_evaluates(doc_project: DocProject) -> None:
    project, names = doc_project("language.md")
    assert len(names) > 25
    evaluated = sizes(project, list(names.values()))
    assert set(evaluated) == set(names.values())
    empty = sorted(name for name, size in evaluated.items() if size == 0)
    assert empty == [], f"examples that select nobody in the sample data: {empty}"


def test_every_cookbook_segment_has_the_documented_size(doc_project: DocProject) -> None:
    project, names = doc_project("cookbook.md")
    text = (DOCS / "cookbook.md").read_text(encoding="utf-8").splitlines()
    documented = {}
    for line, name in names.items():
        after = "\n".join(text[line : line + 30])
        found = re.search(r"On the sample data at 2026-11-17: ([\d,]+) members\.", after)
        assert found, f"docs/cookbook.md:{line}: no member count after the block of {name}"
        documented[name] = int(found.group(1).replace(",", ""))
    assert sizes(project, list(names.values())) == documented
    assert all(size > 0 for size in documented.values())
    for classic in ("power_users", "churn_risk", "trial_pricing", "high_ltv", "aws_focus"):
        assert classic in documented
    assert sum(1 for n in documented if n.startswith("lifecycle_")) >= 4


def test_the_cookbook_explain_output_is_real(doc_project: DocProject, cli: Cli) -> None:
    project, _ = doc_project("cookbook.md")
    blocks = [text for _, text in fenced(DOCS / "cookbook.md", "console")]
    explained = [b for b in blocks if b.startswith("$ segctl explain ")]
    assert explained
    for block in explained:
        command, *expected = block.splitlines()
        result = cli(*command.split()[2:], "--project", project.root)
        assert result.stdout.splitlines() == expected
    readme = [text for _, text in fenced(REPO / "README.md", "console")]
    assert explained[0] in readme  # the README shows the same, checked, output


# ---- the language reference covers the whole language ---------------------------------------


def conditions(node: Any) -> Iterator[dict[str, Any]]:
    """Every condition in a YAML block (a segment file, a condition or a list of them)."""
    if isinstance(node, list):
        for item in node:
            yield from conditions(item)
    elif isinstance(node, dict):
        if "features" in node or "custom_events" in node:  # a features.yaml block
            return
        if "name" in node:
            yield from conditions(node.get("rule"))
            yield from conditions(node.get("exclude"))
            if "template" in node:
                yield {"template": node["template"]}
            return
        yield node
        for key in ("all", "any", "not"):
            if key in node:
                yield from conditions(node[key])
        if "at_least" in node:
            yield from conditions(node["of"])


def test_the_language_reference_covers_the_language() -> None:
    kinds, measures, windows, comparators, templates, extras = (
        set(),
        set(),
        set(),
        set(),
        set(),
        set(),
    )

    def comparator(spec: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        comparators.update(k for k in spec if k not in skip)

    def where(spec: dict[str, Any]) -> None:
        for test in spec.values():
            comparator(test)

    for _, text in fenced(DOCS / "language.md", "yaml"):
        for cond in conditions(yaml.safe_load(text)):
            (kind,) = [k for k in cond if k in KINDS]
            kinds.add(kind)
            if kind in ("property", "feature"):
                comparator(cond, skip=(kind,))
            elif kind in ("event", "custom_event"):
                (measure,) = [k for k in cond if k in MEASURES]
                measures.add(measure)
                windows.update(k for k in cond if k in WINDOW_KEYS)
                extras.update(k for k in ("where", "last", "calendar") if k in cond)
                comparator(cond[measure], skip=("of", "where", *PERIOD_KEYS))
                where(cond.get("where", {}))
                where(cond[measure].get("where", {}))
            elif kind == "subscription":
                where(cond["subscription"])
            elif kind == "sequence":
                windows.update(k for k in cond["sequence"] if k in WINDOW_KEYS)
                extras.update(k for k in ("max_gap", "max_span") if k in cond["sequence"])
            elif kind == "template":
                templates.add(cond["template"])
    assert kinds == set(KINDS)
    assert measures == set(MEASURES)
    assert windows == set(WINDOW_KEYS)
    assert comparators == set(COMPARATORS)
    assert templates == set(TEMPLATES)
    assert extras == {"where", "last", "max_gap", "calendar", "max_span"}


# ---- the CLI reference -----------------------------------------------------------------------


def test_cli_reference_is_current() -> None:
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert render() == current, f"docs/cli.md is out of date: {REGENERATE}"


def test_every_command_has_help_and_an_example() -> None:
    listed = commands()
    assert len(listed) > 20
    for path, command, ctx in listed[1:]:
        text = parse_help(command.help)
        assert text.summary, f"{path}: no help text (give the command a docstring)"
        assert any(e.startswith(f"{path}") for e in text.examples), (
            f"{path}: its help has no example (add 'Examples:' with a '{path} ...' line)"
        )
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                assert record[1].strip(), f"{path} {record[0]}: no help text"
    assert "explain" in render()


def test_readme_links_the_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for page in ("docs/language.md", "docs/cli.md", "docs/cookbook.md"):
        assert page in readme
        assert (REPO / page).is_file()
