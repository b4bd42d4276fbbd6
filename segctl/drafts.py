"""What a draft segment file needs from its project: itself and the segments it references.

``segctl preview draft.yaml`` evaluates a file that is not (yet) in the segments folder. It must
not depend on the rest of the project being valid: a colleague's half-written segment in the
folder is no reason to refuse a preview of an unrelated draft. So the draft is loaded with only
the project files it reaches through ``segment:`` references (transitively), found by a lenient
first read of each file's ``name:``; the usual loader then checks exactly those files, and every
problem in them is still reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from segctl.definitions.loader import segment_files


def references(node: Any) -> Iterator[str]:
    """The segment names a segment document refers to (``segment: NAME`` anywhere in it)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "segment" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def _read(path: Path) -> Any:
    """A file's YAML, or None when it does not parse (the loader reports it, if it is needed)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def needed_files(draft: Path, folder: Path) -> tuple[list[Path], bool]:
    """The project segment files ``draft`` reaches by references, in folder order, and whether
    any of the documents (the draft included) uses a feature."""
    by_name: dict[str, Path] = {}
    docs: dict[Path, Any] = {}
    for path in segment_files(folder) if folder.is_dir() else []:
        doc = _read(path)
        docs[path] = doc
        name = doc.get("name") if isinstance(doc, dict) else None
        if isinstance(name, str):
            by_name.setdefault(name, path)  # a duplicate name is the loader's to report
    draft_doc = _read(draft)
    wanted: set[Path] = set()
    pending = list(references(draft_doc))
    while pending:
        found = by_name.get(pending.pop())
        if found is None or found in wanted or found.resolve() == draft.resolve():
            continue  # an unknown name: the loader says "unknown segment" at its place
        wanted.add(found)
        pending.extend(references(docs[found]))
    files = [p for p in docs if p in wanted]
    uses_features = any(_uses_feature(d) for d in [draft_doc, *(docs[p] for p in files)])
    return files, uses_features


def _uses_feature(node: Any) -> bool:
    if isinstance(node, dict):
        return "feature" in node or any(_uses_feature(v) for v in node.values())
    if isinstance(node, list):
        return any(_uses_feature(v) for v in node)
    return False
