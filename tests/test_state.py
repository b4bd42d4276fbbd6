"""The state store: runs, interval history, diffs, backfill, locking, crash safety."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from stateproject import AS_OF, iso, segctl, snapshot_members, write_project

import segctl as lib
from segctl.errors import StateError, StateLockedError, UsageError
from segctl.lock import state_lock
from segctl.state import DB_FILE, SCHEMA_VERSION


def members(project: lib.Project, as_of: object) -> dict[str, set[str]]:
    result = lib.Project.load(project.root).evaluate(as_of=as_of)  # type: ignore[arg-type]
    return {n: set(result.members(n)["person_id"].to_list()) for n in result.segments}


def committed(root: Path) -> dict[str, object]:
    """Everything a run commits, read straight from the database file."""
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    try:
        return {
            "runs": con.execute("SELECT run_id, kind, as_of FROM runs ORDER BY 1").fetchall(),
            "figures": con.execute(
                "SELECT run_id, segment, size, entered, exited, first_run FROM run_segments "
                "ORDER BY 1, 2"
            ).fetchall(),
            "transitions": con.execute("SELECT * FROM transitions ORDER BY ALL").fetchall(),
            "snapshot": snapshot_members(con),
        }
    finally:
        con.close()


@pytest.fixture
def project(tmp_path: Path) -> lib.Project:
    return lib.Project.load(write_project(tmp_path / "proj"))


def test_first_run_counts_every_member_as_entered(project: lib.Project) -> None:
    result = project.run(as_of=AS_OF[0])
    expected = members(project, AS_OF[0])
    assert result.run_id == 1
    assert {n: c.entered for n, c in result.changes.items()} == {
        n: len(m) for n, m in expected.items()
    }
    assert all(c.first_run and c.exited == 0 for c in result.changes.values())


def test_second_run_diffs_against_the_committed_snapshot(project: lib.Project) -> None:
    project.run(as_of=AS_OF[0])
    second = lib.Project.load(project.root).run(as_of=AS_OF[1])
    before, after = members(project, AS_OF[0]), members(project, AS_OF[1])
    for name, change in second.changes.items():
        assert change.entered == len(after[name] - before[name])
        assert change.exited == len(after[name] ^ before[name]) - change.entered
        assert change.size == len(after[name])
        assert not change.first_run
    diff = lib.Project.load(project.root).diff()
    by_name = {d.name: d for d in diff.segments}
    assert (diff.from_run, diff.to_run) == (1, 2)
    for name in before:
        assert by_name[name].entered == sorted(after[name] - before[name])
        assert by_name[name].exited == sorted(before[name] - after[name])


def test_the_snapshot_updated_in_place_equals_the_last_memberships(
    project: lib.Project,
) -> None:
    for as_of in AS_OF:  # after the first run only changed persons' rows are replaced
        lib.Project.load(project.root).run(as_of=as_of)
    expected = members(project, AS_OF[-1])
    assert committed(project.root)["snapshot"] == expected
    con = duckdb.connect(str(project.root / ".segctl" / DB_FILE), read_only=True)
    try:  # persons in no segment are not kept
        assert con.execute("SELECT count(*) FROM snapshot WHERE w0 = 0").fetchall() == [(0,)]
    finally:
        con.close()


def test_history_is_stored_as_intervals(project: lib.Project) -> None:
    from segctl.state import intervals_sql

    for moment in AS_OF:
        lib.Project.load(project.root).run(as_of=moment)
    expected = [members(project, m) for m in AS_OF]
    with lib.Project.load(project.root).state() as store:
        intervals = store.rows(intervals_sql())
        transitions = store.rows("SELECT count(*) FROM segctl_state.transitions")[0][0]
    # Rebuild each run's membership from the intervals and compare with evaluation.
    for run_id, snapshot in enumerate(expected, start=1):
        rebuilt: dict[str, set[str]] = {n: set() for n in snapshot}
        for segment, person, entered_at, exited_at, entered_run, exited_run in intervals:
            assert entered_at == AS_OF[entered_run - 1].replace(tzinfo=None)
            assert exited_at is None or exited_at == AS_OF[exited_run - 1].replace(tzinfo=None)
            if entered_run <= run_id and (exited_run is None or exited_run > run_id):
                rebuilt[segment].add(person)
        assert rebuilt == snapshot
    # A row per transition, not per member per run.
    changes = sum(
        len(a ^ b)
        for x, y in zip([{}, *expected], expected, strict=False)
        for a, b in ((x.get(n, set()), y[n]) for n in y)
    )
    assert transitions == changes
    assert transitions < sum(len(m) for snap in expected for m in snap.values())


def test_a_commit_that_cannot_key_every_transition_commits_nothing(
    project: lib.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transitions are keyed by a join on the changed persons: one missing there would
    drop its rows silently. The commit counts them against the run's figures and fails."""
    from segctl import diff

    project.run(as_of=AS_OF[2])  # a person outside every segment then enters one at [3]
    before = committed(project.root)
    compute = diff.compute

    lost = []

    def losing_a_person(con, *args, **kwargs):  # type: ignore[no-untyped-def]
        changes = compute(con, *args, **kwargs)
        new = "SELECT person_id FROM segctl_state.person_keys"  # a person with no key yet
        lost.extend(
            con.execute(
                f"DELETE FROM changed WHERE person_id = (SELECT min(person_id) FROM changed "
                f"WHERE person_id NOT IN ({new})) RETURNING person_id"
            ).fetchall()
        )
        return changes

    monkeypatch.setattr(diff, "compute", losing_a_person)
    with pytest.raises(StateError, match=r"recorded .* of its .* transitions"):
        lib.Project.load(project.root).run(as_of=AS_OF[3])
    assert len(lost) == 1
    assert committed(project.root) == before


