"""``segctl preview DRAFT`` needs only the draft and what it references (issue 19, 2)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import AS_OF, FEATURES, SEGMENTS, Cli, MakeProject

BROKEN = "name: broken\nrule: {event: login, countt: {gte: 1}}\n"
DRAFT = "name: german_spenders\nrule:\n  all:\n    - segment: big_spenders\n" \
        "    - property: country\n      eq: DE\n"  # fmt: skip


def draft(root: Path, text: str = DRAFT) -> Path:
    path = root / "drafts" / "draft.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_broken_unrelated_segment_does_not_stop_a_draft(
    make_project: MakeProject, cli: Cli
) -> None:
    root = make_project(segments={**SEGMENTS, "broken": BROKEN})
    cli("validate", "--project", root, code=3)  # the project is broken...
    result = cli("preview", draft(root), "--project", root, "--as-of", AS_OF, "-f", "json")
    document = json.loads(result.stdout)  # ...and the draft previews all the same
    assert (document["name"], document["size"]) == ("german_spenders", 1)
    assert [m["person_id"] for m in document["members"]] == ["p1"]


def test_a_draft_referencing_a_broken_segment_reports_it(
    make_project: MakeProject, cli: Cli
) -> None:
    root = make_project(segments={**SEGMENTS, "broken": BROKEN})
    path = draft(root, "name: d\nrule:\n  any: [{segment: vip}, {segment: broken}]\n")
    result = cli("preview", path, "--project", root, "--as-of", AS_OF, code=3)
    assert "segments/broken.yaml:2:" in result.stderr and "unknown key 'countt'" in result.stderr


def test_references_are_followed_transitively(make_project: MakeProject, cli: Cli) -> None:
    segments = {
        **SEGMENTS,
        "vip_spenders": "name: vip_spenders\nrule: {any: [segment: vip, segment: big_spenders]}",
        "broken": BROKEN,
    }
    root = make_project(segments=segments)
    path = draft(
        root, "name: d\nrule: {segment: vip_spenders}\nexclude: [{segment: power_users}]\n"
    )
    result = cli("preview", path, "--project", root, "--as-of", AS_OF, "-f", "json")
    # vip (p2) or big spenders (p1, p3), less power users (p1).
    assert [m["person_id"] for m in json.loads(result.stdout)["members"]] == ["p2", "p3"]


def test_a_broken_draft_reports_only_its_own_problems(make_project: MakeProject, cli: Cli) -> None:
    root = make_project(segments={**SEGMENTS, "broken": BROKEN})
    path = draft(root, "name: d\nrule:\n  event: login\n  count: {gtee: 1}\n")
    result = cli("preview", path, "--project", root, code=3)
    assert "unknown operator 'gtee'" in result.stderr
    assert "broken.yaml" not in result.stderr


def test_features_are_needed_only_when_the_draft_uses_one(
    make_project: MakeProject, cli: Cli
) -> None:
    root = make_project(features=FEATURES + "  bad: {event: login, measure: countt}\n")
    result = cli("preview", draft(root), "--project", root, "--as-of", AS_OF, "-f", "json")
    assert json.loads(result.stdout)["size"] == 1
    uses = draft(root, "name: d\nrule: {feature: renders_30d, gte: 3}\n")
    failed = cli("preview", uses, "--project", root, "--as-of", AS_OF, code=3)
    assert "features.yaml" in failed.stderr and "countt" in failed.stderr
