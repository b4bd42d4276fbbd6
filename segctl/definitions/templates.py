"""The built-in template library (SPEC 2.5).

A template is a function of a few parameters that returns a rule in the segment language itself
(plain YAML data), so ``segctl templates show NAME`` can print exactly what a template means and
the expanded rule is checked like any hand-written one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from segctl.definitions.durations import MAX_DURATION, format_duration, in_hours, parse_duration
from segctl.errors import ValueProblem


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = None  # None: required
    kind: str = "str"  # str, int, number, duration

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    params: tuple[Param, ...]
    build: Callable[..., dict[str, Any]]

    def signature(self) -> str:
        parts = [p.name if p.required else f"{p.name}={_shown(p.default)}" for p in self.params]
        return f"{self.name}({', '.join(parts)})"

    def expand(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The rule for these parameters; raises ValueProblem naming what is wrong."""
        params = dict(params or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(params) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1, cutoff=0.6)
            guess = f"did you mean '{close[0]}'? " if close else ""
            raise ValueProblem(
                f"template '{self.name}' has no parameter '{unknown[0]}' "
                f"({guess}parameters: {allowed})"
            )
        values: dict[str, Any] = {}
        for param in self.params:
            if param.name not in params:
                if param.required:
                    raise ValueProblem(
                        f"template '{self.name}' needs parameter '{param.name}' "
                        f"({self.signature()})"
                    )
                values[param.name] = param.default
                continue
            values[param.name] = _check(self.name, param, params[param.name])
        return self.build(**values)