def test_transitions_are_stored_keyed_and_sorted_within_each_run(project: lib.Project) -> None:
    """Each person id and segment name is stored once, with one key each, and a run's rows
    are in segment and person order (what lets DuckDB bit-pack them): the history stays
    what the runs committed."""
    for moment in AS_OF:
        lib.Project.load(project.root).run(as_of=moment)
    con = duckdb.connect(str(project.root / ".segctl" / DB_FILE), read_only=True)
    try:
        for table, key, name in (
            ("person_keys", "person_key", "person_id"),
            ("segment_keys", "segment_key", "segment"),
        ):
            [(rows, keys, names)] = con.execute(
                f"SELECT count(*), count(DISTINCT {key}), count(DISTINCT {name}) FROM {table}"
            ).fetchall()
            assert rows == keys == names > 1, table
        stored = con.execute(
            "SELECT run_id, segment_key, person_key FROM transition_rows ORDER BY rowid"
        ).fetchall()
        assert stored == sorted(stored) and len({r[0] for r in stored}) == len(AS_OF)
        # Persons are keyed in id order as they first enter: the first run's keys ascend
        # with the ids, so its rows are in id order within each segment too.
        first = con.execute(
            """SELECT p.person_id FROM transition_rows AS t
               JOIN person_keys AS p ON p.person_key = t.person_key
               JOIN segment_keys AS g ON g.segment_key = t.segment_key
               WHERE t.run_id = 1 AND g.segment = 'active' ORDER BY t.rowid"""
        ).fetchall()
    finally:
        con.close()
    assert [p for (p,) in first] == sorted(members(project, AS_OF[0])["active"])


