"""``package.module:callable`` references (the ``python`` action, SPEC section 6), resolved the
same way when ``segctl validate`` checks them and when the outbox worker calls them.

The project folder is put on the import path (after what is already there), so a module kept
beside segctl.yaml (``hooks/crm.py`` -> ``hooks.crm:on_change``) imports without installing.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segctl.definitions.source import did_you_mean

_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class BadReference(ValueError):
    """A reference that does not name a callable (the message says which part and why)."""


def resolve(reference: Any, root: Path | None = None) -> Callable[..., Any]:
    """The callable ``reference`` names, importing its module.

    >>> resolve("json:dumps")([1])
    '[1]'

    Raises:
        BadReference: not ``module:name``, the module cannot be imported, it has no such
            attribute, or the attribute is not callable.
    """
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise BadReference(f"'function' must be \"package.module:callable\", got {reference!r}")
    module_name, _, attribute = reference.strip().partition(":")
    if not _REFERENCE.fullmatch(module_name) or not _REFERENCE.fullmatch(attribute):
        raise BadReference(
            f"'function' must be \"package.module:callable\" (dotted Python names), "
            f"got {reference!r}"
        )
    if root is not None and str(root) not in sys.path:
        sys.path.append(str(root))  # modules beside segctl.yaml; installed ones come first
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = f" ({Path(root).resolve()})" if root is not None else ""
        raise BadReference(
            f"cannot import module '{module_name}' ({exc}): install it, or put it in the "
            f"project folder{where}"
        ) from None
    except Exception as exc:  # the module itself is broken: say how, not segctl's traceback
        raise BadReference(
            f"importing module '{module_name}' failed: {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            raise BadReference(
                f"module '{module_name}' has no '{attribute}'{did_you_mean(part, names)}"
            )
        target = getattr(target, part)
    if not callable(target):
        raise BadReference(
            f"'{reference}' is a {type(target).__name__}, not a function (it must be callable)"
        )
    return target  # type: ignore[no-any-return]
