"""Malformed projects: each gives its exit code, one message at ``file:line:col`` saying what is
wrong and how to fix it, and no traceback (SPEC sections 1-3).

Every case changes one thing in the valid project of conftest and runs ``segctl validate``;
definition and config problems exit 3, data problems exit 4. Every case then runs ``segctl run``
(which evaluates as ``evaluate`` does) on a project that already has state (SPEC 1: bad input
changes no state): it must stop with the same message and leave the state folder byte for byte
as it was.

The catalog covers segctl.yaml, segment files, features, lists and data files: wrong types,
missing columns, duplicate ids, malformed CSV, truncated Parquet, huge values, unicode, empty
files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, CONFIG, PERSONS, SUBSCRIPTIONS, Cli, MakeProject, build_project

from segctl.engine.read_errors import SAMPLED_ROWS

DEFINITION, DATA = 3, 4


@dataclass(frozen=True)
class Case:
    id: str
    code: int
    where: str  # the location the message starts with: file[:line:col]
    message: str  # key wording of the message
    project: dict[str, Any] = field(default_factory=dict)  # make_project keywords
    setup: Callable[[Path], None] | None = None  # changes files after the project is written


def segment(text: str, name: str = "a", **more: str) -> dict[str, Any]:
    """make_project keywords for one segment file (plus ``more`` files by name)."""
    files = {name: textwrap.dedent(text), **{k: textwrap.dedent(v) for k, v in more.items()}}
    return {"segments": files}


def config(old: str, new: str) -> dict[str, Any]:
    assert old in CONFIG
    return {"config": CONFIG.replace(old, new)}


def write_events_table(table: pa.Table) -> Callable[[Path], None]:
    return lambda root: pq.write_table(table, root / "data/events.parquet")


def write_bytes(name: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Replace a project file with ``data`` (or ``data(current bytes)``)."""

    def setup(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)

    return setup


