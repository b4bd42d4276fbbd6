"""``segctl lookalike``: the non-members most like a segment's members.

A propensity model (gradient-boosted trees on the behavioural features of
:mod:`segctl.ml.features`) learns members vs non-members. Scores are *out-of-fold*: persons
are split into ``folds`` stratified folds and each fold is scored by a model trained on the
others, so no person is scored by a model that saw them. That is what makes the reported
figures holdout figures, and it keeps the ranking of non-members honest (a model scoring
its own training rows would push them all towards "non-member").

- AUC: how well the scores separate members from non-members (0.5 is chance);
- precision at N: the share of members among the N persons with the highest scores, members
  included; the list itself holds the N non-members with the highest scores.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl.errors import UsageError
from segctl.tempnames import LOOKALIKE_IDS
from segctl.timeutil import iso, parse_as_of

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from segctl.project import Project

#: Each fold's model is trained on at most this many persons (stratified sample).
TRAIN_SAMPLE = 300_000
MIN_MEMBERS = 10


@dataclass
class Lookalike:
    """The ranked non-members of a segment and the model's holdout figures."""

    segment: str
    as_of: datetime
    seed: int
    folds: int
    persons: int
    members: int
    size: int
    auc: float
    precision_at_n: float
    base_rate: float  # members / persons
    reachable: int  # listed persons with consent (all listed without a consent column)
    ranked: pl.DataFrame  # person_id, score, rank: the listed non-members, best first

    @property
    def lift_at_n(self) -> float:
        return self.precision_at_n / self.base_rate if self.base_rate else 0.0

    def to_dict(self) -> dict[str, Any]:

        return {
            "segment": self.segment,
            "as_of": iso(self.as_of),
            "seed": self.seed,
            "folds": self.folds,
            "persons": self.persons,
            "members": self.members,
            "size": self.size,
            "expected_reach": self.reachable,
            "auc": round(self.auc, 6),
            "precision_at_n": round(self.precision_at_n, 6),
            "lift_at_n": round(self.lift_at_n, 6),
            "base_rate": round(self.base_rate, 6),
        }

    def write_list(self, path: Path) -> None:
        """The list as CSV or Parquet: person_id, score, rank (whole or not at all)."""
        from segctl.atomic import replacing

        with replacing(path) as partial:
            if path.suffix.lower() == ".parquet":
                self.ranked.write_parquet(partial)
            else:
                self.ranked.write_csv(partial)

    def segment_yaml(self, name: str, list_file: str) -> str:
        """A static list segment over the written list."""
        import yaml

        header = (
            f"# Lookalike of {self.segment} by `segctl lookalike` (seed {self.seed}) at "
            f"{iso(self.as_of)}:\n# the {self.size} non-members most like its {self.members} "
            f"members. Holdout AUC {self.auc:.3f},\n# precision at {self.size} "
            f"{self.precision_at_n:.1%} (base rate {self.base_rate:.1%}).\n"
        )
        document = {
            "name": name,
            "description": f"Lookalike of {self.segment}: {self.size} persons (AUC {self.auc:.2f})",
            "tags": ["lookalike"],
            "rule": {"list": {"file": list_file, "key": "person_id"}},
        }
        return header + yaml.safe_dump(document, sort_keys=False, width=100)


