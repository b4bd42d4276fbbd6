"""What ``segctl explain`` returns: a tree of conditions with values and verdicts, the last
transition, and their renderings (text for people, a JSON document, table rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segctl.explain.text import plain, show
from segctl.timeutil import iso


@dataclass(frozen=True)
class Node:
    """One condition with the value measured for the person and its verdict."""

    kind: str  # all, any, not, property, event, feature, subscription, field, segment, ...
    condition: str  # what is measured, e.g. "video_rendered in the last 30d, count"
    verdict: bool
    location: str  # file:line:col of the condition
    value: Any = None  # the measured value (None: no value, or a kind without one)
    needs: str | None = None  # the comparator, e.g. ">= 10"
    children: tuple[Node, ...] = ()
    segment: SegmentExplanation | None = None  # a referenced segment, explained

    @property
    def has_value(self) -> bool:
        return self.needs is not None

    def line(self, as_of: datetime | None = None) -> str:
        """``video_rendered in the last 30d, count: 7, needs >= 10 -> FALSE``."""
        verdict = "TRUE" if self.verdict else "FALSE"
        if not self.has_value:
            return f"{self.condition} -> {verdict}"
        return f"{self.condition}: {show(self.value, as_of)}, needs {self.needs} -> {verdict}"

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": self.kind,
            "condition": self.condition,
            "verdict": self.verdict,
            "location": self.location,
        }
        if self.has_value:
            document["value"] = plain(self.value)
            document["needs"] = self.needs
        if self.children:
            document["children"] = [c.to_dict() for c in self.children]
        if self.segment is not None:
            document["segment"] = self.segment.to_dict()
        return document

    def walk(self, owner: str) -> list[tuple[str, Node]]:
        """Every node below and including this one, with the segment it belongs to."""
        out = [(owner, self)]
        for child in self.children:
            out.extend(child.walk(owner))
        if self.segment is not None:
            out.extend(self.segment.walk())
        return out


@dataclass(frozen=True)
class SegmentExplanation:
    """A segment's rule and exclusions for one person; ``member`` is what evaluate computes."""

    name: str
    file: str
    member: bool
    rule: Node
    exclude: tuple[Node, ...] = ()

    @property
    def excluded(self) -> bool:
        return any(n.verdict for n in self.exclude)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "member": self.member,
            "rule": self.rule.to_dict(),
            "excluded": self.excluded,
            "exclude": [n.to_dict() for n in self.exclude],
        }

    def walk(self) -> list[tuple[str, Node]]:
        out = self.rule.walk(self.name)
        for node in self.exclude:
            out.extend(node.walk(self.name))
        return out


@dataclass(frozen=True)
class Change:
    """A condition whose verdict differs between two as_of times."""

    segment: str
    condition: str
    location: str
    needs: str | None
    before: Any
    after: Any
    was: bool
    now: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "condition": self.condition,
            "location": self.location,
            "needs": self.needs,
            "before": plain(self.before),
            "after": plain(self.after),
            "was": self.was,
            "now": self.now,
        }

    def line(self) -> str:
        verdicts = f"{'TRUE' if self.was else 'FALSE'} -> {'TRUE' if self.now else 'FALSE'}"
        if self.needs is None:
            return f"{self.segment}: {self.condition}: {verdicts}"
        values = f"{show(self.before)} -> {show(self.after)}"
        return f"{self.segment}: {self.condition}: {values}, needs {self.needs}: {verdicts}"


@dataclass(frozen=True)
class Since:
    """Membership at a committed run against a later (re-evaluated) moment, and what changed.

    For the last transition: ``run_id`` recorded the entry or exit, ``from_run`` is the run
    before it (None in the segment's first run, where everyone who matched entered).
    """

    kind: str  # "entered", "exited" (a transition) or "since" (the last run vs as_of)
    run_id: int
    as_of: datetime
    from_run: int | None = None
    from_as_of: datetime | None = None
    member_then: bool | None = None
    member_now: bool | None = None
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "run_id": self.run_id,
            "as_of": iso(self.as_of),
            "changes": [c.to_dict() for c in self.changes],
            "notes": list(self.notes),
        }
        if self.kind == "since":
            document["member_then"] = self.member_then
            document["member_now"] = self.member_now
        else:
            document["kind"] = self.kind
            document["from_run"] = self.from_run
            document["from_as_of"] = iso(self.from_as_of) if self.from_as_of else None
        return document

    def lines(self) -> list[str]:
        if self.kind == "since":
            then = "a member" if self.member_then else "not a member"
            now = "a member" if self.member_now else "not a member"
            head = f"since run {self.run_id} ({iso(self.as_of)}): {then} then, {now} now"
        else:
            head = f"last transition: {self.kind} at run {self.run_id} ({iso(self.as_of)})"
            if self.from_run is not None and self.from_as_of is not None:
                head += f"; compared with run {self.from_run} ({iso(self.from_as_of)})"
        out = [head + (":" if self.changes else "")]
        out += [f"  {c.line()}" for c in self.changes]
        if not self.changes and (self.kind == "since" or self.from_run is not None):
            out.append("  no condition changed its verdict")
        out += [f"  note: {n}" for n in self.notes]
        return out


