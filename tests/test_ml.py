"""Discovery and lookalikes (SPEC 7): features, rules, clusters, propensity lists.

Most tests use a project with three planted behavioural groups of persons, relative to the
training as_of ``TRAIN`` (= ``AS_OF`` - 30 days, the holdout window):

- ``r`` renderers: ``video_rendered`` on most of the 30 days before TRAIN; half purchase in
  the holdout period;
- ``l`` lapsed: ``login`` 60 to 120 days before TRAIN and nothing since; 4% purchase;
- ``e`` emailers: ``email_opened`` about weekly in the 60 days before TRAIN; 15% purchase.

Plans and countries are drawn independently of the groups. The strongest checks write the
discovered rules into the project and run ``validate`` and ``evaluate`` on them: the
evaluated members must be exactly the ones whose precision and recall discover reported.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from conftest import AS_OF, Cli, build_project

from segctl.project import Project

pytest.importorskip("sklearn", reason="scikit-learn is not installed: pip install 'segctl[ml]'")

import numpy as np  # scikit-learn's: not installed without the ml extra

from segctl.ml import features as mlf
from segctl.ml import rules
from segctl.ml.discover import discover
from segctl.ml.lookalike import lookalike, parse_size
from segctl.ml.specs import KINDS

END = datetime(2026, 11, 17, tzinfo=UTC)
TRAIN = END - timedelta(days=30)
TRAIN_ISO = "2026-10-18T00:00:00Z"
GROUPS = {"r": 0.5, "l": 0.04, "e": 0.15}  # group -> purchase probability in the holdout
PER_GROUP = 120

SEED_SEGMENT = """\
    name: renderers
    rule:
      event: video_rendered
      within: 30d
      count: {gte: 12}
    """


def planted_rows(
    per_group: int = PER_GROUP, seed: int = 3
) -> tuple[str, list[Any], dict[str, str]]:
    """persons.csv text, event rows and each person's group."""
    rng = random.Random(seed)
    persons = ["person_id,email,plan,country,created_at"]
    events: list[Any] = []
    truth: dict[str, str] = {}
    for group in GROUPS:
        for i in range(per_group):
            pid = f"{group}{i:04d}"
            truth[pid] = group
            plan = rng.choice(["free", "pro", "premium"])
            country = rng.choice(["DE", "US", "FR"])
            persons.append(f"{pid},{pid}@example.com,{plan},{country},2025-01-01T00:00:00Z")
            if group == "r":
                for day in range(1, 31):
                    if rng.random() < 0.7:
                        at = TRAIN - timedelta(days=day, hours=rng.randint(0, 20))
                        events.append((pid, "video_rendered", at, None, "mp4"))
                for day in range(0, 30, 2):  # they go on rendering in the holdout
                    at = TRAIN + timedelta(days=day, hours=3)
                    events.append((pid, "video_rendered", at, None, "mp4"))
            elif group == "l":
                for _ in range(rng.randint(5, 10)):
                    at = TRAIN - timedelta(days=rng.uniform(60, 120))
                    events.append((pid, "login", at, None, None))
            else:
                for week in range(9):
                    if rng.random() < 0.8:
                        at = TRAIN - timedelta(days=week * 7 + rng.uniform(0.1, 6))
                        events.append((pid, "email_opened", at, None, None))
            if rng.random() < GROUPS[group]:
                at = TRAIN + timedelta(days=rng.uniform(0.5, 29))
                events.append((pid, "purchase", at, float(rng.randint(1, 40) * 5), None))
    return "\n".join(persons) + "\n", events, truth


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    persons, events, truth = planted_rows()
    root = build_project(
        tmp_path_factory.mktemp("ml") / "planted",
        segments={"renderers": SEED_SEGMENT},
        persons=persons,
        subscriptions="person_id,status,plan,mrr,updated_at\n",
        events=events,
    )
    return root, truth


@pytest.fixture(scope="module")
def found(planted: tuple[Path, dict[str, str]]) -> Any:
    root, _ = planted
    return discover(Project.load(root), k=3, conversion_event="purchase", as_of=AS_OF, seed=5)


def adjusted_rand(a: list[Any], b: list[Any]) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


# ---- features ----------------------------------------------------------------------------


