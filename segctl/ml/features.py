"""Behavioural features per person, computed in DuckDB, each one a condition of the language.

Every feature is a :class:`~segctl.ml.specs.FeatureSpec` that knows how to say "value <= t"
and "value > t" as a segment condition that evaluates to exactly the same persons. That is what
lets :mod:`segctl.ml.rules` turn a decision tree on these features into a segment file whose
members are the ones the tree selects: the event measures are computed by the project's own
compiler (:class:`~segctl.compiler.Plan`), so windows, calendar days and streaks mean here what
they mean in a segment.

The features (chosen from the data at ``as_of``):

- ``EVENT_7d``, ``EVENT_30d``, ``EVENT_90d``: event counts, for the most frequent event names;
- ``active_days_30d``, ``active_days_90d``: calendar days with any event; ``streak_days``;
- ``days_since_last_event`` and ``days_since_created`` (whole days, capped at :data:`CAP_DAYS`;
  persons without events or without ``created_at`` get the cap);
- ``EVENT_COLUMN_365d``: sums of numeric event properties (``purchase_amount_365d``);
- ``COLUMN=VALUE``: one-hot person properties of low cardinality (country, plan, opt-in...),
  and ``subscription.status=...``, ``subscription.plan=...``, ``subscription.mrr`` for the
  current subscription.

Models see them through :func:`robust_scale`: counts, sums and day spans are heavy-tailed, so
they are log-transformed, centred on the median and divided by a quantile spread, then clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from segctl.definitions.model import ColumnType
from segctl.ml.specs import CAP_DAYS, FeatureSpec, text
from segctl.timeutil import parse_as_of

#: A conversion of any event (discover without ``--conversion-event``: coming back).
ANY_EVENT = "*"

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa
    from sqlglot import exp

    from segctl.project import Project


#: Count windows, in days.
WINDOWS = (7, 30, 90)
#: At most this many event names get count features (the most frequent ones).
MAX_EVENTS = 8
#: At most this many numeric event properties get a sum feature.
MAX_SUMS = 4
#: One-hot columns: at most this many values per column, each held by at least MIN_SHARE.
MAX_VALUES = 8
MIN_SHARE = 0.01
MAX_CARDINALITY = 50
#: Person columns never one-hot encoded (identifiers and personal data).
SKIP_PERSON_COLUMNS = ("person_id", "email", "phone", "first_name", "last_name", "created_at")


@dataclass
class FeatureMatrix:
    """Features of every person evaluated at ``as_of`` (rows sorted by person_id)."""

    as_of: datetime
    specs: list[FeatureSpec]
    person_ids: pa.Array
    values: np.ndarray  # float64, persons x features (column-major), never NaN
    converted: np.ndarray | None = None  # bool per person: the conversion event in the holdout

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def frame(self, scaled: bool = False) -> pl.DataFrame:
        """``person_id`` plus one column per feature (integers where the values are)."""
        import polars as pl

        values = robust_scale(self.values, self.specs) if scaled else self.values
        columns: dict[str, Any] = {"person_id": pl.from_arrow(self.person_ids)}
        for j, spec in enumerate(self.specs):
            column = pl.Series(spec.name, values[:, j])
            if not scaled and (spec.integer or spec.binary):
                column = column.cast(pl.Int64)
            columns[spec.name] = column
        return pl.DataFrame(columns)


# ---- choosing the features -------------------------------------------------------------


def plan_features(project: Project, as_of: datetime) -> list[FeatureSpec]:
    """The behavioural features this project's data supports, at ``as_of``."""
    from sqlglot import exp

    from segctl.compiler import col, ident

    schema = project.schema
    driver = project.engine.driver
    recent = exp.and_(*time_bounds(project, as_of - timedelta(days=365), as_of))
    numeric = [
        c
        for c, t in schema["events"].items()
        if t is ColumnType.NUMBER and c not in ("person_id", "event", "timestamp")
    ]
    counts = (
        exp.select(
            col("event"),
            exp.alias_(exp.Count(this=exp.Star()), ident("n")),
            *(exp.alias_(exp.Count(this=col(c)), ident(f"n_{i}")) for i, c in enumerate(numeric)),
        )
        .from_(ident("events"))
        .where(recent)
        .group_by(col("event"))
        .order_by(exp.Ordered(this=col("n"), desc=True), col("event"))
    )
    with driver.plan_errors():
        rows = driver.rows(counts.sql(dialect="duckdb"))
    rows = [r for r in rows if r[0] is not None]
    specs: list[FeatureSpec] = []
    for event, *_ in rows[:MAX_EVENTS]:
        for days in WINDOWS:
            specs.append(FeatureSpec(f"{event}_{days}d", "count", event=event, window=days))
    if rows:
        specs += [
            FeatureSpec("active_days_30d", "distinct_days", event="*", window=30),
            FeatureSpec("active_days_90d", "distinct_days", event="*", window=90),
            # A streak is at most as long as its window: 90 days keep the sort of
            # (person, day) pairs small without changing anyone's value below 90.
            FeatureSpec("streak_days", "streak", event="*", window=90),
        ]
    specs.append(FeatureSpec("days_since_last_event", "recency", event="*"))
    if schema["persons"].get("created_at") is ColumnType.TIMESTAMP:
        specs.append(FeatureSpec("days_since_created", "tenure"))
    sums = []
    for i, column in enumerate(numeric):
        carriers = [(r[2 + i], r[0]) for r in rows if r[2 + i]]
        if carriers:
            n, event = max(carriers, key=lambda pair: (pair[0], pair[1]))
            sums.append((n, event, column))
    for _, event, column in sorted(sums, key=lambda s: (-s[0], s[2]))[:MAX_SUMS]:
        name = f"{event}_{column}_365d"
        specs.append(FeatureSpec(name, "sum", event=event, window=365, column=column))
    specs += _one_hot(project, "persons", SKIP_PERSON_COLUMNS, "property")
    if "subscriptions" in schema:
        specs += _one_hot(project, "subscriptions", ("person_id", "updated_at"), "subscription")
        if schema["subscriptions"].get("mrr") is ColumnType.NUMBER:
            specs.append(FeatureSpec("subscription.mrr", "mrr", column="mrr"))
    return specs


