"""``segctl discover``: behavioural clusters described as segments a person can read.

1. Features are computed at the *training* as_of, ``as_of - window``, and the conversion
   event is looked up in the holdout period ``(as_of - window, as_of]``, which the clustering
   never sees.
2. Persons are clustered with k-means on the robust-scaled features (fitted on a sample of at
   most :data:`FIT_SAMPLE` persons, then every person is assigned to the nearest centre).
   ``k="auto"`` tries k = 2..max_k on a sample of :data:`AUTO_SAMPLE` persons and keeps the k
   with the highest Calinski-Harabasz index (the ratio of between-cluster to within-cluster
   dispersion, each divided by its degrees of freedom). On the back-test's planted groups it
   finds the planted k where the silhouette coefficient prefers fewer, merged clusters.
3. Each cluster is described by a depth-limited decision tree on the raw features (cluster vs
   the rest), turned into a segment rule (:mod:`segctl.ml.rules`). The rule's precision and
   recall against the cluster are measured on every person.
4. Each cluster gets its holdout conversion rate, lift over the base rate, and a suggested use
   (:func:`suggest`).
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl.errors import UsageError
from segctl.ml.features import ANY_EVENT
from segctl.timeutil import iso, parse_as_of

if TYPE_CHECKING:
    import numpy as np

    from segctl.ml.features import FeatureMatrix
    from segctl.ml.rules import Rule
    from segctl.project import Project

#: k-means and the trees are fitted on at most this many persons (assignment uses everyone).
FIT_SAMPLE = 100_000
#: k="auto": each candidate k is fitted and scored on this many persons.
AUTO_SAMPLE = 10_000
#: Persons are assigned to the nearest centre this many at a time.
PREDICT_ROWS = 100_000
#: Suggested use: a cluster converting at this multiple of the base rate or more is "upsell".
UPSELL_LIFT = 1.2


@dataclass
class Cluster:
    """One discovered cluster and the segment that describes it."""

    number: int  # 1 = the largest
    name: str  # segment name
    size: int
    share: float
    rule: Rule
    rule_text: str
    rule_size: int
    precision: float  # of the rule's members, the share in the cluster
    recall: float  # of the cluster, the share the rule selects
    conversion_rate: float | None
    lift: float | None
    rule_conversion_rate: float | None
    rule_lift: float | None
    use: str
    reason: str
    condition: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, float] = field(default_factory=dict)  # feature -> cluster median
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.number,
            "name": self.name,
            "size": self.size,
            "share": round(self.share, 6),
            "conversion_rate": _round(self.conversion_rate),
            "lift": _round(self.lift),
            "suggested_use": self.use,
            "reason": self.reason,
            "rule": self.rule_text,
            "rule_size": self.rule_size,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "rule_conversion_rate": _round(self.rule_conversion_rate),
            "rule_lift": _round(self.rule_lift),
            "condition": self.condition,
            "profile": self.profile,
            "file": self.file,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass
class Discovery:
    """What ``segctl discover`` found (see :func:`discover`)."""

    as_of: datetime
    train_as_of: datetime
    window: str
    conversion_event: str | None
    seed: int
    k: int
    k_scores: dict[int, float]  # k="auto": Calinski-Harabasz index per candidate k
    persons: int
    base_rate: float | None
    features: list[str]
    clusters: list[Cluster]
    labels: np.ndarray  # cluster number per person (1-based), aligned with person_ids
    person_ids: Any  # pyarrow array
    # phase -> wall seconds: features, scale, choose_k (k="auto" only), cluster, rules
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:

        return {
            "as_of": iso(self.as_of),
            "train_as_of": iso(self.train_as_of),
            "window": self.window,
            "conversion_event": self.conversion_event,
            "seed": self.seed,
            "k": self.k,
            "k_criterion": "calinski_harabasz" if self.k_scores else "given",
            "k_scores": {str(k): round(v, 3) for k, v in self.k_scores.items()},
            "persons": self.persons,
            "base_rate": _round(self.base_rate),
            "features": self.features,
            "clusters": [c.to_dict() for c in self.clusters],
            "seconds": {phase: round(s, 3) for phase, s in self.seconds.items()},
        }

    def segment_yaml(self, cluster: Cluster) -> str:
        """The segment file of one cluster."""
        import yaml

        lift = f"{cluster.lift:.2f}x" if cluster.lift is not None else "n/a"
        notes = [
            f"Discovered by `segctl discover` (seed {self.seed}) from features at "
            f"{iso(self.train_as_of)}: cluster {cluster.number} of {self.k}, {cluster.size} "
            f"persons ({cluster.share:.1%}).",
            f"Rule: {cluster.rule_text}",
            f"At that as_of the rule selects {cluster.rule_size} persons: precision "
            f"{cluster.precision:.1%}, recall {cluster.recall:.1%} against the cluster. "
            f"Conversion lift in the holdout ({self.window} after): {lift}.",
            f"Suggested use: {cluster.use} ({cluster.reason}).",
        ]
        header = "".join(
            textwrap.fill(note, width=98, initial_indent="# ", subsequent_indent="#   ") + "\n"
            for note in notes
        )
        document = {
            "name": cluster.name,
            "description": f"{cluster.use}: {cluster.reason}",
            "tags": ["discovered", cluster.use],
            "rule": cluster.condition,
        }
        return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)

    def write(self, folder: Path) -> list[Path]:
        """Write one segment file per cluster into ``folder`` (each whole or not at all: a
        half-written segment file would stop every command that loads the project)."""
        from segctl.atomic import replacing

        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for cluster in self.clusters:
            path = folder / f"{cluster.name}.yaml"
            with replacing(path) as partial:
                partial.write_text(self.segment_yaml(cluster), encoding="utf-8")
            cluster.file = str(path)
            written.append(path)
        return written

    def assignments(self) -> Any:
        """``person_id, cluster`` for every person (a polars DataFrame)."""
        import polars as pl

        return pl.DataFrame(
            {
                "person_id": pl.from_arrow(self.person_ids),
                "cluster": pl.Series("cluster", self.labels, dtype=pl.Int32),
            }
        )


def discover(
    project: Project,
    *,
    k: int | None = None,
    conversion_event: str | None = None,
    window: str = "30d",
    as_of: str | datetime | None = None,
    seed: int = 0,
    depth: int = 3,
    max_k: int = 8,
    prefix: str = "discovered",
) -> Discovery:
    """Cluster persons on behaviour and describe each cluster as a segment.

    Args:
        project: the project whose data to use.
        k: number of clusters; ``None`` chooses it (Calinski-Harabasz, k = 2..max_k).
        conversion_event: event whose occurrence in the holdout period is the conversion
            (default ``"*"``: any event, the persons who came back).
        window: the holdout period; features are computed at ``as_of - window``.
        as_of: end of the holdout period (default: now).
        seed: seeds sampling, k-means and the trees: same data and seed, same result.
        depth: maximum depth of each cluster's decision tree (rule length).
        max_k: largest k tried by ``k=None``.
        prefix: segment names are ``{prefix}_{n}``.

    >>> found = discover(project, conversion_event="purchase", seed=1)  # doctest: +SKIP
    >>> [c.name for c in found.clusters]  # doctest: +SKIP
    ['discovered_1', 'discovered_2', 'discovered_3']
    """
    from segctl.definitions.durations import parse_duration
    from segctl.errors import ValueProblem
    from segctl.ml import model_threads, require_sklearn

    require_sklearn("segctl discover")
    import numpy as np

    from segctl.ml.features import behaviour_features, robust_scale

    if k is not None and k < 2:
        raise UsageError("--k must be at least 2 (or auto)")
    if depth < 1 or depth > 6:
        raise UsageError("--depth must be between 1 and 6 (deeper rules are hard to read)")
    _check_name(prefix)
    try:
        holdout = parse_duration(window)
    except ValueProblem as exc:
        raise UsageError(f"--window: {exc}") from None
    end = parse_as_of(as_of, project.config.tz)
    start = end - holdout
    # Without a conversion event, coming back (any event in the holdout) is the conversion:
    # rates and lift are always reported; the suggested use is then judged on activity.
    event = conversion_event or ANY_EVENT
    if event != ANY_EVENT:
        _check_event(project, event, end)
    conversion = (event, end)
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[phase] = now - clock
        clock = now

    matrix = behaviour_features(project, start, conversion=conversion)
    lap("features")
    n = matrix.values.shape[0]
    if k is not None and n < k * 10:
        raise UsageError(f"only {n} persons at {start:%Y-%m-%d}: too few for {k} clusters")
    if n < 40:
        raise UsageError(f"only {n} persons at {start:%Y-%m-%d}: too few to cluster")
    scaled = robust_scale(matrix.values, matrix.specs)
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, size=min(n, FIT_SAMPLE), replace=False))
    lap("scale")
    scores: dict[int, float] = {}
    # One thread: the models see at most FIT_SAMPLE persons, where OpenMP's worker threads
    # cost more than they save (and far more when other processes busy the cores).
    with model_threads(1):
        if k is None:
            k, scores = choose_k(scaled, fit_rows, seed, max_k)
            lap("choose_k")
        labels = _kmeans(scaled, fit_rows, k, seed)
        lap("cluster")
        clusters = [
            _describe(matrix, labels, number, fit_rows, seed, depth, f"{prefix}_{number}", event)
            for number in range(1, k + 1)
        ]
        lap("rules")
    base_rate = float(matrix.converted.mean()) if matrix.converted is not None else None
    return Discovery(
        as_of=end,
        train_as_of=start,
        window=window,
        conversion_event=event,
        seed=seed,
        k=k,
        k_scores=scores,
        persons=n,
        base_rate=base_rate,
        features=matrix.names,
        clusters=clusters,
        labels=labels,
        person_ids=matrix.person_ids,
        seconds=seconds,
    )


def _check_name(prefix: str) -> None:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]*", prefix):
        raise UsageError(
            f"--prefix {prefix!r}: segment names are lower case letters, digits and _, "
            "starting with a letter"
        )


def _check_event(project: Project, event: str, as_of: datetime) -> None:
    """The conversion event must occur up to ``as_of``. One matching row answers that (the
    scan stops there); only a missing event costs the scan listing every name."""
    from sqlglot import exp

    from segctl.compiler import col, ident, literal
    from segctl.definitions.source import did_you_mean
    from segctl.ml.features import time_bounds

    project.schema  # noqa: B018 (registers the input views)
    until = exp.and_(*time_bounds(project, None, as_of))
    named = exp.EQ(this=col("event"), expression=literal(event))
    probe = exp.select(literal(1)).from_(ident("events")).where(exp.and_(named, until)).limit(1)
    query = exp.select(col("event")).distinct().from_(ident("events")).where(until)
    with project.engine.driver.plan_errors():
        if project.engine.driver.rows(probe.sql(dialect="duckdb")):
            return
        names = [str(r[0]) for r in project.engine.driver.rows(query.sql(dialect="duckdb"))]
    if event not in names:
        raise UsageError(
            f"--conversion-event: no event named '{event}' up to "
            f"{as_of:%Y-%m-%d}{did_you_mean(event, names)}"
        )


def choose_k(
    scaled: np.ndarray, fit_rows: np.ndarray, seed: int, max_k: int
) -> tuple[int, dict[int, float]]:
    """The k in 2..max_k with the highest Calinski-Harabasz index, k-means fitted and scored
    on AUTO_SAMPLE persons (ties: the smaller k)."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score

    sample = scaled[fit_rows[: min(len(fit_rows), AUTO_SAMPLE)]]
    scores: dict[int, float] = {}
    distinct = len(np.unique(sample, axis=0))
    for k in range(2, max(2, max_k) + 1):
        if k > distinct:
            break
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(calinski_harabasz_score(sample, labels))
    if not scores:
        raise UsageError("the persons' features are all alike: nothing to cluster")
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


