"""An explanation's history: the person's last transition, and what changed since.

With a state folder, the rule is re-evaluated at the as_of of the run that recorded the
person's last entry or exit and of the run before, and the conditions whose verdict differs
are listed (likewise between the last committed run and the as_of explained).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from segctl.explain.instrument import Subject, explain_many
from segctl.explain.result import Change, Explanation, SegmentExplanation, Since
from segctl.state import StateStore
from segctl.state.history import evaluated_runs, last_transition

#: Kinds that only combine other conditions: a change shows in their children.
BOOLEAN_KINDS = ("all", "any", "not")


def explain(
    subject: Subject,
    segment: str,
    person_id: str,
    moment: datetime,
    *,
    state_dir: Path,
    wait: float = 10.0,
) -> Explanation:
    """Explain one person's membership of ``segment`` at ``moment``, with their last
    transition when there is a state folder at ``state_dir``.

    See :meth:`segctl.Project.explain`.
    """
    subject.segment_names([segment])
    # As evaluate does, the persons data must be usable as a whole. The plan itself always
    # runs in the local DuckDB, even for a Spark project: it reads one person's rows.
    subject.engine.driver.check_persons()
    explanation = explain_many(subject, segment, [person_id], moment)[person_id]
    if not StateStore.exists(state_dir):
        return explanation
    subject.schema  # noqa: B018 - the input views must exist before the state is attached
    with StateStore.open(state_dir, con=subject.engine.driver.con, wait=wait) as store:
        facts = _history(store, segment, person_id, moment)
    if facts is None:
        return explanation
    transition, since = facts
    return replace(
        explanation,
        transition=_transition(subject, explanation, transition),
        since_last_run=_since(subject, explanation, since),
    )


@dataclass(frozen=True)
class _Facts:
    """What the state records about a person and a segment at one committed run."""

    run_id: int
    as_of: datetime
    kind: str  # the transition at that run: enter / exit (or "" for none)
    hash: str  # the segment's definition hash at that run
    first_run: bool
    previous: tuple[int, datetime, str] | None = None  # the run before: id, as_of, hash
    member: bool = False


def _history(
    store: StateStore, segment: str, person_id: str, moment: datetime
) -> tuple[_Facts | None, _Facts] | None:
    """The person's last transition in this segment (None if they never entered) and the
    last committed run that evaluated the segment, both at or before ``moment``; None when no
    run evaluated it by then. (An explanation at a past as_of compares with the run of that
    time, never with a later one.)"""
    runs = evaluated_runs(store, segment, moment)
    if not runs:
        return None
    ids = sorted(runs)
    last = last_transition(store, segment, person_id, ids[-1])

    def facts(run_id: int, kind: str, member: bool) -> _Facts:
        moment, digest, first = runs[run_id]
        earlier = [i for i in ids if i < run_id]
        previous = (earlier[-1], runs[earlier[-1]][0], runs[earlier[-1]][1]) if earlier else None
        return _Facts(run_id, moment, kind, digest, first, previous, member)

    member = last is not None and last[1] == "enter"
    transition = None
    if last is not None and last[0] in runs:
        run_id, kind = last
        transition = facts(run_id, kind, kind == "enter")
    return transition, facts(ids[-1], "", member)


def _changes(before: SegmentExplanation | None, after: SegmentExplanation | None) -> list[Change]:
    """Leaf conditions whose verdict differs (both explanations come from one definition)."""
    if before is None or after is None:
        return []
    changes = []
    for (owner, old), (_, new) in zip(before.walk(), after.walk(), strict=True):
        if old.kind in BOOLEAN_KINDS or old.kind == "subscription" or old.verdict == new.verdict:
            continue
        changes.append(
            Change(
                owner,
                new.condition,
                new.location,
                new.needs,
                old.value,
                new.value,
                old.verdict,
                new.verdict,
            )
        )
    return changes


def _at(subject: Subject, explanation: Explanation, moment: datetime) -> Explanation:
    if moment == explanation.as_of:
        return explanation
    return explain_many(subject, explanation.name, [explanation.person_id], moment)[
        explanation.person_id
    ]


def _transition(subject: Subject, now: Explanation, facts: _Facts | None) -> Since | None:
    if facts is None:
        return None
    kind = "entered" if facts.kind == "enter" else "exited"
    current = subject.definitions.segments[now.name].source_hash
    notes = []
    if facts.first_run or facts.previous is None:
        notes.append(
            f"run {facts.run_id} was the segment's first run: everyone who matched entered"
        )
    elif facts.previous[2] != facts.hash:
        notes.append(f"the segment's definition changed in run {facts.run_id}")
    if current != facts.hash:
        notes.append(
            f"the definition has changed since run {facts.run_id}; its conditions are "
            "re-evaluated with the current one"
        )
    after = _at(subject, now, facts.as_of)
    if after.member != (facts.kind == "enter"):
        notes.append(
            f"re-evaluated at run {facts.run_id}'s as_of with the data as it is now, the person "
            f"is {'' if after.member else 'not '}a member: the data or the definition has "
            "changed since"
        )
    if facts.previous is None or facts.first_run:
        return Since(kind, facts.run_id, facts.as_of, notes=tuple(notes))
    before = _at(subject, now, facts.previous[1])
    return Since(
        kind,
        facts.run_id,
        facts.as_of,
        facts.previous[0],
        facts.previous[1],
        changes=tuple(_changes(before.segment, after.segment)),
        notes=tuple(notes),
    )


def _since(subject: Subject, now: Explanation, facts: _Facts) -> Since | None:
    if facts.as_of == now.as_of:
        return None
    then = _at(subject, now, facts.as_of)
    return Since(
        "since",
        facts.run_id,
        facts.as_of,
        member_then=facts.member,
        member_now=now.member,
        changes=tuple(_changes(then.segment, now.segment)),
    )
