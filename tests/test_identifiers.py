"""Normalisation and hashing per platform, against shared/API_CONTRACTS.md's test vectors and
libphonenumber; the fast (DuckDB) path and the Python path on the same values."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segctl.delivery.identifiers import (
    FAST_DIGITS,
    IdentityStats,
    bulk_hash_sql,
    bulk_identity,
    hash_identity,
    normalize_email,
    normalize_phone,
    sha256_hex,
)

VECTORS = {
    "mary@example.com": "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79",
    "15559876543": "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e",
    "alexz@example.com": "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a",
    "+18005550100": "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
}


@pytest.mark.parametrize(("value", "digest"), VECTORS.items())
def test_sha256_test_vectors(value: str, digest: str) -> None:
    assert sha256_hex(value) == digest


@pytest.mark.parametrize(
    ("raw", "platform", "expected"),
    [
        ("  Mary@Example.COM ", "meta", "mary@example.com"),
        ("Mary@Example.com", "tiktok", "mary@example.com"),
        ("Jefferson.Loves.hiking@gmail.com", "google", "jeffersonloveshiking@gmail.com"),
        ("user.name+NYC@Example.com", "google", "user.name+nyc@example.com"),
        ("first.last+promo@googlemail.com", "google", "firstlast@googlemail.com"),
        ("first.last+promo@gmail.com", "meta", "first.last+promo@gmail.com"),
        ("no-at-sign.example.com", "meta", None),
        ("", "meta", None),
        (None, "google", None),
        ("a@b@c", "meta", None),
    ],
)
def test_normalize_email(raw: str | None, platform: str, expected: str | None) -> None:
    assert normalize_email(raw, platform) == expected


@pytest.mark.parametrize(
    ("raw", "country", "platform", "expected"),
    [
        ("1-800-555-0100", "US", "google", "+18005550100"),
        ("+1 555-987-6543", None, "meta", "15559876543"),
        ("+1 (555) 987-6543", "DE", "tiktok", "15559876543"),
        ("(555) 987 6543", "US", "meta", "15559876543"),
        ("020 7946 0164", "GB", "meta", "442079460164"),
        ("020 7946 0164", "GB", "google", "+442079460164"),
        ("0049 30 881011", None, "meta", "4930881011"),
        ("011 44 20 7946 0958", "US", "google", "+442079460958"),  # the US call prefix
        ("+44 (0)20 7946 0958", None, "meta", "442079460958"),  # the trunk 0 is dropped
        ("+49-30-881011", None, "google", "+4930881011"),
        ("(555) 987 6543", None, "meta", None),  # no country code, no country: invalid
        ("12", "US", "meta", None),
        ("not a phone", "US", "google", None),
        ("", "US", "meta", None),
    ],
)
def test_normalize_phone(
    raw: str, country: str | None, platform: str, expected: str | None
) -> None:
    assert normalize_phone(raw, country, platform) == expected


def test_hash_identity_hashes_and_counts_what_is_skipped() -> None:
    stats = IdentityStats()
    mary = hash_identity(
        {"person_id": "u1", "email": " MARY@example.com", "phone": "+1 555 987 6543"}, "meta", stats
    )
    assert mary.email == VECTORS["mary@example.com"]
    assert mary.phone == VECTORS["15559876543"]
    bad = hash_identity(
        {"person_id": "u2", "email": "broken", "phone": "555 0100", "country": None}, "meta", stats
    )
    assert bad.empty
    google = hash_identity(
        {"person_id": "u3", "email": None, "phone": "1-800-555-0100", "country": "US"},
        "google",
        stats,
    )
    assert google.phone == VECTORS["+18005550100"] and google.email is None
    assert (stats.persons, stats.invalid_emails, stats.invalid_phones, stats.no_identifier) == (
        3,
        1,
        1,
        1,
    )
    with pytest.raises(ValueError, match="unknown platform"):
        hash_identity({"person_id": "x"}, "myspace")


# ---- the cases of issue 16, on every platform and on both paths --------------------------------

#: (phone, country) -> the digits with country code every platform hashes (Google adds "+").
PHONES: dict[tuple[str, str | None], str | None] = {
    ("+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", None): "442079460958",  # Arabic-Indic digits
    ("+۴۴ ۲۰ ۷۹۴۶ ۰۹۵۸", None): "442079460958",  # Extended Arabic-Indic (Persian) digits
    ("０２０ ７９４６ ０９５８", "GB"): "442079460958",  # fullwidth digits, national
    ("+44 020 7946 0958", None): "442079460958",  # the trunk 0 after the country code
    ("+44 (0)20 7946 0958", None): "442079460958",
    ("+4402079460958", None): "442079460958",
    ("+49 030 881011", None): "4930881011",
    ("+39 06 1234 5678", None): "390612345678",  # Italy keeps its leading 0
    ("(+44) 20 7946 0958", None): "442079460958",
    ("15559876543", None): "15559876543",  # country code, no +, no country column
    ("374-93-828222", None): "37493828222",  # TikTok's own example
    ("5559876543", None): None,  # a national number without a country: not guessed
    ("(555) 987 6543", "USA"): "15559876543",
    ("(555) 987 6543", "us"): "15559876543",
    ("(555) 987 6543", "United States"): "15559876543",
    ("(555) 987 6543", "united states of america"): "15559876543",
    ("020 7946 0958", "gbr"): "442079460958",
    ("020 7946 0958", "United Kingdom"): "442079460958",
    ("020 7946 0958", "UK"): "442079460958",
    ("030 1234567", "Germany"): "49301234567",
    ("030 1234567", "Narnia"): None,  # not a country: a national number stays unreadable
    ("+1 555 987 6543", "gb"): "15559876543",  # a + number ignores the country column
    ("+123456789012345", None): None,  # too long for +1
}

EMAILS: dict[str, str | None] = {
    "mary\t@example.com": None,  # whitespace inside: Google's formatter rejects it
    "mary smith@example.com": None,
    "mary@example\n.com": None,
    "mary@exa\u00a0mple.com": None,  # a no-break space is whitespace too
    " Mary@Example.com\n": "mary@example.com",  # around it is trimmed
}

MARY_DIGEST = VECTORS["mary@example.com"]


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
@pytest.mark.parametrize(("phone", "country"), list(PHONES), ids=[repr(k) for k in PHONES])
def test_phones_of_issue_16(phone: str, country: str | None, platform: str) -> None:
    digits = PHONES[(phone, country)]
    expected = None if digits is None else ("+" + digits if platform == "google" else digits)
    assert normalize_phone(phone, country, platform) == expected


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
@pytest.mark.parametrize("email", list(EMAILS), ids=[repr(k) for k in EMAILS])
def test_emails_with_whitespace_inside_are_invalid(email: str, platform: str) -> None:
    assert normalize_email(email, platform) == EMAILS[email]
    stats = IdentityStats()
    identity = hash_identity({"person_id": "p", "email": email}, platform, stats)
    assert stats.invalid_emails == int(EMAILS[email] is None)
    assert identity.email == (sha256_hex(EMAILS[email]) if EMAILS[email] else None)


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
def test_a_value_already_hashed_is_sent_as_it_is(platform: str) -> None:
    phone_digest = VECTORS["15559876543"]
    stats = IdentityStats()
    identity = hash_identity(
        {"person_id": "p", "email": MARY_DIGEST.upper(), "phone": f" {phone_digest} "},
        platform,
        stats,
    )
    assert (identity.email, identity.phone) == (MARY_DIGEST, phone_digest)  # not hashed again
    assert (stats.invalid_emails, stats.invalid_phones, stats.no_identifier) == (0, 0, 0)


def _both_paths(platform: str, people: list[dict[str, str | None]]) -> dict[str, Any]:
    """Each person's identity as an audience sync computes it: DuckDB's where it is exact,
    hash_identity's elsewhere; and which rows DuckDB took."""
    con = duckdb.connect()
    con.execute("CREATE TABLE persons (person_id VARCHAR, email VARCHAR, phone VARCHAR, c VARCHAR)")
    con.executemany(
        "INSERT INTO persons VALUES (?, ?, ?, ?)",
        [(p["person_id"], p["email"], p["phone"], p["country"]) for p in people],
    )
    by_id = {p["person_id"]: p for p in people}
    found: dict[str, Any] = {}
    rows = con.execute(bulk_hash_sql(platform, ["person_id", "email", "phone"], "persons p"))
    for row in rows.fetchall():
        exact = bool(row[-1])
        identity = bulk_identity(tuple(row)) if exact else hash_identity(by_id[row[0]], platform)
        found[row[0]] = (identity, exact)
    return found


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
def test_both_paths_give_every_issue_16_value_its_expected_hash(platform: str) -> None:
    people: list[dict[str, str | None]] = []
    expected: dict[str, tuple[str | None, str | None]] = {}
    for i, ((phone, country), digits) in enumerate(PHONES.items()):
        people.append({"person_id": f"ph{i}", "email": None, "phone": phone, "country": country})
        normal = None if digits is None else ("+" + digits if platform == "google" else digits)
        expected[f"ph{i}"] = (None, sha256_hex(normal) if normal else None)
    for i, (email, normal_email) in enumerate(EMAILS.items()):
        people.append({"person_id": f"em{i}", "email": email, "phone": None, "country": None})
        expected[f"em{i}"] = (sha256_hex(normal_email) if normal_email else None, None)
    people.append(
        {"person_id": "digest", "email": MARY_DIGEST, "phone": MARY_DIGEST, "country": None}
    )
    expected["digest"] = (MARY_DIGEST, MARY_DIGEST)
    found = _both_paths(platform, people)
    assert {k: (v[0].email, v[0].phone) for k, v in found.items()} == expected
    # DuckDB took the shapes it can: the pre-hashed row, and "+" numbers needing no trunk rule
    assert found["digest"][1]
    taken = {phone for i, (phone, _) in enumerate(PHONES) if found[f"ph{i}"][1]}
    assert "+4402079460958" not in taken and "+44 020 7946 0958" not in taken
    assert taken >= {"+39 06 1234 5678", "+1 555 987 6543"}


