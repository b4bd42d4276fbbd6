"""``segctl init``: a working project from the templates, optionally with sample data.

With ``sample=True`` the project evaluates at once (``segctl run --dry-run``); without it,
segctl.yaml points at ``data/`` for the user's own files. Every option of segctl.yaml is
written out, the optional ones commented, so the file documents itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from segctl.config import CONFIG_FILE
from segctl.errors import UsageError

CONFIG = """\
# segctl project configuration. Relative paths are resolved against this file's folder.
# Every command has --help with examples; `segctl templates` lists the segment templates.

data:
  # A file, a glob, or a list of files (.parquet, .csv, .csv.gz, .json/.jsonl/.ndjson [.gz]),
  # or a source mapping; docs/data.md has every option and a preset per tool
  # (posthog, segment, rudderstack, amplitude, mixpanel, ga4).
  events: {events}          # person_id, event, timestamp (+ any event properties)
  persons: {persons}          # optional: person_id (unique), email, country, created_at, ...
  subscriptions: {subscriptions}  # optional: person_id, status, plan, mrr, updated_at
  # Map your column names to segctl's (canonical name: your column):
  # columns:
  #   events: {{person_id: user_id, event: event_name, timestamp: ts}}
  #   persons: {{person_id: id, created_at: signup_at}}
  # A tool's export, as a source mapping:
  #   events: {{path: exports/*.json.gz, preset: amplitude}}

segments: segments/      # one segment per *.yaml file (recursive)
features: features.yaml  # named measures, used as `- feature: NAME`
state: .segctl/          # snapshots, history, outbox: managed by segctl, keep it between runs
timezone: UTC            # where days begin, for distinct_days and streak (an IANA name)
# stale_after: 3d        # run/evaluate warn when as_of is further past the newest event (or off)

# engine:
#   memory_limit: 4GB        # DuckDB spills to temp_directory beyond this
#   temp_directory: .segctl/tmp
#   threads: 2

# privacy:
#   consent_column: marketing_opt_in   # false/empty: never uploaded to ad platforms or emailed
#   suppression_file: {suppression}  # person_id or email column: never contacted

# delivery:
#   max_exit_ratio: 0.5   # more than half a segment leaving in one run holds its exits until
#                         # `segctl push --confirm SEGMENT`

# Destinations, referenced from segment files (on_enter, on_exit, audiences). Secrets come from
# the environment (${{NAME}}), never from this file. Each also takes base_url, timeout,
# max_retries, rate_limit (requests per second) and concurrency.
# destinations:
#   crm_hook:
#     type: webhook
#     url: https://crm.example.com/hooks/segments
#     secret: ${{CRM_WEBHOOK_SECRET}}   # Standard Webhooks signing secret (whsec_...)
#   resend: {{type: resend, api_key: "${{RESEND_API_KEY}}", from: "Team <team@example.com>"}}
#   meta: {{type: meta, ad_account_id: "act_123", access_token: "${{META_ACCESS_TOKEN}}"}}
#   google:
#     type: google
#     operating_account_id: "1234567890"
#     access_token: ${{GOOGLE_ACCESS_TOKEN}}
#   tiktok: {{type: tiktok, advertiser_id: "7001", access_token: "${{TIKTOK_ACCESS_TOKEN}}"}}
#   export: {{type: file, path: exports/}}   # hashed CSVs for a manual upload
"""

FEATURES = """\
# Named measures, computed per person by `segctl features` and usable in segments as
#   - feature: active_days_30d
#     gte: 10
features:
  active_days_30d: {event: "*", within: 30d, measure: distinct_days}
  ltv: {event: purchase, measure: {sum: amount}}
  last_active: {event: "*", measure: last_seen}
"""

#: The scaffolded segments: each built on a built-in template (`segctl templates show NAME`).
SEGMENTS = {
    "power_users": """\
