"""Text in the report: escaped for HTML, and times and shares as people read them."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any


def esc(text: Any) -> str:
    """``text`` safe in HTML content and attribute values (quotes escaped too)."""
    return escape(str(text), quote=True)


def stamp(moment: datetime | None) -> str:
    """A moment to the minute, UTC: ``2026-11-17 00:00Z`` (nothing for ``None``)."""
    return moment.strftime("%Y-%m-%d %H:%MZ") if moment else ""


def pct(value: float | None, *, sign: bool = False) -> str:
    """A ratio to one decimal, ``n/a`` for none: ``+2.8%``, ``+0.0%``.

    Not :func:`segctl.textfmt.percent`, which hedges near 0 and 100% (``<0.1%``) and signs no
    zero: the page has always shown plain rounded figures, and still does."""
    if value is None:
        return "n/a"
    return f"{value * 100:+.1f}%" if sign else f"{value * 100:.1f}%"
