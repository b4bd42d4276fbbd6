"""Memberships packed into BIGINT words, the layout of evaluation results and snapshots.

A *layout* is an ordered list of segment names: the ``i``-th segment is bit ``i % 63`` of
column ``w{i // 63}``. A row is then ``person_id`` plus one word per 63 segments instead of a
BOOLEAN column per segment. DuckDB's cost for a table is per column, and a catalogue of a
thousand segments made every copy, join and write of the memberships a thousand columns wide:
at 1M persons, copying such a table took 15 s and joining two of them 24.6 s, against 0.1 s
and 0.4 s for the same flags in 16 words. Bits 0-62 keep every word positive.

Everything here returns DuckDB SQL text for segctl's own tables (never user input: segment
names are quoted).
"""

from __future__ import annotations

from collections.abc import Sequence

BITS = 63


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def words(count: int) -> list[str]:
    """The word columns of a layout of ``count`` segments."""
    return [f"w{j}" for j in range((count + BITS - 1) // BITS)]


def pack(flags: list[str]) -> list[str]:
    """SQL of the words holding boolean SQL expressions (NULL counts as false), in order."""
    return [_word(list(enumerate(flags[j : j + BITS]))) for j in range(0, len(flags), BITS)]


def pack_as(flags: list[str]) -> list[str]:
    """:func:`pack`'s words, each ``AS`` its column name (``w0``, ``w1``...)."""
    return [f"{word} AS w{j}" for j, word in enumerate(pack(flags))]


def _word(bits: list[tuple[int, str]]) -> str:
    """SQL of one word from (bit, boolean SQL) pairs: a sum of CASEs, one cheap vector
    operation per flag where shifting a cast costs three."""
    terms = [f"CASE WHEN {flag} THEN {1 << b} ELSE 0 END" for b, flag in bits]
    return f"CAST({' + '.join(terms)} AS BIGINT)"


def is_set(index: int, alias: str = "") -> str:
    """SQL true when bit ``index`` is set in the row (``alias.`` prefixes the word)."""
    prefix = f"{alias}." if alias else ""
    return f"(({prefix}w{index // BITS} >> {index % BITS}) & 1) = 1"


def flags(layout: list[str], alias: str = "") -> list[str]:
    """``is_set(i) AS "name"`` for every segment of the layout: the booleans back."""
    return [f"{is_set(i, alias)} AS {quote(name)}" for i, name in enumerate(layout)]


def convert(source: Sequence[str | None], target: list[str], alias: str) -> list[str]:
    """SQL of the words of layout ``target`` from the words of layout ``source`` (columns of
    ``alias``, NULL when the row is missing). A segment absent from ``source`` (or at a
    ``None`` slot of it) is 0.

    A target word whose segments sit at the same bits of the same source word is copied
    (masked when the source word holds more); only the other words are rebuilt bit by bit.
    """
    position = {name: i for i, name in enumerate(source) if name is not None}
    out = []
    for j, column in enumerate(words(len(target))):
        chunk = target[j * BITS : (j + 1) * BITS]
        if source[j * BITS : j * BITS + len(chunk)] == chunk:
            value = f"coalesce({alias}.{column}, 0)"
            if len(source[j * BITS : (j + 1) * BITS]) > len(chunk):
                value = f"({value} & {(1 << len(chunk)) - 1})"
            out.append(value)
        elif not any(n in position for n in chunk):
            out.append("0")
        else:
            present = [(b, n) for b, n in enumerate(chunk) if n in position]
            out.append(_word([(b, is_set(position[n], alias)) for b, n in present]))
    return out


def nonzero(expressions: list[str]) -> str:
    """SQL true when some word is not zero (one row comparison, not an OR per word)."""
    if not expressions:
        return "false"
    return f"({', '.join(expressions)}) <> ({', '.join('0' for _ in expressions)})"


def set_bits(source: str, word_sql: list[str]) -> str:
    """SQL of ``(person_id, idx)`` for every set bit of the words ``word_sql`` (SQL over the
    rows of ``source``; word j holds indexes 63j to 63j + 62). Zero words are skipped before
    their bits are tested, so the cost follows the words that hold something."""
    return f"""
        SELECT u.person_id, u.j * {BITS} + b.b AS idx
        FROM (
            SELECT person_id, unnest(range({len(word_sql)})) AS j,
                   unnest([{", ".join(word_sql)}]) AS word
            FROM {source}
        ) AS u JOIN range({BITS}) AS b(b) ON ((u.word >> b.b) & 1) = 1
        WHERE u.word <> 0"""


def counts(table: str, count: int) -> str:
    """SQL of ``(idx, members)`` for the indexes of a layout of ``count`` segments that have
    members in ``table``.

    Each word is grouped by value before its bits are tested: memberships correlate, so a
    word of 1M persons takes some 10,000-55,000 distinct values, and this took 0.34 s where
    a ``count_if`` per segment took 4.7 s (1,000 segments, 1M persons).
    """
    grouped = " UNION ALL ".join(
        f"SELECT {j} AS j, {w} AS word, count(*) AS n FROM {table} WHERE {w} <> 0 GROUP BY {w}"
        for j, w in enumerate(words(count))
    )
    return f"""
        SELECT u.j * {BITS} + b.b AS idx, sum(u.n) AS members
        FROM ({grouped}) AS u JOIN range({BITS}) AS b(b) ON ((u.word >> b.b) & 1) = 1
        GROUP BY idx"""


def names_table(layout: list[str]) -> str:
    """SQL of a ``(idx, segment)`` table of the layout."""
    values = ", ".join(f"({i}, {literal(name)})" for i, name in enumerate(layout))
    return f"(VALUES {values}) AS names(idx, segment)"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