def _kmeans(scaled: np.ndarray, fit_rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster numbers 1..k for every person, 1 being the largest cluster."""
    import numpy as np
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(scaled[fit_rows])
    # In slices: predict copies its input row-major, and a slice's copy is small.
    raw = np.concatenate(
        [model.predict(scaled[i : i + PREDICT_ROWS]) for i in range(0, len(scaled), PREDICT_ROWS)]
    )
    sizes = np.bincount(raw, minlength=k)
    # Largest first; equal sizes by the centre's coordinates, so numbering is deterministic.
    order = sorted(range(k), key=lambda c: (-sizes[c], tuple(model.cluster_centers_[c])))
    renumber = np.empty(k, dtype=np.int32)
    for number, c in enumerate(order, start=1):
        renumber[c] = number
    labels: np.ndarray = renumber[raw]
    return labels


def _describe(
    matrix: FeatureMatrix,
    labels: np.ndarray,
    number: int,
    fit_rows: np.ndarray,
    seed: int,
    depth: int,
    name: str,
    event: str,
) -> Cluster:
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier

    from segctl.ml import rules

    values = matrix.values
    inside = labels == number
    target = inside[fit_rows]
    leaf_size = max(5, len(fit_rows) // 500)
    tree = DecisionTreeClassifier(
        max_depth=depth, min_samples_leaf=leaf_size, class_weight="balanced", random_state=seed
    ).fit(values[fit_rows], target)
    selected = rules.best_leaves(tree.apply(values[fit_rows]), target)
    structure = tree.tree_
    thresholds = {
        node: rules.nice_threshold(
            values[:, int(structure.feature[node])],
            float(structure.threshold[node]),
            matrix.specs[int(structure.feature[node])].integer,
        )
        for node in range(structure.node_count)
        if structure.children_left[node] != -1
    }
    rule = rules.from_tree(structure, selected, thresholds)
    chosen = rules.mask(rule, values)
    size, rule_size = int(inside.sum()), int(chosen.sum())
    both = int((inside & chosen).sum())
    converted = matrix.converted
    rate = lift = rule_rate = rule_lift = None
    if converted is not None:
        base = float(converted.mean())
        rate = float(converted[inside].mean()) if size else 0.0
        rule_rate = float(converted[chosen].mean()) if rule_size else 0.0
        lift = rate / base if base else None
        rule_lift = rule_rate / base if base else None
    profile = {
        spec.name: float(np.median(values[inside, j]))
        for j, spec in enumerate(matrix.specs)
        if spec.kind in ("distinct_days", "recency", "tenure")
    }
    use, reason = suggest(matrix, inside, lift if event != ANY_EVENT else None)
    return Cluster(
        number=number,
        name=name,
        size=size,
        share=size / len(labels),
        rule=rule,
        rule_text=rules.describe(rule, matrix.specs),
        rule_size=rule_size,
        precision=both / rule_size if rule_size else 0.0,
        recall=both / size if size else 0.0,
        conversion_rate=rate,
        lift=lift,
        rule_conversion_rate=rule_rate,
        rule_lift=rule_lift,
        use=use,
        reason=reason,
        condition=rules.to_condition(rule, matrix.specs),
        profile=profile,
    )


def suggest(matrix: FeatureMatrix, inside: np.ndarray, lift: float | None) -> tuple[str, str]:
    """A suggested use for a cluster, and why.

    - **acquisition** when most of the cluster has never acted (activate them), or when it
      is active but converts below :data:`UPSELL_LIFT` x the base rate (win the first
      conversion);
    - **retention** when most of it acted before but not in the last 30 days;
    - **upsell** when it is active and converts at :data:`UPSELL_LIFT` x the base rate or
      more (without a conversion event: when it is at least as active as the top quarter).
    """
    import numpy as np

    from segctl.ml.specs import CAP_DAYS

    recency = matrix.column("days_since_last_event")[inside]
    if not len(recency):
        return "acquisition", "empty cluster"
    ever = float((recency < CAP_DAYS).mean())
    recent = float((recency < 30).mean())
    if ever < 0.5:
        return "acquisition", f"{1 - ever:.0%} have no events yet: activate them"
    if recent < 0.5:
        median = int(np.median(recency[recency < CAP_DAYS]))
        return (
            "retention",
            f"{ever:.0%} were active before but only {recent:.0%} in the last 30 days "
            f"(median {median} days since the last event): win them back",
        )
    if lift is not None:
        if lift >= UPSELL_LIFT:
            return "upsell", f"active and converting at {lift:.2f}x the base rate"
        return (
            "acquisition",
            f"active ({recent:.0%} in the last 30 days) but converting at only {lift:.2f}x "
            "the base rate: win the first conversion",
        )
    if "active_days_30d" in matrix.names:
        days = matrix.column("active_days_30d")
        top = float(np.percentile(days, 75))
        mine = float(np.median(days[inside]))
        if mine >= top:
            return "upsell", f"among the most active (median {mine:.0f} active days in 30)"
        return "acquisition", f"active but less than the top quarter ({mine:.0f} days in 30)"
    return "upsell", f"{recent:.0%} active in the last 30 days"


__all__ = ["Cluster", "Discovery", "choose_k", "discover", "suggest"]
