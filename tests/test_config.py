"""segctl.yaml -> Config (SPEC section 1), and how the engine reads the configured inputs:
Parquet, CSV and CSV.gz files, globs and lists of files, column renames, and timestamps
(naive values are UTC, offsets are converted)."""

from __future__ import annotations

import gzip
import json
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, CONFIG, EVENTS, MakeProject, write, write_events

import segctl
from segctl.config import find_project, load_config
from segctl.errors import ConfigError, DataError


def config_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Any:
    write(tmp_path / "segctl.yaml", text)
    return load_config(tmp_path, environ or {})


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_of(tmp_path, text, environ)
    return [str(p) for p in info.value.problems]


MINIMAL = "data: {events: e.parquet, persons: p.csv}\n"


# ---- configuration ----------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = config_of(tmp_path, MINIMAL)
    assert config.inputs == {"events": ("e.parquet",), "persons": ("p.csv",)}
    assert config.columns == {"events": {}, "persons": {}, "subscriptions": {}}
    assert config.segments_dir == tmp_path / "segments"
    assert config.state_dir == tmp_path / ".segctl"
    assert config.features_file is None  # no features.yaml, none configured
    assert (config.timezone, config.max_exit_ratio) == ("UTC", 0.5)


def test_features_yaml_is_picked_up_when_present(tmp_path: Path) -> None:
    write(tmp_path / "features.yaml", "features: {}\n")
    assert config_of(tmp_path, MINIMAL).features_file == tmp_path / "features.yaml"


def test_full_configuration(tmp_path: Path) -> None:
    config = config_of(
        tmp_path,
        """\
        data:
          events: [a/*.parquet, b/events.csv.gz]
          persons: people.csv
          subscriptions: subs.csv
          columns:
            events: {person_id: user_id, event: event_name, timestamp: ts}
            persons: {person_id: id, created_at: signup_at}
        segments: defs/
        features: defs/features.yaml
        state: var/state
        timezone: Europe/Berlin
        privacy: {consent_column: opt_in, suppression_file: lists/suppressed.csv}
        engine: {memory_limit: 2GB, temp_directory: tmp, threads: 2}
        delivery: {max_exit_ratio: 0.25}
        destinations:
          hook: {type: webhook, url: "https://example.com/hook", secret: "${HOOK_SECRET}"}
        """,
        {"HOOK_SECRET": "s3cr3t"},
    )
    assert config.inputs["events"] == ("a/*.parquet", "b/events.csv.gz")
    assert config.columns["events"] == {
        "person_id": "user_id", "event": "event_name", "timestamp": "ts",
    }  # fmt: skip
    assert config.columns["persons"] == {"person_id": "id", "created_at": "signup_at"}
    assert config.columns["subscriptions"] == {}
    assert config.segments_dir == tmp_path / "defs"
    assert config.features_file == tmp_path / "defs/features.yaml"
    assert config.state_dir == tmp_path / "var/state"
    assert config.tz.key == "Europe/Berlin"
    assert (config.consent_column, config.suppression_file) == (
        "opt_in", tmp_path / "lists/suppressed.csv",
    )  # fmt: skip
    assert config.engine.memory_limit == "2GB" and config.engine.threads == 2
    assert config.engine.temp_directory == str(tmp_path / "tmp")
    assert config.max_exit_ratio == 0.25
    hook = config.destinations["hook"]
    assert (hook.type, hook.settings, hook.secrets) == (
        "webhook", {"url": "https://example.com/hook"}, {"secret": "s3cr3t"},
    )  # fmt: skip
    assert "s3cr3t" not in repr(hook)


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${TOKEN}", {"TOKEN": "abc"}, "abc"),
        ("Bearer ${TOKEN}!", {"TOKEN": "abc"}, "Bearer abc!"),
        ("${TOKEN:-fallback}", {}, "fallback"),
        ("${TOKEN:-fallback}", {"TOKEN": "set"}, "set"),
        ("${TOKEN:-}", {}, ""),
        ("${A}-${B:-b}", {"A": "a"}, "a-b"),
        ("$TOKEN and {TOKEN}", {"TOKEN": "x"}, "$TOKEN and {TOKEN}"),  # only ${NAME}
    ],
)
def test_environment_interpolation(
    tmp_path: Path, text: str, environ: dict[str, str], expected: str
) -> None:
    hook = (
        "  d: {type: webhook, url: 'https://x', secret: whsec_c2VjcmV0, "
        f"headers: {{X-Token: '{text}'}}}}\n"
    )
    config = config_of(tmp_path, MINIMAL + "destinations:\n" + hook, environ)
    assert config.destinations["d"].settings["headers"] == {"X-Token": expected}


