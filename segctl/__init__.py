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
    from segctl.project import Project
    from segctl.results import EvaluationResult, RunResult


__all__ = [
    "ConfigError",
    "DataError",
    "DefinitionError",
    "DeliveryError",
    "EvaluationResult",
    "Problem",
    "Project",
    "RunResult",
    "SegctlError",
    "StateLockedError",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The project package pulls in sqlglot and DuckDB; importing it lazily keeps `segctl
    # --help` fast.
    if name == "Project":
        from segctl.project import Project

        return Project
    if name in ("EvaluationResult", "RunResult"):
        from segctl import results

        return getattr(results, name)
    raise AttributeError(f"module 'segctl' has no attribute {name!r}")
