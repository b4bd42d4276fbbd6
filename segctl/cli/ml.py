"""``segctl discover`` and ``segctl lookalike`` (SPEC 7): thin commands over :mod:`segctl.ml`.

They need the optional ``ml`` extra (``pip install 'segctl[ml]'``); without it they exit 3 with
that advice. Everything heavy is imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segctl.cli.exits import handled
from segctl.cli.frames import check_out, write_frame
from segctl.cli.options import AsOfOpt, DebugOpt, Format, FormatOpt, ProjectOpt, QuietOpt, load
from segctl.cli.output import note, print_rows, progress
from segctl.errors import UsageError

SeedOpt = Annotated[
    int,
    typer.Option("--seed", help="Seed for sampling and models: same data and seed, same result."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite files written before.")]

DISCOVER_COLUMNS = [
    "cluster",
    "name",
    "size",
    "share",
    "conversion_rate",
    "lift",
    "suggested_use",
    "precision",
    "recall",
    "rule",
]


def discover(
    k: Annotated[
        str,
        typer.Option(
            "--k", help="Number of clusters, or auto (best Calinski-Harabasz index, 2..--max-k)."
        ),
    ] = "auto",
    conversion_event: Annotated[
        str | None,
        typer.Option(
            "--conversion-event",
            "-e",
            help="Event counted as a conversion in the holdout period (for rates and lift); "
            "default: any event (the persons who came back).",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            "--window",
            help="Holdout period: features are computed at as_of minus this, conversions "
            "counted after it.",
        ),
    ] = "30d",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write one segment file per cluster into.",
            show_default=False,
        ),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Segment names are PREFIX_1, PREFIX_2, ...")
    ] = "discovered",
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=6, help="Maximum depth of each rule's tree.")
    ] = 3,
    max_k: Annotated[
        int, typer.Option("--max-k", min=2, max=30, help="Largest k tried by --k auto.")
    ] = 8,
    assignments: Annotated[
        Path | None,
        typer.Option(
            "--assignments",
            help="Also write person_id, cluster to a .parquet or .csv file.",
            show_default=False,
        ),
    ] = None,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Cluster persons on their behaviour and describe each cluster as a segment rule.

    Features (event counts, recency, active days, sums, properties) are computed at as_of
    minus --window; the conversion event is counted in the window after it. Each cluster is
    described by a shallow decision tree, written as a segment file that `segctl validate`
    accepts, with the rule's precision and recall against the cluster, the cluster's
    conversion rate and lift, and a suggested use (acquisition, retention, upsell).
    Needs `pip install 'segctl[ml]'`.

    Examples:\n
      segctl discover --conversion-event purchase --as-of 2026-11-17\n
      segctl discover --k 5 -e purchase --window 14d --out segments/discovered --seed 7\n
      segctl discover -e purchase --format json > clusters.json
    """
    with handled(debug):
        clusters = _parse_k(k)
        check_out(assignments)
        proj = load(project)
        if out is not None and not force:
            _refuse_existing(out, prefix)
        from segctl.ml.discover import discover as run_discover

        with progress("Discovering segments…", quiet):
            found = run_discover(
                proj,
                k=clusters,
                conversion_event=conversion_event,
                window=window,
                as_of=as_of,
                seed=seed,
                depth=depth,
                max_k=max_k,
                prefix=prefix,
            )
        if out is not None:
            if force:
                _remove_stale(out, prefix)
            found.write(out)
        if assignments is not None:
            write_frame(found.assignments(), assignments)
        document = found.to_dict()
        rows = [[c[key] for key in DISCOVER_COLUMNS] for c in document["clusters"]]
        title = f"{found.k} clusters of {found.persons} persons at {document['train_as_of']}" + (
            f"; conversion = {_conversion(found.conversion_event)} in the {found.window} after "
            f"(base rate {found.base_rate:.2%})"
            if found.base_rate is not None
            else ""
        )
        print_rows(
            fmt.value,
            DISCOVER_COLUMNS,
            rows,
            title=title,
            numeric=["cluster", "size", "share", "conversion_rate", "lift", "precision", "recall"],
            document=document,
        )
        if found.k_scores:
            scores = ", ".join(f"k={n}: {s:.1f}" for n, s in found.k_scores.items())
            note(f"k={found.k} has the highest Calinski-Harabasz index ({scores})")
        if out is not None:
            note(f"wrote {found.k} segment files to {out} (check them with segctl validate)")
        if assignments is not None:
            note(f"wrote {found.persons} cluster assignments to {assignments}")