def events_without(column: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / "data/events.parquet"
        table = pq.read_table(path)
        pq.write_table(table.drop_columns([column]), path)

    return setup


LATIN1 = "caf\xe9".encode("latin-1")  # not UTF-8
LOGIN_ONLY = {
    "segments": {"a": "name: a\nrule: {event: login, count: {gte: 1}}\n"},
    "features": "features: {}\n",
}
JSON_LINE = '{"person_id": "p1", "event": "login", "timestamp": "2026-11-16T10:00:00Z"}\n'
CHARGES = (
    "\n    - {path: data/events.parquet}\n    - {path: data/charges.csv, event: purchase, "
    "timestamp_unit: s, columns: {person_id: customer, timestamp: created}}"
)
FILES = "destinations:\n  out: {type: file, path: out}\n"
AUDIENCE = {"a": "name: a\nrule: {property: plan, eq: pro}\naudiences:\n  - {destination: out}\n"}


HOOK = "destinations:\n  hook: {type: webhook, secret: '${SEGCTL_TEST_UNSET}', url: 'https://x'}\n"

CONFIG_CASES = [
    Case("config-unknown-key", DEFINITION, "segctl.yaml:8:1",
         "unknown key 'segmnets' in segctl.yaml (did you mean 'segments'?",
         {"config": CONFIG + "segmnets: other/\n"}),
    Case("config-missing-env-var", DEFINITION, "segctl.yaml:9:33",
         "environment variable SEGCTL_TEST_UNSET is not set (export it)",
         {"config": CONFIG + HOOK}),
    Case("config-bad-timezone", DEFINITION, "segctl.yaml:7:11",
         "unknown timezone 'Mars/Olympus' (use an IANA name like UTC or Europe/Berlin)",
         config("timezone: UTC", "timezone: Mars/Olympus")),
    Case("config-missing-data-section", DEFINITION, "segctl.yaml:1:1",
         "missing 'data' section", {"config": "segments: segments/\n"}),
    Case("config-missing-events", DEFINITION, "segctl.yaml:2:3",
         "missing data.events: a file, glob, or list of files",
         config("  events: data/events.parquet\n", "")),
    Case("config-unknown-data-key", DEFINITION, "segctl.yaml:3:3",
         "unknown key 'person' in 'data' (did you mean 'persons'?",
         config("  persons:", "  person: data/other.csv\n  persons:")),
    Case("config-invalid-yaml", DEFINITION, "segctl.yaml:2:1", "invalid YAML",
         {"config": "data: [\n"}),
    Case("config-columns-unknown-table", DEFINITION, "segctl.yaml:5:13",
         "unknown key 'person' in data.columns (did you mean 'persons'?",
         config("segments:", "  columns: {person: {person_id: id}}\nsegments:")),
    Case("config-engine-threads", DEFINITION, "segctl.yaml:8:19",
         "engine.threads must be a positive whole number",
         {"config": CONFIG + "engine: {threads: 0}\n"}),
    Case("config-segments-folder-missing", DEFINITION, "drafts",
         "segments folder not found (set 'segments' in segctl.yaml)",
         config("segments: segments/", "segments: drafts/")),
    Case("config-not-a-mapping", DEFINITION, "segctl.yaml",
         "expected a mapping with a 'data' section", {"config": "- data\n- segments\n"}),
    Case("config-empty-file", DEFINITION, "segctl.yaml",
         "expected a mapping with a 'data' section", {"config": ""}),
    Case("config-not-utf8", DEFINITION, "segctl.yaml",
         "cannot read file: 'utf-8' codec can't decode byte 0xe9",
         {}, write_bytes("segctl.yaml", lambda old: old + b"# " + LATIN1 + b"\n")),
    Case("config-tab-indentation", DEFINITION, "segctl.yaml:3:1",
         "invalid YAML: found character '\\t' that cannot start any token",
         config("  persons:", "\tpersons:")),
    Case("config-state-not-a-path", DEFINITION, "segctl.yaml:8:8",
         "'state' must be a path, like state: .segctl/", {"config": CONFIG + "state: [a, b]\n"}),
    Case("config-exit-ratio-out-of-range", DEFINITION, "segctl.yaml:8:28",
         "delivery.max_exit_ratio must be a number in (0, 1]",
         {"config": CONFIG + "delivery: {max_exit_ratio: 2}\n"}),
    Case("config-destination-timeout-text", DEFINITION, "segctl.yaml:9:41",
         "destination 'out': 'timeout' must be a number >= 0.001",
         {"config": CONFIG + "destinations:\n  out: {type: file, path: out, timeout: soon}\n"}),
    Case("config-destination-base-url", DEFINITION, "segctl.yaml:9:42",
         "destination 'out': 'base_url' must be an http(s) URL with a host, not 'not a url'",
         {"config": CONFIG
          + "destinations:\n  out: {type: file, path: out, base_url: not a url}\n"}),
    Case("config-destination-google-account", DEFINITION, "segctl.yaml:10:42",
         "destination 'ads': 'operating_account_id' must be digits (dashes allowed), "
         "not '12-34-abc'",
         {"config": CONFIG + "destinations:\n  ads:\n    {type: google, operating_account_id: "
                             "12-34-abc, access_token: t}\n"}),
    Case("config-destination-tiktok-type", DEFINITION, "segctl.yaml:10:56",
         "destination 'tt': 'calculate_type' must be one of EMAIL_SHA256, PHONE_SHA256, not "
         "'MAID_SHA256'",
         {"config": CONFIG + "destinations:\n  tt:\n    {type: tiktok, advertiser_id: '1', "
                             "calculate_type: MAID_SHA256, access_token: t}\n"}),
    Case("config-consent-column-unknown", DEFINITION, "privacy.consent_column",
         "'opt_in' is not a column of the persons data (columns are: person_id, email, plan",
         {"config": CONFIG + "privacy: {consent_column: opt_in}\n" + FILES,
          "segments": AUDIENCE}),
]  # fmt: skip

SEGMENT_CASES = [
    Case("unknown-operator", DEFINITION, "segments/a.yaml:4:11",
         "unknown operator 'gtee' (did you mean 'gte'?)",
         segment("""\
             name: a
             rule:
               event: login
               count: {gtee: 3}
             """)),
    Case("action-missing-key", DEFINITION, "segments/a.yaml:4:11",
         "an emit action needs 'event'",
         segment("""\
             name: a
             rule: {property: plan, eq: pro}
             on_enter:
               - emit: {}
             """)),
    Case("last-on-a-property", DEFINITION, "segments/a.yaml:2:33",
         "'last' applies to an event condition, not to a property condition (last: 5 beside "
         "event: keeps each person's 5 newest matching events)",
         segment("name: a\nrule: {property: plan, eq: pro, last: 3}\n")),
    Case("max-gap-on-an-event", DEFINITION, "segments/a.yaml:2:39",
         "'max_gap' applies to a sequence, not to an event condition",
         segment("name: a\nrule: {event: login, count: {gte: 1}, max_gap: 7d}\n")),
    Case("calendar-in-a-measure", DEFINITION, "segments/a.yaml:3:58",
         "'calendar' applies only to an event condition's window, not to a comparator",
         segment("name: a\nrule:\n  {event: login, active_periods: {every: 7d, of_last: 4, "
                 "calendar: true, gte: 2}}\n")),
    Case("unknown-segment-key", DEFINITION, "segments/a.yaml:2:1",
         "unknown key 'descripton' in a segment file (did you mean 'description'?",
         segment("name: a\ndescripton: x\nrule: {property: plan, eq: pro}\n")),
    Case("unknown-column", DEFINITION, "segments/a.yaml:4:17",
         "unknown person property 'plna' (did you mean 'plan'?)",
         segment("""\
             name: a
             rule:
               all:
                 - property: plna
                   eq: pro
             """)),
    Case("text-against-number-column", DEFINITION, "segments/a.yaml:2:28",
         "'gte': expected a number, got the text 'old' ('age' is a number column)",
         segment("name: a\nrule: {property: age, gte: old}\n")),
    Case("within-on-a-text-column", DEFINITION, "segments/a.yaml:2:32",
         "'within' applies to timestamp values, not to a string value",
         segment("name: a\nrule: {property: plan, within: 7d}\n")),
    Case("two-measures", DEFINITION, "segments/a.yaml:3:3",
         "an event condition takes exactly one measure, found count, distinct_days",
         segment("""\
             name: a
             rule:
               event: login
               count: {gte: 1}
               distinct_days: {gte: 2}
             """)),
    Case("no-measure", DEFINITION, "segments/a.yaml:3:3",
         "an event condition needs a measure, one of count, distinct_days",
         segment("name: a\nrule:\n  event: login\n  within: 7d\n")),
    Case("unknown-operator-unlike-any", DEFINITION, "segments/a.yaml:5:3",
         "unknown operator 'colour' (valid here: property, eq, ne, gt, gte, lt, lte, between, "
         "in, not_in, contains, starts_with, ends_with, regex, is_set, within, older_than, "
         "before, after)",
         segment("name: a\nrule:\n  property: plan\n  eq: pro\n  colour: red\n")),
    Case("unknown-operator-of-a-sum", DEFINITION, "segments/a.yaml:4:21",
         "unknown operator 'colour' (valid here: eq, ne, gt, gte, lt, lte, between, in, "
         "not_in, contains, starts_with, ends_with, regex, is_set, within, older_than, before, "
         "after, of)",
         segment("name: a\nrule:\n  event: purchase\n  sum: {of: amount, colour: 1, gte: 1}\n")),
    Case("unknown-reference-unlike-any", DEFINITION, "segments/a.yaml:2:17",
         "unknown segment 'vip' (segments: a, big_spenders)",
         segment("name: a\nrule: {segment: vip}\n",
                 big_spenders="name: big_spenders\nrule: {property: plan, eq: pro}\n")),
    Case("bad-duration", DEFINITION, "segments/a.yaml:4:11",
         "'within': expected a duration like 30d (units h, d, w, y), got '7days'",
         segment("name: a\nrule:\n  event: login\n  within: 7days\n  count: {gte: 1}\n")),
    Case("between-window-order", DEFINITION, "segments/a.yaml:4:12",
         "'between': the first duration must be the larger one (between: [90d, 30d])",
         segment("name: a\nrule:\n  event: login\n  between: [30d, 90d]\n  count: {gte: 1}\n")),
    Case("unknown-reference", DEFINITION, "segments/a.yaml:2:17",
         "unknown segment 'big_spender' (did you mean 'big_spenders'?)",
         segment("name: a\nrule: {segment: big_spender}\n",
                 big_spenders="name: big_spenders\nrule: {property: plan, eq: pro}\n")),
    Case("reference-cycle", DEFINITION, "segments/c.yaml:2:7",
         "segment references form a cycle: a -> b -> c -> a",
         segment("name: a\nrule: {segment: b}\n", b="name: b\nrule: {segment: c}\n",
                 c="name: c\nrule: {segment: a}\n")),
    Case("self-reference", DEFINITION, "segments/a.yaml:4:5",
         "segment references form a cycle: a -> a",
         segment("name: a\nrule: {property: plan, eq: pro}\nexclude:\n  - segment: a\n")),
    Case("duplicate-segment-name", DEFINITION, "segments/b.yaml:1:7",
         "segment 'a' is already defined at segments/a.yaml:1",
         segment("name: a\nrule: {property: plan, eq: pro}\n",
                 b="name: a\nrule: {property: plan, eq: free}\n")),
    Case("invalid-name", DEFINITION, "segments/a.yaml:1:7",
         "segment name 'Power-Users' must match [a-z][a-z0-9_]* (like power_users)",
         segment("name: Power-Users\nrule: {property: plan, eq: pro}\n")),
    Case("invalid-yaml", DEFINITION, "segments/a.yaml:3:1",
         "invalid YAML: expected ',' or '}'",
         segment("name: a\nrule: {property: plan, eq: pro\n")),
    Case("empty-file", DEFINITION, "segments/a.yaml:1:1",
         "empty segment file (expected name: and rule:)", segment("")),
    Case("duplicate-key", DEFINITION, "segments/a.yaml:3:1",
         "duplicate key 'rule' (a mapping takes each key once: keep one)",
         segment("name: a\nrule: {property: plan, eq: pro}\nrule: {property: plan, eq: free}\n")),
    Case("unknown-condition-kind", DEFINITION, "segments/a.yaml:2:8",
         "unknown condition 'evnt' (did you mean 'event'?)",
         segment("name: a\nrule: {evnt: login, count: {gte: 1}}\n")),
    Case("template-unknown", DEFINITION, "segments/a.yaml:2:11",
         "unknown template 'power_user' (did you mean 'power_users'?)",
         segment("name: a\ntemplate: power_user\nparams: {event: login}\n")),
    Case("template-missing-param", DEFINITION, "segments/a.yaml:2:11",
         "template 'power_users' needs parameter 'event' "
         "(power_users(event, min_count=10, window=30d))",
         segment("name: a\ntemplate: power_users\n")),
    Case("template-unknown-param", DEFINITION, "segments/a.yaml:3:9",
         "template 'churn_risk' has no parameter 'dayz' (did you mean 'days'? parameters: days)",
         segment("name: a\ntemplate: churn_risk\nparams: {dayz: 3}\n")),
    Case("template-param-type", DEFINITION, "segments/a.yaml:5:15",
         "template 'churn_risk' parameter 'days': expected a whole number, got 'soon'",
         segment("""\
             name: a
             rule:
               any:
                 - template: churn_risk
                   params: {days: soon}
             """)),
    Case("feature-unknown", DEFINITION, "segments/a.yaml:2:17",
         "unknown feature 'render_30d' (did you mean 'renders_30d'?)",
         segment("name: a\nrule: {feature: render_30d, gte: 1}\n")),
    Case("feature-unknown-unlike-any", DEFINITION, "segments/a.yaml:2:17",
         "unknown feature 'zzz' (features: ltv, renders_30d; define it in features.yaml)",
         segment("name: a\nrule: {feature: zzz, gte: 1}\n")),
    Case("regex-lookahead", DEFINITION, "segments/a.yaml:2:32",
         "'regex': DuckDB's regular expressions (RE2) cannot read this one: invalid perl "
         "operator: (?= (lookarounds, backreferences and possessive or atomic groups are not "
         "supported; rewrite it without them)",
         segment("name: a\nrule: {property: email, regex: 'gmail(?=\\.com)'}\n")),
    Case("regex-backreference", DEFINITION, "segments/a.yaml:2:32",
         "'regex': DuckDB's regular expressions (RE2) cannot read this one: invalid escape "
         "sequence: \\1",
         segment("name: a\nrule: {property: email, regex: '(a)\\1'}\n")),
    Case("regex-invalid", DEFINITION, "segments/a.yaml:2:32",
         "'regex': invalid regular expression: unterminated character set",
         segment("name: a\nrule: {property: email, regex: '([a-z'}\n")),
    Case("in-not-a-list", DEFINITION, "segments/a.yaml:2:28",
         "'in': expected a non-empty list, like in: [a, b]",
         segment("name: a\nrule: {property: plan, in: pro}\n")),
    Case("null-value", DEFINITION, "segments/a.yaml:2:28",
         "'eq': a value cannot be null here (use is_set: false to test for a missing value)",
         segment("name: a\nrule: {property: plan, eq: null}\n")),
    Case("unquoted-boolean-for-text", DEFINITION, "segments/a.yaml:2:28",
         "'eq': expected text, got the boolean true (quote it: 'true')",
         segment("name: a\nrule: {property: plan, eq: yes}\n")),
    Case("where-unknown-property", DEFINITION, "segments/a.yaml:4:11",
         "unknown event property 'amont' (did you mean 'amount'?)",
         segment("name: a\nrule:\n  event: purchase\n  where: {amont: {gte: 1}}\n"
                 "  count: {gte: 1}\n")),
    Case("sum-of-text", DEFINITION, "segments/a.yaml:4:13",
         "cannot take sum of 'format': it is a string column (sum and avg need numbers)",
         segment("name: a\nrule:\n  event: purchase\n  sum: {of: format, gte: 1}\n")),
    Case("last-not-positive", DEFINITION, "segments/a.yaml:4:9",
         "'last' must be a positive whole number, got 0",
         segment("name: a\nrule:\n  event: purchase\n  last: 0\n  count: {gte: 1}\n")),
    Case("bad-from-date", DEFINITION, "segments/a.yaml:4:9",
         "'from': expected a date or timestamp like 2026-01-01 or 2026-01-01T12:00:00Z, "
         "got 'yesterday'",
         segment("name: a\nrule:\n  event: login\n  from: yesterday\n  count: {gte: 1}\n")),
    Case("to-before-from", DEFINITION, "segments/a.yaml:5:7", "'to' must be after 'from'",
         segment("name: a\nrule:\n  event: login\n  from: 2026-02-01\n  to: 2026-01-01\n"
                 "  count: {gte: 1}\n")),
    Case("list-file-missing", DEFINITION, "segments/a.yaml:2:21",
         "list file not found: lists/nope.csv",
         segment("name: a\nrule: {list: {file: lists/nope.csv}}\n")),
    Case("list-key-invalid", DEFINITION, "segments/a.yaml:2:41",
         "a list key is person_id or email, not 'mail' (did you mean 'email'?)",
         segment("name: a\nrule: {list: {file: lists/vip.csv, key: mail}}\n")),
    Case("subscription-without-data", DEFINITION, "segments/a.yaml:2:8",
         "a subscription condition needs subscription data: set data.subscriptions",
         {**segment("name: a\nrule: {subscription: {status: {eq: active}}}\n"),
          **config("  subscriptions: data/subscriptions.csv\n", "")}),
    Case("number-against-a-text-column", DEFINITION, "segments/a.yaml:2:34",
         "'gte' compares a number with a text column: the values would compare as text "
         "('500' > '2900'). If the column should hold numbers, some value in the data is not "
         "one: fix it; to compare text, quote the value (gte: '...')",
         {**segment("name: a\nrule: {subscription: {mrr: {gte: 2900}}}\n"),
          "subscriptions": SUBSCRIPTIONS.replace(",2900,", ",29x0,")}),
    Case("number-list-against-a-text-column", DEFINITION, "segments/a.yaml:2:38",
         "'between' compares a number with a text column",
         {**segment("name: a\nrule: {subscription: {mrr: {between: ['1', 3000]}}}\n"),
          "subscriptions": SUBSCRIPTIONS.replace(",2900,", ",29x0,")}),
    Case("huge-integer", DEFINITION, "segments/a.yaml:2:28",
         "'gte': 1000000000000000000000000000000000000000 is out of range: whole numbers are "
         "64-bit (at most 9223372036854775807)",
         segment(f"name: a\nrule: {{property: age, gte: {10**39}}}\n")),
    Case("infinite-number", DEFINITION, "segments/a.yaml:2:28",
         "'gte': expected a finite number, got inf",
         segment("name: a\nrule: {property: age, gte: .inf}\n")),
    Case("not-a-number", DEFINITION, "segments/a.yaml:2:27",
         "'eq': expected a finite number, got nan",
         segment("name: a\nrule: {property: age, eq: .nan}\n")),
    Case("huge-duration", DEFINITION, "segments/a.yaml:2:30",
         "'within': a duration of at most 500y, got '99999999999d' (leave the window out",
         segment("name: a\nrule: {event: login, within: 99999999999d, count: {gte: 1}}\n")),
    Case("date-out-of-range", DEFINITION, "segments/a.yaml:2:28",
         "'from': expected a date or timestamp from year 1000 to 8999, got '0001-01-01'",
         segment("name: a\nrule: {event: login, from: 0001-01-01, count: {gte: 1}}\n")),
    Case("impossible-date", DEFINITION, "segments/a.yaml:2:38",
         "'before': expected a date or timestamp like 2026-01-01 or 2026-01-01T12:00:00Z, "
         "got '2026-02-30'",
         segment("name: a\nrule: {property: created_at, before: 2026-02-30}\n")),
    Case("unicode-name", DEFINITION, "segments/a.yaml:1:7",
         "segment name 'café' must match [a-z][a-z0-9_]* (like power_users)",
         segment("name: café\nrule: {property: plan, eq: pro}\n")),
    Case("segment-not-utf8", DEFINITION, "segments/vip.yaml",
         "cannot read file: 'utf-8' codec can't decode byte 0xe9",
         {}, write_bytes("segments/vip.yaml", b"name: vip\nrule: {property: plan, eq: " + LATIN1
                         + b"}\n")),
    Case("nul-character", DEFINITION, "segments/a.yaml:1:8",
         "invalid YAML: the character U+0000 is not allowed",
         segment("name: a\x00\nrule: {property: plan, eq: pro}\n")),
    Case("segment-is-a-list", DEFINITION, "segments/a.yaml:1:1",
         "a segment file must be a mapping with 'name' and 'rule'", segment("- name: a\n")),
    Case("rule-is-text", DEFINITION, "segments/a.yaml:2:7",
         "a condition must be a mapping with one of: all, any, not, property, event",
         segment("name: a\nrule: power\n")),
    Case("between-one-value", DEFINITION, "segments/a.yaml:2:32",
         "'between': expected two values, like between: [1, 10]",
         segment("name: a\nrule: {property: age, between: [1]}\n")),
    Case("unknown-destination", DEFINITION, "segments/a.yaml:4:19", "unknown destination 'nope'",
         segment("name: a\nrule: {property: plan, eq: pro}\naudiences:\n"
                 "  - {destination: nope, audience_id: '1'}\n")),
]  # fmt: skip

FEATURE_CASES = [
    Case("feature-unknown-measure", DEFINITION, "features.yaml:2:30",
         "unknown measure 'cnt' (did you mean 'count'?)",
         {"features": "features:\n  x: {event: login, measure: cnt}\n"}),
    Case("feature-invalid-name", DEFINITION, "features.yaml:2:3",
         "feature name 'X-1' must match [a-z][a-z0-9_]*",
         {"features": "features:\n  X-1: {event: login, measure: count}\n"}),
    Case("feature-without-measure", DEFINITION, "features.yaml:2:3",
         "feature 'x' needs 'measure': one of count",
         {"features": "features:\n  x: {event: login}\n"}),
    Case("feature-unknown-column", DEFINITION, "features.yaml:2:29",
         "unknown event property 'amont' (did you mean 'amount'?)",
         {"features": "features:\n  x: {event: login, where: {amont: {gt: 1}}, measure: count}\n"}),
    Case("features-not-a-mapping", DEFINITION, "features.yaml:1:1",
         "features.yaml must have a 'features' mapping",
         {"features": "- ltv\n"}),
    Case("features-file-missing", DEFINITION, "features.yaml", "file not found",
         {"features": None}),
    Case("feature-duplicate-name", DEFINITION, "features.yaml:3:3",
         "duplicate key 'x' (a mapping takes each key once: keep one)",
         {"features": "features:\n  x: {event: login, measure: count}\n"
                      "  x: {event: purchase, measure: count}\n"}),
    Case("features-not-utf8", DEFINITION, "features.yaml",
         "cannot read file: 'utf-8' codec can't decode byte 0xe9",
         {}, write_bytes("features.yaml", b"features:\n  x: {event: " + LATIN1
                         + b", measure: count}\n")),
    Case("feature-huge-window", DEFINITION, "features.yaml:2:29",
         "'within': a duration of at most 500y",
         {"features": "features:\n  x: {event: login, within: 99999999999d, measure: count}\n"}),
]  # fmt: skip

DATA_CASES = [
    Case("data-file-missing", DATA, "data.persons",
         "file not found: data/people.csv (paths are relative to the project folder",
         config("data/persons.csv", "data/people.csv")),
    Case("data-glob-matches-nothing", DATA, "data.events",
         "no files match 'data/events/*.parquet'",
         config("data/events.parquet", "data/events/*.parquet")),
    Case("data-unsupported-file-type", DATA, "data.persons", "unsupported file type",
         {**config("data/persons.csv", "data/persons.xlsx"),
          "files": {"data/persons.xlsx": "PK\x03\x04"}}),  # a zip's magic, as Excel writes
    Case("data-missing-required-column", DATA, "data/subscriptions.csv",
         "missing required column 'status' (columns are: person_id, state, plan, mrr, "
         "updated_at; rename yours with data.columns.subscriptions: {status: your_column})",
         {"subscriptions": SUBSCRIPTIONS.replace(",status,", ",state,")}),
    Case("data-renamed-column-missing", DATA, "data/persons.csv",
         "missing column 'user_id' (mapped to 'person_id' in data.columns.persons)",
         config("segments:", "  columns: {persons: {person_id: user_id}}\nsegments:")),
    Case("data-duplicate-person-ids", DATA, "data/persons.csv",
         "duplicate person_id values, e.g. 'p1' (2 rows); person ids must be unique",
         {"persons": PERSONS + "p1,again@example.com,pro,DE,1,2026-01-01T00:00:00Z\n"}),
    Case("data-empty-person-id", DATA, "data/persons.csv",
         "1 row(s) have an empty person_id",
         {"persons": PERSONS + ",nobody@example.com,pro,DE,1,2026-01-01T00:00:00Z\n"}),
    Case("data-bad-timestamp-csv", DATA, "data/persons.csv",
         "column 'created_at' has a value that is not a timestamp: 'next tuesday' "
         "(expected ISO-8601",
         {"persons": PERSONS.replace("2026-11-01T00:00:00Z", "next tuesday")}),
    Case("data-bad-timestamp-subscriptions", DATA, "data/subscriptions.csv",
         "column 'updated_at' has a value that is not a timestamp: '03/01/2026 noon'",
         {"subscriptions": SUBSCRIPTIONS.replace("2026-03-01T00:00:00Z", "03/01/2026 noon"),
          **segment("name: a\nrule: {subscription: {status: {eq: active}}}\n")}),
    # Read by no condition, still checked: validate, evaluate and run agree.
    Case("data-bad-timestamp-unread-subscriptions", DATA, "data/subscriptions.csv",
         "column 'updated_at' has a value that is not a timestamp: '03/01/2026 noon'",
         {"subscriptions": SUBSCRIPTIONS.replace("2026-03-01T00:00:00Z", "03/01/2026 noon"),
          **LOGIN_ONLY}),
    Case("data-bad-latest-by", DATA, "data/persons.csv",
         "row 2: column 'seen' has a value that is not a timestamp: 'garbage'",
         {"persons": "person_id,email,plan,seen\np1,a@example.com,pro,2026-01-01T00:00:00Z\n"
                     "p1,b@example.com,free,garbage\n", **LOGIN_ONLY,
          **config("  persons: data/persons.csv",
                   "  persons: {path: data/persons.csv, latest_by: seen}")}),
    Case("data-bad-timestamp-parquet-text", DATA, "data/events.parquet",
         "column 'timestamp' has a value that is not a timestamp: 'garbage'",
         {**segment("name: a\nrule: {event: login, count: {gte: 1}}\n"),
          "features": "features: {}\n"},
         write_events_table(pa.table({"person_id": ["p1", "p2"], "event": ["login"] * 2,
                                      "timestamp": ["2026-11-01T00:00:00Z", "garbage"]}))),
    Case("data-timestamp-of-wrong-type", DATA, "data/events.parquet",
         "row 1: column 'timestamp' (timestamp) holds numbers (BIGINT), like 20261101, not "
         "timestamps: set timestamp_unit (s, ms, us or ns since the Unix epoch) on the source",
         {}, write_events_table(pa.table({"person_id": ["p1"], "event": ["login"],
                                          "timestamp": [20261101]}))),
    # The example value is the first that is set, and its unit is named when one reads it.
    Case("data-timestamp-of-epoch-numbers", DATA, "data/events.parquet",
         "row 2: column 'timestamp' (timestamp) holds numbers (BIGINT), like 1790000000123, "
         "not timestamps: it reads as milliseconds since the Unix epoch: set timestamp_unit: ms "
         "on the source",
         {}, write_events_table(pa.table({"person_id": ["p1", "p2"], "event": ["login"] * 2,
                                          "timestamp": [None, 1790000000123]}))),
    Case("data-list-without-key-column", DATA, "lists/vip.csv",
         "list has no 'email' column (columns are: person_id)",
         segment("name: a\nrule: {list: {file: lists/vip.csv, key: email}}\n")),
    Case("data-list-empty-file", DATA, "lists/vip.csv",
         "list has no 'person_id' column", {"files": {"lists/vip.csv": ""}}),
    Case("data-list-not-utf8", DATA, "lists/vip.csv",
         "cannot read input: Invalid Input Error: CSV Error on Line: 2",
         {}, write_bytes("lists/vip.csv", b"person_id\n" + LATIN1 + b"\n")),
    Case("data-list-truncated-parquet", DATA, "lists/vip.parquet",
         "cannot read input: Invalid Input Error",
         segment("name: a\nrule: {list: {file: lists/vip.parquet}}\n"),
         write_bytes("lists/vip.parquet", b"PAR1\x15\x04")),
    Case("data-suppression-file-missing", DATA, "privacy.suppression_file",
         "file not found: lists/suppressed.csv",
         {"config": CONFIG + "privacy: {suppression_file: lists/suppressed.csv}\n" + FILES,
          "segments": AUDIENCE}),
    Case("data-suppression-file-without-key", DATA, "lists/suppressed.csv",
         "a suppression file needs a person_id or email column",
         {"config": CONFIG + "privacy: {suppression_file: lists/suppressed.csv}\n" + FILES,
          "segments": AUDIENCE, "files": {"lists/suppressed.csv": "who\np1\n"}}),
    Case("data-events-empty-file", DATA, "data.events",
         "too small to be a Parquet file", {}, write_bytes("data/events.parquet", b"")),
    Case("data-events-truncated-parquet", DATA, "data.events",
         "No magic bytes found at end of file",
         {}, write_bytes("data/events.parquet", lambda old: old[: len(old) // 2])),
    Case("data-events-text-as-parquet", DATA, "data.events",
         "No magic bytes found at end of file",
         {}, write_bytes("data/events.parquet", b"person_id,event\np1,login\n" * 20)),
    Case("data-events-corrupt-gzip", DATA, "data.events", "Input is not a GZIP stream",
         {**config("data/events.parquet", "data/events.csv.gz"),
          "files": {"data/events.csv.gz": "person_id,event,timestamp\n"}}),
    Case("data-events-missing-event-column", DATA, "data/events.parquet",
         "missing required column 'event' (columns are: person_id, timestamp, amount, format",
         {}, events_without("event")),
    Case("data-persons-empty-file", DATA, "data/persons.csv",
         "the file is empty: no header and no rows (data.persons)",
         {"persons": ""}),
    Case("data-persons-ragged-rows", DATA, f"data/persons.csv:{PERSONS.count(chr(10)) + 1}",
         "a row of 8 fields, where the header has 6 (person_id, email, plan, country, age, "
         "created_at), so the columns cannot be read: quote the values that hold the delimiter",
         {"persons": PERSONS + "p6,x@example.com,pro,DE,1,2026-01-01T00:00:00Z,extra,more\n"}),
    Case("data-persons-short-row", DATA, f"data/persons.csv:{PERSONS.count(chr(10)) + 1}",
         "a row of 2 fields, where the header has 6",
         {"persons": PERSONS + "p6,x@example.com\n"}),
    # Windows line ends and a field added after one (DuckDB's sniffer gives up on the file).
    Case("data-persons-stray-carriage-return", DATA,
         f"data/persons.csv:{PERSONS.count(chr(10)) + 2}",
         "a row of 2 fields, where the header has 6 (person_id, email, plan, country, age, "
         "created_at), so the columns cannot be read",
         {}, write_bytes("data/persons.csv", (PERSONS.replace("\n", "\r\n")
                         + "p6,x@example.com,pro,DE,1,2026-01-01T00:00:00Z\r,extra\r\n").encode())),
    Case("data-persons-not-utf8", DATA, "data.persons",
         "cannot read input: Invalid Input Error: CSV Error on Line: 3",
         {}, write_bytes("data/persons.csv", PERSONS.replace("bob", "b\xf6b").encode("latin-1"))),
    # ---- data sources (SPEC 1, "Data sources") ----
    Case("data-json-malformed-line", DATA, "data/events.jsonl:2",
         "malformed JSON line (unexpected control character in string): "
         + repr(JSON_LINE[:-3]) + "; each line of an NDJSON file must be one JSON object",
         {**config("data/events.parquet", "data/events.jsonl"),
          "files": {"data/events.jsonl": JSON_LINE + JSON_LINE[:-3] + "\n" + JSON_LINE}}),
    Case("data-json-not-objects", DATA, "data/events.json:1",
         "a JSON line that is not an object ('[1, 2, 3]'): each line of an NDJSON file must be "
         "one JSON object",
         {**config("data/events.parquet", "data/events.json"),
          "files": {"data/events.json": "[1, 2, 3]\n"}}),
    Case("data-json-line-not-an-object", DATA, "data/events.ndjson:3",
         "a JSON line that is not an object",
         {**config("data/events.parquet", "data/events.ndjson"), **LOGIN_ONLY,
          "files": {"data/events.ndjson": JSON_LINE * 2 + '"login"\n' + JSON_LINE}}),
    # A JSON column mixing numbers and text (typed JSON, not VARCHAR) is traced as well.
    Case("data-json-mixed-timestamp", DATA, "data/events.ndjson",
         "line 2: column 'timestamp' has a value that is not a timestamp: '5' "
         "(expected ISO-8601",
         {**config("data/events.parquet", "data/events.ndjson"), **LOGIN_ONLY,
          "files": {"data/events.ndjson": JSON_LINE + JSON_LINE.replace(
              '"2026-11-16T10:00:00Z"', "5")}}),
    Case("data-json-bad-timestamp", DATA, "data/events.ndjson",
         "line 2: column 'timestamp' has a value that is not a timestamp: 'yesterday' "
         "(expected ISO-8601",
         {**config("data/events.parquet", "data/events.ndjson"), **LOGIN_ONLY,
          "files": {"data/events.ndjson": JSON_LINE + JSON_LINE.replace(
              "2026-11-16T10:00:00Z", "yesterday")}}),
    Case("data-glob-file-without-event", DATA, "data/more/b.csv",
         "missing required column 'event' (columns are: person_id, timestamp; rename yours "
         "with data.columns.events: {event: your_column})",
         {**config("data/events.parquet", "[data/events.parquet, data/more/*.csv]"),
          "files": {"data/more/a.csv": "person_id,event,timestamp\np1,login,2026-11-01\n",
                    "data/more/b.csv": "person_id,timestamp\np1,2026-11-01\n"}}),
    # A list of two formats: the CSV group's message names its own file alone.
    Case("data-list-csv-beside-parquet-without-event", DATA, "data/more/b.csv",
         "missing required column 'event' (columns are: person_id, timestamp; rename yours "
         "with data.columns.events: {event: your_column})",
         {**config("data/events.parquet", "[data/events.parquet, data/more/b.csv]"),
          "files": {"data/more/b.csv": "person_id,timestamp\np1,2026-11-01\n"}}),
    Case("data-glob-catches-persons", DATA, "data/persons.csv",
         "read both as events (by data.events: data/*) and as persons (by data.persons); "
         "narrow the events path or glob",
         config("data/events.parquet", "data/*")),
    Case("data-glob-catches-identities", DATA, "data/ev/ids.csv",
         "read both as events (by data.events: data/ev/*.csv) and as identities",
         {**config("data/events.parquet", "data/ev/*.csv\n  identities: data/ev/ids.csv"),
          "files": {"data/ev/ids.csv": "id,person_id\na1,p1\n"}}),
    Case("data-epoch-not-a-number", DATA, "data/charges.csv",
         "row 2: column 'created' has a value that is not a timestamp: '17x' (expected a "
         "number of seconds since the Unix epoch (timestamp_unit: s))",
         {**config("data/events.parquet", CHARGES), "files": {
             "data/charges.csv": "id,customer,created\nch1,p1,1790000000\nch2,p2,17x\n"}}),
    # Milliseconds read as seconds: the year 58,000 was an internal error (a Python datetime
    # cannot hold it); now the row, and the unit that reads it.
    Case("data-epoch-milliseconds-as-seconds", DATA, "data/charges.csv",
         "row 2: column 'created' has a value that is not a timestamp: '1790000000000' "
         "(expected a number of seconds since the Unix epoch (timestamp_unit: s); as seconds "
         "it is after the year 9999: it reads as milliseconds, set timestamp_unit: ms)",
         {**config("data/events.parquet", CHARGES), "files": {
             "data/charges.csv":
                 "id,customer,created\nch1,p1,1790000000\nch2,p2,1790000000000\n"}}),
    Case("data-epoch-parquet-number-out-of-range", DATA, "data/events.parquet",
         "row 2: column 'ts' has a value that is not a timestamp: '1790000000000000' (expected a "
         "number of seconds since the Unix epoch (timestamp_unit: s); as seconds it is after "
         "the year 9999: it reads as microseconds, set timestamp_unit: us)",
         {**config("data/events.parquet",
                   "{path: data/events.parquet, timestamp_unit: s, columns: {timestamp: ts}}"),
          **LOGIN_ONLY},
         write_events_table(pa.table({"person_id": ["p1", "p2"], "event": ["login"] * 2,
                                      "ts": [1790000000, 1790000000000000]}))),
    Case("data-mixpanel-export-in-milliseconds", DATA, "data/mp.jsonl",
         "line 1: column 'properties.time' has a value that is not a timestamp: "
         "'1790000000123' (expected a number of seconds since the Unix epoch (timestamp_unit: "
         "s); as seconds it is after the year 9999: it reads as milliseconds, set "
         "timestamp_unit: ms)",
         {**config("data/events.parquet", "{path: data/mp.jsonl, preset: mixpanel}"),
          **LOGIN_ONLY, "files": {
             "data/mp.jsonl": '{"event": "login", "properties": {"time": 1790000000123, '
                              '"distinct_id": "p1", "$insert_id": "i1"}}\n'}}),
    Case("data-epoch-without-unit", DATA, "data/charges.csv",
         "row 1: column 'created' has a value that is not a timestamp: '1790000000' (expected "
         "ISO-8601, like 2026-01-31T12:00:00Z; values without an offset are read as UTC; it reads "
         "as seconds since the Unix epoch: set timestamp_unit: s on the source)",
         {**config("data/events.parquet", CHARGES.replace("timestamp_unit: s, ", "")),
          "files": {"data/charges.csv": "id,customer,created\nch1,p1,1790000000\n"}}),
    Case("data-epoch-json-text-not-a-number", DATA, "data/ga4.jsonl",
         "line 1: column 'event_timestamp' has a value that is not a timestamp: 'soon'",
         {**config("data/events.parquet", "{path: data/ga4.jsonl, preset: ga4}"), **LOGIN_ONLY,
          "files": {
             "data/ga4.jsonl": '{"event_name": "login", "event_timestamp": "soon", '
                               '"user_id": "p1", "user_pseudo_id": "a1"}\n'}}),
    Case("data-dedupe-column-missing", DATA, "data/events.parquet",
         "missing column 'uuid' (given as dedupe_on in data.events); columns are: person_id",
         config("data/events.parquet", "{path: data/events.parquet, dedupe_on: uuid}")),
    Case("data-source-mapped-column-missing", DATA, "data/events.parquet",
         "missing column 'user' (mapped to 'person_id' in data.events.columns); columns are: "
         "person_id",
         config("data/events.parquet",
                "{path: data/events.parquet, columns: {person_id: user}}")),
    Case("data-preset-column-missing", DATA, "data/events.parquet",
         "missing required column 'timestamp' (columns are: person_id, event, timestamp, amount",
         config("data/events.parquet", "{path: data/events.parquet, preset: mixpanel}")),
    Case("config-source-unknown-key", DEFINITION, "segctl.yaml:2:39",
         "unknown key 'dedupe' in data.events (did you mean 'dedupe_on'?) (valid keys: path, "
         "name, preset, columns, event, timestamp_unit, dedupe_on, anonymous_id)",
         config("data/events.parquet", "{path: data/events.parquet, dedupe: id}")),
    Case("config-source-unknown-preset", DEFINITION, "segctl.yaml:2:47",
         "unknown preset 'mixpanle' in data.events (did you mean 'mixpanel'?)",
         config("data/events.parquet", "{path: data/events.parquet, preset: mixpanle}")),
    Case("config-source-bad-unit", DEFINITION, "segctl.yaml:2:55",
         "data.events.timestamp_unit must be one of s, ms, us, ns",
         config("data/events.parquet", "{path: data/events.parquet, timestamp_unit: sec}")),
    Case("config-source-without-path", DEFINITION, "segctl.yaml:2:11",
         "data.events needs a path: a file, glob, or list of files",
         config("data/events.parquet", "{preset: segment}")),
    Case("config-persons-latest-by-on-events", DEFINITION, "segctl.yaml:2:39",
         "unknown key 'latest_by' in data.events",
         config("data/events.parquet", "{path: data/events.parquet, latest_by: timestamp}")),
    Case("data-duplicate-unicode-person-ids", DATA, "data/persons.csv",
         "duplicate person_id values, e.g. 'ü1' (2 rows)",
         {"persons": PERSONS + "ü1,a@example.com,pro,DE,1,2026-01-01T00:00:00Z\n"
                     "ü1,b@example.com,pro,DE,1,2026-01-01T00:00:00Z\n"}),
]  # fmt: skip

# SPEC 2.4b: at_least, calendar windows, active_periods, custom events, max_span, regex
# flags, the stopped/restarted templates, and type errors that name the column.
CUSTOM = "custom_events:\n  mp4_render: {event: video_rendered, where: {format: {eq: mp4}}}\n"
LANGUAGE_CASES = [
    Case("at-least-too-many", DEFINITION, "segments/a.yaml:3:13",
         "'at_least' must be a whole number from 1 to 2 (the number of conditions in 'of'), got 3",
         segment("""\
             name: a
             rule:
               at_least: 3
               of: [{property: plan, eq: pro}, {property: plan, eq: free}]
             """)),
    Case("at-least-zero", DEFINITION, "segments/a.yaml:3:13",
         "'at_least' must be a whole number from 1 to 1",
         segment("name: a\nrule:\n  at_least: 0\n  of: [{property: plan, eq: pro}]\n")),
    Case("at-least-empty-of", DEFINITION, "segments/a.yaml:4:7",
         "'at_least' needs 'of': a non-empty list of conditions",
         segment("name: a\nrule:\n  at_least: 1\n  of: []\n")),
    Case("at-least-unknown-key", DEFINITION, "segments/a.yaml:4:3",
         "unknown key 'off' in an 'at_least' condition (did you mean 'of'? "
         "valid keys: at_least, of)",
         segment("name: a\nrule:\n  at_least: 1\n  off: [{property: plan, eq: pro}]\n")),
    Case("calendar-with-from", DEFINITION, "segments/a.yaml:3:36",
         "'calendar' cannot go with from/to",
         segment("name: a\nrule:\n  {event: login, from: 2026-11-01, calendar: true, "
                 "count: {gte: 1}}\n")),
    Case("calendar-without-window", DEFINITION, "segments/a.yaml:3:18",
         "'calendar' needs a window: add within: 7d",
         segment("name: a\nrule:\n  {event: login, calendar: true, count: {gte: 1}}\n")),
    Case("calendar-hours", DEFINITION, "segments/a.yaml:3:26",
         "a calendar window counts whole days: 'within' takes d, w or y (like 7d), not hours",
         segment("name: a\nrule:\n  {event: login, within: 36h, calendar: true, "
                 "count: {gte: 1}}\n")),
    # Hours are refused even when they add up to whole days (48h): the spelling is the error.
    Case("calendar-hours-whole-days", DEFINITION, "segments/a.yaml:3:26",
         "a calendar window counts whole days: 'within' takes d, w or y (like 7d), not hours",
         segment("name: a\nrule:\n  {event: login, within: 48h, calendar: true, "
                 "count: {gte: 1}}\n")),
    Case("calendar-between-hours", DEFINITION, "segments/a.yaml:3:27",
         "a calendar window counts whole days: 'between' takes d, w or y (like 7d), not hours",
         segment("name: a\nrule:\n  {event: login, between: [48h, 1d], calendar: true, "
                 "count: {gte: 1}}\n")),
    Case("calendar-on-property", DEFINITION, "segments/a.yaml:3:38",
         "'calendar' applies only to an event condition's window, not to a property condition",
         segment("name: a\nrule:\n  {property: created_at, within: 7d, calendar: true}\n")),
    Case("calendar-on-sequence", DEFINITION, "segments/a.yaml:3:51",
         "'calendar' applies only to an event condition's window, not to a sequence",
         segment("name: a\nrule:\n  sequence: {steps: [{event: login}], within: 7d, "
                 "calendar: true}\n")),
    Case("calendar-not-boolean", DEFINITION, "segments/a.yaml:3:40",
         "'calendar' is true or false, got 'yes please'",
         segment("name: a\nrule:\n  {event: login, within: 7d, calendar: yes please, "
                 "count: {gte: 1}}\n")),
    Case("calendar-in-feature", DEFINITION, "features.yaml:2:33",
         "'calendar' applies only to an event condition's window, not to feature 'x'",
         {"features": "features:\n  x: {event: login, within: 7d, calendar: true, "
                      "measure: count}\n"}),
    Case("active-periods-with-within", DEFINITION, "segments/a.yaml:3:18",
         "'active_periods' defines its own window (every x of_last, moved back by offset): "
         "remove 'within'",
         segment("name: a\nrule:\n  {event: login, within: 30d, active_periods: "
                 "{every: 7d, of_last: 4, gte: 2}}\n")),
    Case("active-periods-with-last", DEFINITION, "segments/a.yaml:3:18",
         "remove 'last'",
         segment("name: a\nrule:\n  {event: login, last: 5, active_periods: "
                 "{every: 7d, of_last: 4, gte: 2}}\n")),
    Case("active-periods-missing-of-last", DEFINITION, "segments/a.yaml:3:34",
         "'active_periods' needs 'of_last', like active_periods: {every: 7d, of_last: 4",
         segment("name: a\nrule:\n  {event: login, active_periods: {every: 7d, gte: 2}}\n")),
    Case("active-periods-min-count-zero", DEFINITION, "segments/a.yaml:3:69",
         "'min_count' must be a whole number >= 1, got 0",
         segment("name: a\nrule:\n  {event: login, active_periods: {every: 7d, of_last: 4, "
                 "min_count: 0, gte: 2}}\n")),
    Case("active-periods-calendar-hours", DEFINITION, "segments/a.yaml:3:50",
         "calendar periods are whole days: 'every' and 'offset' take d, w or y",
         segment("name: a\nrule:\n  {event: login, calendar: true, active_periods: "
                 "{every: 36h, of_last: 4, gte: 2}}\n")),
    Case("active-periods-calendar-24h", DEFINITION, "segments/a.yaml:3:50",
         "calendar periods are whole days: 'every' and 'offset' take d, w or y",
         segment("name: a\nrule:\n  {event: login, calendar: true, active_periods: "
                 "{every: 7d, offset: 24h, of_last: 4, gte: 2}}\n")),
    Case("active-periods-unknown-key", DEFINITION, "segments/a.yaml:3:58",
         "unknown operator 'of_lats' (did you mean 'of_last'?)",
         segment("name: a\nrule:\n  {event: login, active_periods: {every: 7d, of_last: 2, "
                 "of_lats: 4, gte: 2}}\n")),
    Case("active-periods-text-comparator", DEFINITION, "segments/a.yaml:3:63",
         "'gte': expected a number, got the text 'many' (active_periods is a number)",
         segment("name: a\nrule:\n  {event: login, active_periods: {every: 7d, of_last: 4, "
                 "gte: many}}\n")),
    Case("custom-event-unknown", DEFINITION, "segments/a.yaml:3:18",
         "unknown custom event 'mp4_rendr' (did you mean 'mp4_render'?)",
         {**segment("name: a\nrule:\n  {custom_event: mp4_rendr, count: {gte: 1}}\n"),
          "features": CUSTOM}),
    Case("custom-event-undefined", DEFINITION, "segments/a.yaml:3:18",
         "unknown custom event 'pricing' (define it under custom_events: in features.yaml)",
         segment("name: a\nrule:\n  {custom_event: pricing, count: {gte: 1}}\n")),
    Case("custom-event-in-step-unknown", DEFINITION, "segments/a.yaml:3:53",
         "unknown custom event 'mp4_rendr' (did you mean 'mp4_render'?)",
         {**segment("name: a\nrule:\n  sequence: {steps: [{event: login}, "
                    "{custom_event: mp4_rendr}]}\n"), "features": CUSTOM}),
    Case("custom-event-with-event", DEFINITION, "segments/a.yaml:3:3",
         "a condition has exactly one kind, found event, custom_event",
         {**segment("name: a\nrule:\n  {event: login, custom_event: mp4_render, "
                    "count: {gte: 1}}\n"), "features": CUSTOM}),
    Case("custom-event-definition-unknown-key", DEFINITION, "features.yaml:2:39",
         "unknown key 'wher' in custom event 'mp4_render' (did you mean 'where'? "
         "valid keys: event, where, description)",
         {"features": "custom_events:\n  mp4_render: {event: video_rendered, wher: {}}\n"}),
    Case("custom-event-definition-bad-column", DEFINITION, "features.yaml:2:47",
         "unknown event property 'formt' (did you mean 'format'?)",
         {"features": "custom_events:\n  mp4_render: {event: video_rendered, where: "
                      "{formt: {eq: mp4}}}\n"}),
    Case("custom-events-bad-name", DEFINITION, "features.yaml:2:3",
         "custom event name 'Mp4' must match [a-z][a-z0-9_]*",
         {"features": "custom_events:\n  Mp4: {event: video_rendered}\n"}),
    Case("features-unknown-top-key", DEFINITION, "features.yaml:1:1",
         "unknown key 'custom_event' (features.yaml has only 'features' and 'custom_events') "
         "(did you mean 'custom_events'?)",
         {"features": "custom_event:\n  x: {event: login}\nfeatures:\n  y: {event: login, "
                      "measure: count}\n"}),
    Case("sequence-max-span-hours-typo", DEFINITION, "segments/a.yaml:3:49",
         "'max_span': expected a duration like 30d (units h, d, w, y), got '7 days'",
         segment("name: a\nrule:\n  sequence: {steps: [{event: login}], max_span: 7 days}\n")),
    Case("sequence-max-span-typo", DEFINITION, "segments/a.yaml:3:39",
         "unknown key 'max_spam' in a sequence (did you mean 'max_span'? "
         "valid keys: steps, max_gap, max_span, within, between, from, to)",
         segment("name: a\nrule:\n  sequence: {steps: [{event: login}], max_spam: 7d}\n")),
    Case("regex-unknown-flag", DEFINITION, "segments/a.yaml:3:28",
         "inline flag 'x' is not supported: a regex may start with (?i)",
         segment("name: a\nrule:\n  {property: email, regex: '(?x)a b'}\n")),
    Case("regex-flag-in-the-middle", DEFINITION, "segments/a.yaml:3:28",
         "invalid regular expression: global flags not at the start",
         segment("name: a\nrule:\n  {property: email, regex: 'a(?i)b'}\n")),
    Case("template-stopped-before-not-longer", DEFINITION, "segments/a.yaml:3:9",
         "template 'stopped': 'before' (7d) must be longer than 'recent' (7d)",
         segment("name: a\ntemplate: stopped\nparams: {event: login, before: 7d}\n")),
    Case("template-restarted-calendar-text", DEFINITION, "segments/a.yaml:3:9",
         "template 'restarted' parameter 'calendar': expected true or false, got 'yes please'",
         segment("name: a\ntemplate: restarted\nparams: {event: login, calendar: yes please}\n")),
    Case("template-stopped-calendar-hours", DEFINITION, "segments/a.yaml:3:9",
         "template 'stopped' with calendar: true counts whole days: 'recent' takes d, w or y",
         segment("name: a\ntemplate: stopped\nparams: {event: login, recent: 12h, "
                 "calendar: true}\n")),
    Case("template-stopped-calendar-24h", DEFINITION, "segments/a.yaml:3:9",
         "template 'stopped' with calendar: true counts whole days: 'recent' takes d, w or y "
         "(like 7d), not 24h",
         segment("name: a\ntemplate: stopped\nparams: {event: login, recent: 24h, "
                 "calendar: true}\n")),
    Case("type-error-names-the-column", DEFINITION, "segments/a.yaml:3:24",
         "'gte': expected a number, got the text 'lots' ('age' is a number column)",
         segment("name: a\nrule:\n  {property: age, gte: lots}\n")),
    Case("type-error-names-the-event-property", DEFINITION, "segments/a.yaml:3:42",
         "'lt': expected a number, got the text 'cheap' ('amount' is a number column)",
         segment("name: a\nrule:\n  {event: purchase, where: {amount: {lt: cheap}}, "
                 "count: {gte: 1}}\n")),
]  # fmt: skip
CASES = CONFIG_CASES + SEGMENT_CASES + FEATURE_CASES + DATA_CASES + LANGUAGE_CASES


def test_the_cases_are_many_and_distinct() -> None:
    assert len(CASES) >= 90
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder committed by `segctl run` on the valid project (copied into each case)."""
    from typer.testing import CliRunner

    from segctl.cli import app

    root = build_project(tmp_path_factory.mktemp("state") / "project")
    result = CliRunner().invoke(
        app, ["run", "--as-of", "2026-11-10T00:00:00Z", "--project", str(root)]
    )
    assert result.exit_code == 0, result.output
    return root / ".segctl"


def fingerprint(folder: Path) -> str:
    """The state folder's files and bytes (not the lock file, which names its last holder)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "segctl.lock":
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case, cli: Cli, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, state: Path
) -> None:
    monkeypatch.delenv("SEGCTL_TEST_UNSET", raising=False)
    root = make_project(**case.project)
    if case.setup:
        case.setup(root)
    shutil.copytree(state, root / ".segctl")
    before = fingerprint(root / ".segctl")
    # `run` evaluates like `evaluate` does, then would commit: it must stop first.
    for command in (["validate"], ["run", "--as-of", AS_OF]):
        result = cli(*command, "--project", root, code=case.code)
        assert result.stdout == ""
        assert result.stderr.startswith(f"error: {case.where}: "), result.stderr
        assert case.message in result.stderr
        # Exactly one problem: a malformed input does not cascade into follow-up errors.
        assert result.stderr.count("\n") == 1, result.stderr
    assert fingerprint(root / ".segctl") == before, "a failed run changed the state"


def _late(suffix: str, column: str, value: object) -> str:
    """An events file whose ``column`` holds a good value on every row of the readers' sample
    and ``value`` on the row after it."""
    good: dict[str, object] = {"amount": 5, "timestamp": "2026-11-16T10:00:00Z"}
    rows = [{"person_id": "p1", "event": "login", **good} for _ in range(SAMPLED_ROWS)]
    rows.append({**rows[0], column: value})
    if suffix == ".jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows)
    return "person_id,event,amount,timestamp\n" + "".join(
        ",".join(str(v) for v in row.values()) + "\n" for row in rows
    )


@pytest.mark.parametrize(
    ("suffix", "column", "value", "message"),
    [
        (".csv", "amount", "abc", f"row {SAMPLED_ROWS + 1}: column 'amount' has a value that is "
         "not a number: 'abc' (the column is read as numbers, as its first 20,480 rows hold "
         "numbers; fix the value in the file)"),
        (".jsonl", "amount", "n/a", f"line {SAMPLED_ROWS + 1}: column 'amount' has a value that "
         "is not a number: 'n/a'"),
        (".jsonl", "timestamp", "notatime", f"line {SAMPLED_ROWS + 1}: column 'timestamp' has a "
         "value that is not a timestamp: 'notatime'"),
    ],
)  # fmt: skip
def test_a_bad_value_past_the_sampled_rows_names_its_file_row_and_column(
    cli: Cli, make_project: MakeProject, state: Path, suffix: str, column: str, value: object,
    message: str,
) -> None:  # fmt: skip
    """DuckDB types a CSV or NDJSON column from its first rows: a value past them that the
    type cannot hold was a raw reader error (no file or column, an approximate line)."""
    root = make_project(
        **config("data/events.parquet", f"data/late{suffix}"),
        segments={"a": "name: a\nrule: {event: login, sum: {of: amount, gte: 1}}\n"},
        features="features: {}\n",
    )
    (root / f"data/late{suffix}").write_text(_late(suffix, column, value))
    shutil.copytree(state, root / ".segctl")
    before = fingerprint(root / ".segctl")
    for command in (["evaluate", "--as-of", AS_OF], ["run", "--as-of", AS_OF]):
        result = cli(*command, "--project", root, code=4)
        assert result.stderr.startswith(f"error: data/late{suffix}: {message}"), result.stderr
        assert result.stderr.count("\n") == 1
    assert fingerprint(root / ".segctl") == before


def test_all_problems_of_a_run_are_reported_at_once(cli: Cli, make_project: MakeProject) -> None:
    root = make_project(
        segments={
            "a": "name: a\nrule: {event: login, count: {gtee: 1}}\n",
            "b": "name: b\nrule:\n  all:\n    - {property: plna, eq: pro}\n    - {segment: nope}\n",
            "c": "name: C\nrule: {property: plan, eq: pro}\n",
            "d": "name: d\nrule: {property: plan, eq: pro\n",
            "e": "# to do\n",  # reported even though d's syntax error comes first
        },
        features="features:\n  x: {event: login, measure: cnt}\n",
    )
    result = cli("validate", "--project", root, code=3)
    lines = result.stderr.removeprefix("error: ").splitlines()
    assert lines == [
        "features.yaml:2:30: unknown measure 'cnt' (did you mean 'count'?); expected one of "
        "count, distinct_days, sum, avg, min, max, first_seen, last_seen, streak, share, "
        "active_periods or {sum: property}",
        "segments/a.yaml:2:30: unknown operator 'gtee' (did you mean 'gte'?)",
        "segments/b.yaml:4:18: unknown person property 'plna' (did you mean 'plan'?)",
        "segments/b.yaml:5:17: unknown segment 'nope' (segments: a, b)",
        "segments/c.yaml:1:7: segment name 'C' must match [a-z][a-z0-9_]* (like power_users)",
        "segments/d.yaml:3:1: invalid YAML: expected ',' or '}', but got '<stream end>'",
        "segments/e.yaml:1:1: empty segment file (expected name: and rule:)",
        "7 problems found.",
    ]


def test_the_datas_problems_are_reported_with_the_definitions(
    cli: Cli, make_project: MakeProject
) -> None:
    """A repeated person id and a broken segment: one validate says both (exit 3, the
    definitions'); each alone is said as before (the data's exit 4)."""
    repeated = PERSONS + PERSONS.splitlines()[1] + "\n"
    broken = {"a": "name: a\nrule: {property: plan, gtee: 1}\n"}
    root = make_project(persons=repeated, segments=broken)
    lines = cli("validate", "--project", root, code=3).stderr.removeprefix("error: ").splitlines()
    assert lines == [
        "data/persons.csv: duplicate person_id values, e.g. 'p1' (2 rows); person ids must "
        "be unique (several rows per person, such as an identifies table: set latest_by: "
        "<timestamp column> on the persons source to read each person's latest row)",
        "segments/a.yaml:2:24: unknown operator 'gtee' (did you mean 'gte'?)",
        "2 problems found.",
    ]
    (root / "segments" / "a.yaml").unlink()
    alone = cli("validate", "--project", root, code=4).stderr
    assert alone == f"error: {lines[0]}\n"


def test_a_sum_of_a_column_one_bad_value_made_text_names_that_value(
    cli: Cli, make_project: MakeProject
) -> None:
    """'n/a' among numbers makes DuckDB read a CSV column as text, and a sum of it is a
    definition error (exit 3) that named no file or row: the value is found and said."""
    charges = "id,customer,created,amount\nch1,p1,1790000000,30\nch2,p2,1790000000,n/a\n"
    root = make_project(
        segments={"a": "name: a\nrule: {event: purchase, sum: {of: amount, gte: 10}}\n"},
        **config("data/events.parquet", CHARGES),
        files={"data/charges.csv": charges},
    )
    lines = cli("validate", "--project", root, code=3).stderr.removeprefix("error: ")
    assert (
        "data/charges.csv: row 2: column 'amount' holds 'n/a', not a number, so the events' "
        "column is read as text" in lines
    )
    assert "cannot take sum of 'amount': it is a string column" in lines


def test_a_column_half_numbers_is_traced_and_one_of_words_is_not(
    cli: Cli, make_project: MakeProject
) -> None:
    """docs/data.md's own example, two charges of which one is 'n/a', named no value: only
    a column of more numbers than not was traced. Half is enough; a column of words (a
    format) is text by nature and gets the definition error alone."""
    csv = "person_id,event,timestamp,amount,format\n"
    csv += "p1,purchase,2026-11-10T00:00:00Z,100,mp4\np1,purchase,2026-11-11T00:00:00Z,n/a,4k\n"
    config = CONFIG.replace("data/events.parquet", "data/events.csv")
    config = config.replace("features: features.yaml\n", "")
    for column, said in (("amount", True), ("format", False)):
        rule = f"name: a\nrule: {{event: purchase, sum: {{of: {column}, gte: 10}}}}\n"
        root = make_project(
            config=config, segments={"a": rule}, features=None, files={"data/events.csv": csv}
        )
        lines = cli("validate", "--project", root, code=3).stderr
        assert f"cannot take sum of '{column}': it is a string column" in lines
        traced = "data/events.csv: row 2: column 'amount' holds 'n/a', not a number"
        assert (traced in lines) is said and ("not a number" in lines) is said


def test_data_problems_are_reported_together(cli: Cli, make_project: MakeProject) -> None:
    """SPEC 2: every problem at once, the data's too. validate stopped at the first: one of
    two missing files, of two files of a glob lacking a column, of two files with a bad
    timestamp, and repeated person ids hid a bad timestamp."""
    events = "person_id,event,timestamp\np1,login,2026-11-01T00:00:00Z\n"

    def problems(config: str, files: dict[str, str], persons: str = PERSONS) -> list[str]:
        login = {"a": "name: a\nrule: {event: login, count: {gte: 1}}\n"}
        config = config.replace("features: features.yaml\n", "")
        root = make_project(
            config=config, files=files, persons=persons, segments=login, features=None
        )
        lines = cli("validate", "--project", root, code=4).stderr.removeprefix("error: ")
        said = lines.splitlines()
        assert said[-1] == f"{len(said) - 1} problems found."
        return said[:-1]

    missing = CONFIG.replace("data/events.parquet", "[data/e1.csv, data/e2.csv]")
    missing = missing.replace("data/persons.csv", "data/nobody.csv")
    said = problems(missing, {})
    assert [line.split(" (paths")[0] for line in said] == [
        "data.events: file not found: data/e1.csv",
        "data.events: file not found: data/e2.csv",
        "data.persons: file not found: data/nobody.csv",
    ]

    glob = CONFIG.replace("data/events.parquet", "data/e*.csv")
    lacking = {
        "data/e1.csv": events.replace("event,", "name,"),
        "data/e2.csv": events.replace("event,", "name,"),
        "data/e3.csv": events,
    }
    said = problems(glob, lacking)
    assert [line.split(" (")[0] for line in said] == [
        "data/e1.csv: missing required column 'event'",
        "data/e2.csv: missing required column 'event'",
    ]

    bad = {"data/e1.csv": events + "p2,login,bad1\n", "data/e2.csv": events + "p2,login,bad2\n"}
    repeated = PERSONS + "p1,again@example.com,pro,DE,34,2026-01-01T00:00:00Z\n"
    said = problems(glob, bad, repeated)
    assert said[0].startswith("data/persons.csv: duplicate person_id values, e.g. 'p1'")
    assert [line.split(" (expected")[0] for line in said[1:]] == [
        "data/e1.csv: row 2: column 'timestamp' has a value that is not a timestamp: 'bad1'",
        "data/e2.csv: row 2: column 'timestamp' has a value that is not a timestamp: 'bad2'",
    ]


def test_config_problems_come_with_the_segment_files_own(
    cli: Cli, make_project: MakeProject
) -> None:
    """SPEC 2: every problem of a run at once. A typo in segctl.yaml hid every segment
    file's problem until it was fixed; they are said with it, read without the data. A use
    of a destination segctl.yaml names but could not read is not said again."""
    broken_hook = "destinations:\n  crm: {type: webhook}\n"  # no url, no secret
    config = CONFIG.replace("timezone: UTC", "timezon: UTC") + broken_hook
    hook = "on_enter:\n  - webhook: {{destination: {}}}\n"
    segments = {
        "a": "name: a\nrule: {event: login, count: {gtee: 1}}\n" + hook.format("crm"),
        "b": "name: b\nrule: {event: login, count: {gte: 1}}\n" + hook.format("crn"),
    }
    result = cli("validate", "--project", make_project(config=config, segments=segments), code=3)
    lines = result.stderr.removeprefix("error: ").splitlines()
    assert lines[-1] == f"{len(lines) - 1} problems found."
    places = [line.split(": ")[0] for line in lines[:-1]]
    assert places[0].startswith("segctl.yaml:") and "segctl.yaml:7:1" in places
    assert any("unknown key 'timezon'" in line for line in lines)
    assert any(line.startswith("segments/a.yaml:2:") and "'gtee'" in line for line in lines)
    assert any(line.startswith("segments/b.yaml:") and "'crn'" in line for line in lines)
    assert not any("unknown destination 'crm'" in line for line in lines)
    as_json = cli("validate", "--format", "json", "--project", make_project(
        config=config, segments=segments), code=3)  # fmt: skip
    files = {p["file"] for p in json.loads(as_json.stdout)["problems"]}
    assert files == {"segctl.yaml", "segments/a.yaml", "segments/b.yaml"}


def test_config_problems_are_reported_together(cli: Cli, make_project: MakeProject) -> None:
    root = make_project(
        config=CONFIG.replace("timezone: UTC", "timezone: Nowhere") + "segmnets: x/\n" + HOOK
    )
    lines = cli("validate", "--project", root, code=3).stderr.removeprefix("error: ").splitlines()
    assert [line.split(": ")[0] for line in lines[:3]] == [
        "segctl.yaml:7:11",
        "segctl.yaml:8:1",
        "segctl.yaml:10:33",
    ]
    assert lines[3] == "3 problems found."


def test_a_feature_defined_with_problems_is_not_said_to_be_unknown(
    cli: Cli, make_project: MakeProject
) -> None:
    root = make_project(
        features="features:\n  x: {event: login, measure: summ}\n",
        segments={"a": "name: a\nrule: {feature: x, gte: 1}\n"},
    )
    lines = cli("validate", "--project", root, code=3).stderr.splitlines()
    assert lines[0].startswith("error: features.yaml:2:30: unknown measure 'summ'")
    assert lines[1:] == [
        "segments/a.yaml:2:17: feature 'x' has problems in features.yaml (said there): fix them",
        "2 problems found.",
    ]


def test_a_bad_window_does_not_hide_the_comparators_problem(
    cli: Cli, make_project: MakeProject
) -> None:
    """SPEC 2: all problems at once, two in one condition too."""
    bad = {"m": "name: m\nrule:\n  event: login\n  within: 30dd\n  count: {gtee: 1}\n"}
    lines = cli("validate", "--project", make_project(segments=bad), code=3).stderr.splitlines()
    assert lines == [
        "error: segments/m.yaml:4:11: 'within': expected a duration like 30d (units h, d, w, "
        "y), got '30dd'",
        "segments/m.yaml:5:11: unknown operator 'gtee' (did you mean 'gte'?)",
        "2 problems found.",
    ]


def test_every_problem_is_listed_with_a_count(cli: Cli, make_project: MakeProject) -> None:
    """SPEC 2: all problems of a run at once, however many."""
    bad = {f"s{i:02}": f"name: s{i:02}\nrule: {{property: plna, eq: x}}\n" for i in range(30)}
    lines = cli("validate", "--project", make_project(segments=bad), code=3).stderr.splitlines()
    assert len(lines) == 31
    for i in range(30):
        assert f"segments/s{i:02}.yaml:2:18: unknown person property 'plna'" in lines[i]
    assert lines[-1] == "30 problems found."


def test_secrets_from_the_environment_never_appear_in_errors(
    cli: Cli, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGCTL_TEST_SECRET", "s3cr3t-value")
    monkeypatch.delenv("SEGCTL_TEST_UNSET", raising=False)
    hooks = (
        "destinations:\n"
        "  a: {type: webhook, secret: '${SEGCTL_TEST_SECRET}', url: '${SEGCTL_TEST_UNSET}'}\n"
    )
    root = make_project(config=CONFIG + "segmnets: x/\n" + hooks)
    result = cli("validate", "--project", root, code=3)
    assert "SEGCTL_TEST_UNSET is not set" in result.stderr
    assert "s3cr3t-value" not in result.output
    # A value the environment gives a destination is masked in its own problem's message
    # (a token put in the url by mistake): it was quoted whole.
    monkeypatch.setenv("SEGCTL_TEST_UNSET", "tok-s3cr3t")
    mistaken = hooks.replace("secret: '${SEGCTL_TEST_SECRET}'", "secret: whsec_ZnJvbS1lbnY")
    root = make_project(config=CONFIG + mistaken)
    result = cli("validate", "--project", root, code=3)
    assert "'url' must be an http(s) URL with a host, not '***'" in result.stderr
    assert "tok-s3cr3t" not in result.output


def test_a_destination_secret_not_set_is_a_config_error_of_every_command(
    cli: Cli, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC 1: a missing variable is a config error naming it, whatever the command: those
    that only read too (an earlier version let evaluate, preview, compile and run --dry-run
    pass, so a dry run passed where the run failed). No state is written."""
    monkeypatch.delenv("SEGCTL_TEST_UNSET", raising=False)
    root = make_project(config=CONFIG + HOOK)
    said = "segctl.yaml:9:33: environment variable SEGCTL_TEST_UNSET is not set (export it)"
    for args in (
        ["evaluate", "--as-of", AS_OF],
        ["preview", "power_users"],
        ["compile"],
        ["run", "--dry-run", "--as-of", AS_OF],
        ["run", "--as-of", AS_OF],
        ["push"],
        ["validate"],
    ):
        assert said in cli(*args, "--project", root, code=3).stderr, args
    assert not (root / ".segctl").exists()
    # With the segment files' own problems (read without the data), at once.
    (root / "segments" / "bad.yaml").write_text("name: bad\nrule: {property: plan, eqq: x}\n")
    lines = cli("validate", "--project", root, code=3).stderr
    assert said in lines and "unknown operator 'eqq' (did you mean 'eq'?)" in lines


def test_a_long_malformed_json_line_is_shown_cut_in_a_gzipped_file(tmp_path: Path) -> None:
    """The bad line is named with its text, cut at SHOWN characters (a line can be a
    megabyte of properties), gzipped or not."""
    import gzip

    from segctl.engine.read_errors import SHOWN, first_bad_line

    long_line = '{"person_id": "p2", "event": "' + "x" * 200
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress((JSON_LINE + long_line + "\n" + JSON_LINE).encode()))
    assert first_bad_line(path) == (2, repr(long_line[:SHOWN] + "..."))
    plain = tmp_path / "events.jsonl"
    plain.write_text(JSON_LINE * 2)
    assert first_bad_line(plain) is None


def test_a_rolling_window_of_zero_is_valid_and_warned_about(
    cli: Cli, make_project: MakeProject
) -> None:
    """``within: 0d`` rolling holds no event (0d is a valid duration): ``count: {eq: 0}``
    matches everyone, so validate says where it is, as it says its other warnings; with
    calendar: true (today so far) nothing is said."""
    rule = "name: a\nrule:\n  event: login\n  within: 0d\n  count: {eq: 0}\n"
    everyone = "name: b\nrule: {event: login, count: {gte: 0}}\n"
    root = make_project(segments={"a": rule, "b": everyone})
    checked = cli("validate", "--project", root)  # exit 0
    assert checked.stderr.startswith("warning: segments/a.yaml:4:11: 'within': a rolling window")
    assert "calendar: true for today so far" in checked.stderr
    evaluated = cli("evaluate", "--project", root, "--as-of", AS_OF, "-f", "json")
    sizes = {s["name"]: s["size"] for s in json.loads(evaluated.stdout)["segments"]}
    assert sizes["a"] == sizes["b"] > 0  # everyone: no event in the window
    today = rule.replace("within: 0d", "within: 0d\n  calendar: true")
    (root / "segments/a.yaml").write_text(today)
    assert "warning" not in cli("validate", "--project", root).stderr