def test_diff_between_any_two_runs(project: lib.Project) -> None:
    for moment in AS_OF:
        lib.Project.load(project.root).run(as_of=moment)
    first, last = members(project, AS_OF[0]), members(project, AS_OF[3])
    diff = lib.Project.load(project.root).diff(["active"], from_run=1, to_run=4)
    [active] = diff.segments
    assert active.entered == sorted(last["active"] - first["active"])
    assert active.exited == sorted(first["active"] - last["active"])
    with pytest.raises(UsageError, match="no committed run 9"):
        lib.Project.load(project.root).diff(from_run=1, to_run=9)
    # An unknown segment is a usage error, as for members and history (it gave empty lists).
    with pytest.raises(UsageError, match=r"segment 'activ' was not part of run 4 or run 1 \(did"):
        lib.Project.load(project.root).diff(["activ"], from_run=1, to_run=4)
    proc = segctl(project.root, "diff", "nosuch", "--format", "json")
    assert proc.returncode == 2 and "segment 'nosuch' was not part of run 4" in proc.stderr


def test_definition_change_is_diffed_and_traced(project: lib.Project) -> None:
    project.run(as_of=AS_OF[0])
    (project.root / "segments" / "active.yaml").write_text(
        'name: active\nrule: {event: "*", within: 30d, count: {gte: 1}}\n'
    )
    changed = lib.Project.load(project.root)
    result = changed.run(as_of=AS_OF[1])
    now_members = members(changed, AS_OF[1])["active"]
    before = members(project, AS_OF[0])["active"]
    assert result.changes["active"].entered == len(now_members - before)
    [active] = changed.diff(["active"]).segments
    assert active.definition_changed
    assert active.entered == sorted(now_members - before)
    from segctl import analytics

    with changed.state() as store:
        flags = [r.definition_changed for r in analytics.history(store, "active")]
    assert flags == [False, True]


def test_backfill_equals_running_at_each_as_of(tmp_path: Path) -> None:
    one = lib.Project.load(write_project(tmp_path / "one"))
    two = lib.Project.load(write_project(tmp_path / "two"))
    results = one.backfill(iso(AS_OF[0]), iso(AS_OF[2]), "1d")
    assert [r.run_id for r in results] == [1, 2, 3]
    for moment in AS_OF[:3]:
        lib.Project.load(two.root).run(as_of=moment)
    a, b = committed(one.root), committed(two.root)
    assert [r[1] for r in a["runs"]] == ["backfill"] * 3  # type: ignore[index,union-attr]
    assert a["figures"] == b["figures"]
    assert a["transitions"] == b["transitions"]
    assert a["snapshot"] == b["snapshot"]


def test_backfill_refuses_to_rewrite_history_without_reset(project: lib.Project) -> None:
    project.run(as_of=AS_OF[1])
    with pytest.raises(UsageError, match="not after the last committed run"):
        lib.Project.load(project.root).backfill(iso(AS_OF[0]), iso(AS_OF[2]), "1d")
    results = lib.Project.load(project.root).backfill(
        iso(AS_OF[0]), iso(AS_OF[2]), "1d", reset=True
    )
    assert [r.run_id for r in results] == [1, 2, 3]


@pytest.mark.parametrize(
    ("every", "days", "said"),
    [
        ("0d", 2, "--every must be longer than 0 (like 1d), got '0d'"),
        ("0h", 2, "--every must be longer than 0"),
        ("1h", 500, "backfill would commit 12,001 runs; use a larger --every"),
    ],
)
def test_backfill_refuses_a_step_of_zero_or_too_many_runs(
    project: lib.Project, every: str, days: int, said: str
) -> None:
    """A zero step looped for ever, growing a list until memory ran out; a small one made all
    its times before the limit was checked. Both are usage errors (exit 2), and nothing is
    committed."""
    start, end = iso(AS_OF[0]), iso(AS_OF[0] + timedelta(days=days))
    with pytest.raises(UsageError, match=re.escape(said)):
        project.backfill(start, end, every)
    proc = segctl(project.root, "backfill", "--from", start, "--to", end, "--every", every)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr
    assert not (project.root / ".segctl" / DB_FILE).exists() or not committed(project.root)["runs"]


