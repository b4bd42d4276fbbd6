"""segctl.yaml -> :class:`Config` (SPEC section 1).

``${NAME}`` (and ``${NAME:-default}``) in any string is replaced from the environment; a
missing variable is a config error that names it, whatever the command (SPEC 1).
Interpolated values may be secrets, so no message here ever quotes a value that came from the
environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segctl.definitions.data import Source, parse_data
from segctl.definitions.destinations import (
    TYPES,
    Destination,
    parse_destinations,
    secret_values,
)
from segctl.definitions.durations import parse_duration
from segctl.definitions.source import Pos, Problems, YList, YMap, load_yaml, valid_keys
from segctl.errors import ConfigError, ValueProblem
from segctl.freshness import DEFAULT_STALE_AFTER
from segctl.redact import register

CONFIG_FILE = "segctl.yaml"
TOP_KEYS = (
    "data",
    "segments",
    "features",
    "state",
    "timezone",
    "privacy",
    "destinations",
    "engine",
    "delivery",
    "stale_after",
)
TABLES = ("events", "persons", "subscriptions")
ENGINE_KEYS = (
    "memory_limit",
    "temp_directory",
    "threads",
    "type",
    "spark_master",
    "spark_conf",
)
ENGINE_TYPES = ("duckdb", "spark")
PRIVACY_KEYS = ("consent_column", "suppression_file")
DELIVERY_KEYS = ("max_exit_ratio",)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class EngineConfig:
    memory_limit: str | None = None
    temp_directory: str | None = None
    threads: int | None = None
    type: str = "duckdb"  # which engine runs the plans: duckdb or spark
    spark_master: str | None = None  # default local[*]
    spark_conf: tuple[tuple[str, str], ...] = ()  # extra Spark settings, e.g. executor memory


@dataclass(frozen=True)
class Config:
    """A project's configuration, paths resolved against the project root."""

    root: Path
    inputs: dict[str, tuple[str, ...]]  # table -> file patterns as written
    columns: dict[str, dict[str, str]]  # table -> canonical name -> the file's column name
    segments_dir: Path
    features_file: Path | None
    state_dir: Path
    timezone: str = "UTC"
    consent_column: str | None = None
    suppression_file: Path | None = None
    destinations: dict[str, Destination] = field(default_factory=dict)
    engine: EngineConfig = EngineConfig()
    max_exit_ratio: float = 0.5
    file: str = CONFIG_FILE
    #: role (events, persons, subscriptions, identities) -> its sources (segctl.sources).
    sources: dict[str, tuple[Source, ...]] = field(default_factory=dict)
    #: run/evaluate warn when as_of is further than this past the newest event (None: never).
    stale_after: timedelta | None = DEFAULT_STALE_AFTER

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def secrets(self) -> list[str]:
        """Every secret value configured (for redacting output)."""
        return secret_values(self.destinations)

    def display(self, path: Path) -> str:
        """A path as the user would write it (relative to the project when inside it)."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def find_project(start: str | Path | None = None) -> Path:
    """The project root: ``start`` (a folder or a segctl.yaml), else SEGCTL_PROJECT, else cwd."""
    candidate = Path(start or os.environ.get("SEGCTL_PROJECT") or ".")
    if candidate.is_file():
        return candidate.parent
    if (candidate / CONFIG_FILE).is_file():
        return candidate
    raise ConfigError(
        f"no {CONFIG_FILE} in {candidate.resolve()}: run segctl in a project folder, pass "
        "--project DIR, or create one with `segctl init`"
    )


def load_config(root: Path, environ: dict[str, str] | None = None) -> Config:
    """Read and check ``root/segctl.yaml``; every problem is reported at once."""
    environ = dict(os.environ) if environ is None else environ
    problems = Problems()
    doc = load_yaml(root / CONFIG_FILE, CONFIG_FILE, problems)
    if problems:
        raise ConfigError(problems.items)
    if not isinstance(doc, YMap):
        raise ConfigError(f"{CONFIG_FILE}: expected a mapping with a 'data' section")
    # What the environment gives a destination's keys that can carry a credential is masked
    # in every message, its problems' too (a token put in a url by mistake, a webhook url
    # that is itself a credential, a header).
    register(list(_credentials(doc.get("destinations"), environ)))
    doc = _interpolate(doc, environ, problems, Pos(CONFIG_FILE))
    _unknown(doc, TOP_KEYS, "segctl.yaml", problems)

    data = doc.get("data")
    sources: dict[str, tuple[Source, ...]] = {}
    if not isinstance(data, YMap):
        problems.add(
            doc.at("data") if "data" in doc else doc.pos,
            "missing 'data' section: data: {events: ..., persons: ...}",
        )
    else:
        sources = parse_data(data, problems)
    inputs = {role: tuple(p for s in found for p in s.paths) for role, found in sources.items()}
    columns: dict[str, dict[str, str]] = {t: {} for t in TABLES}
    if isinstance(data, YMap) and isinstance(data.get("columns"), dict):
        for table, mapping in data["columns"].items():
            if table in columns and isinstance(mapping, dict):
                columns[table] = {str(k): str(v) for k, v in mapping.items()}

    for key, example in (
        ("segments", "segments/"),
        ("features", "features.yaml"),
        ("state", ".segctl/"),
    ):
        value = doc.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            problems.add(doc.at(key), f"'{key}' must be a path, like {key}: {example}")

    timezone = doc.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(
            doc.at("timezone"),
            f"unknown timezone {timezone!r} (use an IANA name like UTC or Europe/Berlin)",
        )
        timezone = "UTC"

    privacy = doc.get("privacy", {})
    consent = suppression = None
    if isinstance(privacy, YMap):
        _unknown(privacy, PRIVACY_KEYS, "'privacy'", problems)
        consent = privacy.get("consent_column")
        if privacy.get("suppression_file"):
            suppression = root / str(privacy["suppression_file"])
    elif privacy:
        problems.add(doc.at("privacy"), "'privacy' must be a mapping")

    engine = doc.get("engine", {})
    engine_config = EngineConfig()
    if isinstance(engine, YMap):
        _unknown(engine, ENGINE_KEYS, "'engine'", problems)
        threads = engine.get("threads")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            problems.add(engine.at("threads"), "engine.threads must be a positive whole number")
            threads = None
        kind = engine.get("type", "duckdb")
        if kind not in ENGINE_TYPES:
            problems.add(
                engine.at("type"),
                f"unknown engine.type {kind!r} (choose from {' or '.join(ENGINE_TYPES)})",
            )
            kind = "duckdb"
        spark_conf = engine.get("spark_conf", {})
        if not isinstance(spark_conf, dict) or not all(
            isinstance(v, (str, int, float, bool)) for v in spark_conf.values()
        ):
            problems.add(
                engine.at("spark_conf"),
                "engine.spark_conf must map Spark settings to values, like "
                "{spark.executor.memory: 8g}",
            )
            spark_conf = {}
        engine_config = EngineConfig(
            memory_limit=str(engine["memory_limit"]) if "memory_limit" in engine else None,
            temp_directory=str(root / str(engine["temp_directory"]))
            if "temp_directory" in engine
            else None,
            threads=threads,
            type=str(kind),
            spark_master=str(engine["spark_master"]) if engine.get("spark_master") else None,
            spark_conf=tuple((str(k), _spark_value(v)) for k, v in spark_conf.items()),
        )
    elif engine:
        problems.add(doc.at("engine"), "'engine' must be a mapping")

    delivery = doc.get("delivery", {})
    max_exit_ratio = 0.5
    if isinstance(delivery, YMap):
        _unknown(delivery, DELIVERY_KEYS, "'delivery'", problems)
        ratio = delivery.get("max_exit_ratio", 0.5)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            problems.add(
                delivery.at("max_exit_ratio"), "delivery.max_exit_ratio must be a number in (0, 1]"
            )
        else:
            max_exit_ratio = float(ratio)

    stale_after: timedelta | None = DEFAULT_STALE_AFTER
    if "stale_after" in doc:
        value = doc["stale_after"]
        try:
            stale_after = None if value in ("off", False) else parse_duration(value)
        except ValueProblem as exc:
            problems.add(doc.at("stale_after"), f"stale_after: {exc}; or off to never warn")

    raw_destinations = doc.get("destinations", {})
    destinations: dict[str, Destination] = {}
    if not isinstance(raw_destinations, dict):
        problems.add(doc.at("destinations"), "'destinations' must map names to settings")
    else:
        destinations = parse_destinations(raw_destinations, problems, doc.at("destinations"))
        for destination in destinations.values():
            if destination.type == "file":  # paths in segctl.yaml are relative to the project
                destination.settings["path"] = str(root / str(destination.settings["path"]))

    features = doc.get("features")
    config = Config(
        root=root,
        inputs=inputs,
        columns=columns,
        segments_dir=root / str(doc.get("segments", "segments")),
        features_file=root / str(features)
        if features
        else (root / "features.yaml" if (root / "features.yaml").is_file() else None),
        state_dir=root / str(doc.get("state", ".segctl")),
        timezone=str(timezone),
        consent_column=str(consent) if consent else None,
        suppression_file=suppression,
        destinations=destinations,
        engine=engine_config,
        max_exit_ratio=max_exit_ratio,
        sources=sources,
        stale_after=stale_after,
    )
    if problems:  # every problem at once
        error = ConfigError(problems.items)
        # What did read, for validate to check the segment files too (the destinations
        # named, whatever their problems: their uses are not also "unknown").
        error.partial = config
        error.named = frozenset(raw_destinations) if isinstance(raw_destinations, dict) else None
        raise error
    register(secret_values(destinations))
    return config


def _spark_value(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _unknown(node: YMap, allowed: tuple[str, ...], what: str, problems: Problems) -> None:
    for key in node:
        if key not in allowed:
            problems.add(
                node.key_at(key), f"unknown key '{key}' in {what}{valid_keys(key, allowed)}"
            )


#: The keys of a destination that hold a secret (a default for one would sit in the file).
SECRET_KEYS = frozenset(k for rules in TYPES.values() for k in rules["secret"])


#: A destination's keys whose values can be (or hold) a credential, beside its secret ones.
_CARRIERS = frozenset({"url", "base_url", "headers"})


def _credentials(destinations: Any, environ: dict[str, str]) -> Iterator[str]:
    """The values ``${NAME}`` takes from the environment in the destinations' secret keys
    and the keys that can carry a credential (not an account id, a sender, a rate)."""
    for spec in destinations.values() if isinstance(destinations, dict) else ():
        for key, value in spec.items() if isinstance(spec, dict) else ():
            if key in SECRET_KEYS or key in _CARRIERS:
                yield from _from_environment(value, environ)


def _from_environment(value: Any, environ: dict[str, str]) -> Iterator[str]:
    """The values ``${NAME}`` takes from the environment anywhere in ``value``."""
    if isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _from_environment(item, environ)
    elif isinstance(value, str):
        yield from (environ[m.group(1)] for m in _ENV.finditer(value) if m.group(1) in environ)


def _interpolate(
    value: Any,
    environ: dict[str, str],
    problems: Problems,
    pos: Pos,
    key: str = "",
) -> Any:
    """Replace ``${NAME}`` from the environment everywhere, keeping positions (``key``: the
    mapping key the value is under)."""
    if isinstance(value, YMap):
        out = YMap()
        out.pos, out.key_pos, out.value_pos = value.pos, value.key_pos, value.value_pos
        for name, item in value.items():
            out[name] = _interpolate(item, environ, problems, value.at(name), str(name))
        return out
    if isinstance(value, YList):
        items = YList(_interpolate(v, environ, problems, value.at(i)) for i, v in enumerate(value))
        items.pos, items.item_pos = value.pos, value.item_pos
        return items
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        fix = "export it" if key in SECRET_KEYS else f"export it, or write ${{{name}:-default}}"
        problems.add(pos, f"environment variable {name} is not set ({fix})")
        return match.group(0)  # keep ${NAME}: the missing variable is the one problem

    return _ENV.sub(replace, value)
