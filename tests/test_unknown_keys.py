"""Every "unknown key" error lists the valid keys, so the fix is in the message (issue 19, 7)."""

from __future__ import annotations

import re

import pytest
from conftest import CONFIG, SEGMENTS, Cli, MakeProject

from segctl.config import DELIVERY_KEYS, ENGINE_KEYS, PRIVACY_KEYS, TOP_KEYS

DESTINATIONS = """\
destinations:
  export: {type: file, path: out}
  crm: {type: webhook, url: "http://127.0.0.1:9/h", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
"""


def valid_keys(stderr: str) -> list[str]:
    """The keys a message lists after "valid keys: "."""
    found = re.search(r"valid keys: ([^)]*)\)", stderr)
    assert found, stderr
    return found.group(1).split(", ")


@pytest.mark.parametrize(
    ("config", "where", "keys"),
    [
        (CONFIG + "segmnets: other/\n", "unknown key 'segmnets' in segctl.yaml", TOP_KEYS),
        (CONFIG + "privacy: {consent: x}\n", "unknown key 'consent' in 'privacy'", PRIVACY_KEYS),
        (CONFIG + "engine: {thread: 2}\n", "unknown key 'thread' in 'engine'", ENGINE_KEYS),
        (CONFIG + "delivery: {max_exits: 1}\n", "unknown key 'max_exits'", DELIVERY_KEYS),
    ],
)
def test_config_sections(
    make_project: MakeProject, cli: Cli, config: str, where: str, keys: tuple[str, ...]
) -> None:
    result = cli("validate", "--project", make_project(config=config), code=3)
    assert where in result.stderr
    assert valid_keys(result.stderr) == list(keys)


def test_a_destination(make_project: MakeProject, cli: Cli) -> None:
    config = CONFIG + "destinations:\n  export: {type: file, path: out, folder: x}\n"
    result = cli("validate", "--project", make_project(config=config), code=3)
    assert "destination 'export': unknown key 'folder'" in result.stderr
    assert {"path", "platform", "type", "base_url"} <= set(valid_keys(result.stderr))


def test_a_file_audience_names_name(make_project: MakeProject, cli: Cli) -> None:
    """The report's case: audience_id is a Meta/TikTok key; a file audience takes name."""
    segment = "name: vip\nrule: {list: {file: lists/vip.csv}}\n"
    segment += "audiences:\n  - {destination: export, audience_id: vip_file}\n"
    root = make_project(config=CONFIG + DESTINATIONS, segments={**SEGMENTS, "vip": segment})
    result = cli("validate", "--project", root, code=3)
    assert "segments/vip.yaml:4:27: unknown key 'audience_id' in a file audience" in result.stderr
    assert valid_keys(result.stderr) == ["destination", "name", "mode"]


def test_an_action(make_project: MakeProject, cli: Cli) -> None:
    segment = "name: vip\nrule: {list: {file: lists/vip.csv}}\n"
    segment += "on_enter:\n  - webhook: {destination: crm, batchsize: 10}\n"
    root = make_project(config=CONFIG + DESTINATIONS, segments={**SEGMENTS, "vip": segment})
    result = cli("validate", "--project", root, code=3)
    assert "unknown key 'batchsize' in a webhook action (did you mean 'batch'?" in result.stderr
    assert {"destination", "batch"} <= set(valid_keys(result.stderr))


def test_a_condition(make_project: MakeProject, cli: Cli) -> None:
    segment = "name: vip\nrule: {event: login, within: 7d, countt: {gte: 1}}\n"
    root = make_project(segments={**SEGMENTS, "vip": segment})
    result = cli("validate", "--project", root, code=3)
    assert "unknown key 'countt' in an event condition (did you mean 'count'?" in result.stderr
    assert {"event", "where", "within", "count", "sum"} <= set(valid_keys(result.stderr))