def test_a_reset_history_gives_the_state_a_new_origin(project: lib.Project) -> None:
    """Run ids start again from 1 after ``backfill --reset``: the outbox keys (webhook-id,
    Idempotency-Key) of the new runs start with a new origin, never repeating the old ones."""
    from segctl.state import StateStore
    from segctl.state.erasure import reset_history

    project.run(as_of=AS_OF[0])
    with StateStore.open(project.root / ".segctl", write=True) as store:
        before = store.origin()
        assert store.origin() == before  # kept
        reset_history(store)
        assert store.origin() != before


def test_evaluate_and_dry_run_change_nothing(project: lib.Project) -> None:
    lib.Project.load(project.root).run(dry_run=True, as_of=AS_OF[0])
    assert not (project.root / ".segctl").exists()  # not even a lock file in a new folder
    project.run(as_of=AS_OF[0])
    db = project.root / ".segctl" / DB_FILE
    before = (db.read_bytes(), committed(project.root))
    result = lib.Project.load(project.root).evaluate(as_of=AS_OF[1])
    planned = lib.Project.load(project.root).run(dry_run=True, as_of=AS_OF[1])
    assert planned.run_id is None
    assert {n: c.entered for n, c in planned.changes.items()} == {
        n: c.entered for n, c in result.changes.items()
    }
    assert (db.read_bytes(), committed(project.root)) == before


def test_as_of_must_move_forward(project: lib.Project) -> None:
    project.run(as_of=AS_OF[1])
    with pytest.raises(UsageError, match="backfill --reset"):
        lib.Project.load(project.root).run(as_of=AS_OF[0])


def test_second_run_waits_then_exits_6_naming_the_holder(project: lib.Project) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from segctl.lock import state_lock\n"
            f"with state_lock(Path({str(project.root / '.segctl')!r}), command='segctl run'):\n"
            "    print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        proc = segctl(project.root, "run", "--as-of", iso(AS_OF[0]), "--wait", "1")
        waited = time.monotonic() - started
        assert proc.returncode == 6, proc.stderr
        assert f"pid {holder.pid}" in proc.stderr and "started" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert waited >= 1.0
    finally:
        holder.kill()
        holder.communicate()
    # The kernel released the dead holder's lock: the next run goes through.
    assert segctl(project.root, "run", "--as-of", iso(AS_OF[0])).returncode == 0


def test_waiting_run_proceeds_when_the_holder_finishes(project: lib.Project) -> None:
    folder = project.root / ".segctl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from segctl.lock import state_lock\n"
            f"with state_lock(Path({str(folder)!r})):\n"
            "    print('locked', flush=True); time.sleep(1.5)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    proc = segctl(project.root, "run", "--as-of", iso(AS_OF[0]), "--wait", "30")
    holder.communicate()
    assert proc.returncode == 0, proc.stderr


def test_lock_in_process_raises_state_locked(tmp_path: Path) -> None:
    with (
        state_lock(tmp_path),
        pytest.raises(StateLockedError, match="use --wait"),
        state_lock(tmp_path),
    ):
        pass


CRASH_POINTS = [
    ("run:after-evaluate", False),
    ("commit:after-run-row", False),
    ("commit:after-transitions", False),
    ("commit:before-commit", False),
    ("commit:after-commit", True),
]


