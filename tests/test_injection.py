"""Injection fuzzing (SPEC 4): hostile names and values in segment files are never SQL.

Hypothesis writes projects whose person ids, plans, event names and event properties are hostile
strings (quotes, semicolons, comments, LIKE wildcards, backslashes, template syntax, unicode,
very long text) and segments comparing them with every string comparator. Values must match
literally, exactly the persons Python says; the compiled plan must stay one statement holding
the values as string literals; the input tables must be intact afterwards. Hostile *names*
(segments, properties, event properties, features, references) must be refused as definition
errors that name the file and position, before any SQL is built.

The default suite runs a few examples per test; ``-m slow`` runs many more.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

import segctl
from segctl.errors import DefinitionError

AS_OF = "2026-11-17T00:00:00Z"
PAYLOADS = [
    "'); DROP TABLE persons; --",
    "' OR '1'='1",
    '" OR ""="',
    "'; DELETE FROM events WHERE ''='",
    "*/ SELECT 1; /*",
    "-- comment",
    "\\'; SELECT 1; --",
    "\\",
    "%",
    "_",
    "a_c",
    "a%",
    "${HOME}",
    "{{ person_id }}",
    "$1",
    "?",
    "O'Brien",
    "NULL",
    "null",
    "yes",
    "1e3",
    "2026-01-01",
    "İx",
    "ǅungla",
    "K",
    "straße",
    "\u202egnp.exe",
    "e\u0301",
    "🙂🙃",
    "日本語",
    "tab\there",
    "new\nline",
    "cr\rhere",
]
# Text YAML and Parquet can carry: no NUL, no lone surrogates.
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
HOSTILE = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(CHARS, min_size=1, max_size=24),
    st.builds(lambda a, b: a + b, st.sampled_from(PAYLOADS), st.text(CHARS, max_size=8)),
    st.text(CHARS, min_size=3000, max_size=5000),  # very long
).filter(lambda v: v != "*")  # "*" is the language's "any event", not a hostile value
PLAIN = ["abc", "xyz"]  # persons with ordinary plans: a wildcard would match them
FAST = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MANY = settings(FAST, max_examples=150)


def person_ids(values: list[str]) -> list[str]:
    return [f"{i}:{v}" for i, v in enumerate(values)] + [f"plain{i}" for i in range(len(PLAIN))]


def write_project(root: Path, values: list[str]) -> dict[str, str]:
    """A project whose persons' plans (and events) are ``values`` plus PLAIN, and a segment per
    comparator and value; returns each segment's YAML by name."""
    ids = person_ids(values)
    plans = [*values, *PLAIN]
    (root / "segments").mkdir(parents=True)
    (root / "lists").mkdir()
    (root / "segctl.yaml").write_text(
        "data: {events: events.parquet, persons: persons.parquet}\nsegments: segments/\n"
    )
    pq.write_table(pa.table({"person_id": ids, "plan": plans}), root / "persons.parquet")
    pq.write_table(
        pa.table(
            {
                "person_id": ids,
                "event": plans,
                "timestamp": pa.array(
                    [datetime(2026, 11, 10)] * len(ids),
                    pa.timestamp("us"),
                ),
                "format": plans,
            }
        ),
        root / "events.parquet",
    )
    pq.write_table(pa.table({"person_id": ids[:2]}), root / "lists" / "few.parquet")
    rules: dict[str, Any] = {
        "in_two": {"property": "plan", "in": values[:2]},
        "not_in": {"property": "plan", "not_in": values},
        "listed": {"list": {"file": "lists/few.parquet", "key": "person_id"}},
    }
    for i, value in enumerate(values):
        rules[f"eq_{i}"] = {"property": "plan", "eq": value}
        rules[f"ne_{i}"] = {"property": "plan", "ne": value}
        rules[f"contains_{i}"] = {"property": "plan", "contains": value}
        rules[f"starts_{i}"] = {"property": "plan", "starts_with": value}
        rules[f"ends_{i}"] = {"property": "plan", "ends_with": value}
        rules[f"event_{i}"] = {"event": value, "count": {"gte": 1}}
        rules[f"where_{i}"] = {
            "event": "*",
            "where": {"format": {"eq": value}},
            "count": {"gte": 1},
        }
    texts = {}
    for name, rule in rules.items():
        texts[name] = dump({"name": name, "rule": rule})
        (root / "segments" / f"{name}.yaml").write_text(texts[name], encoding="utf-8")
    return texts


