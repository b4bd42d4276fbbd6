"""YAML with source positions, so that every problem can be reported as ``file:line:col``.

PyYAML's composer keeps the position of every node; we turn its node tree into plain Python
containers that remember where each of their keys and items came from. Scalars stay plain
values (``str``, ``int``, ``date`` ...): their position is asked of the container holding them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segctl.errors import DefinitionError, Problem


@dataclass(frozen=True)
class Pos:
    """A place in a source file (1-based line and column)."""

    file: str
    line: int = 0
    col: int = 0

    def problem(self, message: str) -> Problem:
        return Problem(self.file, self.line, self.col, message)


class YMap(dict[str, Any]):
    """A mapping that knows where it and each of its keys and values stand."""

    pos: Pos
    key_pos: dict[str, Pos]
    value_pos: dict[str, Pos]

    def at(self, key: str) -> Pos:
        """Position of the value under ``key`` (or of the mapping when the key is absent)."""
        return self.value_pos.get(key, self.pos)

    def key_at(self, key: str) -> Pos:
        return self.key_pos.get(key, self.pos)


class YList(list[Any]):
    """A sequence that knows where it and each of its items stand."""

    pos: Pos
    item_pos: list[Pos]

    def at(self, index: int) -> Pos:
        return self.item_pos[index] if index < len(self.item_pos) else self.pos


def position_of(value: Any, default: Pos) -> Pos:
    """The position of a container value, or ``default`` for a scalar."""
    if isinstance(value, (YMap, YList)):
        return value.pos
    return default


@dataclass
class Problems:
    """Collects problems across files so they can be raised together."""

    items: list[Problem] = field(default_factory=list)
    #: Not errors, but worth saying (a nested key never seen in a sample of the data).
    warnings: list[Problem] = field(default_factory=list)
    #: Whether a problem is a column the data lacks (which a wider sniff of NDJSON can find).
    unknown_column: bool = False
    #: (table, column) of text columns a definition needs numbers of (a sum of 'amount'):
    #: the data may hold a value that is not a number, which the caller can find and say.
    text_columns: set[tuple[str, str]] = field(default_factory=set)

    def add(self, pos: Pos, message: str) -> None:
        """Record a problem; one per place (file, line and column): the first found says it,
        so a key that is both unknown and not an operator is one problem, not two."""
        problem = pos.problem(message)
        place = (problem.file, problem.line, problem.col)
        if problem.line and any((p.file, p.line, p.col) == place for p in self.items):
            return
        self.items.append(problem)

    def warn(self, pos: Pos, message: str) -> None:
        """Record a warning: definitions still load, and validate shows it."""
        problem = pos.problem(message)
        if problem not in self.warnings:
            self.warnings.append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise DefinitionError(self.items)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'gte'?)`` when a close option exists, else ``''``."""
    close = difflib.get_close_matches(str(word), sorted(set(options)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def operator_hint(word: str, options: Iterable[str]) -> str:
    """What follows "unknown operator 'x'": the close match (`` (did you mean 'gte'?)``), else
    every key valid there, so that the fix is in the message."""
    keys = list(dict.fromkeys(options))
    return did_you_mean(word, keys) or f" (valid here: {', '.join(keys)})"


def known_hint(word: str, names: Iterable[str], what: str, fix: str = "") -> str:
    """What follows "unknown segment 'x'": the close match, else the names there are (the
    first 12 of them, sorted), or that there are none, and then ``fix`` when given."""
    known = sorted(set(names))
    if close := did_you_mean(word, known):
        return close
    shown = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
    listed = f"{what}: {shown}" if known else f"no {what}"
    return f" ({listed}; {fix})" if fix else f" ({listed})"


def valid_keys(word: str, options: Iterable[str]) -> str:
    """What follows "unknown key 'x' in ...": the close match, if any, and every valid key,
    so that the fix is in the message (`` (did you mean 'name'? valid keys: destination,
    mode, name)``)."""
    keys = list(dict.fromkeys(options))
    close = difflib.get_close_matches(str(word), sorted(set(keys)), n=1, cutoff=0.6)
    guess = f"did you mean '{close[0]}'? " if close else ""
    return f" ({guess}valid keys: {', '.join(keys)})"


def load_yaml(path: Path, display: str, problems: Problems) -> Any:
    """Read a YAML file into YMap/YList/scalars; syntax problems go to ``problems``.

    Returns ``None`` when the file cannot be read or parsed (the problem is recorded).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(Pos(display), "file not found")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(Pos(display), f"cannot read file: {exc}")
        return None
    return parse_yaml(text, display, problems)


#: libyaml's parser when PyYAML has it: ten times the pure-Python one (1,000 segment files
#: took 1.3 s to parse); a file it rejects is parsed again by the pure-Python one, whose
#: messages are the ones documented.
FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, display: str, problems: Problems) -> Any:
    """Parse YAML text (see :func:`load_yaml`)."""
    if FAST_LOADER is not None:
        try:
            node = yaml.compose(text, Loader=FAST_LOADER)
        except yaml.YAMLError:
            pass  # the pure-Python parser says what is wrong, below
        else:
            return None if node is None else _Converter(display, problems).convert(node)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = exc.problem or "invalid YAML"
        problems.add(Pos(display, line, col), f"invalid YAML: {what}")
        return None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problems.add(
            Pos(display, line, col), f"invalid YAML: the character U+{code:04X} is not allowed"
        )
        return None
    except yaml.YAMLError as exc:
        problems.add(Pos(display), f"invalid YAML: {exc}")
        return None
    if node is None:
        return None
    return _Converter(display, problems).convert(node)


_STR_TAG = "tag:yaml.org,2002:str"


class _Converter:
    def __init__(self, display: str, problems: Problems) -> None:
        self.display = display
        self.problems = problems
        self.constructor = yaml.SafeLoader("")

    def pos(self, node: yaml.Node) -> Pos:
        return Pos(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node)
        if isinstance(node, yaml.SequenceNode):
            out = YList(self.convert(item) for item in node.value)
            out.pos = self.pos(node)
            out.item_pos = [self.pos(item) for item in node.value]
            return out
        if node.tag == _STR_TAG:  # most scalars: the constructor would return the text
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.add(self.pos(node), f"invalid value: {exc}")
            return None
        except (ValueError, OverflowError):
            # Looks like a date but is none (2026-02-30): the text, for the typed check to judge.
            return node.value

    def mapping(self, node: yaml.MappingNode) -> YMap:
        out = YMap()
        out.pos, out.key_pos, out.value_pos = self.pos(node), {}, {}
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        for key_node, value_node in node.value:
            key = self.convert(key_node)
            if not isinstance(key, str):
                # YAML reads `on:`/`yes:` as booleans and `1:` as a number; keys here are names.
                key = str(key_node.value)
            if key in out:
                self.problems.add(
                    self.pos(key_node),
                    f"duplicate key '{key}' (a mapping takes each key once: keep one)",
                )
                continue
            out[key] = self.convert(value_node)
            out.key_pos[key] = self.pos(key_node)
            out.value_pos[key] = self.pos(value_node)
        return out


#: The names of segments, features and custom events.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def named_mappings(
    specs: YMap, problems: Problems, what: str, example: str
) -> Iterator[tuple[str, YMap]]:
    """The entries of a ``name: {...}`` mapping (features, custom events) whose name is valid
    and whose value is a mapping; the others are recorded as problems and skipped."""
    for name, spec in specs.items():
        if not NAME_PATTERN.match(name):
            problems.add(specs.key_at(name), f"{what} name '{name}' must match [a-z][a-z0-9_]*")
        elif not isinstance(spec, YMap):
            problems.add(specs.at(name), f"{what} '{name}' must be a mapping like {example}")
        else:
            yield name, spec
