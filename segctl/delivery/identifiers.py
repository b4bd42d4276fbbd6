"""Normalise and hash emails and phones exactly as each ad platform documents.

Raw emails and phones never leave the machine for an ad platform: only the SHA-256 (lowercase
hex) of the normalised value is sent. Normalisation differs per platform
(shared/API_CONTRACTS.md): Meta and TikTok want phones as digits with the country code and no
``+``, Google wants E.164 with ``+`` and canonical Gmail addresses.

Phones are the E.164 number libphonenumber formats. Unicode digits count as the digits they
are (as ``phonenumbers`` reads them); a trunk prefix written after the country code
(``+44 020 ...``, ``+44 (0)20 ...``) is dropped. A phone without a country code takes the
person's ``country`` (ISO alpha-2 in any case, alpha-3 or an English name); without a usable
one, digits that form a valid number when read with a leading ``+`` (``15559876543``,
``374-93-828222``) are taken as international; anything else is invalid and skipped (counted).

An email with whitespace inside, or without a single ``@``, is invalid. A value that already is
a SHA-256 hex digest (pre-hashed data, which the platforms accept) is sent as it is.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import phonenumbers

from segctl.delivery.countries import region as country_region

PLATFORMS = ("meta", "google", "tiktok")
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
#: A SHA-256 digest in hex (either case): already hashed, sent as it is (lowercased).
DIGEST = re.compile(r"[0-9a-fA-F]{64}")


@functools.lru_cache(maxsize=1_048_576)
def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 string, lowercase hex.

    >>> sha256_hex("mary@example.com")[:16]
    'f1904cf1a9d73a55'
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def prehashed(raw: Any) -> str | None:
    """The value as a lowercase SHA-256 hex digest, when it already is one.

    >>> prehashed(" F1904CF1A9D73A55FA5DE0AC823C4403DED71AFD4C3248D00BDCD0866552BB79 ")[:8]
    'f1904cf1'
    """
    if isinstance(raw, str) and DIGEST.fullmatch(text := raw.strip()):
        return text.lower()
    return None


def normalize_email(raw: Any, platform: str) -> str | None:
    """Trimmed, lowercased; Gmail canonicalised for Google. None when not an email
    (no single ``@``, or whitespace inside: Google's formatter rejects it).

    >>> normalize_email(" Jefferson.Loves.hiking@gmail.com ", "google")
    'jeffersonloveshiking@gmail.com'
    >>> normalize_email("mary\t@example.com", "meta") is None
    True
    """
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    if any(ch.isspace() for ch in email):
        return None
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain:
        return None
    if platform == "google" and domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def normalize_phone(raw: Any, country: Any, platform: str) -> str | None:
    """E.164 for Google (``+18005550100``), digits with country code for Meta and TikTok
    (``18005550100``). None when it cannot be a phone number.

    >>> normalize_phone("1-800-555-0100", "US", "google")
    '+18005550100'
    >>> normalize_phone("(555) 987 6543", "usa", "meta")
    '15559876543'
    >>> normalize_phone("+44 020 7946 0958", None, "tiktok")
    '442079460958'
    """
    if raw is None:
        return None
    e164 = _e164(str(raw).strip(), country if isinstance(country, str) else None)
    if e164 is None:
        return None
    return e164 if platform == "google" else e164.lstrip("+")


# ---- the numbers that need no libphonenumber ----------------------------------------------------
# "+" then digits is already E.164 when its national part (after the country code) has a length
# libphonenumber calls possible for that country and cannot begin with the country's national
# (trunk) prefix: then libphonenumber strips nothing and formats the digits as they are. The
# rule is one regular expression over the digits, used by the Python path below and by DuckDB in
# bulk_hash_sql, so both paths take exactly the same numbers (the rest go to libphonenumber).
# It is conservative: a first digit appearing anywhere in the national prefix pattern is
# refused, and a country whose prefix rewrites numbers (a transform rule) is never fast.


def _class_digits(body: str) -> set[str]:
    if body.startswith("^"):
        return set("0123456789")
    found: set[str] = set()
    for low, high in re.findall(r"(\d)-(\d)", body):
        found |= {str(d) for d in range(int(low), int(high) + 1)}
    return found | set(re.sub(r"\d-\d", "", body)) & set("0123456789")


def _prefix_digits(pattern: str) -> set[str]:
    """Every digit a match of ``pattern`` could begin with (a superset)."""
    if "\\d" in pattern or "." in pattern:
        return set("0123456789")
    found = set(pattern) & set("0123456789")
    for body in re.findall(r"\[([^\]]*)\]", pattern):
        found |= _class_digits(body)
    return found


def _fast_pattern() -> str:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
    from phonenumbers import region_code_for_country_code as main_region

    branches = []
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        meta = PhoneMetadata.metadata_for_region_or_calling_code(code, main_region(code))
        desc = meta.general_desc if meta is not None else None
        if meta is None or desc is None or meta.national_prefix_transform_rule:
            continue
        lengths = sorted(
            n for n in {*desc.possible_length, *desc.possible_length_local_only} if n > 0
        )
        if not lengths or -1 in desc.possible_length:
            continue
        forbidden: set[str] = set()
        for pattern in (meta.national_prefix_for_parsing, meta.national_prefix):
            if pattern:
                forbidden |= _prefix_digits(pattern)
        first = "".join(sorted(set("0123456789") - forbidden))
        if not first:
            continue
        rest = "|".join(f"[0-9]{{{n - 1}}}" for n in lengths)
        branches.append(f"{code}[{first}](?:{rest})")
    return "(?:" + "|".join(branches) + ")"


#: The digits (no ``+``) of a number that is E.164 as written; RE2 and Python read it alike.
FAST_DIGITS = _fast_pattern()
_FAST = re.compile(FAST_DIGITS)
_WRITTEN_INTERNATIONAL = re.compile(r"\+[0-9 ./-]+")  # "+" then ASCII digits and separators
_SEPARATORS = str.maketrans("", "", "+ ./-")


def _ascii_digits(text: str) -> str:
    """Unicode decimal digits (Arabic-Indic, fullwidth...) as ASCII, as libphonenumber reads
    them; the fast path below then sees the digits a person meant."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


@functools.lru_cache(maxsize=262_144)
def _e164(text: str, country: str | None) -> str | None:
    """E.164 for a phone as written (cached: the same phone is hashed for every platform)."""
    text = _ascii_digits(text)
    if not text:
        return None
    if _WRITTEN_INTERNATIONAL.fullmatch(text):
        digits = text.translate(_SEPARATORS)
        if _FAST.fullmatch(digits):
            return "+" + digits  # nothing for libphonenumber to decide
    region = country_region(country) if country else None
    if text.startswith("00"):
        text = "+" + text[2:]  # the international prefix most of the world dials
    if region is None and not text.lstrip(" ([").startswith("+"):
        return _international_without_plus(text)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _international_without_plus(text: str) -> str | None:
    """No ``+`` and no country to read a national number with: the digits are taken as an
    international number when they form a valid one (``374-93-828222``). NANP numbers
    (``15559876543``) need only be possible: the 555 range every example uses is not "valid"."""
    if any(ch.isalpha() for ch in text):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    valid = phonenumbers.is_valid_number(number) or (
        number.country_code == 1 and phonenumbers.is_possible_number(number)
    )
    if not valid:
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@dataclass(frozen=True)
class HashedIdentity:
    """What an ad platform receives for one person."""

    person_id: str
    email: str | None  # sha256 hex
    phone: str | None  # sha256 hex

    @property
    def empty(self) -> bool:
        return self.email is None and self.phone is None


@dataclass
class IdentityStats:
    """Counts of what could not be sent, reported per upload."""

    persons: int = 0
    invalid_emails: int = 0
    invalid_phones: int = 0
    no_identifier: int = 0


def hash_identity(
    person: dict[str, Any], platform: str, stats: IdentityStats | None = None
) -> HashedIdentity:
    """Normalise and hash a person's email and phone for ``platform``."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    email_raw, phone_raw = person.get("email"), person.get("phone")
    email = prehashed(email_raw)
    if email is None and (normal := normalize_email(email_raw, platform)):
        email = sha256_hex(normal)
    phone = prehashed(phone_raw)
    if phone is None and (normal := normalize_phone(phone_raw, person.get("country"), platform)):
        phone = sha256_hex(normal)
    if stats is not None:
        stats.persons += 1
        stats.invalid_emails += int(bool(email_raw) and email is None)
        stats.invalid_phones += int(bool(phone_raw) and phone is None)
        stats.no_identifier += int(email is None and phone is None)
    return HashedIdentity(str(person["person_id"]), email, phone)


# ---- in bulk, in SQL --------------------------------------------------------------------------
# Hashing a large audience one person at a time in Python costs more than sending it. DuckDB
# hashes the common shapes instead, in parallel and outside the GIL, and only where its answer
# is provably the one above: an email of printable ASCII without spaces (no whitespace for
# strip to remove, and ASCII lowercase is the same everywhere) or a SHA-256 hex digest, a phone
# already international by FAST_DIGITS (the fast path of :func:`_e164`, the same regular
# expression). Any other value (unicode digits or letters, spaces around, a national number, a
# number column) is left to :func:`hash_identity`: the row comes back marked ``exact = false``.

_PRINTABLE = "'[!-~]+'"
_INTERNATIONAL = r"'\+[0-9 ./-]+'"
_DIGEST = "'[0-9a-fA-F]{64}'"


def bulk_hash_sql(
    platform: str, columns: Iterable[str], source: str, *, digest: bool = False
) -> str:
    """A query over ``source`` (a FROM clause naming the persons ``p``): person_id, email hash,
    phone hash, whether an email and a phone were given, and ``exact`` (false: use
    :func:`hash_identity` instead); with ``digest``, last, ``source``: a digest of the values
    the identity is made of (email, phone, country), which changes when one of them does.
    Each value is computed once, in layers.

    >>> "sha256" in bulk_hash_sql("meta", ["person_id", "email"], "persons p")
    True
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    present = set(columns)
    email = "p.email" if "email" in present else "NULL::VARCHAR"
    phone = "p.phone" if "phone" in present else "NULL::VARCHAR"
    normal = "email"
    if platform == "google":
        local, domain = "split_part(email, '@', 1)", "split_part(email, '@', 2)"
        gmail = ", ".join(f"'{d}'" for d in GMAIL_DOMAINS)
        normal = (
            f"CASE WHEN {domain} IN ({gmail}) THEN nullif(replace(split_part({local}, '+', 1), "
            f"'.', ''), '') || '@' || {domain} ELSE email END"
        )
    plus = "'+' || " if platform == "google" else ""
    country = "p.country" if "country" in present else "NULL::VARCHAR"
    made_of = ", ".join(f"coalesce(CAST({c} AS VARCHAR), chr(0))" for c in (email, phone, country))
    inner = outer = ""  # the digest, carried through each layer when asked for
    if digest:
        inner, outer = f", md5(concat_ws(chr(31), {made_of})) AS source", ", source"
    return f"""
        SELECT person_id,
               CASE WHEN email_digest THEN email
                    WHEN email_fast AND regexp_full_match(email, '[^@]+@[^@]+')
                    THEN sha256({normal}) END AS email_sha256,
               CASE WHEN phone_digest THEN lower(trim(phone_text))
                    WHEN phone_fast THEN sha256({plus}digits) END AS phone_sha256,
               email_given, phone_given,
               (NOT email_given OR email_fast) AND (NOT phone_given OR phone_fast OR phone_digest)
                   AS exact{outer}
        FROM (
            SELECT person_id, email_given, phone_given, email_fast, digits, phone_text{outer},
                   CASE WHEN email_fast THEN lower(email_text) END AS email,
                   coalesce(email_fast AND regexp_full_match(email_text, {_DIGEST}), false)
                       AS email_digest,
                   coalesce(phone_varchar AND regexp_full_match(trim(phone_text), {_DIGEST}),
                            false) AS phone_digest,
                   coalesce(phone_fast AND regexp_full_match(digits, '{FAST_DIGITS}'), false)
                       AS phone_fast
            FROM (
                SELECT person_id, email_text, email_given, phone_given, phone_text,
                       phone_varchar{outer},
                       coalesce(email_varchar AND regexp_full_match(email_text, {_PRINTABLE}),
                                false) AS email_fast,
                       coalesce(phone_varchar AND regexp_full_match(phone_text, {_INTERNATIONAL}),
                                false) AS phone_fast,
                       translate(phone_text, '+ ./-', '') AS digits  -- (fast ones)
                FROM (
                    SELECT CAST(p.person_id AS VARCHAR) AS person_id,
                           CAST({email} AS VARCHAR) AS email_text,
                           CAST({phone} AS VARCHAR) AS phone_text,
                           {email} IS NOT NULL AS email_given, {phone} IS NOT NULL AS phone_given,
                           typeof({email}) = 'VARCHAR' AS email_varchar,
                           typeof({phone}) = 'VARCHAR' AS phone_varchar{inner}
                    FROM {source})))"""


def bulk_identity(row: tuple[Any, ...], stats: IdentityStats | None = None) -> HashedIdentity:
    """The identity of an exact row of :func:`bulk_hash_sql`, counted as
    :func:`hash_identity` counts it."""
    person_id, email, phone, email_given, phone_given, _ = row
    if stats is not None:
        stats.persons += 1
        stats.invalid_emails += email_given and email is None
        stats.invalid_phones += phone_given and phone is None
        stats.no_identifier += email is None and phone is None
    return HashedIdentity(person_id, email, phone)