def dump(document: dict[str, Any]) -> str:
    """YAML holding exactly ``document``: unicode as itself, unless YAML would change it (a NEL
    is a line break in a quoted scalar), then as escapes."""
    text = yaml.safe_dump(document, allow_unicode=True)
    return text if yaml.safe_load(text) == document else yaml.safe_dump(document)


def expected(values: list[str]) -> dict[str, set[str]]:
    """Each segment's members, by Python string semantics (case-insensitive tests: only where
    lower case is unambiguous, ASCII; otherwise the person's own value must match itself)."""
    ids, plans = person_ids(values), [*values, *PLAIN]
    people = list(zip(ids, plans, strict=True))
    out: dict[str, set[str]] = {
        "in_two": {p for p, plan in people if plan in values[:2]},
        "not_in": {p for p, plan in people if plan not in values},
        "listed": set(ids[:2]),
    }
    tests = {
        "contains": lambda plan, v: v.lower() in plan.lower(),
        "starts": lambda plan, v: plan.lower().startswith(v.lower()),
        "ends": lambda plan, v: plan.lower().endswith(v.lower()),
    }
    for i, value in enumerate(values):
        out[f"eq_{i}"] = out[f"event_{i}"] = out[f"where_{i}"] = {
            p for p, plan in people if plan == value
        }
        out[f"ne_{i}"] = {p for p, plan in people if plan != value}
        for kind, test in tests.items():
            if all(v.isascii() for v in [*values, *PLAIN]):
                out[f"{kind}_{i}"] = {p for p, plan in people if test(plan, value)}
    return out


def check_values(root: Path, values: list[str]) -> None:
    texts = write_project(root, values)
    project = segctl.Project.load(root)
    result = project.evaluate(as_of=AS_OF)
    want = expected(values)
    for name in texts:
        got = set(result.members(name)["person_id"].to_list())
        if name in want:
            assert got == want[name], (name, texts[name])
        else:  # a case-insensitive test on non-ASCII text: at least its own value matches
            i = int(name.rsplit("_", 1)[1])
            assert person_ids(values)[i] in got, (name, texts[name])
    # Nothing was executed but the plan: the inputs are whole.
    assert project.engine.driver.rows("SELECT count(*) FROM persons") == [
        (len(values) + len(PLAIN),)
    ]
    assert project.engine.driver.rows("SELECT count(*) FROM events") == [
        (len(values) + len(PLAIN),)
    ]
    # The plan is one statement, and every value sits in it as a string literal.
    sql = project.compile(as_of=AS_OF)
    assert len(duckdb.extract_statements(sql)) == 1
    (tree,) = sqlglot.parse(sql, read="duckdb")
    strings = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
    assert set(values) <= strings


