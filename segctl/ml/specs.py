"""A behavioural feature and its meaning in the segment language (:class:`FeatureSpec`).

Every feature knows how to say "value <= t" and "value > t" as a segment condition that
evaluates to exactly the same persons; :mod:`segctl.ml.rules` builds segment files from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Day spans (recency, tenure) are capped here; persons with no value get the cap.
CAP_DAYS = 730

#: Conditions TRUE for everyone and for no one (a count is never below 0).
EVERYONE: dict[str, Any] = {"event": "*", "count": {"gte": 0}}
NO_ONE: dict[str, Any] = {"not": EVERYONE}

#: Every kind of feature (see FeatureSpec).
KINDS = (
    "count",
    "distinct_days",
    "streak",
    "sum",
    "recency",
    "tenure",
    "property",
    "subscription",
    "mrr",
)
#: Kinds whose value is a whole number (a threshold t means floor(t)).
INTEGER_KINDS = ("count", "distinct_days", "streak", "recency", "tenure")
#: Kinds whose value is 0 or 1.
BINARY_KINDS = ("property", "subscription")


@dataclass(frozen=True)
class FeatureSpec:
    """One behavioural feature and its meaning in the segment language.

    ``kind`` is one of count, distinct_days, streak, sum (event measures over ``event`` in the
    last ``window`` days, of ``column`` for sums), recency (days since the last event), tenure
    (days since ``created_at``), property / subscription (1 when ``column`` equals ``value``)
    and mrr (the current subscription's mrr, 0 without one).
    """

    name: str
    kind: str
    event: str | None = None
    window: int | None = None
    column: str | None = None
    value: str | bool | None = None

    @property
    def binary(self) -> bool:
        return self.kind in BINARY_KINDS

    @property
    def integer(self) -> bool:
        return self.kind in INTEGER_KINDS

    def _event(self, **measure: Any) -> dict[str, Any]:
        condition: dict[str, Any] = {"event": self.event}
        if self.window is not None:
            condition["within"] = f"{self.window}d"
        condition.update(measure)
        return condition

    def _bounds(self) -> tuple[float, float] | None:
        """(lowest, highest) value of a bounded kind: 0/1 for binary ones, 0/CAP_DAYS for
        day spans; thresholds outside select everyone or no one."""
        if self.binary:
            return (0.0, 1.0)
        if self.kind in ("recency", "tenure"):
            return (0.0, float(CAP_DAYS))
        return None

    def at_most(self, t: float) -> dict[str, Any]:
        """A segment condition TRUE exactly for the persons whose value is <= t."""
        k = math.floor(t)
        bounds = self._bounds()
        if bounds is not None and t < bounds[0]:
            return NO_ONE
        if bounds is not None and t >= bounds[1]:
            return EVERYONE
        if self.kind in ("count", "distinct_days", "streak"):
            # These are never negative, so "<= 0" reads better as "= 0".
            return self._event(**{self.kind: {"eq": 0} if k == 0 else {"lte": k}})
        if self.kind == "sum":
            return self._event(sum={"of": self.column, "lte": _number(t)})
        if self.kind == "recency":
            # floor(days) <= k  <=>  as_of - last_seen < k+1 days  <=>  within (k+1)d
            return {"event": "*", "last_seen": {"within": f"{k + 1}d"}}
        if self.kind == "tenure":
            return {"property": "created_at", "within": f"{k + 1}d"}
        if self.kind in BINARY_KINDS:
            return {"not": self.above(t)}
        if self.kind == "mrr":
            below: dict[str, Any] = {"subscription": {"mrr": {"lte": _number(t)}}}
            if t < 0:
                return below
            # Persons without a subscription (or without an mrr) count as 0.
            return {"any": [below, {"not": {"subscription": {"mrr": {"is_set": True}}}}]}
        raise ValueError(f"unknown feature kind {self.kind}")  # pragma: no cover

    def above(self, t: float) -> dict[str, Any]:
        """A segment condition TRUE exactly for the persons whose value is > t."""
        k = math.floor(t)
        bounds = self._bounds()
        if bounds is not None and t < bounds[0]:
            return EVERYONE
        if bounds is not None and t >= bounds[1]:
            return NO_ONE
        if self.kind in ("count", "distinct_days", "streak"):
            return self._event(**{self.kind: {"gte": k + 1}})
        if self.kind == "sum":
            return self._event(sum={"of": self.column, "gt": _number(t)})
        if self.kind == "property":
            return {"property": self.column, "eq": self.value}
        if self.kind == "subscription":
            assert self.column is not None
            return {"subscription": {self.column: {"eq": self.value}}}
        if self.kind == "mrr" and t >= 0:
            return {"subscription": {"mrr": {"gt": _number(t)}}}
        # recency, tenure and negative mrr thresholds: the exact complement.
        return {"not": self.at_most(t)}

    def describe(self, above: bool, t: float) -> str:
        """``video_rendered_30d >= 4``, ``country = DE``: one split, for people."""
        if self.binary:
            column = f"subscription.{self.column}" if self.kind == "subscription" else self.column
            return f"{column} {'=' if above else '!='} {text(self.value)}"
        if self.integer:
            k = math.floor(t)
            if above:
                return f"{self.name} >= {k + 1}"
            return f"{self.name} = 0" if k == 0 else f"{self.name} <= {k}"
        return f"{self.name} {'>' if above else '<='} {_number(t)}"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def text(value: Any) -> str:
    """A value as a segment file and a rule read it: ``true``, ``DE``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
