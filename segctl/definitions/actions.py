"""``on_enter``, ``on_exit`` and ``audiences`` of a segment file, checked against the
destinations of segctl.yaml (SPEC section 6)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl.definitions.durations import parse_duration
from segctl.definitions.source import (
    Pos,
    Problems,
    YList,
    YMap,
    did_you_mean,
    position_of,
    valid_keys,
)
from segctl.errors import ValueProblem

if TYPE_CHECKING:
    from segctl.definitions.destinations import Destination

ACTIONS: dict[str, dict[str, Any]] = {
    # kind: destination type (None: local), required keys, optional keys
    "webhook": {
        "type": "webhook",
        "required": ("destination",),
        "optional": ("batch", "payload"),
    },
    "email": {
        "type": "resend",
        "required": ("destination", "template"),
        "optional": ("subject", "variables", "delay"),
    },
    "tag": {"type": None, "required": ("name",), "optional": ("value",)},
    "emit": {"type": None, "required": ("event",), "optional": ()},
    # your own function, called from the outbox (segctl.delivery.python)
    "python": {
        "type": None,
        "required": ("function",),
        "optional": ("batch", "max_retries", "backoff", "timeout"),
    },
}
AUDIENCE_ID_KEYS = {
    "meta": "audience_id",
    "google": "user_list_id",
    "tiktok": "audience_id",
    "resend": "segment_id",
    "file": "name",
}
AUDIENCE_MODES = ("sync", "mirror")


@dataclass(frozen=True)
class Action:
    """One action fired on a transition."""

    kind: str
    destination: str | None
    options: str  # the action's settings as canonical JSON (hashable, stored in the outbox)
    delay: timedelta | None = None
    pos: Pos = field(default=Pos(""), compare=False)

    @property
    def settings(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.options)
        return value


@dataclass(frozen=True)
class Audience:
    """A mirror of the segment on an ad platform or in Resend."""

    destination: str
    audience_id: str
    mode: str = "sync"  # sync and mirror: add, and remove what segctl added; add; remove
    pos: Pos = field(default=Pos(""), compare=False)

    @property
    def key(self) -> str:
        return f"{self.destination}:{self.audience_id}"


def _a(kind: str) -> str:
    """``kind`` with its article: "a webhook", "an email"."""
    return f"{'an' if kind[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {kind}"


def parse_actions(
    value: Any,
    pos: Pos,
    destinations: dict[str, Destination],
    problems: Problems,
    what: str,
    root: Path | None = None,
) -> tuple[Action, ...]:
    """The actions of ``on_enter`` or ``on_exit`` (``root``: the project folder, where a
    ``python`` action's module may live)."""
    if value is None:
        return ()
    if not isinstance(value, YList):
        problems.add(
            pos, f"'{what}' takes a list of actions, like - webhook: {{destination: crm_hook}}"
        )
        return ()
    actions = []
    for i, item in enumerate(value):
        at = value.at(i)
        if not isinstance(item, YMap) or len(item) != 1:
            problems.add(
                position_of(item, at),
                f"each {what} action is one of "
                f"{', '.join(ACTIONS)} with its settings, like - tag: {{name: vip}}",
            )
            continue
        kind, spec = next(iter(item.items()))
        if kind not in ACTIONS:
            problems.add(
                item.key_at(kind),
                f"unknown action '{kind}'"
                f"{did_you_mean(kind, ACTIONS)} (actions: {', '.join(ACTIONS)})",
            )
            continue
        action = _action(kind, spec, item.at(kind), destinations, problems, root)
        if action is not None:
            actions.append(action)
    return tuple(actions)


def _action(
    kind: str,
    spec: Any,
    pos: Pos,
    destinations: dict[str, Destination],
    problems: Problems,
    root: Path | None = None,
) -> Action | None:
    rules = ACTIONS[kind]
    if not isinstance(spec, YMap):
        problems.add(
            pos, f"'{kind}' takes a mapping of settings (required: {', '.join(rules['required'])})"
        )
        return None
    ok = True
    allowed = (*rules["required"], *rules["optional"])
    for key in spec:
        if key not in allowed:
            problems.add(
                spec.key_at(key),
                f"unknown key '{key}' in {_a(kind)} action{valid_keys(key, allowed)}",
            )
            ok = False
    for key in rules["required"]:
        if key not in spec or spec[key] in (None, ""):
            problems.add(spec.pos, f"{_a(kind)} action needs '{key}'")
            ok = False
    destination = spec.get("destination")
    if rules["type"] and isinstance(destination, str) and ok:
        ok = _check_destination(
            destination, rules["type"], spec.at("destination"), destinations, problems
        )
    delay = None
    if "delay" in spec:
        try:
            delay = parse_delay(spec["delay"])
        except ValueProblem:
            problems.add(
                spec.at("delay"),
                f"'delay': expected a duration like 5m, 2h or 1d, got {spec['delay']!r}",
            )
            ok = False
    if "batch" in spec:
        batch = spec["batch"]
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1000:
            problems.add(spec.at("batch"), "'batch' must be a whole number from 1 to 1000")
            ok = False
    if "variables" in spec and not isinstance(spec["variables"], dict):
        problems.add(spec.at("variables"), "'variables' must be a mapping")
        ok = False
    if "payload" in spec and not isinstance(spec["payload"], dict):
        problems.add(
            spec.at("payload"),
            "'payload' must be a mapping sent with each event, like "
            "payload: {action: send_retention_offer}",
        )
        ok = False
    if kind == "python":
        ok = _check_python(spec, root, problems) and ok
    if not ok:
        return None
    options = json.dumps(
        {k: v for k, v in spec.items() if k != "delay"}, sort_keys=True, default=str
    )
    return Action(kind, destination if isinstance(destination, str) else None, options, delay, pos)


def _check_python(spec: YMap, root: Path | None, problems: Problems) -> bool:
    """The function exists and is callable (imported now, as the worker will import it), and
    the retry settings are numbers."""
    from segctl.definitions.callables import BadReference, resolve

    ok = True
    for key, low in (("max_retries", 0), ("backoff", 0), ("timeout", 0.001)):
        value = spec.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < low
        ):
            problems.add(spec.at(key), f"'{key}' must be a number >= {low}")
            ok = False
    if "function" in spec and spec["function"] not in (None, ""):
        try:
            resolve(spec["function"], root)
        except BadReference as problem:
            problems.add(spec.at("function"), f"python action: {problem}")
            ok = False
    return ok


