"""Numbers as people read them in messages and tables: one percentage formatter.

>>> percent(0.913462), percent(12, 3843, places=0, hedge=False)
('91.3%', '0%')
"""

from __future__ import annotations


def percent(
    part: float | None,
    whole: float = 1,
    *,
    signed: bool = False,
    places: int = 1,
    hedge: bool = True,
) -> str:
    """``part`` of ``whole`` (default: ``part`` is a ratio) as a percentage: ``0.913462`` ->
    ``91.3%``; nothing for ``None``, ``0%`` of a ``whole`` of zero.

    Exactly 0 and 1 stay ``0%`` and ``100%``. With ``hedge`` (tables), a share that is neither
    but would round to them says so (``<0.1%``, ``>99.9%``) instead of claiming none or all;
    without it (a message that names the counts beside the share) it is rounded like any other.

    >>> [percent(x) for x in (0.913462, 0.0492958, 0.0, 1.0, 0.0004, 0.9999)]
    ['91.3%', '4.9%', '0%', '100%', '<0.1%', '>99.9%']
    >>> percent(1.02815, signed=True), percent(-0.5, signed=True), percent(None)
    ('+102.8%', '-50.0%', '')
    >>> percent(21, 100, places=0, hedge=False), percent(4, 19, places=0, hedge=False)
    ('21%', '21%')
    """
    if part is None:
        return ""
    if not whole:
        return "0%"
    ratio = part / whole
    sign = "+" if signed and ratio > 0 else "-" if ratio < 0 else ""
    value = abs(100 * part / whole)
    if value == 0 or value == 100:
        return f"{sign}{value:.0f}%"
    if hedge:
        smallest = 10.0**-places
        if value < smallest:
            return f"{sign}<{smallest:.{places}f}%"
        if 100 - smallest < value < 100:
            return f"{sign}>{100 - smallest:.{places}f}%"
    return f"{sign}{value:.{places}f}%"
