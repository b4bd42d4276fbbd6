"""Nested properties in a whole project, through the CLI (SPEC 1, "Nested properties").

The events hold the same kind of data three ways: a JSON text column (``properties``, as
PostHog and Segment export it), a STRUCT (``ctx``) and GA4's key/value records
(``event_params``); persons a JSON text column (``traits``). Every place a property name goes
(``where:``, ``property:``, ``of:``, ``share``, sequence steps, features) is evaluated, with the
members worked out by hand beside each segment. Bad names stop with file:line:col and change no
state; a JSON key never seen in the data is a warning.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, CONFIG, Cli, MakeProject, at

from segctl import Project

PARAM = pa.struct(
    [
        ("key", pa.string()),
        (
            "value",
            pa.struct(
                [
                    ("string_value", pa.string()),
                    ("int_value", pa.int64()),
                    ("float_value", pa.float64()),
                    ("double_value", pa.float64()),
                ]
            ),
        ),
    ]
)
SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("properties", pa.string()),
        ("ctx", pa.struct([("n", pa.int64()), ("os", pa.string()), ("beta", pa.bool_())])),
        ("event_params", pa.list_(PARAM)),
    ]
)


def param(key: str, value: Any) -> dict[str, Any]:
    slots: dict[str, Any] = dict.fromkeys(
        ("string_value", "int_value", "float_value", "double_value")
    )
    if isinstance(value, int):
        slots["int_value"] = value
    elif isinstance(value, float):
        slots["double_value"] = value
    else:
        slots["string_value"] = value
    return {"key": key, "value": slots}


P1 = {"plan": "pro", "amount": "12", "flag": True, "app.version": "1.2", "$current_url": "/pricing"}
EVENTS = [
    ("p1", "purchase", "2026-11-10 10:00", json.dumps(P1), {"n": 2, "os": "ios", "beta": True},
     [param("page", "home"), param("value_n", 7)]),
    ("p1", "login", "2026-11-11 10:00", "{}", None, []),
    ("p2", "purchase", "2026-11-10 10:00", json.dumps({"plan": "pro", "amount": 3, "flag": "true"}),
     {"n": 5, "os": "android", "beta": False}, [param("page", "x"), param("value_n", 2.5)]),
    ("p3", "purchase", "2026-11-10 10:00",
     json.dumps({"plan": "free", "amount": 50.5, "flag": "no"}),
     {"n": None, "os": None, "beta": None}, None),
    ("p3", "purchase", "2026-11-12 10:00", None, None, None),
    ("p4", "login", "2026-11-12 10:00", "[1, 2]", None, [param("page", "home")]),
    ("p1", "purchase", "2026-11-20 10:00", json.dumps({"plan": "pro", "amount": 1000}), None, None),
]  # fmt: skip

PERSONS = """\
person_id,email,plan,traits,created_at
p1,a@example.com,pro,"{""tier"": ""gold"", ""score"": ""9""}",2026-01-01T00:00:00Z
p2,b@example.com,free,"{""tier"": ""silver"", ""score"": 3}",2026-01-01T00:00:00Z
p3,c@example.com,free,,2026-01-01T00:00:00Z
p4,d@example.com,free,"{""tier"": ""gold""}",2026-01-01T00:00:00Z
"""

#: segment -> (its rule, its members at AS_OF worked out from EVENTS and PERSONS).
SEGMENTS: dict[str, tuple[str, list[str]]] = {
    # plan is "pro" in p1's and p2's purchases (p1's after AS_OF does not count).
    "json_text": ("{event: purchase, where: {properties.plan: {eq: pro}}, count: {gte: 1}}",
                  ["p1", "p2"]),
    # "12" (a numeric string), 3, 50.5: sums 12, 3, 50.5.
    "json_sum": ("{event: purchase, sum: {of: properties.amount, gte: 10}}", ["p1", "p3"]),
    # true and "true" alike; "no" is not a boolean.
    "json_boolean": ("{event: purchase, where: {properties.flag: {eq: true}}, count: {gte: 1}}",
                     ["p1", "p2"]),
    # ne is true on a missing value: p3's "no" and p3's purchase without properties.
    "json_ne": ("{event: purchase, where: {properties.flag: {ne: true}}, count: {gte: 2}}",
                ["p3"]),
    "quoted_key": ('{event: "*", where: {properties."app.version": {eq: "1.2"}}, '
                   "count: {gte: 1}}", ["p1"]),
    "dollar_key": ("{event: '*', where: {properties.$current_url: {starts_with: /pri}}, "
                   "count: {gte: 1}}", ["p1"]),
    "struct_number": ("{event: purchase, where: {ctx.n: {gte: 2}}, count: {gte: 1}}",
                      ["p1", "p2"]),
    "struct_boolean": ("{event: purchase, where: {ctx.beta: {eq: false}}, count: {gte: 1}}",
                       ["p2"]),
    "struct_max": ("{event: purchase, max: {of: ctx.n, gte: 5}}", ["p2"]),
    "ga4_text": ("{event: '*', where: {event_params.page: {eq: home}}, count: {gte: 1}}",
                 ["p1", "p4"]),
    "ga4_number": ("{event: '*', sum: {of: event_params.value_n, gt: 2}}", ["p1", "p2"]),
    "person_json": ("{property: traits.tier, eq: gold}", ["p1", "p4"]),
    # "9" counts as a number; p4 has no score, p3 no traits at all.
    "person_number": ("{property: traits.score, gte: 5}", ["p1"]),
    "person_missing": ("{property: traits.tier, is_set: false}", ["p3"]),
    "sequence_step": ("{sequence: {steps: [{event: purchase, where: {ctx.n: {gte: 2}}}, "
                      "{event: login}]}}", ["p1"]),
    # amount > 5 in 1 of 1 (p1), 0 of 1 (p2), 1 of 2 (p3) purchases.
    "share_where": ("{event: purchase, share: {where: {properties.amount: {gt: 5}}, gte: 0.5}}",
                    ["p1", "p3"]),
    "last_of": ("{event: purchase, last: 1, sum: {of: properties.amount, gte: 1}}", ["p1", "p2"]),
}  # fmt: skip

FEATURES = """\
features:
  spend: {event: purchase, measure: {sum: properties.amount}}
  top_n: {event: purchase, measure: {max: ctx.n}}