@pytest.mark.parametrize(("point", "survives"), CRASH_POINTS, ids=[p for p, _ in CRASH_POINTS])
def test_kill_9_leaves_old_or_new_state_never_a_mix(
    tmp_path: Path, point: str, survives: bool
) -> None:
    root = write_project(tmp_path / "crash")
    clean = write_project(tmp_path / "clean")
    assert segctl(root, "run", "--as-of", iso(AS_OF[0])).returncode == 0
    before = committed(root)
    proc = segctl(root, "run", "--as-of", iso(AS_OF[1]), env={"SEGCTL_CRASH_AT": point})
    assert proc.returncode == -signal.SIGKILL
    after = committed(root)
    if survives:
        assert len(after["runs"]) == 2  # type: ignore[arg-type]
    else:
        assert after == before
    # The next run recovers and ends exactly where an uninterrupted history ends.
    assert segctl(root, "run", "--as-of", iso(AS_OF[2])).returncode == 0
    for moment in (AS_OF[0], AS_OF[1], AS_OF[2]) if survives else (AS_OF[0], AS_OF[2]):
        assert segctl(clean, "run", "--as-of", iso(moment)).returncode == 0
    final, reference = committed(root), committed(clean)
    assert final["snapshot"] == reference["snapshot"]
    if survives:
        assert final["transitions"] == reference["transitions"]
    assert [f[1:] for f in final["figures"]] == [f[1:] for f in reference["figures"]]  # type: ignore[union-attr]


def test_corrupted_state_gives_a_clear_error(project: lib.Project) -> None:
    project.run(as_of=AS_OF[0])
    (project.root / ".segctl" / DB_FILE).write_bytes(b"this is not a database" * 100)
    proc = segctl(project.root, "diff")
    assert proc.returncode == 4
    assert "cannot open the state database" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(StateError, match="move the state folder away"):
        lib.Project.load(project.root).run(as_of=AS_OF[1])


def test_state_from_a_newer_segctl_is_refused(project: lib.Project) -> None:
    project.run(as_of=AS_OF[0])
    con = duckdb.connect(str(project.root / ".segctl" / DB_FILE))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    proc = segctl(project.root, "run", "--as-of", iso(AS_OF[1]))
    assert proc.returncode == 4
    assert "newer segctl" in proc.stderr and "upgrade segctl" in proc.stderr


def test_state_commands_json_shapes(project: lib.Project) -> None:
    root = project.root
    run = json.loads(segctl(root, "run", "--as-of", iso(AS_OF[0]), "-f", "json").stdout)
    # The SPEC's keys, plus "warnings" (additive: stale data, ignored events), empty here.
    assert set(run) == {"run_id", "as_of", "segments", "deliveries", "warnings"}
    assert run["warnings"] == []
    assert run["as_of"] == iso(AS_OF[0])
    assert set(run["deliveries"]) == {"sent", "failed", "pending", "held"}
    assert run["deliveries"]["held"] == []  # nothing to hold: no on_exit actions, no audiences
    assert all(set(s) == {"name", "size", "entered", "exited"} for s in run["segments"])
    assert segctl(root, "run", "--as-of", iso(AS_OF[1])).returncode == 0

    diff = json.loads(segctl(root, "diff", "-f", "json").stdout)
    assert set(diff) == {"from_run", "to_run", "segments"}
    assert (diff["from_run"], diff["to_run"]) == (1, 2)
    assert all(set(s) == {"name", "entered", "exited"} for s in diff["segments"])
    assert segctl(root, "diff", "--exit-code").returncode == 1
    assert segctl(root, "diff", "--from", "2", "--to", "2", "--exit-code").returncode == 0
    reversed_range = segctl(root, "diff", "--from", "2", "--to", "1")
    assert reversed_range.returncode == 2
    assert "--from 2 is after --to 1" in reversed_range.stderr
    assert "segctl diff --from 1 --to 2" in reversed_range.stderr

    listed = json.loads(segctl(root, "members", "active", "-f", "json").stdout)
    ids = [m["person_id"] for m in listed]
    assert ids == sorted(ids) and ids and {"person_id", "email", "plan"} <= set(listed[0])
    csv_out = segctl(root, "members", "active", "-f", "csv").stdout.splitlines()
    assert csv_out[0].split(",")[0] == "person_id" and len(csv_out) == len(ids) + 1

    person = json.loads(segctl(root, "person", ids[0], "-f", "json").stdout)
    assert person["person_id"] == ids[0] and "active" in person["segments"]
    history = json.loads(segctl(root, "history", "active", "-f", "json").stdout)
    assert [h["run_id"] for h in history] == [1, 2]
    stats = json.loads(segctl(root, "stats", "-f", "json").stdout)
    assert {s["segment"] for s in stats} == {"active", "buyers", "active_buyers"}
    overlap = json.loads(segctl(root, "overlap", "active", "buyers", "-f", "json").stdout)
    [pair] = overlap["pairs"]
    assert pair["both"] == overlap["in_all"]["count"] == len(overlap["in_all"]["person_ids"])


