"""Identity resolution: which person an anonymous id belongs to (SPEC 1, identities).

The links of all sources (``identities`` rows, event rows that carry both a person id and an
anonymous id) form one graph, whose links hold for all time: stitching is retroactive, so a
person's anonymous events from before the link count too. Person ids are never merged with
each other (a person id always stands for itself), so a person is where a path ends: an
anonymous id belongs to the person ids it is linked to. An anonymous id linked to several
person ids (a device shared by two accounts) is ambiguous: it goes to the first of them in sort
order, and the caller says how many there were.
"""

from __future__ import annotations

from collections.abc import Iterable


def resolve(links: Iterable[tuple[str, str]]) -> tuple[dict[str, str], int]:
    """(anonymous id, person id) links -> ({anonymous id: person id}, ambiguous count).

    An id that is itself a person id (it appears on the person side of a link) stays its own
    person and is not mapped.

    >>> resolve([("a1", "u1"), ("a2", "u1"), ("a3", "u1"), ("a3", "u2")])
    ({'a1': 'u1', 'a2': 'u1', 'a3': 'u1'}, 1)
    """
    persons_of: dict[str, set[str]] = {}
    persons: set[str] = set()
    for anonymous_id, person_id in links:
        persons.add(person_id)
        persons_of.setdefault(anonymous_id, set()).add(person_id)
    mapping: dict[str, str] = {}
    ambiguous = 0
    for node in sorted(persons_of):
        if node in persons:
            continue
        found = persons_of[node]
        ambiguous += len(found) > 1
        mapping[node] = min(found)
    return mapping, ambiguous
