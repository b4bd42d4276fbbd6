"""``segctl explain``: verdicts agree with evaluate, values with the reference evaluator.

Two independent checks on every explained condition:
- the segment verdict (and every referenced segment's) equals the membership ``evaluate``
  computes, for every segment of the sample project and of the test project;
- each condition's verdict and measured value equal what tests/reference.py (a pure-Python
  evaluator written from the SPEC) computes from the same rows, walking the segment's YAML.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import AS_OF, SEGMENTS, Cli, MakeProject
from reference import MEASURES, Evaluator, Node, Row, as_utc
from stateproject import AS_OF as STATE_AS_OF
from stateproject import write_project

from segctl.compiler import INPUTS, Instrumented
from segctl.definitions.templates import TEMPLATES
from segctl.errors import DataError
from segctl.explain import Explanation, SegmentExplanation, explain_many
from segctl.explain import Node as Explained
from segctl.project import Project
from segctl.timeutil import parse_as_of

REPO = Path(__file__).resolve().parents[1]
SAMPLE_AS_OF = "2026-11-17T00:00:00Z"


# ---- the reference side ---------------------------------------------------------------------


def expand(node: Any) -> Any:
    """A condition with every ``template:`` replaced by its expansion (as the loader does)."""
    if isinstance(node, list):
        return [expand(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "template" in node:
        return expand(TEMPLATES[node["template"]].expand(node.get("params")))
    return {k: expand(v) if k in ("all", "any", "not") else v for k, v in node.items()}


def segment_docs(root: Path) -> dict[str, Node]:
    docs = {}
    for path in sorted((root / "segments").rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        rule = doc.pop("template", None)
        doc["rule"] = expand(
            {"template": rule, "params": doc.pop("params", None)} if rule else doc["rule"]
        )
        doc["exclude"] = expand(doc.get("exclude") or [])
        docs[doc["name"]] = doc
    return docs


def rows(project: Project, table: str, person_ids: list[str] | None = None) -> list[Row]:
    """Rows as the engine's views read them (canonical names and types), nothing computed;
    only those of some persons (the reference evaluates one person at a time from their rows)."""
    if table not in project.schema:
        return []
    where = ""
    if person_ids is not None:
        where = " WHERE person_id IN (" + ", ".join(f"'{p}'" for p in person_ids) + ")"
    table_rows = project.engine.driver.arrow(f'SELECT * FROM "{table}"{where}').to_pylist()
    return table_rows  # type: ignore[no-any-return]


def reference(
    project: Project, as_of: str, lists: dict[str, list[Row]], person_ids: list[str]
) -> Evaluator:
    root = project.root
    features_file = root / "features.yaml"
    features = (
        yaml.safe_load(features_file.read_text())["features"] if features_file.exists() else {}
    )
    return Evaluator(
        segment_docs(root),
        rows(project, "persons", person_ids),
        rows(project, "events", person_ids),
        rows(project, "subscriptions", person_ids),
        as_utc(datetime.fromisoformat(as_of.replace("Z", "+00:00"))),
        project.config.timezone,
        features,
        lists,
    )


def read_list(path: Path) -> list[Row]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def same(measured: Any, expected: Any) -> bool:
    if measured is None or expected is None:
        return measured is None and expected is None
    if isinstance(expected, datetime):
        return isinstance(measured, datetime) and as_utc(measured) == as_utc(expected)
    if isinstance(expected, bool) or isinstance(measured, bool):
        return measured == expected
    if isinstance(expected, (int, float, Decimal)):
        return math.isclose(float(measured), float(expected), rel_tol=1e-9, abs_tol=1e-9)
    return bool(measured == expected)


class Checker:
    """Walks an explanation and the segment's YAML side by side against the reference."""

    def __init__(self, ref: Evaluator) -> None:
        self.ref = ref
        self.persons = {p["person_id"]: p for p in ref.persons}
        self.conditions = 0

    def explanation(self, explanation: Explanation) -> None:
        person = self.persons.get(explanation.person_id)
        if person is None:  # created after as_of: the reference does not evaluate them either
            assert not explanation.evaluated and not explanation.member
            return
        assert explanation.segment is not None
        self.segment(explanation.segment, person)

    def segment(self, explained: SegmentExplanation, person: Row) -> None:
        doc = self.ref.segments[explained.name]
        where = f"{explained.name} for {person['person_id']}"
        assert explained.member == self.ref.is_member(explained.name, person), where
        assert explained.member == (explained.rule.verdict and not explained.excluded), where
        self.node(doc["rule"], explained.rule, person)
        for condition, node in zip(doc["exclude"], explained.exclude, strict=True):
            self.node(condition, node, person)

    def node(self, condition: Node, node: Explained, person: Row) -> None:
        self.conditions += 1
        where = f"{node.location} {node.condition} for {person['person_id']}"
        assert node.verdict == self.ref.holds(condition, person), where
        kind = node.kind
        if kind in ("all", "any"):
            for item, child in zip(condition[kind], node.children, strict=True):
                self.node(item, child, person)
        elif kind == "not":
            self.node(condition["not"], node.children[0], person)
        elif kind == "property":
            expected = person.get(condition["property"])
            assert same(node.value, expected), f"{where}: {node.value!r} != {expected!r}"
        elif kind == "event":
            (measure,) = [k for k in condition if k in MEASURES]
            events = self.ref.matching_events(condition, person)
            expected = self.ref.measure(measure, condition[measure], events)
            assert same(node.value, expected), f"{where}: {node.value!r} != {expected!r}"
        elif kind == "feature":
            expected = self.ref.feature_value(condition["feature"], person)
            assert same(node.value, expected), f"{where}: {node.value!r} != {expected!r}"
        elif kind == "subscription":
            current = self.ref.current_subscription(person)
            tests = list(condition["subscription"].items())
            for (column, comparator), child in zip(tests, node.children, strict=True):
                assert same(child.value, current.get(column)), f"{where} {column}"
                assert child.verdict == self.ref.compare(current.get(column), comparator), where
        elif kind == "segment":
            assert node.segment is not None and node.segment.name == condition["segment"]
            self.segment(node.segment, person)
        elif kind == "sequence":
            expected = self.ref.sequence_reached(condition["sequence"], person)
            assert node.value == expected, f"{where}: {node.value!r} != {expected!r}"
            assert node.verdict == (expected == len(condition["sequence"]["steps"])), where
        else:
            assert kind == "list", kind


