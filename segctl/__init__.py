"""segctl: audience segmentation on analytical files.

YAML segment definitions are compiled to SQL (sqlglot trees, any dialect), evaluated in
DuckDB over Parquet/CSV files, diffed against the last committed snapshot and delivered.

>>> import segctl
>>> project = segctl.Project.load("path/to/project")  # doctest: +SKIP
>>> project.evaluate(as_of="2026-11-17T00:00:00Z").sizes()  # doctest: +SKIP
"""

from __future__ import annotations

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
from segctl.project import EvaluationResult, Project

__version__ = "0.1.0"

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
