"""Shared fixtures: a small project written into a temporary folder, and the CLI runner.

``make_project()`` writes a complete, valid project (segctl.yaml, segment files, features.yaml,
events.parquet with tz-aware UTC timestamps, persons.csv, subscriptions.csv, lists/vip.csv);
each keyword replaces one part, so a test states only what it changes::

    root = make_project(segments={"vip": "name: vip\\nrule: {list: {file: lists/vip.csv}}"})

The data is evaluated at ``AS_OF``; ``EXPECTED`` holds the members of the default segments.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from segctl.cli import app

AS_OF = "2026-11-17T00:00:00Z"


def at(text: str) -> datetime:
    """An aware UTC datetime from ``"2026-11-16 10:00"``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CONFIG = """\
data:
  events: data/events.parquet
  persons: data/persons.csv
  subscriptions: data/subscriptions.csv
segments: segments/
features: features.yaml
timezone: UTC
"""

FEATURES = """\
features:
  renders_30d: {event: video_rendered, within: 30d, measure: count}
  ltv: {event: purchase, measure: {sum: amount}}
"""

SEGMENTS = {
    "power_users": """\
        name: power_users
        description: 3+ renders in the last 30 days on a paid plan
        rule:
          all:
            - event: video_rendered
              within: 30d
              count: {gte: 3}
            - property: plan
              in: [pro, premium]
        """,
    "big_spenders": """\
        name: big_spenders
        rule:
          event: purchase
          sum: {of: amount, gte: 500}
        """,
    "vip": """\
        name: vip
        rule:
          list: {file: lists/vip.csv, key: person_id}
        """,
}

#: Members of the default segments at AS_OF.
EXPECTED = {"power_users": ["p1"], "big_spenders": ["p1", "p3"], "vip": ["p2"]}

# p1: pro, renders often and spends; p2: free, long inactive; p3: premium, new, signup then
# purchase; p4: trial without events; p5: created after AS_OF, so never evaluated.
PERSONS = """\
person_id,email,plan,country,age,created_at
p1,alice@example.com,pro,DE,34,2026-01-01T00:00:00Z
p2,bob@example.com,free,US,28,2025-06-01T00:00:00Z
p3,carol@example.com,premium,FR,,2026-11-10T09:00:00Z
p4,dave@example.com,trial,US,45,2026-11-01T00:00:00Z
p5,erin@example.com,pro,DE,51,2026-12-01T00:00:00Z
"""

SUBSCRIPTIONS = """\
person_id,status,plan,mrr,updated_at
p1,trialing,pro,0,2026-01-01T00:00:00Z
p1,active,pro,2900,2026-02-01T00:00:00Z
p2,active,basic,900,2026-03-01T00:00:00Z
p2,canceled,basic,0,2026-12-01T00:00:00Z
p3,trialing,premium,0,2026-11-10T09:00:00Z
"""

EVENT_COLUMNS = ("person_id", "event", "timestamp", "amount", "format")
EVENTS: list[tuple[Any, ...]] = [
    ("p1", "video_rendered", at("2026-11-10 10:00"), None, "mp4"),
    ("p1", "video_rendered", at("2026-11-12 10:00"), None, "mov"),
    ("p1", "video_rendered", at("2026-11-16 23:59"), None, "mp4"),
    ("p1", "video_rendered", at("2026-11-20 10:00"), None, "mp4"),  # after AS_OF: ignored
    ("p1", "purchase", at("2026-06-01 12:00"), 600.0, None),
    ("p1", "login", at("2026-11-14 08:00"), None, None),
    ("p1", "login", at("2026-11-15 08:00"), None, None),
    ("p1", "login", at("2026-11-16 08:00"), None, None),
    ("p2", "login", at("2026-08-01 08:00"), None, None),
    ("p2", "purchase", at("2026-08-01 09:00"), 20.0, None),
    ("p2", "video_rendered", at("2026-11-15 10:00"), None, "gif"),
    ("p3", "signup", at("2026-11-10 09:00"), None, None),
    ("p3", "purchase", at("2026-11-12 09:00"), 750.0, None),
    ("p3", "video_rendered", at("2026-11-13 09:00"), None, "mp4"),
    ("p5", "video_rendered", at("2026-11-16 10:00"), None, "mp4"),
]
EVENTS_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("format", pa.string()),
    ]
)

LISTS = {"lists/vip.csv": "person_id\np2\n"}


def write_events(path: Path, rows: Sequence[Sequence[Any]] = EVENTS) -> Path:
    """Events as Parquet, with the default schema (tz-aware UTC timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(
        [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows], schema=EVENTS_SCHEMA
    )
    pq.write_table(table, path)
    return path


def write(path: Path, text: str) -> Path:
    """A text file, dedented, its folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def build_project(
    root: Path,
    *,
    config: str = CONFIG,
    segments: Mapping[str, str] | None = None,
    features: str | None = FEATURES,
    persons: str = PERSONS,
    subscriptions: str = SUBSCRIPTIONS,
    events: Sequence[Sequence[Any]] = EVENTS,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write a project into ``root`` (see the module docstring); returns ``root``.

    ``segments`` maps a file name (without ``.yaml``) to its YAML; ``features=None`` writes no
    features.yaml; ``files`` adds or replaces any other file (path relative to the project).
    """
    write(root / "segctl.yaml", config)
    (root / "segments").mkdir(parents=True)
    for name, text in (SEGMENTS if segments is None else segments).items():
        write(root / "segments" / f"{name}.yaml", text)
    if features is not None:
        write(root / "features.yaml", features)
    write(root / "data/persons.csv", persons)
    write(root / "data/subscriptions.csv", subscriptions)
    write_events(root / "data/events.parquet", events)
    for name, text in {**LISTS, **(files or {})}.items():
        write(root / name, text)
    return root


MakeProject = Callable[..., Path]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets: a project's secrets (some of them short
    words in tests) must not mask another test's messages."""
    yield
    from segctl import redact

    redact.forget_all()


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """``build_project`` into a fresh folder under ``tmp_path`` at each call."""
    counter = itertools.count()

    def make(**parts: Any) -> Path:
        return build_project(tmp_path / f"project{next(counter)}", **parts)

    return make


@pytest.fixture
def project(make_project: MakeProject) -> Path:
    """The default project's folder."""
    return make_project()


Cli = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``segctl ARGS...`` in-process; asserts the exit code (``code=``, default 0) and
    that no traceback was printed."""
    monkeypatch.delenv("SEGCTL_PROJECT", raising=False)
    runner = CliRunner()

    def invoke(*args: str | Path, code: int = 0) -> Result:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == code, (
            f"exit code {result.exit_code}, expected {code}\n"
            f"--- stdout:\n{result.stdout}\n--- stderr:\n{result.stderr}"
        )
        assert "Traceback" not in result.output
        return result

    return invoke