name: power_users
description: 10+ renders in the last 30 days on a paid plan
tags: [engagement]
rule:
  all:
    - template: power_users
      params: {event: video_rendered, min_count: 10, window: 30d}
    - property: plan
      in: [pro, premium]
""",
    "churn_risk": """\
name: churn_risk
description: no activity in the last 30 days
tags: [lifecycle]
template: churn_risk
params: {days: 30}
""",
    "active_users": """\
name: active_users
description: any activity in the last 7 days
tags: [lifecycle]
template: active_users
""",
    "new_users": """\
name: new_users
description: signed up in the last 7 days
tags: [lifecycle]
template: new_users
""",
    "trial_users": """\
name: trial_users
description: on a trial subscription now
tags: [conversion]
template: free_trial
""",
    "streak_7d": """\
name: streak_7d
description: active 7 days in a row, up to today or yesterday
tags: [engagement]
template: streak
params: {days: 7}
""",
    "high_ltv": """\
name: high_ltv
description: purchases adding up to 500 or more
tags: [revenue]
template: high_ltv
params: {amount: 500}
# on_enter:
#   - webhook: {destination: crm_hook}
# audiences:
#   - {destination: meta, audience_id: "23850000000000000"}
""",
}

GITIGNORE = """\
# segctl's state (snapshots, history, delivery outbox): keep it between runs, not in git.
.segctl/
"""

SAMPLE_PATHS = {
    "events": "sample_data/events.parquet",
    "persons": "sample_data/persons.csv",
    "subscriptions": "sample_data/subscriptions.csv",
    "suppression": "sample_data/lists/suppressed.csv",
}
DATA_PATHS = {
    "events": "data/events.parquet",
    "persons": "data/persons.csv",
    "subscriptions": "data/subscriptions.csv",
    "suppression": "lists/suppressed.csv",
}


def scaffold(
    directory: Path, *, sample: bool = False, force: bool = False, kept: list[Path] | None = None
) -> list[Path]:
    """Write a new project into ``directory``; returns the files created.

    An existing segctl.yaml is an error unless ``force``, which replaces it; existing segment
    files and features.yaml are always kept (a user's edits: ``force`` replaced them too,
    silently), listed in ``kept``; an existing .gitignore gets ``.segctl/`` added.

    >>> scaffold(Path("demo"), sample=True)  # doctest: +SKIP
    [PosixPath('demo/sample_data/persons.csv'), ...]
    """
    config = directory / CONFIG_FILE
    if config.exists() and not force:
        raise UsageError(f"{config} already exists (use --force to overwrite)")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if sample:
        from segctl.sample import generate

        # Anchored now, and nothing after it: the data a project would have today.
        now = datetime.now(UTC).replace(microsecond=0)
        written.extend(generate(directory / "sample_data", anchor=now, past_only=True).values())
    config.write_text(CONFIG.format(**(SAMPLE_PATHS if sample else DATA_PATHS)), encoding="utf-8")
    written.append(config)
    files = {directory / "features.yaml": FEATURES}
    files |= {directory / "segments" / f"{name}.yaml": text for name, text in SEGMENTS.items()}
    for path, text in files.items():
        if path.exists():
            if kept is not None:
                kept.append(path)
            continue
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE, encoding="utf-8")
        written.append(ignore)
    elif ".segctl/" not in ignore.read_text(encoding="utf-8").split():
        with ignore.open("a", encoding="utf-8") as handle:  # a user's file: add, never replace
            handle.write("\n" + GITIGNORE)
        written.append(ignore)
    return written


def next_steps(directory: Path, *, sample: bool) -> str:
    """What to type after ``segctl init``."""
    cd = "" if directory.resolve() == Path.cwd().resolve() else f"cd {directory} && "
    if sample:
        return f"next: {cd}segctl validate && segctl run --dry-run"
    return (
        f"next: put your events, persons and subscriptions files in {directory / 'data'} (or "
        f"point data: in {directory / CONFIG_FILE} at them), then {cd}segctl validate"
    )