@dataclass(frozen=True)
class Explanation:
    """Why ``person_id`` is or is not a member of ``name`` at ``as_of``."""

    name: str
    person_id: str
    as_of: datetime
    segment: SegmentExplanation | None  # None: the person was not evaluated (created later)
    notes: tuple[str, ...] = ()
    transition: Since | None = None
    since_last_run: Since | None = None
    #: Why the person was not evaluated (created after as_of, no persons row in force).
    unevaluated: str = ""

    @property
    def member(self) -> bool:
        return self.segment is not None and self.segment.member

    @property
    def evaluated(self) -> bool:
        return self.segment is not None

    def to_dict(self) -> dict[str, Any]:
        """The ``explain --format json`` document."""
        segment = self.segment
        return {
            "segment": self.name,
            "person_id": self.person_id,
            "as_of": iso(self.as_of),
            "evaluated": self.evaluated,
            "member": self.member,
            "file": segment.file if segment else None,
            "rule": segment.rule.to_dict() if segment else None,
            "excluded": segment.excluded if segment else None,
            "exclude": [n.to_dict() for n in segment.exclude] if segment else [],
            "last_transition": self.transition.to_dict() if self.transition else None,
            "since_last_run": self.since_last_run.to_dict() if self.since_last_run else None,
            "notes": list(self.notes),
        }

    def rows(self) -> list[tuple[str, int, str, Any, str | None, bool, str | None, str]]:
        """One row per condition: (segment, depth, condition, value, needs, verdict, location,
        part), ``part`` saying whether the condition is of a segment's ``rule`` or one of its
        ``exclude`` entries; last, the verdict itself (part ``member``)."""
        out: list[tuple[str, int, str, Any, str | None, bool, str | None, str]] = []

        def visit(owner: str, node: Node, depth: int, part: str) -> None:
            value = plain(node.value) if node.has_value else None
            row = (owner, depth, node.condition, value, node.needs, node.verdict, node.location)
            out.append((*row, part))
            for child in node.children:
                visit(owner, child, depth + 1, part)
            if node.segment is not None:
                visit_segment(node.segment, depth + 1)

        def visit_segment(segment: SegmentExplanation, depth: int) -> None:
            visit(segment.name, segment.rule, depth, "rule")
            for node in segment.exclude:
                visit(segment.name, node, depth, "exclude")

        if self.segment is not None:
            visit_segment(self.segment, 0)
        verdict = (
            "member" if self.evaluated else f"not evaluated ({self.unevaluated or 'at this as_of'})"
        )
        file = self.segment.file if self.segment else None
        out.append((self.name, 0, verdict, None, None, self.member, file, "member"))
        return out

    def render(self) -> str:
        """The explanation as an indented tree, for people."""
        verdict = "A MEMBER" if self.member else "NOT A MEMBER"
        lines = [f"{self.name} for {self.person_id} as of {iso(self.as_of)}: {verdict}"]
        if self.segment is not None:
            lines += _segment_lines(self.segment, "", self.as_of)
        lines += [f"note: {n}" for n in self.notes]
        for history in (self.transition, self.since_last_run):
            if history is not None:
                lines += history.lines()
        return "\n".join(lines)


def _segment_lines(segment: SegmentExplanation, indent: str, as_of: datetime) -> list[str]:
    lines = [f"{indent}rule -> {'TRUE' if segment.rule.verdict else 'FALSE'}"]
    lines += _tree([segment.rule], indent, as_of)
    if segment.exclude:
        excluded = "EXCLUDED" if segment.excluded else "not excluded"
        lines.append(f"{indent}exclude (any of) -> {excluded}")
        lines += _tree(list(segment.exclude), indent, as_of)
    return lines


def _tree(nodes: list[Node], indent: str, as_of: datetime) -> list[str]:
    lines: list[str] = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        lines.append(f"{indent}{'└─ ' if last else '├─ '}{node.line(as_of)}")
        deeper = indent + ("   " if last else "│  ")
        lines += _tree(list(node.children), deeper, as_of)
        if node.segment is not None:
            lines += _segment_lines(node.segment, deeper, as_of)
    return lines
