"""A shallow decision tree turned into a segment rule that a person can read.

The tree separates one group of persons (a cluster) from the others. Its leaves are sorted by
precision and the prefix with the best F1 is kept (the optimal union of leaves for F1); the
tree's splits then collapse into the smallest nested ``all``/``any`` of splits that selects
those leaves. Every split is a :class:`Split` on a :class:`~segctl.ml.features.FeatureSpec`, so
the same rule can be applied to the feature matrix (:func:`mask`), written as a segment
condition (:func:`to_condition`), and read (:func:`describe`): all three select the same
persons. Thresholds are moved to the roundest number that still falls between the same two
observed values, which changes nobody's side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np

    from segctl.ml.specs import FeatureSpec


@dataclass(frozen=True)
class Split:
    """``feature > threshold`` (``above``) or ``feature <= threshold``."""

    feature: int
    above: bool
    threshold: float


@dataclass(frozen=True)
class Node:
    """``all`` (``op == "all"``) or ``any`` of several rules."""

    op: str
    items: tuple[Rule, ...]


Rule: TypeAlias = bool | Split | Node


def conjoin(op: str, *items: Rule) -> Rule:
    """``all``/``any`` of items, simplified: TRUE/FALSE absorbed, nested same ops flattened."""
    identity, absorbing = (True, False) if op == "all" else (False, True)
    flat: list[Rule] = []
    for item in items:
        if item is absorbing:
            return absorbing
        if item is identity:
            continue
        if isinstance(item, Node) and item.op == op:
            flat.extend(item.items)
        else:
            flat.append(item)
    if not flat:
        return identity
    return flat[0] if len(flat) == 1 else Node(op, tuple(flat))


def from_tree(tree: Any, selected: set[int], thresholds: dict[int, float]) -> Rule:
    """The region of a fitted sklearn tree covered by the ``selected`` leaves.

    ``thresholds`` maps an internal node to the threshold to write (see :func:`nice_threshold`).
    """

    def region(node: int) -> Rule:
        left, right = int(tree.children_left[node]), int(tree.children_right[node])
        if left == -1:
            return node in selected
        low, high = region(left), region(right)
        if low == high and isinstance(low, bool):
            return low
        feature, t = int(tree.feature[node]), thresholds[node]
        at_most, above = Split(feature, False, t), Split(feature, True, t)
        # (x <= t or (x > t and H)) is (x <= t or H); likewise with the sides swapped.
        if low is True:
            return conjoin("any", at_most, high)
        if high is True:
            return conjoin("any", low, above)
        return conjoin("any", conjoin("all", at_most, low), conjoin("all", above, high))

    return region(0)


def best_leaves(leaf_of: np.ndarray, target: np.ndarray) -> set[int]:
    """The leaves whose union has the best F1 for ``target``: a prefix of the leaves in
    decreasing precision (ties: more positives first, then the leaf id)."""
    import numpy as np

    leaves, inverse = np.unique(leaf_of, return_inverse=True)
    positives = np.bincount(inverse, weights=target.astype(np.float64), minlength=len(leaves))
    sizes = np.bincount(inverse, minlength=len(leaves)).astype(np.float64)
    order = sorted(
        range(len(leaves)), key=lambda i: (-positives[i] / sizes[i], -positives[i], leaves[i])
    )
    total = float(target.sum())
    best, best_f1, hits, size = 1, -1.0, 0.0, 0.0
    for rank, i in enumerate(order, start=1):
        hits += positives[i]
        size += sizes[i]
        f1 = 2 * hits / (size + total) if size + total else 0.0
        if f1 > best_f1:
            best, best_f1 = rank, f1
    return {int(leaves[i]) for i in order[:best]}


def nice_threshold(column: np.ndarray, t: float, integer: bool) -> float:
    """The roundest number in [a, b), where a is the largest value <= t and b the smallest
    value > t in ``column``: the split puts every person on the same side as t does."""
    import numpy as np

    if integer:
        return float(math.floor(t))
    below = column <= t
    if below.all() or not below.any():
        return t
    # max/min over the sides without copying them out (the column has every person)
    a = float(np.max(column, where=below, initial=-np.inf))
    b = float(np.min(column, where=~below, initial=np.inf))
    magnitude = max(abs(a), abs(b), 1e-12)
    step = 10.0 ** math.ceil(math.log10(magnitude))
    for _ in range(40):
        for factor in (1.0, 0.5):
            candidate = math.ceil(a / (step * factor)) * step * factor
            candidate = float(f"{candidate:.12g}")
            if a <= candidate < b:
                return candidate
        step /= 10
    return a


def mask(rule: Rule, values: np.ndarray) -> np.ndarray:
    """Which rows of the feature matrix the rule selects."""
    import numpy as np

    if isinstance(rule, bool):
        return np.full(values.shape[0], rule)
    if isinstance(rule, Split):
        column = values[:, rule.feature]
        return column > rule.threshold if rule.above else column <= rule.threshold
    parts = [mask(item, values) for item in rule.items]
    combine = np.logical_and if rule.op == "all" else np.logical_or
    result = parts[0]
    for part in parts[1:]:
        result = combine(result, part)
    return result


def to_condition(rule: Rule, specs: list[FeatureSpec]) -> dict[str, Any]:
    """The rule as a segment condition (YAML data)."""
    from segctl.ml.specs import EVERYONE, NO_ONE

    if isinstance(rule, bool):
        return EVERYONE if rule else NO_ONE
    if isinstance(rule, Split):
        spec = specs[rule.feature]
        return spec.above(rule.threshold) if rule.above else spec.at_most(rule.threshold)
    assert isinstance(rule, Node)
    return {rule.op: [to_condition(item, specs) for item in rule.items]}


def describe(rule: Rule, specs: list[FeatureSpec], top: bool = True) -> str:
    """One line: ``video_rendered_30d >= 4 and (country = DE or streak_days >= 3)``."""
    if isinstance(rule, bool):
        return "everyone" if rule else "no one"
    if isinstance(rule, Split):
        return specs[rule.feature].describe(rule.above, rule.threshold)
    text = f" {'and' if rule.op == 'all' else 'or'} ".join(
        describe(item, specs, top=False) for item in rule.items
    )
    return text if top else f"({text})"


def splits(rule: Rule) -> list[Split]:
    """Every split of a rule, in order."""
    if isinstance(rule, bool):
        return []
    if isinstance(rule, Split):
        return [rule]
    return [s for item in rule.items for s in splits(item)]