def test_interpolation_reaches_data_paths_in_lists(tmp_path: Path) -> None:
    text = "data:\n  events: ['${DIR}/e.parquet', 'x/${MISSING:-y}.csv']\n  persons: p.csv\n"
    config = config_of(tmp_path, text, {"DIR": "/data"})
    assert config.inputs["events"] == ("/data/e.parquet", "x/y.csv")


def test_missing_variables_are_named_each_at_its_place(tmp_path: Path) -> None:
    text = MINIMAL + (
        "destinations:\n"
        "  a: {type: webhook, url: 'https://x', secret: '${ONE}'}\n"
        "  b: {type: resend, from: 'x${TWO}y', api_key: '${THREE:-k}'}\n"
    )
    assert problems_of(tmp_path, text, {"OTHER": "s3cr3t"}) == [
        # A secret is not offered a default: it would sit in the file.
        "segctl.yaml:3:48: environment variable ONE is not set (export it)",
        "segctl.yaml:4:27: environment variable TWO is not set (export it, or write "
        "${TWO:-default})",
    ]


def test_a_secret_whose_variable_is_set_to_nothing_is_said_so(tmp_path: Path) -> None:
    text = MINIMAL + "destinations:\n  a: {type: webhook, url: 'https://x', secret: '${ONE}'}\n"
    assert problems_of(tmp_path, text, {"ONE": ""}) == [
        "segctl.yaml:3:48: destination 'a' (webhook): 'secret' is empty (an environment "
        "variable it names is set to nothing?)"
    ]


def test_interpolation_uses_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGCTL_TEST_TOKEN", "whsec_ZnJvbS1lbnY")  # a webhook secret is base64
    hook = "  d: {type: webhook, url: 'https://x', secret: '${SEGCTL_TEST_TOKEN}'}\n"
    write(tmp_path / "segctl.yaml", MINIMAL + "destinations:\n" + hook)
    assert load_config(tmp_path).destinations["d"].secrets == {"secret": "whsec_ZnJvbS1lbnY"}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("timezone: Europe/Berlinn\n", "segctl.yaml:2:11: unknown timezone 'Europe/Berlinn'"),
        ("delivery: {max_exit_ratio: 0}\n", "segctl.yaml:2:28: delivery.max_exit_ratio must be"),
        ("privacy: {consent: x}\n", "segctl.yaml:2:11: unknown key 'consent' in 'privacy'"),
        ("destinations: [a]\n", "segctl.yaml:2:15: 'destinations' must map names to settings"),
    ],
)
def test_config_problems(tmp_path: Path, extra: str, problem: str) -> None:
    (found,) = problems_of(tmp_path, MINIMAL + extra)
    assert found.startswith(problem)


def test_data_must_name_files(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "data: {events: [], persons: [1]}\n")
    assert [p.split(", or a source mapping")[0] for p in found] == [
        "segctl.yaml:1:16: data.events must be a file, glob, or list of files",
        "segctl.yaml:1:29: data.persons must be a file, glob, or list of files",
    ]


def test_find_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "segctl.yaml", MINIMAL)
    monkeypatch.delenv("SEGCTL_PROJECT", raising=False)
    assert find_project(tmp_path) == tmp_path
    assert find_project(tmp_path / "segctl.yaml") == tmp_path
    monkeypatch.setenv("SEGCTL_PROJECT", str(tmp_path))
    assert find_project() == tmp_path
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGCTL_PROJECT")
    assert find_project() == Path(".")
    with pytest.raises(ConfigError, match=r"no segctl.yaml in .*segctl init"):
        find_project(tmp_path / "elsewhere")


# ---- reading the data -------------------------------------------------------------------------

EVENTS_CSV = """\
person_id,event,timestamp,amount
p1,login,2026-11-16T10:00:00Z,
p1,purchase,2026-11-16T12:00:00+02:00,25.5
p2,login,2026-11-16 23:30:00,
p3,login,2026-11-16T20:00:00-05:00,
"""
# The same instants as naive UTC: offsets converted, values without an offset taken as UTC.
EVENTS_UTC = [
    ("p1", "login", datetime(2026, 11, 16, 10), None),
    ("p1", "purchase", datetime(2026, 11, 16, 10), 25.5),
    ("p2", "login", datetime(2026, 11, 16, 23, 30), None),
    ("p3", "login", datetime(2026, 11, 17, 1), None),
]