"""
NESTED_CONFIG = CONFIG.replace("  subscriptions: data/subscriptions.csv\n", "")


def write_events(root: Path) -> None:
    rows = [
        dict(zip(SCHEMA.names, (p, e, at(t), props, ctx, params), strict=True))
        for p, e, t, props, ctx, params in EVENTS
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), root / "data/events.parquet")


def nested_project(make_project: MakeProject, segments: dict[str, str] | None = None) -> Path:
    files = segments or {n: f"name: {n}\nrule: {rule}\n" for n, (rule, _) in SEGMENTS.items()}
    root = make_project(config=NESTED_CONFIG, segments=files, features=FEATURES, persons=PERSONS)
    write_events(root)
    return root


def test_members_everywhere_a_property_name_goes(cli: Cli, make_project: MakeProject) -> None:
    root = nested_project(make_project)
    assert cli("validate", "--project", root).stderr == ""
    result = Project.load(root).evaluate(as_of=AS_OF)
    for name, (_, members) in SEGMENTS.items():
        assert result.members(name)["person_id"].to_list() == members, name


def test_features_of_nested_properties(cli: Cli, make_project: MakeProject) -> None:
    root = nested_project(make_project)
    rows = json.loads(
        cli("features", "--as-of", AS_OF, "--project", root, "--format", "json").stdout
    )
    values = {r["person_id"]: (r["spend"], r["top_n"]) for r in rows}
    assert values == {
        "p1": (12.0, 2),
        "p2": (3.0, 5),
        "p3": (50.5, None),
        "p4": (0, None),
    }


def test_each_key_is_extracted_once_per_scan(make_project: MakeProject) -> None:
    # Three conditions on properties.plan and two on properties.amount: two extractions.
    rule = (
        "{any: [{event: purchase, where: {properties.plan: {eq: pro}}, count: {gte: 1}},"
        " {event: login, where: {properties.plan: {ne: free}}, count: {gte: 1}},"
        " {event: purchase, where: {properties.plan: {in: [pro, max]}}, within: 7d,"
        " count: {gte: 2}},"
        " {event: purchase, sum: {of: properties.amount, gte: 5}},"
        " {event: purchase, where: {properties.amount: {gt: 1}}, count: {gte: 1}}]}"
    )
    root = nested_project(make_project, {"a": f"name: a\nrule: {rule}\n"})
    sql = Project.load(root).compile("a", as_of=AS_OF)
    # DuckDB parses the JSON once per row for both keys, and reads each key's text from the
    # list; the number reading tests that text and casts it.
    assert sql.count("""JSON_EXTRACT_STRING("properties", ['$.plan', '$.amount'])""") == 1
    assert sql.count("->>") == 0
    # Elsewhere, one extraction per key (a number reading tests the text and casts it).
    spark = Project.load(root).compile("a", dialect="spark", as_of=AS_OF)
    assert spark.count("GET_JSON_OBJECT(`properties`, '$.plan')") == 1
    assert spark.count("GET_JSON_OBJECT(`properties`, '$.amount')") == 2


@pytest.mark.parametrize(
    ("dialect", "access"),
    [
        ("duckdb", """JSON_EXTRACT_STRING("properties", ['$.plan'])"""),
        ("spark", "GET_JSON_OBJECT(`properties`, '$.plan')"),
        ("bigquery", "JSON_EXTRACT_SCALAR(`properties`, '$.plan')"),
        ("trino", """JSON_EXTRACT_SCALAR("properties", '$.plan')"""),
        ("snowflake", """JSON_EXTRACT_PATH_TEXT("properties", 'plan')"""),
    ],
)
def test_compile_gives_each_dialects_json_access(
    make_project: MakeProject, dialect: str, access: str
) -> None:
    root = nested_project(make_project, {"a": f"name: a\nrule: {SEGMENTS['json_text'][0]}\n"})
    assert access in Project.load(root).compile("a", dialect=dialect, as_of=AS_OF)


@pytest.mark.parametrize("dialect", ["bigquery", "trino"])
def test_struct_and_ga4_readings_compiled_for_a_warehouse_mean_what_they_mean_here(
    make_project: MakeProject, dialect: str
) -> None:
    """SPEC 1, 8: a nested property works wherever a property name does, in the warehouses'
    SQL too. BigQuery (where GA4 exports) and Trino read a STRUCT's field with a dot (a ROW
    takes no name in brackets), and BigQuery a GA4 parameter by a subquery over
    ``UNNEST(event_params)``. Each segment's SQL, read back into DuckDB by sqlglot and run on
    the project's data, finds the members worked out by hand; the header creates the nested
    columns with their shapes."""
    import sqlglot

    nested = [n for n in SEGMENTS if n.startswith(("struct_", "ga4_", "sequence_"))]
    project = Project.load(nested_project(make_project))
    project.engine.driver.schema()
    for name in nested:
        sql = project.compile(name, dialect=dialect, as_of=AS_OF)
        body = "\n".join(line for line in sql.splitlines() if not line.startswith("-- "))
        assert "['" not in body, (name, sql)  # no field read by name in brackets
        duck = sqlglot.transpile(sql, read=dialect, write="duckdb")[0]
        found = [row[0] for row in project.engine.driver.rows(duck)]
        assert found == SEGMENTS[name][1], (name, sql)
    sql = project.compile("ga4_text", dialect=dialect, as_of=AS_OF)
    if dialect == "bigquery":
        assert "FROM UNNEST(`event_params`) AS __kv" in sql
        assert "`event_params` ARRAY<STRUCT<`key` STRING, `value` STRUCT<string_value STRING" in sql
    else:
        assert '"event_params" ARRAY(ROW("key" VARCHAR, "value" ROW(string_value VARCHAR' in sql
    struct = project.compile("struct_number", dialect=dialect, as_of=AS_OF)
    assert ("`ctx` STRUCT<n INT64" if dialect == "bigquery" else '"ctx" ROW(n BIGINT') in struct


def test_compile_refuses_a_dialect_that_cannot_express_it(
    cli: Cli, make_project: MakeProject
) -> None:
    root = nested_project(make_project, {"a": f"name: a\nrule: {SEGMENTS['ga4_text'][0]}\n"})
    result = cli("compile", "a", "--dialect", "snowflake", "--project", root, code=3)
    assert "cannot compile for snowflake" in result.stderr
    assert "list of key/value records" in result.stderr
    spark = cli("compile", "a", "--dialect", "spark", "--project", root).stdout
    assert "TRY_ELEMENT_AT(FILTER(`event_params`" in spark


def test_a_key_never_seen_in_the_data_is_a_warning(cli: Cli, make_project: MakeProject) -> None:
    rule = "{event: purchase, where: {properties.plna: {eq: pro}}, count: {gte: 1}}"
    root = nested_project(make_project, {"a": f"name: a\nrule: {rule}\n"})
    result = cli("validate", "--project", root)
    assert result.stdout.startswith("ok: 1 segments")
    assert result.stderr.startswith("warning: segments/a.yaml:2:33: event property ")
    assert "key 'plna' never appears in the first 10,000 rows of properties" in result.stderr
    assert "(did you mean 'plan'?)" in result.stderr
    document = json.loads(cli("validate", "--project", root, "--format", "json").stdout)
    assert document["warnings"][0].startswith("segments/a.yaml:2:33: ")
    assert "plna" in document["warnings"][0]
    # Still evaluated: the key is missing everywhere, so nobody matches.
    assert Project.load(root).evaluate(as_of=AS_OF).members("a").is_empty()


def test_a_reading_the_sampled_values_never_give_is_a_warning(
    cli: Cli, make_project: MakeProject
) -> None:
    segments = {
        "a": "name: a\nrule: {event: purchase, where: {properties.plan: {gte: 5}}, "
        "count: {gte: 1}}\n",
        "b": "name: b\nrule: {property: traits.tier, eq: true}\n",
        # Some values read as asked: nothing to say.
        "c": "name: c\nrule: {event: purchase, where: {properties.flag: {eq: true}}, "
        "count: {gte: 1}}\n",
        "d": "name: d\nrule: {event: purchase, sum: {of: properties.amount, gte: 1}}\n",
    }
    root = nested_project(make_project, segments)
    warnings = cli("validate", "--project", root).stderr.splitlines()
    assert warnings == [
        "warning: segments/a.yaml:2:33: event property 'properties.plan': the comparator reads "
        "it as a number, but none of its 4 values in the first 10,000 rows is a number "
        "(seen: 'free', 'pro'); compare with text to read it as text (eq: '5')",
        "warning: segments/b.yaml:2:18: person property 'traits.tier': the comparator reads it "
        "as a boolean, but none of its 3 values in the first 10,000 rows is a boolean "
        "(seen: 'gold', 'silver'); compare with text to read it as text (eq: '5')",
    ]


# ---- bad input: file:line:col, exit 3, no state changed -----------------------------------

BAD = [
    ("bad-syntax", "{event: purchase, where: {properties..plan: {eq: pro}}, count: {gte: 1}}",
     "segments/a.yaml:2:33", "event property name "
     "'properties..plan' has an empty key at position 12 (two dots in a row)"),
    ("unclosed-quote", """{property: 'traits."tier', eq: gold}""", "segments/a.yaml:2:18",
     "person property name 'traits.\"tier': the quote at position 8 is never closed"),
    ("unknown-column", "{event: purchase, where: {propertes.plan: {eq: pro}}, count: {gte: 1}}",
     "segments/a.yaml:2:33", "unknown event property 'propertes.plan': there is no column "
     "'propertes' (did you mean 'properties'?)"),
    ("unknown-struct-key", "{event: purchase, where: {ctx.nn: {gte: 1}}, count: {gte: 1}}",
     "segments/a.yaml:2:33", "unknown key 'nn' in the column (a STRUCT with keys: n, os, beta) "
     "(did you mean 'n'?)"),
    ("struct-type-mismatch", "{event: purchase, where: {ctx.n: {eq: true}}, count: {gte: 1}}",
     "segments/a.yaml:2:45", "'eq': expected a number, got the boolean true"),
    ("struct-text-op-on-number",
     "{event: purchase, where: {ctx.n: {contains: a}}, count: {gte: 1}}",
     "segments/a.yaml:2:51", "'contains' applies to string values, not to a number value"),
    ("sum-of-boolean", "{event: purchase, sum: {of: ctx.beta, gte: 1}}", "segments/a.yaml:2:35",
     "cannot take sum of 'ctx.beta': it is a boolean column"),
    ("json-timestamp-op", "{event: purchase, where: {properties.plan: {before: 2026-01-01}}, "
     "count: {gte: 1}}", "segments/a.yaml:2:33", "'before' needs a timestamp, but event property "
     "'properties.plan' holds JSON values"),
    ("key-into-timestamp", "{event: purchase, where: {timestamp.day: {eq: 1}}, count: {gte: 1}}",
     "segments/a.yaml:2:33", "cannot read key 'day' in the column: it is TIMESTAMP, not JSON "
     "text, a STRUCT, a MAP or a list of key/value records"),
    ("json-number-and-text", "{property: traits.score, in: [5, high]}", "segments/a.yaml:2:36",
     "'in': expected a number, got the text 'high'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "where", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_nested_names(
    cli: Cli, make_project: MakeProject, rule: str, where: str, message: str
) -> None:
    good = nested_project(make_project, {"a": "name: a\nrule: {property: plan, eq: pro}\n"})
    cli("run", "--as-of", "2026-11-10T00:00:00Z", "--project", good)
    root = nested_project(make_project, {"a": f"name: a\nrule: {rule}\n"})
    shutil.copytree(good / ".segctl", root / ".segctl")
    before = sorted((p.name, p.read_bytes()) for p in (root / ".segctl").rglob("*") if p.is_file())
    for command in (["validate"], ["run", "--as-of", AS_OF]):
        result = cli(*command, "--project", root, code=3)
        assert result.stderr.startswith(f"error: {where}: "), result.stderr
        assert message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    after = sorted((p.name, p.read_bytes()) for p in (root / ".segctl").rglob("*") if p.is_file())
    assert after == before


def test_a_key_past_a_ga4_value_is_refused(make_project: MakeProject) -> None:
    from segctl.errors import DefinitionError

    rule = textwrap.dedent(
        """\
        name: a
        rule: {event: purchase, where: {event_params.page.x: {eq: 1}}, count: {gte: 1}}
        """
    )
    root = nested_project(make_project, {"a": rule})
    with pytest.raises(DefinitionError, match="unknown key 'x'"):
        Project.load(root).validate(check_data=False)


# ---- the documentation's examples are real ---------------------------------------------------

LANGUAGE = Path(__file__).resolve().parents[1] / "docs" / "language.md"


def nested_section() -> str:
    text = LANGUAGE.read_text(encoding="utf-8")
    start = text.index("## Nested properties")
    return text[start : text.index("\n## ", start + 1)]


def test_the_documented_nested_examples_validate_and_evaluate(make_project: MakeProject) -> None:
    blocks = re.findall(r"```yml\n(.*?)```", nested_section(), re.DOTALL)
    assert len(blocks) >= 4
    segments = {
        f"doc{i}": f"name: doc{i}\nrule:\n{textwrap.indent(block, '  ')}"
        for i, block in enumerate(blocks)
    }
    root = nested_project(make_project, segments)
    result = Project.load(root).evaluate(as_of=AS_OF)
    sizes = [result.members(name).height for name in segments]
    assert sizes == [1, 2, 2, 2]  # p1; p1 and p3 spend 10+; p1 and p4 saw home; p1, p4 gold


def test_the_documented_warning_is_what_validate_prints(
    cli: Cli, make_project: MakeProject
) -> None:
    pros = "name: pros\nrule:\n  event: purchase\n  where:\n    properties.plna: {eq: pro}\n"
    root = nested_project(make_project, {"pros": pros + "  count: {gte: 1}\n"})
    warning = cli("validate", "--project", root).stderr.splitlines()[0]
    assert warning.startswith("warning: segments/pros.yaml:5:5: ")
    assert warning in nested_section()