def test_a_misspelt_segment_is_a_usage_error_with_the_closest_name(
    project: lib.Project,
) -> None:
    """Every command reading a committed segment says which one was meant (exit 2)."""
    root = project.root
    project.run(as_of=AS_OF[0])
    for args in (
        ["members", "activ"],
        ["history", "activ"],
        ["stats", "activ"],
        ["overlap", "activ", "buyers"],
        ["diff", "activ"],
    ):
        proc = segctl(root, *args)
        assert proc.returncode == 2, args
        assert "segment 'activ'" in proc.stderr and "(did you mean 'active'?)" in proc.stderr, (
            args,
            proc.stderr,
        )
    proc = segctl(root, "members", "zzz")
    assert "(segments: active, active_buyers, buyers)" in proc.stderr, proc.stderr
    # One run: the diff is from before any run (from_run 0 in JSON), not from a "run 0".
    assert segctl(root, "diff").stdout.startswith("Changes up to run 1 (from before any run)")


def test_state_commands_without_state_exit_2(project: lib.Project) -> None:
    for args in (["diff"], ["members", "active"], ["history", "active"], ["stats"]):
        proc = segctl(project.root, *args)
        assert proc.returncode == 2, args
        assert "segctl run" in proc.stderr


def test_a_v1_snapshot_of_boolean_columns_is_migrated_and_diffed_against(
    project: lib.Project,
) -> None:
    """State written before v2 kept a BOOLEAN column per segment; a run migrates it to
    packed words and diffs against it as if nothing had changed."""
    from segctl.state import MIGRATIONS, S

    first = members(project, AS_OF[0])
    folder = project.root / ".segctl"
    folder.mkdir()
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{folder / DB_FILE}' AS {S}")
    for statement in MIGRATIONS[1]:
        assert isinstance(statement, str)
        con.execute(statement)
    con.execute(f"INSERT INTO {S}.meta VALUES ('schema_version', '1')")
    con.execute(
        f"INSERT INTO {S}.runs VALUES (1, 'run', ?, now(), now(), 'old', '')",
        [AS_OF[0].replace(tzinfo=None)],
    )
    # the columns in another order than the catalogue's, NULL standing for false
    order = ["buyers", "active", "active_buyers"]
    for name in order:
        con.execute(f'ALTER TABLE {S}.snapshot ADD COLUMN "{name}" BOOLEAN')
        con.execute(
            f"INSERT INTO {S}.run_segments VALUES (1, ?, 'h', ?, ?, 0, true)",
            [name, len(first[name]), len(first[name])],
        )
        for person in first[name]:
            con.execute(f"INSERT INTO {S}.transitions VALUES (1, ?, ?, 'enter')", [name, person])
    everyone = sorted(set().union(*first.values()))
    for person in everyone:
        flags = [person in first[n] or None for n in order]
        con.execute(f"INSERT INTO {S}.snapshot VALUES (?, ?, ?, ?)", [person, *flags])
    con.execute(f"DETACH {S}")
    con.close()

    second = lib.Project.load(project.root).run(as_of=AS_OF[1])
    after = members(project, AS_OF[1])
    for name, change in second.changes.items():
        assert (change.entered, change.exited) == (
            len(after[name] - first[name]),
            len(first[name] - after[name]),
        )
        assert not change.first_run
    assert committed(project.root)["snapshot"] == after


# ---- compaction (segctl.state.compaction) ---------------------------------------------------