def sequence_values(project: Project, segment: str, person_ids: list[str], as_of: str) -> set[Any]:
    """The values (steps reached) of the segment's sequence conditions for these persons."""
    return {
        node.value
        for e in explain_many(project, segment, person_ids, parse_as_of(as_of)).values()
        if e.segment is not None
        for _, node in e.segment.walk()
        if node.kind == "sequence"
    }


def members(project: Project, as_of: str) -> dict[str, set[str]]:
    result = project.evaluate(as_of=as_of)
    out: dict[str, set[str]] = {name: set() for name in result.segments}
    for segment, person_id in result.memberships().rows():
        out[segment].add(person_id)
    return out


def check_agreement(
    project: Project, as_of: str, person_ids: list[str], lists: dict[str, list[Row]]
) -> tuple[int, int]:
    """Every segment for these persons and some of its members: explain == evaluate, and the
    reference agrees with every condition's verdict and value."""
    evaluated = members(project, as_of)
    wanted = {
        name: sorted(set(person_ids) | set(sorted(ids)[:25])) for name, ids in evaluated.items()
    }
    everyone = sorted({p for ids in wanted.values() for p in ids})
    checker = Checker(reference(project, as_of, lists, everyone))
    explained = 0
    for name, ids in wanted.items():
        for person_id, explanation in explain_many(project, name, ids, parse_as_of(as_of)).items():
            assert explanation.member == (person_id in evaluated[name]), f"{name}: {person_id}"
            checker.explanation(explanation)
            explained += 1
    return explained, checker.conditions


