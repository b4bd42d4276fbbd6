"""Normalisation and hashing per platform, against shared/API_CONTRACTS.md's test vectors."""

from __future__ import annotations

import pytest

from segctl.delivery.identifiers import (
    IdentityStats,
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
