"""Packed memberships (segctl.packed) against plain Python on random layouts.

The words are checked bit by bit in Python, not with the module's own SQL: pack, convert
(between layouts that share prefixes, reorder, drop and add segments, across word
boundaries), the set bits and the per-segment counts.
"""

from __future__ import annotations

import duckdb
from hypothesis import example, given, settings
from hypothesis import strategies as st

from segctl import packed

NAMES = [f"s{i}" for i in range(140)] + ["x"]  # three words' worth


@st.composite
def memberships(draw: st.DrawFn, names: list[str]) -> dict[str, set[str]]:
    persons = [f"p{i}" for i in range(draw(st.integers(0, 6)))]
    return {n: {p for p in persons if draw(st.booleans())} for n in names}


def table(
    con: duckdb.DuckDBPyConnection, name: str, layout: list[str], members: dict[str, set[str]]
) -> None:
    """``name`` holds (person_id, words) of ``members`` in ``layout``, packed by pack()."""
    persons = sorted(set().union(set(), *members.values()))
    flags = ["list_contains(?, person_id)" for _ in layout]
    columns = packed.pack_as(flags)
    params = [sorted(members[n]) for n in layout] if layout else []
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT person_id"
        f"{''.join(', ' + c for c in columns)} FROM unnest(?::VARCHAR[]) AS t(person_id)",
        [*params, persons],
    )


def decode(rows: list[tuple[object, ...]], layout: list[str]) -> dict[str, set[str]]:
    return {
        name: {str(r[0]) for r in rows if int(r[1 + i // 63]) >> (i % 63) & 1}  # type: ignore[call-overload]
        for i, name in enumerate(layout)
    }


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A source layout and a target layout that keeps, drops, adds and moves segments."""
    source = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=140))
    shared = source[: draw(st.integers(0, len(source)))]
    added = draw(st.lists(st.sampled_from([n for n in NAMES if n not in source]), unique=True))
    target = shared + added
    if draw(st.booleans()):
        target = draw(st.permutations(target))
    return source, list(target)


MIXED = {n: {"p0", "p2"} if i % 3 else {"p1"} for i, n in enumerate(NAMES)}


@settings(max_examples=60, deadline=None)
@given(members=memberships(NAMES), pair=layouts())
@example(members=MIXED, pair=(NAMES[:100], NAMES[:70]))  # a prefix ending mid-word: masked
@example(members=MIXED, pair=(NAMES[:70], [*NAMES[:63], "x", *NAMES[63:70]]))  # shifted
@example(members=MIXED, pair=(NAMES[:10], NAMES[5:10] + NAMES[:5]))  # reordered
def test_convert_moves_every_bit_to_its_new_place(
    members: dict[str, set[str]], pair: tuple[list[str], list[str]]
) -> None:
    source, target = pair
    con = duckdb.connect()
    table(con, "src", source, members)
    assert decode(con.execute("SELECT * FROM src").fetchall(), source) == {
        n: members[n] for n in source
    }
    words = packed.convert(source, target, "s")
    rows = con.execute(
        f"SELECT person_id{''.join(', ' + w for w in words)} FROM src AS s"
    ).fetchall()
    assert decode(rows, target) == {n: members[n] if n in source else set() for n in target}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), count=st.integers(1, 140))
def test_set_bits_and_counts_find_every_member(data: st.DataObject, count: int) -> None:
    layout = NAMES[:count]
    members = data.draw(memberships(layout))
    con = duckdb.connect()
    table(con, "r", layout, members)
    words = packed.words(len(layout))
    pairs = con.execute(packed.set_bits("r", words)).fetchall()
    assert sorted((layout[i], p) for p, i in pairs) == sorted(
        (n, p) for n in layout for p in members[n]
    )
    counts = dict(con.execute(packed.counts("r", len(layout))).fetchall())
    assert {layout[i]: n for i, n in counts.items()} == {n: len(m) for n, m in members.items() if m}


def test_the_highest_bit_of_a_word_stays_positive() -> None:
    con = duckdb.connect()
    layout = NAMES[:63]
    table(con, "r", layout, {n: {"p"} for n in layout})
    assert con.execute("SELECT w0 FROM r").fetchall() == [((1 << 63) - 1,)]