@FAST
@given(values=st.lists(HOSTILE, min_size=2, max_size=4, unique=True))
def test_hostile_values_match_literally(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    check_values(tmp_path_factory.mktemp("values"), values)


@pytest.mark.slow
@MANY
@given(values=st.lists(HOSTILE, min_size=2, max_size=6, unique=True))
def test_hostile_values_match_literally_many(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    check_values(tmp_path_factory.mktemp("values"), values)


def test_every_known_payload_matches_literally(tmp_path: Path) -> None:
    """All the payloads at once (each also followed by a character, so that prefixes,
    suffixes and substrings have something to find)."""
    check_values(tmp_path, [*PAYLOADS, *(p + "!" for p in PAYLOADS)])


# ---- names ------------------------------------------------------------------------------------

NAME_PLACES = {
    # where the hostile name goes -> (segment file, features file)
    "segment name": lambda n: ({"name": n, "rule": {"property": "plan", "eq": "x"}}, None),
    "property": lambda n: ({"name": "a", "rule": {"property": n, "eq": "x"}}, None),
    "event property": lambda n: (
        {"name": "a", "rule": {"event": "*", "where": {n: {"eq": "x"}}, "count": {"gte": 1}}},
        None,
    ),
    "sum of": lambda n: ({"name": "a", "rule": {"event": "*", "sum": {"of": n, "gte": 1}}}, None),
    "segment reference": lambda n: ({"name": "a", "rule": {"segment": n}}, None),
    "feature reference": lambda n: ({"name": "a", "rule": {"feature": n, "gte": 1}}, None),
    "feature name": lambda n: (
        {"name": "a", "rule": {"property": "plan", "eq": "x"}},
        {"features": {n: {"event": "*", "measure": "count"}}},
    ),
    "template": lambda n: ({"name": "a", "template": n}, None),
}
VALID_NAME = r"[a-z][a-z0-9_]*"


def check_name(root: Path, place: str, name: str) -> None:
    segment, features = NAME_PLACES[place](name)
    (root / "segments").mkdir(parents=True)
    (root / "segctl.yaml").write_text(
        "data: {events: events.parquet, persons: persons.parquet}\nsegments: segments/\n"
    )
    pq.write_table(pa.table({"person_id": ["p1"], "plan": ["x"]}), root / "persons.parquet")
    pq.write_table(
        pa.table(
            {
                "person_id": ["p1"],
                "event": ["login"],
                "timestamp": pa.array([datetime(2026, 11, 10)], pa.timestamp("us")),
                "amount": [1.0],
            }
        ),
        root / "events.parquet",
    )
    (root / "segments" / "a.yaml").write_text(dump(segment), encoding="utf-8")
    if features is not None:
        (root / "features.yaml").write_text(dump(features), encoding="utf-8")
    project = segctl.Project.load(root)
    with pytest.raises(DefinitionError) as caught:
        project.validate()
    message = str(caught.value)
    where = "features.yaml:" if place == "feature name" else "segments/a.yaml:"
    assert message.startswith(where), message
    assert "Traceback" not in message
    # Refused before anything ran: the inputs are whole.
    assert project.engine.driver.rows("SELECT count(*) FROM persons") == [(1,)]


HOSTILE_NAMES = st.one_of(
    st.sampled_from(PAYLOADS), st.text(CHARS, min_size=1, max_size=40)
).filter(lambda n: n not in ("plan", "person_id", "event", "timestamp", "amount", "a"))


@FAST
@given(place=st.sampled_from(sorted(NAME_PLACES)), name=HOSTILE_NAMES)
def test_hostile_names_are_refused(
    tmp_path_factory: pytest.TempPathFactory, place: str, name: str
) -> None:
    import re

    if place in ("segment name", "feature name") and re.fullmatch(VALID_NAME, name):
        return  # a valid name: nothing to refuse
    check_name(tmp_path_factory.mktemp("names"), place, name)


@pytest.mark.parametrize("place", sorted(NAME_PLACES))
def test_a_drop_table_name_is_refused_everywhere(tmp_path: Path, place: str) -> None:
    check_name(tmp_path, place, "x; DROP TABLE persons; --")


def test_values_in_a_yaml_flow_segment_are_quoted_by_the_user(tmp_path: Path) -> None:
    """Hand-written YAML, not safe_dump: the value a user quotes is the value matched."""
    root = tmp_path / "proj"
    write_project(root, ["'); DROP TABLE x; --", "plain"])
    (root / "segments" / "hand.yaml").write_text(
        textwrap.dedent("""\
            name: hand
            rule: {property: plan, eq: "'); DROP TABLE x; --"}
            """)
    )
    result = segctl.Project.load(root).evaluate(as_of=AS_OF)
    assert result.members("hand")["person_id"].to_list() == ["0:'); DROP TABLE x; --"]