def test_behaviour_features_of_the_default_project(cli: Cli, project: Path) -> None:
    result = cli("features", "--behaviour", "--as-of", AS_OF, "-p", project, "--format", "json")
    rows = {r["person_id"]: r for r in json.loads(result.stdout)}
    assert sorted(rows) == ["p1", "p2", "p3", "p4"]  # p5 is created after as_of
    p1, p2, p4 = rows["p1"], rows["p2"], rows["p4"]
    assert (p1["video_rendered_7d"], p1["video_rendered_30d"]) == (3, 3)  # one is after as_of
    assert p1["login_7d"] == 3 and p1["active_days_30d"] == 5
    assert p1["streak_days"] == 3  # logins on the 14th, 15th, 16th
    assert p1["days_since_last_event"] == 0  # 2026-11-16 23:59, one minute before as_of
    assert p2["days_since_last_event"] == 1  # 2026-11-15 10:00
    assert p4["days_since_last_event"] == mlf.CAP_DAYS  # no events at all
    assert p1["purchase_amount_365d"] == 600 and p2["purchase_amount_365d"] == 20
    assert p1["days_since_created"] == 320
    assert (p1["country=DE"], p2["country=DE"], p2["country=US"]) == (1, 0, 1)
    # p2's latest subscription row is after as_of: the one before it counts.
    assert (p2["subscription.status=active"], p2["subscription.mrr"]) == (1, 900)
    assert p4["subscription.mrr"] == 0  # no subscription


