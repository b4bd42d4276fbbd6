"""docs/delivery.md cannot go stale: it lists every destination type with each of its keys, the
keys every destination accepts, and every action with each of its keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segctl.definitions.actions import ACTIONS
from segctl.definitions.destinations import COMMON, TYPES

DOC = Path(__file__).resolve().parents[1] / "docs" / "delivery.md"


def table_rows(text: str, header: str) -> dict[str, str]:
    """First cell (unquoted) -> the row, for the Markdown table whose header starts so."""
    start = text.index(header)
    rows: dict[str, str] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows[line.split("|")[1].strip().strip("`")] = line
    return rows


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_every_destination_type_and_key_is_documented(kind: str) -> None:
    rows = table_rows(DOC.read_text(), "| type | required | optional | secret |")
    assert kind in rows, f"docs/delivery.md: no row for destination type {kind}"
    for key in (*TYPES[kind]["required"], *TYPES[kind]["optional"]):
        assert f"`{key}`" in rows[kind], f"docs/delivery.md: {kind} row lacks `{key}`"


def test_the_common_keys_are_documented() -> None:
    rows = table_rows(DOC.read_text(), "| key | meaning | default |")
    assert set(COMMON) - {"type"} == set(rows)


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_every_action_and_key_is_documented(kind: str) -> None:
    rows = table_rows(DOC.read_text(), "| action | keys | what it does |")
    assert kind in rows, f"docs/delivery.md: no row for action {kind}"
    keys = re.findall(r"`(\w+)`", rows[kind].split("|")[2])
    assert set(keys) == {*ACTIONS[kind]["required"], *ACTIONS[kind]["optional"]}