def events_of(root: Path) -> list[tuple[Any, ...]]:
    engine = segctl.Project.load(root).engine.driver
    engine.schema()
    return engine.rows("SELECT person_id, event, timestamp, amount FROM events ORDER BY ALL")


def with_events(path: str) -> str:
    return CONFIG.replace("data/events.parquet", path)


def test_csv_events(make_project: MakeProject) -> None:
    root = make_project(config=with_events("data/e.csv"), files={"data/e.csv": EVENTS_CSV})
    assert events_of(root) == EVENTS_UTC


def test_csv_gz_events(make_project: MakeProject) -> None:
    root = make_project(config=with_events("data/e.csv.gz"))
    (root / "data/e.csv.gz").write_bytes(gzip.compress(EVENTS_CSV.encode()))
    assert events_of(root) == EVENTS_UTC


def _ndjson_events() -> bytes:
    """EVENTS_CSV's rows as NDJSON."""
    lines = []
    for line in EVENTS_CSV.splitlines()[1:]:
        person, event, timestamp, amount = line.split(",")
        row = {"person_id": person, "event": event, "timestamp": timestamp}
        lines.append(json.dumps({**row, "amount": float(amount) if amount else None}) + "\n")
    return "".join(lines).encode()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # Segment's S3 archive: gzipped NDJSON named <received ms>.<id>.gz
        ("1793494800000.e1f2a3b4.gz", lambda: gzip.compress(_ndjson_events())),
        ("export", _ndjson_events),  # no suffix at all (a saved API response)
        ("events.log", lambda: b"\xef\xbb\xbf\n  " + _ndjson_events()),  # BOM, blank line
        ("events.bin", lambda: _parquet_bytes()),
    ],
)
def test_a_file_whose_name_does_not_tell_its_format_is_read_by_its_content(
    make_project: MakeProject, name: str, content: Callable[[], bytes]
) -> None:
    root = make_project(config=with_events(f"data/in/**/{name}"))
    path = root / "data/in/a/b" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(content())
    assert events_of(root) == EVENTS_UTC


def _parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"person_id": [r[0] for r in EVENTS_UTC],
                             "event": [r[1] for r in EVENTS_UTC],
                             "timestamp": [r[2] for r in EVENTS_UTC],
                             "amount": [r[3] for r in EVENTS_UTC]}), sink)  # fmt: skip
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    ("name", "content"), [("events.txt", EVENTS_CSV.encode()), ("events.gz", gzip.compress(b"a;b"))]
)
def test_a_file_no_name_or_content_tells_is_refused_with_the_formats(
    make_project: MakeProject, name: str, content: bytes
) -> None:
    root = make_project(config=with_events(f"data/{name}"))
    (root / "data" / name).write_bytes(content)
    with pytest.raises(DataError, match=rf"data.events: unsupported file type: {name} in "
                      r"'data/{name}' \(use \.parquet, \.csv, \.tsv, \.json, \.jsonl, "
                      r"\.ndjson, each optionally \.gz\)".replace("{name}", name)):  # fmt: skip
        events_of(root)


def test_a_folder_named_as_a_source_says_to_glob_its_files(make_project: MakeProject) -> None:
    root = make_project(config=with_events("data/events/"))
    (root / "data/events/day=2026-11-16").mkdir(parents=True)
    with pytest.raises(DataError, match=r"data.events: data/events/ is a folder: name its files "
                      r"with a glob, e.g. 'data/events/\*\*/\*.parquet'"):  # fmt: skip
        events_of(root)


@pytest.mark.parametrize("unit", ["us", "ns"])  # pandas writes nanoseconds
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_parquet_timestamps_naive_or_aware_become_utc(
    make_project: MakeProject, tz: Any, unit: str
) -> None:
    root = make_project(config=with_events("data/e.parquet"))
    instants = [datetime(2026, 11, 16, 10), datetime(2026, 11, 17, 1)]
    values = pa.array(instants, pa.timestamp(unit))
    if tz is not None:  # the same instants, stored with a zone
        values = values.cast(pa.timestamp(unit, tz="UTC")).cast(pa.timestamp(unit, tz=tz))
    table = pa.table(
        {
            "person_id": ["p1", "p3"],
            "event": ["login"] * 2,
            "timestamp": values,
            "amount": [1.0, 2.0],
        }
    )
    pq.write_table(table, root / "data/e.parquet")
    project = segctl.Project.load(root)
    project.engine.driver.schema()
    assert project.engine.driver.rows("SELECT timestamp FROM events ORDER BY 1") == [
        (t,) for t in instants
    ]
    # The plan's time bounds apply to the source column when it allows: it must still run.
    assert project.evaluate(as_of="2026-11-17T00:00:00Z").segments