# ---- the sample project ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The repository's example project, copied without any state (its data linked)."""
    root = tmp_path_factory.mktemp("sample")
    for name in ("segctl.yaml", "features.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "segments", root / "segments")
    (root / "sample_data").symlink_to(REPO / "sample_data")
    yield Project.load(root)


def test_sample_project_every_segment_agrees_with_evaluate_and_the_reference(
    sample: Project,
) -> None:
    lists = {"sample_data/lists/vip.csv": read_list(REPO / "sample_data/lists/vip.csv")}
    persons = [p["person_id"] for p in rows(sample, "persons")]
    explained, conditions = check_agreement(sample, SAMPLE_AS_OF, persons[::25], lists)
    assert sequence_values(sample, "onboarded", persons[::25], SAMPLE_AS_OF) == {0, 1, 2}
    assert len(sample.definitions.segments) == 17
    assert explained > 17 * 120 and conditions > explained


def test_sample_explanation_reads_like_the_rule(sample: Project) -> None:
    power = next(
        e
        for e in explain_many(
            sample, "power_users", [f"u{i:05d}" for i in range(1, 200)], parse_as_of(SAMPLE_AS_OF)
        ).values()
        if e.segment and not e.segment.rule.children[0].verdict
    )
    text = power.render()
    renders = power.segment.rule.children[0] if power.segment else None
    assert renders is not None and isinstance(renders.value, int) and renders.value < 10
    assert f"video_rendered in the last 30d, count: {renders.value}, needs >= 10 -> FALSE" in text
    assert text.splitlines()[0].endswith(": NOT A MEMBER")
    assert "exclude (any of) -> " in text and "segment vip -> " in text


def test_the_plan_reads_only_the_persons_explained(sample: Project) -> None:
    from sqlglot import exp

    context = sample.plan_context(["trial_pricing"], parse_as_of(SAMPLE_AS_OF))
    plan = Instrumented(sample.definitions, context, "trial_pricing")
    plan.member("trial_pricing")
    query = plan.query(["u00001", "u00002"])
    reads = [
        clause.this
        for clause in query.find_all(exp.From, exp.Join)
        if isinstance(clause.this, (exp.Table, exp.Identifier)) and clause.this.name in INPUTS
    ]
    assert {t.name for t in reads} == set(INPUTS)  # persons, events and subscriptions
    for table in reads:
        select = table.find_ancestor(exp.Select)
        assert select is not None
        assert select.args["where"].sql() == "WHERE \"person_id\" IN ('u00001', 'u00002')"


# ---- the test project: every condition kind ---------------------------------------------------

KINDS = {
    "kinds_any": """\
        name: kinds_any
        rule:
          any:
            - all:
                - property: age
                  gte: 30
                - property: country
                  in: [DE, FR]
                - not:
                    property: email
                    ends_with: "@example.org"
            - event: [video_rendered, login]
              where: {format: {is_set: false}}
              distinct_days: {gte: 2}
            - event: login
              streak: {gte: 2}
            - event: purchase
              within: 365d
              avg: {of: amount, gt: 100}
            - event: purchase
              max: {of: amount, gte: 700}
            - event: "*"
              first_seen: {before: 2026-06-01}
            - event: video_rendered
              last: 2
              share: {where: {format: {eq: mp4}}, gte: 0.5}
            - feature: renders_30d
              between: [1, 2]
            - subscription:
                status: {in: [active, trialing]}
                mrr: {lt: 1000}
            - sequence:
                steps: [{event: signup}, {event: purchase, where: {amount: {gte: 50}}}]
                within: 30d
                max_gap: 7d
            - list: {file: lists/emails.csv, key: email}
        exclude:
          - property: age
            is_set: false
        """,
    "kinds_all": """\
        name: kinds_all
        rule:
          all:
            - not: {segment: vip}
            - subscription: {status: {ne: canceled}}
            - event: "*"
              last_seen: {within: 30d}
            - event: video_rendered
              between: [30d, 1d]
              min: {of: format, lt: mp4}
        """,
    "refs": """\
        name: refs
        rule:
          all:
            - segment: kinds_all
            - any: [{segment: power_users}, {segment: big_spenders}]
        exclude:
          - segment: vip
        """,
}
LISTS = {"lists/emails.csv": "email\n CAROL@example.com\n"}


@pytest.fixture
def kinds(make_project: MakeProject) -> Project:
    return Project.load(make_project(segments={**SEGMENTS, **KINDS}, files=LISTS))


def test_every_condition_kind_agrees_with_evaluate_and_the_reference(kinds: Project) -> None:
    lists = {name: read_list(kinds.root / name) for name in ("lists/vip.csv", *LISTS)}
    persons = ["p1", "p2", "p3", "p4", "p5"]
    explained, conditions = check_agreement(kinds, AS_OF, persons, lists)
    assert explained == 6 * 5 and conditions > 100
    verdicts = {
        name: {
            p for p, e in explain_many(kinds, name, persons, parse_as_of(AS_OF)).items() if e.member
        }
        for name in KINDS
    }
    # Not vacuous: the rules select some persons and not others.
    assert verdicts == {"kinds_any": {"p1", "p2"}, "kinds_all": {"p1"}, "refs": {"p1"}}
    # A sequence's value, the steps reached: none or all of them here (the sample project's
    # `onboarded` has persons who reached one step of two).
    assert sequence_values(kinds, "kinds_any", persons, AS_OF) == {0, 2}


def test_explanation_values_for_a_known_person(kinds: Project) -> None:
    explanation = explain_many(kinds, "kinds_any", ["p1"], parse_as_of(AS_OF))["p1"]
    assert explanation.segment is not None
    nodes: dict[str, Explained] = {}
    for _, node in explanation.segment.walk():
        nodes.setdefault(node.condition, node)  # the rule's, not the exclusion's
    assert nodes["login (all time), streak (days)"].value == 3
    assert nodes["purchase (all time), max of amount"].value == 600.0
    share = nodes['last 2 video_rendered, share where format = "mp4"']
    assert share.value == pytest.approx(0.5) and share.verdict  # mov, then mp4 at 23:59
    first = nodes["any event (all time), first seen"]
    assert first.value == datetime(2026, 6, 1, 12, 0) and not first.verdict
    assert nodes["property age"].value == 34 and nodes["property age"].needs == ">= 30"
    fields = nodes["current subscription"].children
    assert [(f.condition, f.value, f.verdict) for f in fields] == [
        ("subscription status", "active", True),
        ("subscription mrr", 2900, False),
    ]


def test_a_person_created_after_as_of_is_not_evaluated(kinds: Project) -> None:
    explanation = kinds.explain("power_users", "p5", as_of=AS_OF)
    assert not explanation.evaluated and not explanation.member
    assert explanation.to_dict()["rule"] is None
    assert "created at 2026-12-01T00:00:00Z, after as_of" in explanation.render()
    # The CSV's rows: the verdict's alone, saying why.
    assert explanation.rows() == [
        (
            "power_users",
            0,
            "not evaluated (created at 2026-12-01T00:00:00Z, after as_of)",
            None,
            None,
            False,
            None,
            "member",
        )
    ]


def test_a_person_whose_persons_rows_all_follow_as_of_is_not_evaluated_and_says_why(
    make_project: MakeProject,
) -> None:
    """With latest_by, a person whose every row is dated after as_of has no row in force:
    explain said "created at ..., after as_of" of a created_at long before it."""
    root = make_project()
    persons = root / "data" / "persons.csv"
    lines = persons.read_text().splitlines()
    persons.write_text(
        "\n".join([lines[0] + ",updated", *(f"{line},2026-11-01T00:00:00Z" for line in lines[1:])])
        + "\n"
    )
    config = root / "segctl.yaml"
    config.write_text(
        config.read_text().replace(
            "persons: data/persons.csv",
            "persons: {path: data/persons.csv, latest_by: updated}",
        )
    )
    early = "2026-06-01T00:00:00Z"  # after p1's created_at, before its only row
    explanation = Project.load(root).explain("power_users", "p1", as_of=early)
    assert not explanation.evaluated
    assert "no persons row of theirs is in force at this as_of" in explanation.render()
    assert "created at" not in explanation.render()


# ---- the command --------------------------------------------------------------------------


def test_cli_table_json_and_csv(project: Path, cli: Cli) -> None:
    text = cli("explain", "power_users", "p1", "--as-of", AS_OF, "--project", project).stdout
    assert text.splitlines()[0] == f"power_users for p1 as of {AS_OF}: A MEMBER"
    assert "video_rendered in the last 30d, count: 3, needs >= 3 -> TRUE" in text
    assert 'property plan: "pro", needs in ["pro", "premium"] -> TRUE' in text

    args = ("explain", "power_users", "p2", "--as-of", AS_OF, "--project", project)
    document = json.loads(cli(*args, "--format", "json").stdout)
    assert (document["segment"], document["person_id"], document["member"]) == (
        "power_users",
        "p2",
        False,
    )
    renders, plan = document["rule"]["children"]
    assert renders == {
        "kind": "event",
        "condition": "video_rendered in the last 30d, count",
        "verdict": False,
        "location": "segments/power_users.yaml:5:7",
        "value": 1,
        "needs": ">= 3",
    }
    assert (plan["value"], plan["verdict"]) == ("free", False)
    assert document["last_transition"] is None and document["since_last_run"] is None

    lines = cli(*args, "--format", "csv").stdout.splitlines()
    assert lines[0] == "segment,depth,condition,value,needs,verdict,location,part"
    needs = '"in [""pro"", ""premium""]"'
    assert lines[3] == (
        f"power_users,1,property plan,free,{needs},false,segments/power_users.yaml:8:7,rule"
    )
    # The verdict has its row: a CSV reader sees it without evaluating the tree.
    assert lines[-1] == "power_users,0,member,,,false,segments/power_users.yaml,member"


def test_cli_csv_tells_exclusions_from_the_rule(make_project: MakeProject, cli: Cli) -> None:
    """An exclusion at depth 0 looked like the rule's root in the CSV: ``part`` says which
    is which, and the last row is the verdict (a person the rule matches, excluded)."""
    segments = {
        "everyone": "name: everyone\nrule: {property: person_id, is_set: true}\n"
        "exclude:\n  - all: [{property: plan, eq: pro}, {property: email, is_set: true}]\n",
    }
    root = make_project(segments=segments)
    args = ("explain", "everyone", "p1", "--as-of", AS_OF, "--project", root, "-f", "csv")
    rows = list(csv.DictReader(cli(*args).stdout.splitlines()))
    assert [(r["depth"], r["verdict"], r["part"]) for r in rows] == [
        ("0", "true", "rule"),
        ("0", "true", "exclude"),
        ("1", "true", "exclude"),  # an exclusion's conditions are the exclusion's
        ("1", "true", "exclude"),
        ("0", "false", "member"),
    ]


def test_cli_unknown_segment_and_person(project: Path, cli: Cli) -> None:
    result = cli("explain", "power_user", "p1", "--project", project, code=2)
    assert "unknown segment 'power_user' (did you mean 'power_users'?)" in result.stderr
    result = cli("explain", "power_users", "p11", "--project", project, code=4)
    assert "person 'p11' not found in the persons data (data/persons.csv)" in result.stderr
    assert "(did you mean 'p1'?)" in result.stderr


def test_duplicate_persons_are_a_data_error(make_project: MakeProject, cli: Cli) -> None:
    from conftest import PERSONS

    root = make_project(persons=PERSONS + "p1,again@example.com,free,DE,30,2026-01-01T00:00:00Z\n")
    result = cli("explain", "power_users", "p2", "--project", root, code=4)
    assert "duplicate person_id values, e.g. 'p1' (2 rows)" in result.stderr
    with pytest.raises(DataError, match=r"duplicate person_id values, e\.g\. 'p1'"):
        explain_many(Project.load(root), "power_users", ["p1"], parse_as_of(AS_OF))


# ---- the last transition, from the state --------------------------------------------------------


def state_iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def with_runs(tmp_path: Path) -> Project:
    """The state project after runs at its first three as_of times."""
    root = write_project(tmp_path / "state")
    project = Project.load(root)
    for moment in STATE_AS_OF[:3]:
        project.run(as_of=state_iso(moment))
    return Project.load(root)


def test_last_exit_names_the_condition_that_changed(with_runs: Project) -> None:
    explanation = with_runs.explain("active", "p2", as_of=state_iso(STATE_AS_OF[3]))
    transition = explanation.transition
    assert transition is not None
    assert (transition.kind, transition.run_id, transition.from_run) == ("exited", 2, 1)
    (change,) = transition.changes
    assert (change.condition, change.before, change.after, change.was, change.now) == (
        "any event in the last 7d, count",
        1,
        0,
        True,
        False,
    )
    assert "last transition: exited at run 2 (2026-03-12T00:00:00Z)" in explanation.render()


def test_first_run_entry_and_changes_since_the_last_run(with_runs: Project, cli: Cli) -> None:
    # p3 bought at day 12, after run 3's as_of: active_buyers changed through buyers.
    document = json.loads(
        cli(
            "explain",
            "active_buyers",
            "p3",
            "--as-of",
            state_iso(STATE_AS_OF[3]),
            "--project",
            with_runs.root,
            "--format",
            "json",
        ).stdout
    )
    assert document["member"] is True and document["last_transition"] is None
    since = document["since_last_run"]
    assert (since["run_id"], since["member_then"], since["member_now"]) == (3, False, True)
    assert [(c["segment"], c["condition"], c["before"], c["after"]) for c in since["changes"]] == [
        ("active_buyers", "segment buyers", None, None),
        ("buyers", "purchase (all time), count", 0, 1),
    ]
    p1 = with_runs.explain("active", "p1", as_of=state_iso(STATE_AS_OF[3]))
    assert p1.transition is not None and p1.transition.kind == "entered"
    assert p1.transition.from_run is None
    assert "run 1 was the segment's first run" in p1.transition.notes[0]


def test_a_changed_definition_is_noted(with_runs: Project) -> None:
    path = with_runs.root / "segments/active.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: active
        rule: {event: "*", within: 8d, count: {gte: 1}}
        """)
    )
    project = Project.load(with_runs.root)
    transition = project.explain("active", "p2", as_of=state_iso(STATE_AS_OF[3])).transition
    assert transition is not None
    assert any("the definition has changed since run 2" in n for n in transition.notes)
    # Replayed with the 8-day window, p2 (events on days 2 and 3) is still in at run 2.
    assert any("the data or the definition has changed since" in n for n in transition.notes)


def test_explain_at_a_past_as_of_compares_with_the_run_of_that_time(with_runs: Project) -> None:
    # Runs 1-3 are at days 10, 11 and 12; p2 exited active at run 2. Explained at day 10 noon,
    # the later runs are the future: compare with run 1, and its exit at run 2 is not history.
    noon = STATE_AS_OF[0] + timedelta(hours=12)
    explanation = with_runs.explain("active", "p2", as_of=state_iso(noon))
    since, transition = explanation.since_last_run, explanation.transition
    assert since is not None and transition is not None
    assert (since.run_id, since.member_then) == (1, True)
    assert (transition.kind, transition.run_id) == ("entered", 1)
    text = explanation.render()
    assert "since run 1 (2026-03-11T00:00:00Z)" in text
    assert "run 2" not in text and "run 3" not in text
    # Before the first run there is nothing to compare with.
    early = with_runs.explain("active", "p2", as_of=state_iso(STATE_AS_OF[0] - timedelta(days=1)))
    assert early.since_last_run is None and early.transition is None
    assert "run " not in early.render()


def test_a_bad_timestamp_read_for_the_person_is_a_data_error(tmp_path: Path, cli: Cli) -> None:
    """Without a persons source, a person's created_at is their first event: explaining the
    person whose row holds a value that is no timestamp is the data error evaluate gives
    (exit 4, file, row, column and value), not an internal error (exit 70)."""
    (tmp_path / "segments").mkdir()
    (tmp_path / "ev.csv").write_text(
        "person_id,event,timestamp\np1,x,2026-11-10T00:00:00Z\np3,x,not-a-date\n"
    )
    (tmp_path / "segments" / "a.yaml").write_text("name: a\nrule: {event: '*', count: {gte: 1}}\n")
    (tmp_path / "segctl.yaml").write_text("data:\n  events: ev.csv\nsegments: segments/\n")
    said = "ev.csv: row 2: column 'timestamp' has a value that is not a timestamp: 'not-a-date'"
    for command in (["evaluate"], ["explain", "a", "p3"]):
        result = cli(*command, "--as-of", "2026-11-17", "--project", tmp_path, code=4)
        assert said in result.stderr, result.stderr