def _shown(value: Any) -> str:
    """A default as it is written in YAML (``false``, not ``False``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check(template: str, param: Param, value: Any) -> Any:
    where = f"template '{template}' parameter '{param.name}'"
    if param.kind == "duration":
        try:
            parse_duration(value)
        except ValueProblem as exc:
            raise ValueProblem(f"{where}: {exc}") from None
    elif param.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueProblem(f"{where}: expected a whole number, got {value!r}")
    elif param.kind == "number" and (
        isinstance(value, bool) or not isinstance(value, (int, float))
    ):
        raise ValueProblem(f"{where}: expected a number, got {value!r}")
    elif param.kind == "str" and not isinstance(value, (str, list)):
        raise ValueProblem(f"{where}: expected text, got {value!r}")
    elif param.kind == "bool" and not isinstance(value, bool):
        raise ValueProblem(f"{where}: expected true or false, got {value!r}")
    return value


def _calendar(calendar: bool) -> dict[str, Any]:
    return {"calendar": True} if calendar else {}


def _whole_days(template: str, calendar: bool, **durations: str) -> None:
    """Calendar windows count whole days: one message for the template, not one per window."""
    for name, value in durations.items():
        if calendar and in_hours(value):
            raise ValueProblem(
                f"template '{template}' with calendar: true counts whole days: '{name}' takes "
                f"d, w or y (like 7d), not {value}"
            )


def _stopped(event: Any, recent: str, before: str, calendar: bool) -> dict[str, Any]:
    """Performed in (as_of - before, as_of - recent], not in the last ``recent``."""
    _whole_days("stopped", calendar, recent=recent, before=before)
    if parse_duration(before) <= parse_duration(recent):
        raise ValueProblem(
            f"template 'stopped': 'before' ({before}) must be longer than 'recent' ({recent}): "
            "the person performed EVENT between BEFORE and RECENT ago"
        )
    return {
        "all": [
            {"event": event, "between": [before, recent], **_calendar(calendar),
             "count": {"gte": 1}},
            {"event": event, "within": recent, **_calendar(calendar), "count": {"eq": 0}},
        ]
    }  # fmt: skip


#: The far bound of a calendar window meaning "ever before": the longest duration (500y).
EVER = format_duration(MAX_DURATION)


def _restarted(event: Any, recent: str, gap: str, calendar: bool) -> dict[str, Any]:
    """Performed in the last ``recent``, not in the ``gap`` before it, and at some time
    before that gap (so a first-timer has not restarted)."""
    _whole_days("restarted", calendar, recent=recent, gap=gap)
    earlier = format_duration(parse_duration(recent) + parse_duration(gap))
    before_gap: dict[str, Any] = (
        # Calendar: before the gap's first local day. A calendar window has a far bound: the
        # longest duration, 500 years back (1526 from 2026), before any event a tool records.
        {"event": event, "between": [EVER, earlier], "calendar": True, "count": {"gte": 1}}
        if calendar
        else {"event": event, "first_seen": {"older_than": earlier}}
    )
    gap_empty: list[dict[str, Any]] = (
        [{"event": event, "between": [earlier, recent], **_calendar(calendar),
          "count": {"eq": 0}}]
        if parse_duration(gap) > timedelta(0)
        else []  # gap: 0d, no time between: active recently and at some time before
    )  # fmt: skip
    return {
        "all": [
            {"event": event, "within": recent, **_calendar(calendar), "count": {"gte": 1}},
            *gap_empty,
            before_gap,
        ]
    }  # fmt: skip


def _days(n: int) -> str:
    return f"{n}d"


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in [
        Template(
            "power_users",
            "Persons who performed EVENT at least MIN_COUNT times within WINDOW.",
            (Param("event"), Param("min_count", 10, "int"), Param("window", "30d", "duration")),
            lambda event, min_count, window: {
                "event": event, "within": window, "count": {"gte": min_count},
            },
        ),
        Template(
            "churn_risk",
            "Persons with no activity at all in the last DAYS days.",
            (Param("days", 30, "int"),),
            lambda days: {"event": "*", "within": _days(days), "count": {"eq": 0}},
        ),
        Template(
            "trial_to_paid",
            "Persons whose current subscription became active within WINDOW.",
            (Param("window", "7d", "duration"),),
            lambda window: {
                "subscription": {"status": {"eq": "active"}, "updated_at": {"within": window}},
            },
        ),
        Template(
            "free_trial",
            "Persons whose current subscription is a trial.",
            (),
            lambda: {"subscription": {"status": {"eq": "trialing"}}},
        ),
        Template(
            "high_ltv",
            "Persons whose EVENT values of OF add up to at least AMOUNT (all time).",
            (Param("amount", 500, "number"), Param("event", "purchase"), Param("of", "amount")),
            lambda amount, event, of: {"event": event, "sum": {"of": of, "gte": amount}},
        ),
        Template(
            "new_users",
            "Persons created in the last DAYS days.",
            (Param("days", 7, "int"),),
            lambda days: {"property": "created_at", "within": _days(days)},
        ),
        Template(
            "active_users",
            "Persons with any activity in the last DAYS days.",
            (Param("days", 7, "int"),),
            lambda days: {"event": "*", "within": _days(days), "count": {"gte": 1}},
        ),
        Template(
            "inactive_users",
            "Persons last active between TO_DAYS and FROM_DAYS days ago.",
            (Param("from_days", 7, "int"), Param("to_days", 30, "int")),
            lambda from_days, to_days: {
                "event": "*",
                "last_seen": {"older_than": _days(from_days), "within": _days(to_days)},
            },
        ),
        Template(
            "churned_users",
            "Persons who were active once but not in the last DAYS days.",
            (Param("days", 30, "int"),),
            lambda days: {"event": "*", "last_seen": {"older_than": _days(days)}},
        ),
        Template(
            "plan",
            "Persons whose `plan` property is PLAN.",
            (Param("plan"),),
            lambda plan: {"property": "plan", "eq": plan},
        ),
        Template(
            "casual_users",
            "Persons who performed EVENT at least once but fewer than MAX_COUNT times "
            "within WINDOW.",
            (Param("event"), Param("max_count", 10, "int"), Param("window", "30d", "duration")),
            lambda event, max_count, window: {
                "event": event, "within": window, "count": {"gte": 1, "lt": max_count},
            },
        ),
        Template(
            "streak",
            "Persons with EVENT on DAYS or more consecutive days up to today (or yesterday).",
            (Param("days", 7, "int"), Param("event", "*")),
            lambda days, event: {"event": event, "streak": {"gte": days}},
        ),
        Template(
            "focus",
            "Persons for whom at least SHARE of their last LAST EVENT events have "
            "PROPERTY = VALUE.",
            (
                Param("event"), Param("property"), Param("value", kind="any"),
                Param("share", 0.6, "number"), Param("last", 100, "int"),
            ),
            lambda event, property, value, share, last: {
                "event": event, "last": last,
                "share": {"where": {property: {"eq": value}}, "gte": share},
            },
        ),
        Template(
            "stopped",
            "Persons who performed EVENT between BEFORE and RECENT ago but not in the last "
            "RECENT (CALENDAR: whole local days).",
            (
                Param("event"), Param("recent", "7d", "duration"),
                Param("before", "30d", "duration"), Param("calendar", False, "bool"),
            ),
            _stopped,
        ),
        Template(
            "restarted",
            "Persons who performed EVENT in the last RECENT, not in the GAP before that, and "
            "at some time before the gap (first-timers excluded; CALENDAR: whole local days).",
            (
                Param("event"), Param("recent", "7d", "duration"),
                Param("gap", "30d", "duration"), Param("calendar", False, "bool"),
            ),
            _restarted,
        ),
    ]
}  # fmt: skip


def template_names() -> list[str]:
    return sorted(TEMPLATES)