def everything(root: Path) -> dict[str, object]:
    """Every table a run writes, and where the outbox's ids go on."""
    con = duckdb.connect(str(root / ".segctl" / DB_FILE), read_only=True)
    try:
        found = {
            table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("meta", "outbox", "incremental", "wakeups", "run_inputs", "snapshot")
        }
    finally:
        con.close()
    return {**found, **committed(root)}


def free_space(root: Path, megabytes: int) -> None:
    """Leave ``megabytes`` of freed blocks in the state file (a table written and dropped,
    with another written after it: DuckDB cuts free blocks off the file's end), without
    compacting it."""
    from segctl.state import StateStore, compaction

    share, compaction.SPARSE_SHARE = compaction.SPARSE_SHARE, 2.0
    try:
        with StateStore.open(root / ".segctl", write=True) as store:
            rows = megabytes * 1024 * 1024 // 18  # an md5 text and an integer
            store.con.execute(
                f"CREATE TABLE segctl_state.junk AS SELECT range AS x, md5(range::VARCHAR) AS y "
                f"FROM range({rows})"
            )
            store.con.execute("CHECKPOINT segctl_state")
            store.con.execute("CREATE TABLE segctl_state.filler AS FROM range(100000)")
            store.con.execute("CHECKPOINT segctl_state")
            store.con.execute("DROP TABLE segctl_state.junk")
    finally:
        compaction.SPARSE_SHARE = share


def test_a_state_that_is_mostly_free_blocks_is_compacted_and_keeps_everything(
    project: lib.Project,
) -> None:
    root = project.root
    project.run(as_of=AS_OF[0])
    before = everything(root)
    path = root / ".segctl" / DB_FILE
    free_space(root, 80)
    sparse = path.stat().st_size
    assert sparse > 64 * 1024 * 1024
    assert everything(root) == before
    assert segctl(root, "status").returncode == 0  # read-only: no compaction
    assert path.stat().st_size == sparse
    later = segctl(root, "run", "--as-of", iso(AS_OF[1]))  # writes, then compacts
    assert later.returncode == 0, later.stderr
    assert path.stat().st_size < sparse / 4
    assert not path.with_name(DB_FILE + ".compacting").exists()
    # The copy keeps the tables, views, constraints and where the sequence goes on.
    con = duckdb.connect(str(path))
    try:
        [(nextval,)] = con.execute("SELECT nextval('outbox_ids')").fetchall()
        [(largest,)] = con.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchall()
        assert nextval > largest
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO meta VALUES ('schema_version', 'again')")
    finally:
        con.close()
    assert lib.Project.load(root).verify().equal
    again = segctl(root, "run", "--as-of", iso(AS_OF[2]))
    assert again.returncode == 0, again.stderr


def test_kill_9_before_the_compacted_file_is_renamed_leaves_the_old_one(
    project: lib.Project,
) -> None:
    root = project.root
    project.run(as_of=AS_OF[0])
    free_space(root, 80)
    path = root / ".segctl" / DB_FILE
    sparse = path.stat().st_size
    env = {"SEGCTL_CRASH_AT": "state:compaction-before-rename"}
    crashed = segctl(root, "run", "--as-of", iso(AS_OF[1]), env=env)
    assert crashed.returncode == -signal.SIGKILL
    assert path.with_name(DB_FILE + ".compacting").exists()  # the copy, never renamed
    assert path.stat().st_size >= sparse  # the old file, whole
    # The command's first write compacts: the crash came before or after its run committed.
    assert [r[0] for r in committed(root)["runs"]] in ([1], [1, 2])  # type: ignore[union-attr]
    after = segctl(root, "run", "--as-of", iso(AS_OF[2]))
    assert after.returncode == 0, after.stderr
    assert path.stat().st_size < sparse / 4
    assert not path.with_name(DB_FILE + ".compacting").exists()
    assert lib.Project.load(root).verify().equal
