"""ISO 3166 countries as people write them in a ``country`` column -> alpha-2 codes.

Generated once from pycountry 26.2.16 (ISO 3166-1 names, official and common names) and
libphonenumber's English region names, plus common aliases (UK, USA, Holland...); kept as
data (``countries.json`` beside this module: ``alpha3`` -> alpha-2, and ``names``, folded by
:func:`fold` (case, accents, punctuation, spaces) -> alpha-2) so that segctl needs neither at
run time.
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from pathlib import Path


def fold(text: str) -> str:
    """A name as compared: casefolded, accents, dots, commas and apostrophes dropped, spaces
    collapsed.

    >>> fold(" Côte d'Ivoire "), fold("U.S.A.")
    ('cote divoire', 'u s a')
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().replace(",", " ").replace(".", " ").replace("'", "").split())


def region(value: str) -> str | None:
    """The alpha-2 code of a country as written: alpha-2 in any case, alpha-3, or an English
    name. None when it is none of these.

    >>> region("us"), region("USA"), region("United States"), region("GBR"), region("Narnia")
    ('US', 'US', 'US', 'GB', None)
    """
    alpha2, alpha3, names = _tables()
    text = value.strip()
    code = text.upper()
    if len(code) == 2 and code in alpha2:
        return code
    if len(code) == 3 and code in alpha3:
        return alpha3[code]
    return names.get(fold(text))


_OTHER_REGIONS = frozenset({"XK", "AC", "TA"})  # regions libphonenumber knows beyond ISO 3166


@cache
def _tables() -> tuple[frozenset[str], dict[str, str], dict[str, str]]:
    """(the alpha-2 codes, alpha-3 -> alpha-2, folded name -> alpha-2), read once from
    countries.json."""
    data = json.loads(Path(__file__).with_name("countries.json").read_text(encoding="utf-8"))
    alpha3: dict[str, str] = data["alpha3"]
    return frozenset(alpha3.values()) | _OTHER_REGIONS, alpha3, data["names"]