def _one_hot(project: Project, table: str, skip: tuple[str, ...], kind: str) -> list[FeatureSpec]:
    """One feature per frequent value of each low-cardinality text or boolean column."""
    from sqlglot import exp

    from segctl.compiler import col, ident

    specs: list[FeatureSpec] = []
    for column, family in project.schema[table].items():
        if column in skip or family not in (ColumnType.STRING, ColumnType.BOOLEAN):
            continue
        query = (
            exp.select(col(column), exp.alias_(exp.Count(this=exp.Star()), ident("n")))
            .from_(ident(table))
            .group_by(col(column))
            .order_by(exp.Ordered(this=col("n"), desc=True), col(column))
            .limit(MAX_CARDINALITY + 1)
        )
        with project.engine.driver.plan_errors():
            rows = project.engine.driver.rows(query.sql(dialect="duckdb"))
        values = [(v, n) for v, n in rows if v is not None and v != ""]
        if len(rows) > MAX_CARDINALITY or len(values) < 2:
            continue
        total = sum(n for _, n in rows)
        label = f"subscription.{column}" if kind == "subscription" else column
        for value, n in values[:MAX_VALUES]:
            if n / total >= MIN_SHARE:
                name = f"{label}={text(value)}"
                specs.append(FeatureSpec(name, kind, column=column, value=value))
    return specs


# ---- computing them --------------------------------------------------------------------


