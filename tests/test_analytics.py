"""history, stats and overlap: figures checked against memberships computed independently."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from stateproject import AS_OF, write_project

import segctl as lib
from segctl.errors import UsageError


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> lib.Project:
    root = write_project(tmp_path_factory.mktemp("analytics") / "proj")
    for moment in AS_OF:
        lib.Project.load(root).run(as_of=moment)
    return lib.Project.load(root)


def snapshot(root: Path, index: int) -> dict[str, set[str]]:
    result = lib.Project.load(root).evaluate(as_of=AS_OF[index])
    return {n: set(result.members(n)["person_id"].to_list()) for n in result.segments}


def test_history_matches_each_run(project: lib.Project) -> None:
    rows = project.history("active")
    snaps = [snapshot(project.root, i)["active"] for i in range(len(AS_OF))]
    assert [r.run_id for r in rows] == [1, 2, 3, 4]
    assert [r.size for r in rows] == [len(s) for s in snaps]
    assert [r.entered for r in rows] == [
        len(b - a) for a, b in zip([set(), *snaps], snaps, strict=False)
    ]
    assert [r.exited for r in rows] == [
        len(a - b) for a, b in zip([set(), *snaps], snaps, strict=False)
    ]
    with pytest.raises(UsageError, match="no committed run"):
        project.history("nope")


def test_stats_over_a_period(project: lib.Project) -> None:
    # Runs are on days 10, 11, 12 and 20. The 9 days before the last run, (day 11, day 20],
    # hold runs 3 and 4; growth is measured from run 2 (day 11), the last run before them.
    days = (AS_OF[3] - AS_OF[1]).days
    [row] = project.stats("active", days=days)
    snaps = [snapshot(project.root, i)["active"] for i in range(len(AS_OF))]
    assert row.size == len(snaps[3])
    assert row.entered == len(snaps[2] - snaps[1]) + len(snaps[3] - snaps[2])
    assert row.exited == len(snaps[1] - snaps[2]) + len(snaps[2] - snaps[3])
    assert row.since == AS_OF[1].replace(tzinfo=None)
    assert row.growth_rate == pytest.approx((len(snaps[3]) - len(snaps[1])) / len(snaps[1]))
    every = {r.segment for r in project.stats(days=30)}
    assert every == {"active", "buyers", "active_buyers"}
    # A period holding the first run: figures from that run, whose members are its start
    # (they counted as entered too, so that entered - exited was not the growth).
    [row] = project.stats("active", days=30)
    assert row.since == AS_OF[0].replace(tzinfo=None)
    entered = sum(len(b - a) for a, b in itertools.pairwise(snaps))
    exited = sum(len(a - b) for a, b in itertools.pairwise(snaps))
    assert (row.entered, row.exited) == (entered, exited)
    assert row.size - len(snaps[0]) == entered - exited
    assert row.growth_rate == pytest.approx((len(snaps[3]) - len(snaps[0])) / len(snaps[0]))


def test_overlap_counts_and_jaccard(project: lib.Project) -> None:
    snap = snapshot(project.root, 3)
    rows, in_all = project.overlap(["active", "buyers", "active_buyers"])
    by_pair = {(r.a, r.b): r for r in rows}
    pair = by_pair[("active", "buyers")]
    both = snap["active"] & snap["buyers"]
    assert pair.both == len(both)
    assert pair.jaccard == pytest.approx(len(both) / len(snap["active"] | snap["buyers"]))
    assert pair.pct_of_a == pytest.approx(len(both) / len(snap["active"]))
    assert in_all == sorted(snap["active"] & snap["buyers"] & snap["active_buyers"])
    # At an earlier run the figures are those of that run.
    early = snapshot(project.root, 0)
    rows, _ = project.overlap(["active", "buyers"], as_of_run=1)
    assert rows[0].both == len(early["active"] & early["buyers"])
    with pytest.raises(UsageError, match="at least two"):
        project.overlap(["active"])
    # A segment named twice counts once (its pair with itself said "both: 0").
    with pytest.raises(UsageError, match="at least two different segments"):
        project.overlap(["active", "active"])
    rows, in_all = project.overlap(["active", "buyers", "active"])
    assert [(r.a, r.b, r.both) for r in rows] == [("active", "buyers", len(both))]


def test_members_at_an_earlier_run(project: lib.Project) -> None:
    first = project.members("active", as_of_run=1)
    assert set(first["person_id"].to_list()) == snapshot(project.root, 0)["active"]
    assert "email" in first.columns
    assert AS_OF[0] + timedelta(days=1) == AS_OF[1]
