"""Tables of rows (polars DataFrames) out of a command: to an ``--out`` file, or printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segctl.cli.output import note, print_rows
from segctl.errors import DataError, UsageError


def check_out(out: Path | None) -> None:
    """Refuse an --out name we cannot write before doing any work."""
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"--out {out}: use a .parquet or .csv file name")


#: A moment in a CSV file as printed (``--format csv``): UTC with a ``Z``, the fraction of a
#: second only when there is one.
CSV_MOMENT = "%Y-%m-%dT%H:%M:%S%.fZ"


def _utc_moments(frame: Any) -> Any:
    """``frame`` with its zoned timestamp columns in UTC, their zone dropped (naive ones are
    UTC already), for :data:`CSV_MOMENT`."""
    import polars as pl

    zoned = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    utc = [pl.col(n).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for n in zoned]
    return frame.with_columns(utc) if utc else frame


def write_frame(frame: Any, out: Path) -> None:
    """Write a polars DataFrame as Parquet or CSV, chosen by the file's extension; whole or not
    at all (a write cut short leaves the previous file as it was)."""
    from segctl.atomic import replacing

    check_out(out)
    try:
        with replacing(out) as partial:
            if out.suffix.lower() == ".parquet":
                frame.write_parquet(partial)
            else:
                _utc_moments(frame).write_csv(partial, datetime_format=CSV_MOMENT)
    except Exception as exc:  # polars reports I/O failures in several exception types
        raise DataError(f"--out {out}: cannot write the file: {exc}") from None


def show_frame(
    frame: Any,
    fmt: str,
    out: Path | None,
    limit: int | None,
    what: str,
    wrote: str | None = None,
) -> None:
    """Write a DataFrame to --out, or print it (a table shows at most ``limit`` rows)."""
    if out is not None:
        write_frame(frame, out)
        note(f"wrote {wrote or f'{frame.height} {what}'} to {out}")
        return
    shown = frame.head(limit) if fmt == "table" and limit is not None else frame
    print_rows(fmt, frame.columns, shown.rows(), document=shown.to_dicts())
    if shown.height < frame.height:
        note(f"showing {shown.height} of {frame.height} {what} (--out FILE writes all)")
