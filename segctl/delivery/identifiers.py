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
