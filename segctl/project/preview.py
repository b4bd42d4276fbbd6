"""A preview: the size and first members of a segment, or of a draft segment file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from segctl.definitions.loader import Definitions
from segctl.definitions.source import Problems
from segctl.errors import DefinitionError, UsageError
from segctl.project.context import load_definitions, plan_context
from segctl.results import Preview, polars_frame
from segctl.tempnames import PREVIEW_TABLE
from segctl.timeutil import parse_as_of

if TYPE_CHECKING:
    from segctl.project import Project


def preview(project: Project, target: str, as_of: str | datetime | None, limit: int) -> Preview:
    """Size and sample members of a segment, or of a segment file (see
    :meth:`Project.preview`). Nothing is saved."""
    from segctl.compiler import Plan
    from segctl.compiler.listing import row_count, with_persons

    moment = parse_as_of(as_of, project.config.tz)
    path = Path(target)
    if target.endswith((".yaml", ".yml")) or path.is_file():
        definitions, name = draft(project, path, target)
    else:
        definitions, name = project.definitions, target
        project.segment_names([name])
    engine = project.engine
    engine.driver.check_persons()
    context = plan_context(project, definitions, [name], moment, project.config.engine.type)
    engine.create_table(PREVIEW_TABLE, Plan(definitions, context).members_query(name))
    # The preview table is in the driver's DuckDB, whatever the engine.
    size = engine.driver.arrow(row_count(PREVIEW_TABLE)).column(0)[0].as_py()
    sample = with_persons(PREVIEW_TABLE, list(project.schema["persons"]), limit=limit)
    return Preview(name, moment, int(size), polars_frame(engine.driver.arrow(sample)))


def draft(project: Project, path: Path, target: str) -> tuple[Definitions, str]:
    """A draft segment file's definitions and name. Only the draft and the project segments
    it references are loaded: an unrelated broken segment of the project must not stop a
    preview."""
    from segctl.definitions.source import load_yaml
    from segctl.drafts import needed_files

    if not path.is_file():
        raise UsageError(f"no such segment file: {target}")
    doc = load_yaml(path, target, Problems())
    name = doc.get("name") if isinstance(doc, dict) else None
    files, uses_features = needed_files(path, project.config.segments_dir)
    definitions = load_definitions(project, [path], only=files, features_needed=uses_features)
    if not isinstance(name, str) or name not in definitions.segments:
        raise DefinitionError(f"{target}: not a segment file (it needs name: and rule:)")
    return definitions, name
