"""The evaluate benchmark's nested-property variants: the same events, the same 27 segments,
with the event properties (amount, format, certification) inside one column.

- ``json``: ``properties``, a JSON object as text (as PostHog and Segment export it), read with
  ``properties.amount`` etc.: every key extracted from the text of every scanned row;
- ``struct``: ``props``, a STRUCT(amount DOUBLE, format VARCHAR, certification VARCHAR), read
  with ``props.amount`` etc.

The copies are written once next to the generated data (``events_json.parquet``,
``events_struct.parquet``) by DuckDB from ``events.parquet``, row for row, and each variant gets
its own project folder (``project_json``, ``project_struct``) whose segments differ from the
flat ones only in the property names. The benchmark checks that every variant computes the same
members as the flat one and reports the ratio of their times.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.project import CONFIG, SEGMENTS

#: The event properties the segments read.
PROPERTIES = ("amount", "format", "certification")
#: variant -> (the column holding the properties, the events file).
VARIANTS = {
    "json": ("properties", "events_json.parquet"),
    "struct": ("props", "events_struct.parquet"),
}
GOALS = {"json": 2.0, "struct": 1.2}


def _select(variant: str) -> str:
    """DuckDB SQL turning a batch of flat events (``batch``) into the variant's columns."""
    column, _ = VARIANTS[variant]
    if variant == "json":
        # Keys with a NULL value are left out, as the trackers' exports do.
        parts = ", ".join(
            f"CASE WHEN {p} IS NOT NULL THEN '\"{p}\":' || to_json({p}) END" for p in PROPERTIES
        )
        value = f"'{{' || concat_ws(',', {parts}) || '}}'"
    else:
        value = "{" + ", ".join(f"'{p}': {p}" for p in PROPERTIES) + "}"
    return f"SELECT {value} AS {column} FROM batch"


def ensure_nested_data(data: Path) -> dict[str, Path]:
    """``events_<variant>.parquet`` for each variant, written from events.parquet if missing,
    by the same writer with the same row groups and encodings as the flat file (DuckDB's
    writer encodes differently, which alone changed the scan's cost by 25%)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.generate import CHUNK

    files = {}
    for variant, (_, name) in VARIANTS.items():
        path = data / name
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            con = duckdb.connect()
            flat = pq.ParquetFile(data / "events.parquet")
            writer: pq.ParquetWriter | None = None
            for group in range(flat.num_row_groups):
                batch = flat.read_row_group(group)  # read by DuckDB's query, by name
                column, _ = VARIANTS[variant]
                value = con.sql(_select(variant)).to_arrow_table().column(0)
                if variant == "json":
                    value = value.cast(pa.string())
                table = batch.select(["person_id", "event", "timestamp"]).append_column(
                    column, value
                )
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
                writer.write_table(table, row_group_size=CHUNK)
            if writer is not None:
                writer.close()
            tmp.replace(path)
        files[variant] = path
    return files


def nested_segment(body: str, column: str) -> str:
    """A flat segment's YAML with its event property names inside ``column``."""
    names = "|".join(PROPERTIES)
    # `of: amount` and the keys of `where:` mappings ({format: ..., certification: ...}).
    body = re.sub(rf"\bof: ({names})\b", rf"of: {column}.\1", body)
    return re.sub(rf"\{{({names}):", rf"{{{column}.\1:", body)


def write_nested_projects(data: Path) -> dict[str, Path]:
    """``project_<variant>`` for each variant (events from its copy); returns the folders."""
    ensure_nested_data(data)
    roots = {}
    for variant, (column, events) in VARIANTS.items():
        root = data / f"project_{variant}"
        segments = root / "segments"
        segments.mkdir(parents=True, exist_ok=True)
        (root / "segctl.yaml").write_text(CONFIG.replace("../events.parquet", f"../{events}"))
        for name, body in SEGMENTS.items():
            text = f"name: {name}\n{nested_segment(body.lstrip(), column)}"
            (segments / f"{name}.yaml").write_text(text)
        roots[variant] = root
    return roots