def _parse_k(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--k {text!r}: a number of clusters (2 or more) or auto") from None
    if value < 2:
        raise UsageError(f"--k {text!r}: at least 2 clusters")
    return value


def _refuse_existing(folder: Path, prefix: str) -> None:
    existing = sorted(folder.glob(f"{prefix}_*.yaml")) if folder.is_dir() else []
    if existing:
        raise UsageError(
            f"{existing[0]} exists (from an earlier discover?); use --force to replace the "
            f"{prefix}_*.yaml files, or another --prefix"
        )


def _remove_stale(folder: Path, prefix: str) -> None:
    """Remove the segment files an earlier discover wrote with this prefix (only those)."""
    import re

    for path in folder.glob(f"{prefix}_*.yaml"):
        if re.fullmatch(rf"{re.escape(prefix)}_\d+\.yaml", path.name):
            first = path.read_text(encoding="utf-8").split("\n", 1)[0]
            if first.startswith("# Discovered by `segctl discover`"):
                path.unlink()


def lookalike(
    segment: Annotated[str, typer.Argument(help="The seed segment.")],
    size: Annotated[
        str,
        typer.Option("--size", "-n", help="How many to list: a share of non-members (5%) or N."),
    ] = "5%",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write person_id, score, rank to a .csv or .parquet file.",
            show_default=False,
        ),
    ] = None,
    as_segment: Annotated[
        str | None,
        typer.Option(
            "--as-segment",
            help="Also write segments/NAME.yaml, a static list segment over the list "
            "(the list goes to --out, default lists/NAME.csv).",
            show_default=False,
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, max=10, help="Cross-fitting folds.")] = 3,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Rank non-members of a segment by similarity to its members (a propensity model).

    Gradient-boosted trees on the behavioural features learn members vs non-members; every
    person is scored by a model trained on the other folds, so the AUC and the precision at N
    are holdout figures. The top N non-members are written as a list and, with --as-segment,
    as a static list segment that `segctl validate` accepts. Needs `pip install 'segctl[ml]'`.

    Examples:\n
      segctl lookalike power_users --size 5% --as-of 2026-11-17\n
      segctl lookalike high_ltv --size 1000 --out lists/high_ltv_lookalike.csv\n
      segctl lookalike power_users --as-segment power_users_lookalike --format json
    """
    with handled(debug):
        if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
            raise UsageError(f"--out {out}: use a .csv or .parquet file name")
        if out is not None and out.exists() and not force and as_segment is None:
            raise UsageError(f"{out} exists; use --force to overwrite it")
        proj = load(project)
        from segctl.ml.lookalike import lookalike as run_lookalike
        from segctl.ml.lookalike import segment_target, write_segment

        target = None
        if as_segment is not None:
            target = segment_target(proj, as_segment, segment, out, force=force)
        with progress("Training the propensity model…", quiet):
            result = run_lookalike(proj, segment, size=size, as_of=as_of, seed=seed, folds=folds)
        written: list[str] = []
        if target is not None:
            write_segment(result, target)
            written = [str(target.list_path), str(target.segment_path)]
        elif out is not None:
            result.write_list(out)
            written = [str(out)]
        document = result.to_dict()
        document["files"] = written
        columns = [
            "segment",
            "members",
            "size",
            "expected_reach",
            "auc",
            "precision_at_n",
            "lift_at_n",
            "base_rate",
        ]
        print_rows(
            fmt.value,
            columns,
            [[document[c] for c in columns]],
            title=f"Lookalike of {segment} at {document['as_of']} ({folds}-fold holdout)",
            numeric=columns[1:],
            document=document,
        )
        if fmt is Format.table and not written:
            top = result.ranked.head(10)
            print_rows("table", top.columns, top.rows(), title="Top non-members", numeric=["score"])
        for path in written:
            note(f"wrote {path}")


def _conversion(event: str | None) -> str:
    from segctl.ml.features import ANY_EVENT

    return "any event" if event == ANY_EVENT else str(event)