def test_behaviour_features_named_scaled_and_unknown(cli: Cli, project: Path) -> None:
    result = cli(
        "features", "--scaled", "login_7d", "days_since_last_event", "--as-of", AS_OF,
        "-p", project, "--format", "csv",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "person_id,login_7d,days_since_last_event"
    values = [float(v) for line in lines[1:] for v in line.split(",")[1:]]
    assert all(abs(v) <= mlf.CLIP for v in values)
    bad = cli("features", "--behaviour", "login_7", "-p", project, "--as-of", AS_OF, code=2)
    assert "unknown behavioural feature 'login_7' (did you mean 'login_7d'?)" in bad.stderr


@pytest.mark.parametrize("which", ["planted", "default"])
def test_every_feature_condition_selects_what_its_value_says(
    which: str, planted: tuple[Path, dict[str, str]], project: Path, tmp_path: Path
) -> None:
    """at_most(t) and above(t), written as segments and evaluated by segctl, select exactly
    the persons whose computed value is <= t and > t: for every feature and thresholds below,
    at and above some of its observed values (the contract rules rely on). The default
    project brings sums, subscriptions, mrr and missing values; the planted one, volume."""
    root, as_of = (planted[0], TRAIN_ISO) if which == "planted" else (project, AS_OF)
    matrix = mlf.behaviour_features(Project.load(root), datetime.fromisoformat(as_of[:-1]))
    kinds = {spec.kind for spec in matrix.specs}
    assert kinds >= ({"count", "recency", "property"} if which == "planted" else set(KINDS))
    folder = tmp_path / "checks"
    folder.mkdir()
    expected: dict[str, np.ndarray] = {}
    for j, spec in enumerate(matrix.specs):
        distinct = np.unique(matrix.values[:, j])
        picks = sorted({distinct[0], distinct[len(distinct) // 2], distinct[-1]})
        for i, value in enumerate(picks):
            for offset, suffix in ((-0.5, "a"), (0.0, "b"), (0.5, "c")):
                t = float(value) + offset
                for above in (False, True):
                    name = f"f{j}_{i}{suffix}_{'gt' if above else 'le'}"
                    condition = spec.above(t) if above else spec.at_most(t)
                    text = yaml.safe_dump({"name": name, "rule": condition})
                    (folder / f"{name}.yaml").write_text(text)
                    column = matrix.values[:, j]
                    expected[name] = column > t if above else column <= t
    checked = Project.load(_with_segments(root, tmp_path / "copy", folder))
    result = checked.evaluate(sorted(expected), as_of=as_of)
    ids = matrix.person_ids.to_pylist()
    for name, mask in expected.items():
        members = set(result.members(name)["person_id"].to_list())
        wanted = {p for p, m in zip(ids, mask, strict=True) if m}
        assert members == wanted, f"{name}: {len(members)} evaluated, {len(wanted)} expected"


# Edge cases around TRAIN and END = TRAIN + 30d (the holdout's bounds), the 7-day window's
# lower bound, whole-day boundaries of recency and tenure, and the recency cap.
US = timedelta(microseconds=1)
EDGE_EVENTS = [
    ("q1", "login", TRAIN),  # at as_of: counted, recency 0
    ("q1", "login", TRAIN - timedelta(days=7)),  # outside the 7-day window, inside 30 days
    ("q1", "login", TRAIN - timedelta(days=7) + US),  # just inside the 7-day window
    ("q1", "purchase", TRAIN + US),  # the first instant of the holdout: converted
    ("q2", "purchase", TRAIN),  # a feature, not a conversion
    ("q2", "purchase", END + US),  # after the holdout
    ("q2", "login", TRAIN - timedelta(days=40)),
    ("q3", "purchase", END),  # the last instant of the holdout: converted
    ("q3", "login", TRAIN - US),  # recency 0 (less than a day)
    ("q3", "login", TRAIN - timedelta(days=1)),  # exactly a day
    ("q3", "video_rendered", TRAIN + timedelta(days=2)),  # after as_of: not a feature
    ("q5", "login", TRAIN - timedelta(days=800)),  # recency capped
    ("q4", "login", TRAIN + timedelta(days=3)),  # came back in the holdout, no purchase
    ("q6", "login", TRAIN - timedelta(days=3)),  # created after as_of: not a row
]
EDGE_PERSONS = {  # person -> created_at (None: unknown, tenure capped)
    "q1": TRAIN - timedelta(days=5),
    "q2": TRAIN - timedelta(days=5) + US,
    "q3": TRAIN,
    "q4": TRAIN - timedelta(days=1000),
    "q5": None,
    "q6": TRAIN + timedelta(hours=1),
}


@pytest.mark.parametrize("tz", ["UTC", None], ids=["tz-aware", "naive"])
def test_features_and_conversions_equal_a_plain_python_reference(
    tz: str | None, tmp_path: Path
) -> None:
    """Counts, recency, tenure and the holdout conversion, against a direct computation.
    Tz-aware Parquet timestamps get their time bounds on the raw column (row-group skipping),
    naive ones on the canonical column: both must select the same events."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from segctl.sources.views import RAW_TIMESTAMP

    persons = ["person_id,email,plan,country,created_at"]
    for pid, created in EDGE_PERSONS.items():
        stamp = created.isoformat().replace("+00:00", "Z") if created else ""
        persons.append(f"{pid},{pid}@example.com,free,DE,{stamp}")
    root = build_project(
        tmp_path / "edge",
        persons="\n".join(persons) + "\n",
        subscriptions="person_id,status,plan,mrr,updated_at\n",
        events=[],
    )
    stamps = [at if tz else at.replace(tzinfo=None) for _, _, at in EDGE_EVENTS]
    table = pa.table(
        {
            "person_id": [pid for pid, _, _ in EDGE_EVENTS],
            "event": [event for _, event, _ in EDGE_EVENTS],
            "timestamp": pa.array(stamps, pa.timestamp("us", tz=tz)),
        }
    )
    pq.write_table(table, root / "data" / "events.parquet")
    project = Project.load(root)
    naive = TRAIN.replace(tzinfo=None)
    specs = mlf.plan_features(project, naive)
    matrix = mlf.compute(project, specs, naive, conversion=("purchase", END.replace(tzinfo=None)))
    assert project.engine.driver.raw_timestamp == (RAW_TIMESTAMP if tz else None)

    ids = matrix.person_ids.to_pylist()
    assert ids == ["q1", "q2", "q3", "q4", "q5"]
    day = timedelta(days=1)
    for row, pid in enumerate(ids):
        seen = [(event, at) for p, event, at in EDGE_EVENTS if p == pid and at <= TRAIN]
        for j, spec in enumerate(specs):
            value = matrix.values[row, j]
            if spec.kind == "count":
                assert spec.window is not None
                since = TRAIN - timedelta(days=spec.window)
                want = sum(1 for event, at in seen if event == spec.event and at > since)
            elif spec.kind == "recency":
                last = max((at for _, at in seen), default=None)
                want = min((TRAIN - last) // day, mlf.CAP_DAYS) if last else mlf.CAP_DAYS
            elif spec.kind == "tenure":
                created = EDGE_PERSONS[pid]
                want = min((TRAIN - created) // day, mlf.CAP_DAYS) if created else mlf.CAP_DAYS
            else:
                continue
            assert value == want, f"{pid} {spec.name}: {value} != {want}"
    converted = {pid for pid, event, at in EDGE_EVENTS if event == "purchase" and TRAIN < at <= END}
    assert matrix.converted is not None
    assert [p for p, c in zip(ids, matrix.converted, strict=True) if c] == sorted(converted)
    assert {s.kind for s in specs} >= {"count", "recency", "tenure"}
    # discover's default conversion: any event in the holdout (the persons who came back).
    back = mlf.compute(project, specs, naive, conversion=("*", END.replace(tzinfo=None)))
    returned = {pid for pid, _, at in EDGE_EVENTS if TRAIN < at <= END}
    assert back.converted is not None and returned != converted
    assert [p for p, c in zip(ids, back.converted, strict=True) if c] == sorted(returned)


def _with_segments(root: Path, copy: Path, folder: Path) -> Path:
    """A copy of the project at ``root`` whose segments are the files in ``folder``."""
    import shutil

    shutil.copytree(root, copy)
    shutil.rmtree(copy / "segments")
    shutil.copytree(folder, copy / "segments")
    return copy


def test_robust_scale_resists_heavy_tails() -> None:
    spec = [mlf.FeatureSpec("n", "count", event="x", window=30), mlf.FeatureSpec("c", "tenure")]
    values = np.array([[float(v), 5.0] for v in [0, 1, 1, 2, 2, 3, 3, 4, 5, 100_000]])
    scaled = mlf.robust_scale(values, spec)
    assert np.all(np.abs(scaled) <= mlf.CLIP)
    assert scaled[-1, 0] == mlf.CLIP  # the outlier is clipped ...
    assert scaled[4, 0] - scaled[0, 0] > 0.5  # ... and does not squash the others together
    assert np.all(scaled[:, 1] == 0)  # a constant feature carries no distance
    binary = mlf.robust_scale(np.array([[0.0], [1.0], [1.0]]), [mlf.FeatureSpec("b", "property")])
    assert binary.tolist() == [[0.0], [1.0], [1.0]]


# ---- rules -------------------------------------------------------------------------------


def test_best_leaves_is_the_f1_optimal_prefix() -> None:
    leaf_of = np.array([1] * 10 + [2] * 10 + [3] * 10)
    target = np.array([1] * 9 + [0] + [1] * 4 + [0] * 6 + [0] * 10, dtype=bool)
    # leaf 1 alone: P 0.9 R 9/13 F1 0.78; leaves 1+2: P 0.65 R 1.0 F1 0.79 (best); all: 0.6
    assert rules.best_leaves(leaf_of, target) == {1, 2}
    assert rules.best_leaves(leaf_of, leaf_of == 3) == {3}


def test_nice_threshold_keeps_everyone_on_the_same_side() -> None:
    column = np.array([10.0, 527.5, 530.0, 1200.0])
    assert rules.nice_threshold(column, 528.75, integer=False) == 528.0
    assert rules.nice_threshold(column, 800.0, integer=False) == 1000.0
    assert rules.nice_threshold(column, 3.5, integer=True) == 3.0
    assert rules.nice_threshold(column, 5000.0, integer=False) == 5000.0  # all on one side
    assert rules.nice_threshold(column, 1.0, integer=False) == 1.0
    for t in (11.0, 528.75, 800.0):
        nice = rules.nice_threshold(column, t, integer=False)
        assert ((column <= nice) == (column <= t)).all()


def test_conjoin_simplifies() -> None:
    a, b = rules.Split(0, False, 1.0), rules.Split(1, True, 2.0)
    assert rules.conjoin("all", a, True) == a
    assert rules.conjoin("all", a, False) is False
    assert rules.conjoin("any", a, True) is True
    nested = rules.conjoin("all", a, rules.conjoin("all", b, a))
    assert nested == rules.Node("all", (a, b, a))


# ---- discover ----------------------------------------------------------------------------


def test_discover_recovers_planted_groups(found: Any, planted: tuple[Path, dict[str, str]]) -> None:
    _, truth = planted
    ids = found.person_ids.to_pylist()
    assert found.persons == 3 * PER_GROUP
    assert adjusted_rand([truth[p] for p in ids], found.labels.tolist()) > 0.95
    by_group = {}
    for cluster in found.clusters:
        members = [truth[p] for p, c in zip(ids, found.labels, strict=True) if c == cluster.number]
        by_group[max(set(members), key=members.count)] = cluster
    renderers, lapsed, emailers = by_group["r"], by_group["l"], by_group["e"]
    assert renderers.lift > 2 > 1 > emailers.lift > lapsed.lift
    assert renderers.use == "upsell" and lapsed.use == "retention"
    assert emailers.use == "acquisition"
    for cluster in found.clusters:
        assert cluster.precision > 0.95 and cluster.recall > 0.95, cluster.rule_text
    # The holdout is kept apart: conversion counts purchases after TRAIN only.
    assert found.train_as_of == TRAIN.replace(tzinfo=None)
    assert 0.1 < found.base_rate < 0.35


def test_discovered_segments_validate_and_evaluate_to_the_reported_figures(
    cli: Cli, planted: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, _ = planted
    project = _with_segments(root, tmp_path / "p", root / "segments")
    result = cli(
        "discover", "--k", "3", "-e", "purchase", "--as-of", AS_OF, "--seed", "2",
        "--out", project / "segments" / "found", "--assignments", tmp_path / "a.parquet",
        "-p", project, "--format", "json",
    )  # fmt: skip
    document = json.loads(result.stdout)
    assert document["train_as_of"] == TRAIN_ISO and document["k"] == 3
    names = [c["name"] for c in document["clusters"]]
    assert names == ["discovered_1", "discovered_2", "discovered_3"]
    valid = json.loads(cli("validate", "-p", project, "--format", "json").stdout)
    assert valid["valid"] and set(names) <= set(valid["segments"])
    cli("evaluate", *names, "--as-of", TRAIN_ISO, "--out", tmp_path / "m.parquet", "-p", project)
    members = pl.read_parquet(tmp_path / "m.parquet")
    clusters = pl.read_parquet(tmp_path / "a.parquet")
    for cluster in document["clusters"]:
        chosen = set(members.filter(pl.col("segment") == cluster["name"])["person_id"])
        inside = set(clusters.filter(pl.col("cluster") == cluster["cluster"])["person_id"])
        assert len(chosen) == cluster["rule_size"] and len(inside) == cluster["size"]
        assert cluster["precision"] == round(len(chosen & inside) / len(chosen), 6)
        assert cluster["recall"] == round(len(chosen & inside) / len(inside), 6)
        text = (project / "segments" / "found" / f"{cluster['name']}.yaml").read_text()
        assert text.startswith("# Discovered by `segctl discover` (seed 2)")
        assert yaml.safe_load(text)["rule"] == cluster["condition"]


def test_discover_is_deterministic_with_a_seed(planted: tuple[Path, dict[str, str]]) -> None:
    root, truth = planted

    def run(seed: int) -> dict[str, Any]:
        found = discover(Project.load(root), conversion_event="purchase", as_of=AS_OF, seed=seed)
        document = found.to_dict() | {"labels": found.labels.tolist()}
        phases = {"features", "scale", "choose_k", "cluster", "rules"}
        assert set(document.pop("seconds")) == phases
        return document

    first = run(11)
    assert run(11) == first
    # k=auto: the highest Calinski-Harabasz index among k = 2..8 wins; here 3 or 4 (some
    # emailers opened an email the day before TRAIN, a streak of 1 that is real structure).
    assert first["k_criterion"] == "calinski_harabasz"
    scores = {int(k): v for k, v in first["k_scores"].items()}
    assert sorted(scores) == list(range(2, 9))
    assert first["k"] == max(scores, key=lambda k: scores[k]) in (3, 4)
    ids = sorted(truth)
    assert adjusted_rand([truth[p] for p in ids], first["labels"]) > 0.9
    assert run(12)["labels"] != first["labels"] or run(12)["k_scores"] != first["k_scores"]


def test_discover_assigns_in_slices_like_all_at_once(
    found: Any, planted: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segctl.ml import discover as module

    monkeypatch.setattr(module, "PREDICT_ROWS", 7)  # 360 persons: 52 slices, the last short
    root, _ = planted
    again = discover(Project.load(root), k=3, conversion_event="purchase", as_of=AS_OF, seed=5)
    assert again.labels.tolist() == found.labels.tolist()


def test_discover_needs_the_conversion_event_up_to_as_of(
    planted: tuple[Path, dict[str, str]],
) -> None:
    """The planted purchases all fall after TRAIN: none up to an as_of of TRAIN."""
    from segctl.errors import UsageError

    root, _ = planted
    with pytest.raises(UsageError, match="no event named 'purchase' up to 2026-10-18"):
        discover(Project.load(root), conversion_event="purchase", as_of=TRAIN_ISO, seed=5)


def test_discover_formats_and_files(
    cli: Cli, planted: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, _ = planted
    out = tmp_path / "out"
    args = ("discover", "--k", "2", "--as-of", AS_OF, "-p", root, "--out", out)
    result = cli(*args, "--format", "csv")
    header, *rows = result.stdout.splitlines()
    assert header.startswith("cluster,name,size,share,conversion_rate,lift,suggested_use")
    assert len(rows) == 2
    assert sorted(p.name for p in out.iterdir()) == ["discovered_1.yaml", "discovered_2.yaml"]
    # No conversion event: coming back (any event in the holdout) is the conversion, with
    # its rates and lift; the uses are judged on activity alone.
    assert float(rows[0].split(",")[4]) >= 0 and float(rows[0].split(",")[5]) > 0
    assert "conversion = any event in the 30d after" in cli(*args[:7]).stdout
    again = cli(*args, code=2)
    assert "use --force" in again.stderr
    (out / "discovered_9.yaml").write_text("# Discovered by `segctl discover` (seed 0)\n")
    (out / "keep.yaml").write_text("name: keep\n")
    cli(*args, "--force", "--prefix", "discovered")
    assert sorted(p.name for p in out.iterdir()) == [
        "discovered_1.yaml",
        "discovered_2.yaml",
        "keep.yaml",
    ]
    table = cli("discover", "--k", "2", "-e", "purchase", "--as-of", AS_OF, "-p", root)
    assert "2 clusters of 360 persons at 2026-10-18T00:00:00Z" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--k", "1"), "--k '1': at least 2 clusters"),
        (("--k", "many"), "--k 'many': a number of clusters"),
        (("-e", "purchases"), "no event named 'purchases' up to 2026-11-17 (did you mean"),
        (("--window", "30 days"), "--window: expected a duration like 30d"),
        (("--prefix", "Found"), "--prefix 'Found': segment names are lower case"),
    ],
)  # fmt: skip
def test_discover_usage_errors(
    cli: Cli, planted: tuple[Path, dict[str, str]], args: tuple[str, ...], message: str
) -> None:
    root, _ = planted
    result = cli("discover", "--as-of", AS_OF, "-p", root, *args, code=2)
    assert message in result.stderr


@pytest.mark.parametrize(
    "command",
    [("discover",), ("lookalike", "renderers"), ("features", "--behaviour")],
)
def test_missing_sklearn_names_the_extra(
    cli: Cli,
    planted: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    root, _ = planted
    blocked = "numpy" if command[0] == "features" else "sklearn"
    monkeypatch.setitem(sys.modules, blocked, None)  # the next `import sklearn` fails
    result = cli(*command, "--as-of", AS_OF, "-p", root, code=3)
    assert "pip install 'segctl[ml]'" in result.stderr
    assert result.stdout == ""


# ---- lookalike ---------------------------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size("5%", 200) == 10
    assert parse_size("0.5%", 201) == 2  # rounded up
    assert parse_size("17", 200) == 17
    for bad, message in [("0", "at least one"), ("x", "expected a percentage"), ("300", "only")]:
        with pytest.raises(Exception, match=message):
            parse_size(bad, 200)


def test_lookalike_ranks_the_closest_non_members(planted: tuple[Path, dict[str, str]]) -> None:
    root, truth = planted
    found = lookalike(Project.load(root), "renderers", size="20", as_of=TRAIN_ISO, seed=4)
    assert found.members + 20 <= PER_GROUP + 20
    listed = found.ranked["person_id"].to_list()
    assert len(listed) == 20 == len(set(listed)) and found.ranked["rank"].to_list()[0] == 1
    # Renderers below the segment's threshold are the most similar non-members.
    assert sum(truth[p] == "r" for p in listed) >= min(20, PER_GROUP - found.members)
    scores = found.ranked["score"].to_list()
    assert scores == sorted(scores, reverse=True)
    assert found.auc > 0.9 and 0 < found.precision_at_n <= 1
    assert found.reachable == 20  # no consent column configured
    again = lookalike(Project.load(root), "renderers", size="20", as_of=TRAIN_ISO, seed=4)
    assert again.ranked.equals(found.ranked) and again.auc == found.auc


def test_lookalike_writes_a_static_list_segment_validate_accepts(
    cli: Cli, planted: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, _ = planted
    project = _with_segments(root, tmp_path / "p", root / "segments")
    args = ("lookalike", "renderers", "--size", "5%", "--as-of", TRAIN_ISO, "-p", project)
    result = cli(*args, "--as-segment", "renderers_like", "--format", "json")
    document = json.loads(result.stdout)
    members, size = document["members"], document["size"]
    assert size == -(-(3 * PER_GROUP - members) * 5 // 100)
    assert set(document) >= {"auc", "precision_at_n", "expected_reach", "files"}
    segment = project / "segments" / "renderers_like.yaml"
    assert yaml.safe_load(segment.read_text())["rule"] == {
        "list": {"file": "lists/renderers_like.csv", "key": "person_id"}
    }
    cli("validate", "-p", project)
    evaluated = json.loads(
        cli("evaluate", "--as-of", TRAIN_ISO, "-p", project, "--format", "json").stdout
    )
    sizes = {s["name"]: s["size"] for s in evaluated["segments"]}
    assert sizes == {"renderers": members, "renderers_like": size}
    listed = pl.read_csv(project / "lists" / "renderers_like.csv")
    assert listed.columns == ["person_id", "score", "rank"]
    # Again without --force: refused before any work; with it: replaced.
    assert "use --force" in cli(*args, "--as-segment", "renderers_like", code=2).stderr
    assert "the seed segment" in cli(*args, "--as-segment", "renderers", "--force", code=2).stderr
    (project / "segments" / "other.yaml").write_text(SEED_SEGMENT.replace("renderers", "other"))
    assert "segment 'other' already exists" in cli(*args, "--as-segment", "other", code=2).stderr
    cli(*args, "--as-segment", "renderers_like", "--force", "--size", "3")
    assert pl.read_csv(project / "lists" / "renderers_like.csv").height == 3
    outside = cli(*args, "--as-segment", "x_like", "--out", tmp_path / "x.csv", code=2)
    assert "must be inside the project folder" in outside.stderr


def test_lookalike_out_file_and_errors(
    cli: Cli, planted: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, _ = planted
    out = tmp_path / "list.parquet"
    cli("lookalike", "renderers", "-n", "7", "--as-of", TRAIN_ISO, "-p", root, "--out", out)
    assert pl.read_parquet(out).height == 7
    unknown = cli("lookalike", "renderer", "--as-of", TRAIN_ISO, "-p", root, code=2)
    assert "unknown segment 'renderer' (did you mean 'renderers'?)" in unknown.stderr
    empty = cli("lookalike", "renderers", "--as-of", "2025-01-02", "-p", root, code=2)
    assert "has 0 members" in empty.stderr


def test_a_list_whose_writing_fails_leaves_the_previous_one(tmp_path: Path) -> None:
    """lookalike's list is written whole or not at all: a writer stopped halfway (a full
    disk, a kill) leaves the last list as it was, and no partial file beside it."""
    from types import SimpleNamespace

    from segctl.ml.lookalike import Lookalike

    path = tmp_path / "lists" / "like.csv"
    path.parent.mkdir()
    path.write_text("person_id,score,rank\nu1,0.9,1\n")

    class HalfWritten:
        def write_csv(self, target: Path) -> None:
            Path(target).write_text("person_id,sco")
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        Lookalike.write_list(SimpleNamespace(ranked=HalfWritten()), path)  # type: ignore[arg-type]
    assert path.read_text() == "person_id,score,rank\nu1,0.9,1\n"
    assert list(path.parent.iterdir()) == [path]