def test_globs_and_lists_of_files_mixing_formats(make_project: MakeProject) -> None:
    lines = EVENTS_CSV.splitlines(keepends=True)
    root = make_project(
        config=with_events("[data/2026/**/*.csv, data/old.parquet]"),
        files={
            "data/2026/11/a.csv": lines[0] + lines[1] + lines[2],
            "data/2026/11/16/b.csv": lines[0] + lines[3] + lines[4],
            "data/2026/ignored.txt": "not matched by the glob",
        },
    )
    write_events(root / "data/old.parquet", [EVENTS[4]])  # p1's purchase of 600 in June
    assert events_of(root) == sorted(
        [*EVENTS_UTC, ("p1", "purchase", datetime(2026, 6, 1, 12), 600.0)]
    )


def test_column_renames(make_project: MakeProject) -> None:
    config = CONFIG.replace("data/events.parquet", "data/e.csv").replace(
        "segments:",
        "  columns:\n"
        "    events: {person_id: user_id, event: name, timestamp: ts}\n"
        "    persons: {person_id: id, created_at: signup}\n"
        "segments:",
    )
    persons = "id,plan,country,age,signup,email\np1,pro,DE,30,2026-01-01,a@x\n"
    root = make_project(
        config=config,
        persons=persons,
        segments={"recent": "name: recent\nrule: {event: login, within: 1d, count: {gte: 1}}\n"},
        features="features: {}\n",
        files={"data/e.csv": EVENTS_CSV.replace("person_id,event,timestamp", "user_id,name,ts")},
    )
    project = segctl.Project.load(root)
    assert list(project.schema["events"]) == ["person_id", "event", "timestamp", "amount"]
    assert list(project.schema["persons"]) == [
        "person_id", "plan", "country", "age", "created_at", "email",
    ]  # fmt: skip
    assert events_of(root) == EVENTS_UTC
    members = project.evaluate(as_of=AS_OF).members("recent")["person_id"].to_list()
    assert members == ["p1"]  # p2 and p3 have no person row


def test_a_renamed_column_clashing_with_a_canonical_one(make_project: MakeProject) -> None:
    config = CONFIG.replace("segments:", "  columns: {persons: {plan: country}}\nsegments:")
    with pytest.raises(DataError, match=r"has both 'country' .* and a column named 'plan'"):
        segctl.Project.load(make_project(config=config)).schema  # noqa: B018


def test_csv_ids_and_phones_stay_text(make_project: MakeProject) -> None:
    persons = "person_id,phone,age,created_at\n007,0049301234,30,2026-01-01\n10,+1 555,41,\n"
    root = make_project(persons=persons, segments={}, features="features: {}\n")
    project = segctl.Project.load(root)
    project.validate()
    assert project.engine.driver.rows("SELECT person_id, phone, age FROM persons ORDER BY 1") == [
        ("007", "0049301234", 30),
        ("10", "+1 555", 41),
    ]


def test_types_reported_to_the_parser(project: Path) -> None:
    schema = segctl.Project.load(project).schema
    assert {k: v.value for k, v in schema["persons"].items()} == {
        "person_id": "string", "email": "string", "plan": "string", "country": "string",
        "age": "number", "created_at": "timestamp",
    }  # fmt: skip
    assert schema["events"]["timestamp"].value == "timestamp"
    assert schema["subscriptions"]["mrr"].value == "number"


def test_persons_created_after_as_of_are_not_evaluated(make_project: MakeProject) -> None:
    everyone = textwrap.dedent("name: everyone\nrule: {property: person_id, is_set: true}\n")
    project = segctl.Project.load(make_project(segments={"everyone": everyone}))
    members = project.evaluate(as_of=AS_OF).members("everyone")["person_id"].to_list()
    assert members == ["p1", "p2", "p3", "p4"]  # p5 is created on 2026-12-01
    later = project.evaluate(as_of="2026-12-01T00:00:00Z").members("everyone")
    assert later["person_id"].to_list() == ["p1", "p2", "p3", "p4", "p5"]
