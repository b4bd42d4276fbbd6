"""What evaluating a project needs before any plan: its definitions, loaded against the
data's schema, and the compiler's context for some segments at one as_of."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from segctl.definitions.custom_events import load_custom_events
from segctl.definitions.loader import Definitions, load_features, load_segments
from segctl.definitions.model import BlindSchema, Schema, list_conditions
from segctl.definitions.source import Problems
from segctl.errors import Problem

if TYPE_CHECKING:
    from segctl.compiler import PlanContext
    from segctl.project import Project


def load_definitions(
    project: Project,
    extra_files: list[Path] | None = None,
    *,
    only: list[Path] | None = None,
    features_needed: bool = True,
    blind: bool = False,
) -> Definitions:
    """Segments and features; with ``only``, just those segment files (and the extra
    ones), and features.yaml's problems only when ``features_needed`` (segctl.drafts).
    ``blind``: without reading the data (:class:`BlindSchema`), for the problems of the
    definitions themselves when the data cannot be read."""
    config = project.config
    schema: Schema = BlindSchema() if blind else project.schema
    properties = None if blind else project.property_types
    problems = Problems()
    features_file = config.features_file
    display = config.display(features_file) if features_file else ""
    features_problems = problems if features_needed else Problems()
    custom_events = load_custom_events(
        features_file,
        display,
        schema,
        config.tz,
        config.root,
        features_problems,
        properties=properties,
    )
    features = load_features(
        features_file,
        display,
        schema,
        config.tz,
        config.root,
        features_problems,
        properties=properties,
        custom_events=custom_events,
    )
    segments = load_segments(
        config.segments_dir,
        config.root,
        schema,
        features,
        config.tz,
        problems,
        extra_files=extra_files,
        destinations=config.destinations,
        properties=properties,
        custom_events=custom_events,
        files=only,
    )
    if not blind and problems.unknown_column and project.engine.driver.sample_every_line():
        # A column an NDJSON file's first lines lack may be a key first written past them.
        project.__dict__.pop("property_types", None)
        return load_definitions(project, extra_files, only=only, features_needed=features_needed)
    if not blind and problems.items:
        for table, column in sorted(problems.text_columns):
            if found := project.engine.driver.first_non_number(table, column):
                problems.extend([Problem("", 0, 0, found)])
    problems.raise_if_any()
    return Definitions(segments, features, problems.warnings)


def plan_context(
    project: Project,
    definitions: Definitions,
    names: list[str],
    as_of: datetime,
    dialect: str = "duckdb",
    persons_filter: str | None = None,
    events_shadowed: bool = False,
) -> PlanContext:
    """The compiler's context for ``names`` at ``as_of``: their list files registered, the
    persons view at ``as_of`` (``latest_by``), and (while an incremental run evaluates) the
    table of the persons to evaluate and whether the ``events`` hold their rows alone."""
    from segctl.compiler import PlanContext

    engine = project.engine
    lists = list_conditions(
        definitions.segments[dep] for n in names for dep in definitions.dependencies(n)
    )
    tables = engine.register_lists(lists)
    # Persons with latest_by: each one's latest row at or before as_of.
    engine.prepare(as_of)
    raw = engine.driver.raw_timestamp if dialect == "duckdb" else None
    spillable = project.config.engine.memory_limit is not None
    return PlanContext(
        project.schema,
        as_of,
        project.config.timezone,
        tables,
        dialect,
        raw,
        spillable,
        project.property_types.column_types,
        persons_filter,
        events_shadowed,
    )
