"""The one dispatch over condition kinds.

Every walk over a segment's conditions (the compiler, explain's description and its
instrumented plan) subclasses :class:`ConditionVisitor` and writes one ``visit_<kind>``
method per kind of :data:`KINDS`; :meth:`ConditionVisitor.visit` picks it, and a kind a
visitor does not handle raises instead of passing silently (ibis' ``visit_node``). A new
condition kind is added here once, and every visitor that lacks it fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, cast

from segctl.definitions.model import (
    All,
    AnyOf,
    AtLeast,
    Condition,
    EventCondition,
    FeatureCondition,
    ListCondition,
    Not,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    SubscriptionCondition,
)

#: Each condition type and its kind, the name its visitor method and explain use.
KINDS: dict[type[Condition], str] = {
    All: "all",
    AnyOf: "any",
    Not: "not",
    AtLeast: "at_least",
    PropertyCondition: "property",
    EventCondition: "event",
    FeatureCondition: "feature",
    SubscriptionCondition: "subscription",
    SegmentCondition: "segment",
    SequenceCondition: "sequence",
    ListCondition: "list",
}

T = TypeVar("T")


def kind_of(condition: Condition) -> str:
    """``"event"`` for an EventCondition...; a type not in :data:`KINDS` raises."""
    kind = KINDS.get(type(condition))
    if kind is None:
        raise TypeError(f"unknown condition {condition!r}")
    return kind


class ConditionVisitor(Generic[T]):
    """Dispatches a condition to ``self.visit_<kind>(condition)``."""

    def visit(self, condition: Condition) -> T:
        kind = kind_of(condition)
        method = getattr(self, f"visit_{kind}", None)
        if method is None:
            name = type(self).__name__
            raise TypeError(f"{name} has no visit_{kind}: {kind} conditions unhandled")
        return cast(Callable[[Condition], T], method)(condition)