# ---- the fast path: E.164 as written only when libphonenumber says the same ---------------------


def _libphonenumber(digits: str) -> str | None:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def test_the_fast_rule_agrees_with_libphonenumber_for_every_country_and_first_digit() -> None:
    """Every country code, every first national digit, every length from 2 to 15: where the
    rule (FAST_DIGITS) takes the digits as written, libphonenumber formats exactly them."""
    fast = re.compile(FAST_DIGITS)
    taken = 0
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for first in "0123456789":
            for length in range(2, 16):
                for filler in "0597":
                    digits = f"{code}{first}{filler * (length - 1)}"
                    if fast.fullmatch(digits):
                        taken += 1
                        assert _libphonenumber(digits) == "+" + digits, digits
    assert taken > 5_000


@settings(max_examples=3_000, deadline=None)
@given(
    code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
    national=st.text("0123456789", min_size=1, max_size=14),
)
def test_the_fast_rule_agrees_with_libphonenumber_on_random_numbers(
    code: int, national: str
) -> None:
    digits = f"{code}{national}"
    if re.fullmatch(FAST_DIGITS, digits):
        assert _libphonenumber(digits) == "+" + digits
        assert normalize_phone("+" + digits, None, "google") == "+" + digits
    # and the Python path always says what libphonenumber says for a "+" number
    assert normalize_phone("+" + digits, None, "google") == _libphonenumber(digits)