def parse_size(text: str, eligible: int) -> int:
    """``5%`` of the eligible persons (rounded up) or a number of persons."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*|\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--size {text!r}: expected a percentage like 5% or a count like 1000")
    if match.group(1) is not None:
        share = float(match.group(1))
        if not 0 < share <= 100:
            raise UsageError(f"--size {text!r}: a percentage must be above 0 and at most 100")
        size = math.ceil(eligible * share / 100)
    else:
        size = int(match.group(2))
    if size < 1:
        raise UsageError(f"--size {text!r}: at least one person")
    if size > eligible:
        raise UsageError(f"--size {text!r}: only {eligible} non-members to choose from")
    return size


def lookalike(
    project: Project,
    segment: str,
    *,
    size: str = "5%",
    as_of: str | datetime | None = None,
    seed: int = 0,
    folds: int = 3,
) -> Lookalike:
    """Rank the non-members of ``segment`` by similarity to its members.

    Args:
        project: the project.
        segment: the seed segment, evaluated at ``as_of``.
        size: how many non-members to list: ``"5%"`` (of the non-members) or ``"1000"``.
        as_of: when to evaluate the segment and the features (default: now).
        seed: seeds the folds and the models: same data and seed, same list.
        folds: number of cross-fitting folds (at least 2).

    >>> found = lookalike(project, "power_users", size="2%")  # doctest: +SKIP
    >>> found.ranked.head(3)  # doctest: +SKIP
    """
    from segctl.ml import model_threads, require_sklearn

    require_sklearn("segctl lookalike")
    import numpy as np
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    from segctl.ml.features import behaviour_features

    if folds < 2:
        raise UsageError("--folds must be at least 2")
    moment = parse_as_of(as_of, project.config.tz)
    project.segment_names([segment])
    evaluation = project.evaluate([segment], as_of=moment)
    member_ids = evaluation.members(segment).get_column("person_id").to_arrow()
    matrix = behaviour_features(project, moment)
    ids = matrix.person_ids
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    value_set = member_ids.cast(pa.string())
    target = pc.is_in(ids.cast(pa.string()), value_set=value_set).to_numpy(zero_copy_only=False)
    target = np.asarray(target, dtype=bool)
    members = int(target.sum())
    persons = len(target)
    if members < max(MIN_MEMBERS, folds):
        raise UsageError(
            f"segment '{segment}' has {members} members at {moment:%Y-%m-%d %H:%M}: a "
            f"lookalike needs at least {max(MIN_MEMBERS, folds)}"
        )
    if persons - members < 1:
        raise UsageError(f"everyone is in segment '{segment}': no one left to rank")
    n = parse_size(size, persons - members)
    with model_threads(persons):
        scores = out_of_fold_scores(matrix.values, target, folds, seed)
    auc = _auc(target, scores)
    # Highest score first; ties keep person_id order (rows are sorted by person_id).
    order = np.argsort(-scores, kind="stable")
    precision = float(target[order[:n]].mean())
    chosen = order[~target[order]][:n]
    ranked = pl.DataFrame(
        {
            "person_id": pl.from_arrow(ids.take(pa.array(chosen))),
            "score": pl.Series("score", np.round(scores[chosen], 6)),
            "rank": pl.Series("rank", np.arange(1, n + 1), dtype=pl.Int64),
        }
    )
    return Lookalike(
        segment=segment,
        as_of=moment,
        seed=seed,
        folds=folds,
        persons=persons,
        members=members,
        size=n,
        auc=auc,
        precision_at_n=precision,
        base_rate=members / persons,
        reachable=_reachable(project, ranked),
        ranked=ranked,
    )


def out_of_fold_scores(values: np.ndarray, target: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each person's propensity from a model trained on the other folds."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(target), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    for train, test in splitter.split(values, target):
        if len(train) > TRAIN_SAMPLE:
            # A stratified sample: every member, and non-members up to the budget.
            positives, negatives = train[target[train]], train[~target[train]]
            keep = max(TRAIN_SAMPLE - len(positives), len(positives))
            if len(negatives) > keep:
                negatives = np.sort(rng.choice(negatives, size=keep, replace=False))
            train = np.sort(np.concatenate([positives, negatives]))
        # Balanced classes: segments are often a fraction of a percent of the persons, and an
        # unweighted model then scores nearly everyone alike (AUC near 0.5 on such segments).
        model = HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            early_stopping=False,
            class_weight="balanced",
            random_state=seed,
        )
        model.fit(values[train], target[train])
        scores[test] = model.predict_proba(values[test])[:, 1]
    return scores


def _auc(target: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(target, scores))


def _reachable(project: Project, ranked: pl.DataFrame) -> int:
    """Listed persons with consent (the consent column true), or all without one."""
    column = project.config.consent_column
    if column is None or column not in project.schema["persons"]:
        return ranked.height
    from sqlglot import exp

    from segctl.compiler import col, ident

    table = LOOKALIKE_IDS
    project.engine.con.register(table, ranked.select("person_id").to_arrow())
    try:
        consent = exp.func("COALESCE", exp.cast(col(column, "p"), "BOOLEAN"), exp.false())
        query = (
            exp.select(exp.Count(this=exp.Star()))
            .from_(exp.alias_(ident("persons"), "p"))
            .join(
                exp.alias_(ident(table), "l"),
                on=exp.EQ(this=col("person_id", "p"), expression=col("person_id", "l")),
            )
            .where(consent)
        )
        with project.engine.plan_errors():
            return int(project.engine.rows(query.sql(dialect="duckdb"))[0][0])
    finally:
        project.engine.con.unregister(table)


@dataclass(frozen=True)
class SegmentTarget:
    """Where ``--as-segment`` writes: the list file and the segment file naming it."""

    name: str
    list_path: Path
    list_file: str  # as the segment names it: relative to the project folder
    segment_path: Path


def segment_target(
    project: Project,
    name: str,
    seed: str,
    list_path: Path | None = None,
    *,
    force: bool = False,
) -> SegmentTarget:
    """Check, before any work, where a lookalike segment would go: the list (default
    ``lists/NAME.csv``) inside the project folder, and ``segments/NAME.yaml``.

    Refuses to overwrite files, or to reuse the name of another segment, unless ``force``;
    never replaces the ``seed`` segment.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise UsageError(
            f"--as-segment {name!r}: segment names are lower case letters, digits and _, "
            "starting with a letter"
        )
    root = project.root.resolve()
    list_path = (list_path or root / "lists" / f"{name}.csv").resolve()
    if list_path.suffix.lower() not in (".csv", ".parquet"):
        raise UsageError(f"--out {list_path.name}: use a .csv or .parquet file name")
    try:
        list_file = list_path.relative_to(root).as_posix()
    except ValueError:
        raise UsageError(
            f"--out {list_path}: with --as-segment the list must be inside the project "
            f"folder {root}, so that the segment can name it"
        ) from None
    segment_path = project.config.segments_dir / f"{name}.yaml"
    if name == seed:
        raise UsageError(f"--as-segment {name}: that is the seed segment; choose another name")
    existing = project.definitions.segments.get(name)
    if existing is not None and not force:
        raise UsageError(
            f"segment '{name}' already exists ({existing.file}); choose another name, or "
            "use --force to replace it"
        )
    for path in (segment_path, list_path):
        if path.exists() and not force:
            raise UsageError(f"{path} exists; use --force to overwrite it")
    return SegmentTarget(name, list_path, list_file, segment_path)


def write_segment(result: Lookalike, target: SegmentTarget) -> None:
    """Write the list and the static list segment over it."""
    from segctl.atomic import replacing

    result.write_list(target.list_path)
    with replacing(target.segment_path) as partial:
        partial.write_text(result.segment_yaml(target.name, target.list_file), encoding="utf-8")


__all__ = [
    "Lookalike",
    "SegmentTarget",
    "lookalike",
    "out_of_fold_scores",
    "parse_size",
    "segment_target",
    "write_segment",
]
