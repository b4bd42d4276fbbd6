"""Normalise and hash emails and phones exactly as each ad platform documents.

Raw emails and phones never leave the machine for an ad platform: only the SHA-256 (lowercase
hex) of the normalised value is sent. Normalisation differs per platform
(shared/API_CONTRACTS.md): Meta and TikTok want phones as digits with the country code and no
``+``, Google wants E.164 with ``+`` and canonical Gmail addresses. A phone without a country
code takes the person's country's calling code; without one it is invalid and skipped.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import phonenumbers

PLATFORMS = ("meta", "google", "tiktok")
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


@functools.lru_cache(maxsize=1_048_576)
def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 string, lowercase hex.

    >>> sha256_hex("mary@example.com")[:16]
    'f1904cf1a9d73a55'
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_email(raw: Any, platform: str) -> str | None:
    """Trimmed, lowercased; Gmail canonicalised for Google. None when not an email.

    >>> normalize_email(" Jefferson.Loves.hiking@gmail.com ", "google")
    'jeffersonloveshiking@gmail.com'
    """
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or " " in email:
        return None
    if platform == "google" and domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


_PUNCTUATION = str.maketrans("", "", " -.()/")


def normalize_phone(raw: Any, country: Any, platform: str) -> str | None:
    """E.164 for Google (``+18005550100``), digits with country code for Meta and TikTok
    (``18005550100``). None when it cannot be a phone number.

    >>> normalize_phone("1-800-555-0100", "US", "google")
    '+18005550100'
    >>> normalize_phone("(555) 987 6543", "US", "meta")
    '15559876543'
    """
    if raw is None:
        return None
    e164 = _e164(str(raw).strip(), country if isinstance(country, str) else None)
    if e164 is None:
        return None
    return e164 if platform == "google" else e164.lstrip("+")


@functools.lru_cache(maxsize=262_144)
def _e164(text: str, country: str | None) -> str | None:
    """E.164 for a phone as written (cached: the same phone is hashed for every platform)."""
    if not text:
        return None
    compact = text.translate(_PUNCTUATION)
    if (
        compact.startswith("+")
        and "(" not in text
        and compact[1:].isdigit()
        and 8 <= len(compact) - 1 <= 15
        and compact[1] != "0"
    ):
        return compact  # already international: nothing for libphonenumber to decide
    region = str(country).strip().upper() if isinstance(country, str) and country else None
    if text.startswith("00"):
        text = "+" + text[2:]  # the international prefix most of the world dials
    if not text.startswith("+") and region is None:
        return None  # no country code and no country to take one from
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
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
    email = normalize_email(email_raw, platform)
    phone = normalize_phone(phone_raw, person.get("country"), platform)
    if stats is not None:
        stats.persons += 1
        stats.invalid_emails += int(bool(email_raw) and email is None)
        stats.invalid_phones += int(bool(phone_raw) and phone is None)
        stats.no_identifier += int(email is None and phone is None)
    return HashedIdentity(
        str(person["person_id"]),
        sha256_hex(email) if email else None,
        sha256_hex(phone) if phone else None,
    )


# ---- in bulk, in SQL --------------------------------------------------------------------------
# Hashing a large audience one person at a time in Python costs more than sending it. DuckDB
# hashes the common shapes instead, in parallel and outside the GIL, and only where its answer
# is provably the one above: an email of printable ASCII without spaces (no whitespace for
# strip to remove, and ASCII lowercase is the same everywhere), a phone already international
# (``+`` then digits and `` ./-`` separators: the fast path of :func:`_e164`). Any other value
# (unicode, spaces around, a national number, a number column) is left to
# :func:`hash_identity`: the row comes back marked ``exact = false``.

_PRINTABLE = "'[!-~]+'"
_INTERNATIONAL = r"'\+[0-9 ./-]+'"


def bulk_hash_sql(platform: str, columns: Iterable[str], source: str) -> str:
    """A query over ``source`` (a FROM clause naming the persons ``p``): person_id, email hash,
    phone hash, whether an email and a phone were given, and ``exact`` (false: use
    :func:`hash_identity` instead). Each value is computed once, in layers.

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
    return f"""
        SELECT person_id,
               CASE WHEN email_fast AND regexp_full_match(email, '[^@]+@[^@]+')
                    THEN sha256({normal}) END AS email_sha256,
               CASE WHEN phone_fast THEN sha256({plus}digits) END AS phone_sha256,
               email_given, phone_given,
               (NOT email_given OR email_fast) AND (NOT phone_given OR phone_fast) AS exact
        FROM (
            SELECT person_id, email_given, phone_given, email_fast, digits,
                   CASE WHEN email_fast THEN lower(email_text) END AS email,
                   coalesce(phone_fast AND length(digits) BETWEEN 8 AND 15
                            AND NOT starts_with(digits, '0'), false) AS phone_fast
            FROM (
                SELECT person_id, email_text, email_given, phone_given,
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
                           typeof({phone}) = 'VARCHAR' AS phone_varchar
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
