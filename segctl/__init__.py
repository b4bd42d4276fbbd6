"""segctl: audience segmentation on analytical files.

YAML segment definitions are compiled to SQL (sqlglot trees, any dialect), evaluated in
DuckDB over Parquet/CSV files, diffed against the last committed snapshot and delivered.

>>> import segctl
>>> project = segctl.Project.load("path/to/project")  # doctest: +SKIP
>>> project.evaluate(as_of="2026-11-17T00:00:00Z").sizes()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segctl.errors import (
    ConfigError,
    DataError,
    DefinitionError,
    DeliveryError,
    Problem,
    SegctlError,
    StateLockedError,
    UsageError,
)
from segctl.version import __version__

if TYPE_CHECKING:
    from segctl.project import EvaluationResult, Project


__all__ = [
    "ConfigError",
    "DataError",
    "DefinitionError",
    "DeliveryError",
    "EvaluationResult",
    "Problem",
    "Project",
    "SegctlError",
    "StateLockedError",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The project module pulls in sqlglot; importing it lazily keeps `segctl --help` fast.
    if name in ("Project", "EvaluationResult"):
        from segctl import project

        return getattr(project, name)
    raise AttributeError(f"module 'segctl' has no attribute {name!r}")