def parse_delay(value: Any) -> timedelta:
    """A delay: a duration (h, d, w, y) or minutes (``5m``)."""
    text = str(value).strip()
    if text.endswith("m") and text[:-1].isdigit():
        return timedelta(minutes=int(text[:-1]))
    return parse_duration(value)


def _check_destination(
    name: str, kind: str, pos: Pos, destinations: dict[str, Destination], problems: Problems
) -> bool:
    destination = destinations.get(name)
    if destination is None:
        problems.add(
            pos,
            f"unknown destination '{name}'{did_you_mean(name, destinations)} "
            "(define it under destinations: in segctl.yaml)",
        )
        return False
    if destination.type != kind:
        problems.add(
            pos,
            f"destination '{name}' is a {destination.type} destination; this needs a {kind} one",
        )
        return False
    return True


def parse_audiences(
    value: Any,
    pos: Pos,
    destinations: dict[str, Destination],
    problems: Problems,
    segment: str = "",
) -> tuple[Audience, ...]:
    if value is None:
        return ()
    if not isinstance(value, YList):
        problems.add(
            pos, "'audiences' takes a list, like - {destination: meta, audience_id: \"238...\"}"
        )
        return ()
    audiences = []
    for i, item in enumerate(value):
        at = value.at(i)
        if not isinstance(item, YMap):
            problems.add(position_of(item, at), "an audience is a mapping with 'destination'")
            continue
        name = item.get("destination")
        destination = destinations.get(name) if isinstance(name, str) else None
        if destination is None or destination.type not in AUDIENCE_ID_KEYS:
            if destination is None:
                problems.add(
                    item.at("destination") if "destination" in item else item.pos,
                    f"unknown destination {name!r}{did_you_mean(str(name), destinations)}",
                )
            else:
                problems.add(
                    item.at("destination"),
                    f"destination '{name}' ({destination.type}) cannot hold audiences",
                )
            continue
        id_key = AUDIENCE_ID_KEYS[destination.type]
        allowed = ("destination", id_key, "mode")
        bad = [k for k in item if k not in allowed]
        for key in bad:
            problems.add(
                item.key_at(key),
                f"unknown key '{key}' in a {destination.type} audience{valid_keys(key, allowed)}",
            )
        audience_id = item.get(id_key)
        if destination.type == "file" and audience_id is None:
            audience_id = segment  # the file is named after the segment
        if audience_id is None or (not str(audience_id).strip() and destination.type != "file"):
            problems.add(item.pos, f"a {destination.type} audience needs '{id_key}'")
            continue
        mode = item.get("mode", "sync")
        if mode not in AUDIENCE_MODES:
            problems.add(item.at("mode"), f"'mode' is sync or mirror, not {mode!r}")
            continue
        if not bad:
            audiences.append(Audience(str(name), str(audience_id), str(mode), item.pos))
    return tuple(audiences)
