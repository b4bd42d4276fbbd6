"""``segctl init``: a working project from the templates, optionally with sample data."""

from __future__ import annotations

from pathlib import Path

from segctl.config import CONFIG_FILE
from segctl.errors import UsageError

CONFIG = """\
# segctl project configuration. Relative paths are resolved against this file's folder.
# Reference: https://github.com/segctl/segctl/blob/main/docs/ (and `segctl --help`).

data:
  # A file, a glob, or a list of files (.parquet, .csv, .csv.gz).
  events: {events}          # person_id, event, timestamp (+ any event properties)
  persons: {persons}          # person_id (unique), email, phone, country, created_at, ...
  subscriptions: {subscriptions}  # optional: person_id, status, plan, mrr, updated_at
  # Map your column names to segctl's (canonical name: your column):
  # columns:
  #   events: {{person_id: user_id, event: event_name, timestamp: ts}}

segments: segments/      # one segment per *.yaml file (recursive)
features: features.yaml  # named measures, used as `- feature: NAME`
state: .segctl/          # snapshots, history, outbox: managed by segctl
timezone: UTC            # where days begin, for distinct_days and streak

# engine:
#   memory_limit: 4GB        # DuckDB spills to temp_directory beyond this
#   temp_directory: .segctl/tmp
#   threads: 2

# privacy:
#   consent_column: marketing_opt_in   # false/empty: never uploaded or emailed
#   suppression_file: lists/suppressed.csv

# destinations:   # secrets come from the environment, never from this file
#   crm_hook: {{type: webhook, url: "https://crm.example.com/hooks", secret: "${{CRM_SECRET}}"}}
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
    "high_ltv": """\
name: high_ltv
description: purchases adding up to 500 or more
tags: [revenue]
rule:
  feature: ltv
  gte: 500
""",
}


def scaffold(directory: Path, *, sample: bool = False, force: bool = False) -> list[Path]:
    """Write a new project into ``directory``; returns the files created."""
    config = directory / CONFIG_FILE
    if config.exists() and not force:
        raise UsageError(f"{config} already exists (use --force to overwrite)")
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if sample:
        from segctl.sample import generate

        files = generate(directory / "sample_data")
        written.extend(files.values())
        paths = {
            "events": "sample_data/events.parquet",
            "persons": "sample_data/persons.csv",
            "subscriptions": "sample_data/subscriptions.csv",
        }
    else:
        paths = {
            "events": "data/events.parquet",
            "persons": "data/persons.csv",
            "subscriptions": "data/subscriptions.csv",
        }
    config.write_text(CONFIG.format(**paths), encoding="utf-8")
    written.append(config)
    features = directory / "features.yaml"
    if force or not features.exists():
        features.write_text(FEATURES, encoding="utf-8")
        written.append(features)
    segments = directory / "segments"
    segments.mkdir(exist_ok=True)
    for name, text in SEGMENTS.items():
        path = segments / f"{name}.yaml"
        if force or not path.exists():
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