def compute(
    project: Project,
    specs: list[FeatureSpec],
    as_of: datetime,
    *,
    conversion: tuple[str, datetime] | None = None,
) -> FeatureMatrix:
    """One row per person evaluated at ``as_of`` (created at or before it), in one query.

    ``conversion`` is ``(event, until)``: whether each person has that event in
    ``(as_of, until]``, the holdout period after the features' as_of.
    """
    import numpy as np

    table = project.engine.arrow(features_query(project, specs, as_of, conversion))
    n = table.num_rows
    # Column-major: every step from here on (filling, scaling, thresholds) goes column by
    # column, and a column of a row-major matrix is strided, one cache line per value.
    values = np.empty((n, len(specs)), dtype=np.float64, order="F")
    as_of_us = np.datetime64(as_of.replace(tzinfo=None), "us").astype(np.int64)
    day_us = 86_400 * 1_000_000
    never = as_of_us - CAP_DAYS * day_us  # no timestamp: the cap
    for j, spec in enumerate(specs):
        column = table.column(f"f{j}")
        if spec.kind in ("recency", "tenure"):
            # Whole days before as_of, floored, from microseconds since the epoch.
            stamps = column.cast("timestamp[us]").cast("int64").fill_null(never)
            days = (as_of_us - stamps.to_numpy()) // day_us
            np.minimum(days, CAP_DAYS, out=values[:, j], casting="unsafe")
        else:
            values[:, j] = column.cast("double").fill_null(0.0).to_numpy()
    converted = None
    if conversion is not None:
        converted = table.column("converted").to_numpy(zero_copy_only=False).astype(bool)
    return FeatureMatrix(as_of, specs, table.column("person_id"), values, converted)


def features_query(
    project: Project,
    specs: list[FeatureSpec],
    as_of: datetime,
    conversion: tuple[str, datetime] | None = None,
) -> exp.Select:
    """The SQL computing ``specs`` (columns f0, f1, ...) per person, sorted by person_id."""
    from sqlglot import exp

    from segctl.compiler import DOUBLE, Plan, col, current_subscription, ident, literal
    from segctl.definitions.loader import Definitions
    from segctl.definitions.model import EventMatch, EventMeasure, Feature, Measure, Window

    measures: dict[str, Feature] = {}
    for j, spec in enumerate(specs):
        if spec.kind in ("count", "distinct_days", "streak", "sum", "recency"):
            kind = "last_seen" if spec.kind == "recency" else spec.kind
            match = EventMatch(None if spec.event in (None, "*") else (str(spec.event),))
            window = Window(within=timedelta(days=spec.window)) if spec.window else Window()
            measure = EventMeasure(match, window, Measure(kind, of=spec.column))
            measures[f"f{j}"] = Feature(f"f{j}", measure)
    project.engine.driver.check_persons()
    # The engine's dialect: with engine.type spark the plan runs on Spark (portable forms only).
    definitions = Definitions({}, measures)
    context = project.plan_context([], as_of, project.config.engine.type, definitions)
    inner = Plan(definitions, context).features_query(list(measures))
    inner.set("order", None)  # sorted once, below
    projections: list[exp.Expr] = [col("person_id", "f")]
    query_joins: list[tuple[exp.Expr, str]] = [(ident("persons"), "p")]
    subscription = False
    for j, spec in enumerate(specs):
        name = f"f{j}"
        if name in measures:
            value: exp.Expr = col(name, "f")
        elif spec.kind == "tenure":
            value = col("created_at", "p")
        elif spec.kind == "property":
            assert spec.column is not None
            test = exp.EQ(this=col(spec.column, "p"), expression=literal(spec.value))
            value = exp.cast(exp.func("COALESCE", test, exp.false()), DOUBLE)
        else:
            subscription = True
            assert spec.column is not None
            if spec.kind == "mrr":
                value = exp.func("COALESCE", exp.cast(col("mrr", "s"), DOUBLE), literal(0))
            else:
                test = exp.EQ(this=col(spec.column, "s"), expression=literal(spec.value))
                value = exp.cast(exp.func("COALESCE", test, exp.false()), DOUBLE)
        projections.append(exp.alias_(value, ident(name)))
    if subscription:
        columns = project.schema["subscriptions"]
        subscriptions = current_subscription(project.schema, as_of, columns)
        query_joins.append((subscriptions.subquery(), "s"))
    if conversion is not None:
        event, until = conversion
        named = [exp.EQ(this=col("event"), expression=literal(event))] if event != ANY_EVENT else []
        converted = (
            exp.select(col("person_id"))
            .distinct()
            .from_(ident("events"))
            .where(exp.and_(*named, *time_bounds(project, as_of, until)))
        )
        query_joins.append((converted.subquery(), "c"))
        found = exp.not_(exp.Is(this=col("person_id", "c"), expression=exp.Null()))
        projections.append(exp.alias_(found, ident("converted")))
    query = exp.select(*projections).from_(inner.subquery("f"))
    for source, alias in query_joins:
        on = exp.EQ(this=col("person_id", alias), expression=col("person_id", "f"))
        query = query.join(exp.alias_(source, alias), on=on, join_type="LEFT")
    return query.order_by(col("person_id", "f"))


