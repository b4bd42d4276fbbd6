"""The library used as an engineer scripts it: one ``Project`` object, many calls in a row.

The CLI opens a fresh ``Project`` per command, so it never meets what a long-lived object
accumulates (temp tables and views in its engine, an attached state database). This test keeps
one object alive across every public call, on the repository's sample project, with a real
webhook destination (the local fake) so that ``push`` has something to deliver.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fakes import TEST_SECRET, WebhookFake

import segctl

REPO = Path(__file__).resolve().parents[1]
FIRST, SECOND = "2026-11-10T00:00:00Z", "2026-11-17T00:00:00Z"


@pytest.fixture
def hook() -> Iterator[WebhookFake]:
    with WebhookFake(secret=TEST_SECRET) as fake:
        yield fake


@pytest.fixture
def sample(tmp_path: Path, hook: WebhookFake, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample project without state, plus a webhook on entering and leaving power_users."""
    root = tmp_path / "sample"
    root.mkdir()
    for name in ("segctl.yaml", "features.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "segments", root / "segments")
    (root / "sample_data").symlink_to(REPO / "sample_data")
    monkeypatch.setenv("CRM_SECRET", TEST_SECRET)
    with (root / "segctl.yaml").open("a", encoding="utf-8") as handle:
        handle.write(
            "destinations:\n"
            f'  crm: {{type: webhook, url: "{hook.url}", secret: "${{CRM_SECRET}}", '
            "backoff: 0.01, max_retries: 2}\n"
        )
    with (root / "segments" / "power_users.yaml").open("a", encoding="utf-8") as handle:
        handle.write("on_enter:\n  - webhook: {destination: crm}\n")
        handle.write("on_exit:\n  - webhook: {destination: crm}\n")
    return root


def ids(frame: pl.DataFrame) -> list[str]:
    return [str(v) for v in frame["person_id"].to_list()]


def test_one_project_object_for_every_call_in_a_row(sample: Path, hook: WebhookFake) -> None:
    project = segctl.Project.load(sample)

    first = project.run(as_of=FIRST, fire_initial=True)
    second = project.run(as_of=SECOND)
    assert (first.run_id, second.run_id) == (1, 2)

    members = project.members("power_users")
    assert members.columns[0] == "person_id" and "email" in members.columns
    assert ids(members) == sorted(ids(members)) and members.height > 0

    changes = project.diff(["power_users"])
    (power,) = changes.segments
    # What diff reports is what members shows across the two runs.
    before = set(ids(project.members("power_users", as_of_run=1)))
    assert set(power.entered) == set(ids(members)) - before
    assert set(power.exited) == before - set(ids(members))

    history = project.history("power_users")
    assert [row.run_id for row in history] == [1, 2]
    assert history[-1].size == members.height

    stats = project.stats("power_users")
    assert stats and stats[0].size == members.height

    someone = ids(members)[0]
    explanation = project.explain("power_users", someone, as_of=SECOND)
    assert explanation.member is True

    evaluation = project.evaluate(["power_users"], as_of=SECOND)
    assert ids(evaluation.members("power_users")) == ids(members)
    sizes = evaluation.sizes()
    assert sizes.filter(pl.col("segment") == "power_users")["size"].item() == members.height

    # members again, after evaluate replaced the engine's temp objects.
    assert ids(project.members("power_users")) == ids(members)

    report = project.push()
    assert report.complete
    # Every transition of power_users reached the webhook (run delivers, push finishes): the
    # initial entries (fire_initial) and the entries and exits of the second run.
    bodies = [
        b
        for d in hook.deliveries
        for b in (d.payload if isinstance(d.payload, list) else [d.payload])
    ]
    delivered = {(b["type"], b["person_id"]) for b in bodies}
    assert len(bodies) == len(delivered)
    expected = {("segment.entered", p) for p in before | set(power.entered)} | {
        ("segment.exited", p) for p in power.exited
    }
    assert delivered == expected


def test_the_other_calls_on_one_project_object(sample: Path, hook: WebhookFake) -> None:
    """preview, features, compile, status, person, tags and overlap after a run, then a run
    and members again: every temp object keeps one kind across calls."""
    project = segctl.Project.load(sample)
    project.validate()
    first = project.run(as_of=FIRST, fire_initial=True)
    assert first.run_id == 1 and first.report is not None and first.report.complete

    preview = project.preview("power_users", as_of=FIRST, limit=3)
    members = project.members("power_users")
    assert preview.size == members.height
    assert ids(preview.sample) == ids(members)[:3]
    assert "person_id" in project.features(as_of=FIRST).columns
    assert "power_users" in project.compile("power_users", dialect="postgres")

    status = project.status()
    assert [r["run_id"] for r in status["runs"]] == [1]
    someone = ids(members)[0]
    person = project.person(someone)
    assert "power_users" in person["segments"] and person["pending"] == []
    assert project.tags().columns == ["person_id", "name", "value", "set_at", "run_id"]
    (row,), in_all = project.overlap(["power_users", "active_users"])
    active = set(ids(project.members("active_users")))
    assert row.both == len(active & set(ids(members))) == len(in_all)

    assert project.run(as_of=SECOND).run_id == 2
    assert (
        project.preview("power_users", as_of=SECOND).size == project.members("power_users").height
    )
    assert project.evaluate(["power_users"], as_of=SECOND).changes["power_users"].entered == 0


def test_a_run_pauses_the_cyclic_collector_until_delivery(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector is off while a run loads, evaluates and records (a 1,000-segment run
    spent 5% of its time in full collections), on again for delivery (whose retries can make
    cyclic garbage by the million), and as it was afterwards, also when the run fails."""
    import gc

    from segctl import diff
    from segctl.project import run as runs

    seen: list[tuple[str, bool]] = []

    def watching(module: Any, name: str) -> None:
        original = getattr(module, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, gc.isenabled()))
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, watched)

    watching(diff, "compute")
    watching(runs, "_deliver")
    project = segctl.Project.load(sample)
    assert gc.isenabled()
    project.run(as_of=FIRST)
    assert seen == [("compute", False), ("_deliver", True)] and gc.isenabled()

    (sample / "segments" / "broken.yaml").write_text("name: broken\nrule: {event: }\n")
    with pytest.raises(segctl.DefinitionError):
        segctl.Project.load(sample).run(as_of=SECOND)
    assert gc.isenabled()

    gc.disable()  # a caller's own choice stands
    try:
        project.run(as_of=SECOND)
        assert seen[2:] == [("compute", False), ("_deliver", False)] and not gc.isenabled()
    finally:
        gc.enable()