def _raw_timestamp(project: Project) -> str | None:
    """The events column holding the source's own tz-aware timestamp, when the plan runs on
    DuckDB and there is one (see :class:`~segctl.compiler.PlanContext`)."""
    return project.engine.driver.raw_timestamp if project.config.engine.type == "duckdb" else None


def time_bounds(project: Project, after: datetime | None, until: datetime) -> list[exp.Expr]:
    """``after < timestamp <= until`` on the events (no lower bound when ``after`` is None).

    On DuckDB the bounds are on the raw TIMESTAMPTZ column when there is one: the canonical
    ``timestamp`` is a per-row conversion that hides them from the Parquet scan, which then
    reads every row group.
    """
    from sqlglot import exp

    from segctl.compiler import col, time_bound

    raw = _raw_timestamp(project)
    column = col(raw or "timestamp")
    parts: list[exp.Expr] = [exp.LTE(this=column, expression=time_bound(until, raw))]
    if after is not None:
        parts.append(exp.GT(this=column.copy(), expression=time_bound(after, raw)))
    return parts


def behaviour_features(
    project: Project, as_of: datetime, conversion: tuple[str, datetime] | None = None
) -> FeatureMatrix:
    """Choose the features the data supports and compute them at ``as_of``.

    >>> matrix = behaviour_features(project, datetime(2026, 11, 17))  # doctest: +SKIP
    >>> matrix.frame().columns[:3]  # doctest: +SKIP
    ['person_id', 'video_rendered_7d', 'video_rendered_30d']
    """
    return compute(project, plan_features(project, as_of), as_of, conversion=conversion)


def behaviour_frame(
    project: Project,
    names: list[str] | None = None,
    as_of: str | datetime | None = None,
    *,
    scaled: bool = False,
) -> pl.DataFrame:
    """``segctl features --behaviour``: person_id and the behavioural features (all, or the
    named ones), raw or robust-scaled."""
    from segctl.ml import require_sklearn

    require_sklearn("segctl features --behaviour", ("numpy",))
    moment = parse_as_of(as_of, project.config.tz)
    matrix = behaviour_features(project, moment)
    if names:
        from segctl.definitions.source import did_you_mean
        from segctl.errors import UsageError

        for name in names:
            if name not in matrix.names:
                raise UsageError(
                    f"unknown behavioural feature '{name}'{did_you_mean(name, matrix.names)}"
                )
    frame = matrix.frame(scaled=scaled)
    return frame.select(["person_id", *names]) if names else frame


# ---- scaling ---------------------------------------------------------------------------

#: Scaled values are clipped to this many spreads from the median.
CLIP = 5.0


def robust_scale(values: np.ndarray, specs: list[FeatureSpec]) -> np.ndarray:
    """Features ready for distance-based models, robust to heavy tails.

    Non-negative measures (counts, sums, day spans, mrr) go through ``log1p``; every
    non-binary feature is then centred on its median and divided by its interquartile range
    (as a standard deviation: IQR / 1.349), falling back to the standard deviation when more
    than half the persons share one value (IQR 0, as for rare events), and clipped to
    +-:data:`CLIP`. Binary (one-hot) features stay 0/1. A constant feature becomes 0.
    The result is column-major (Fortran order), like :attr:`FeatureMatrix.values`.
    """
    import numpy as np

    scaled = np.zeros(values.shape, dtype=np.float64, order="F")
    for j, spec in enumerate(specs):
        x = values[:, j]
        if spec.binary:
            scaled[:, j] = x
            continue
        if x.min(initial=0.0) >= 0:
            x = np.log1p(x)
        low, median, high = np.percentile(x, [25, 50, 75])
        spread = (high - low) / 1.349
        if spread <= 0:
            spread = float(x.std())
        if spread <= 0:
            continue
        column = scaled[:, j]
        np.subtract(x, median, out=column)
        np.divide(column, spread, out=column)
        np.clip(column, -CLIP, CLIP, out=column)
    return scaled
