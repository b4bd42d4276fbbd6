"""TikTok custom audiences against the local TikTok fake (tests/fakes/tiktok.py).

Expected hashes are computed here with hashlib from the contract's normalisation (trim,
lowercase; phone digits with country code, no ``+``), independently of segctl's own hashing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes import TikTokFake

from segctl.definitions.destinations import Destination
from segctl.delivery.identifiers import HashedIdentity, IdentityStats
from segctl.delivery.platforms import client_for
from segctl.delivery.platforms.base import Member
from segctl.delivery.platforms.tiktok import TikTokAudience
from segctl.delivery.retry import Permanent, Transient

TOKEN = "tt-secret-token-0123456789"
ADVERTISER = "7012345678901234567"
API = "/open_api/v1.3"
MARY = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"  # the contract's vector
MARY_PHONE = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def person(i: int, **columns: Any) -> dict[str, Any]:
    """Person i, with a messy email (case, spaces) and a national phone number."""
    return {
        "person_id": f"p{i:05d}",
        "email": f"  User.{i}@Example.COM ",
        "phone": f"(555) {i // 10000:03d}-{i % 10000:04d}",
        "country": "US",
        **columns,
    }


def email_hash(i: int) -> str:
    return sha(f"user.{i}@example.com")


def destination(fake: TikTokFake, base_url: str | None = None, **settings: Any) -> Destination:
    """The destination, its ``base_url`` the fake's bare host (as for Meta and Google)."""
    return Destination(
        name="tiktok_ads",
        type="tiktok",
        settings={"advertiser_id": ADVERTISER, **settings},
        secrets={"access_token": TOKEN},
        base_url=fake.base_url if base_url is None else base_url,
        max_retries=4,
        rate_limit=None,
        backoff=0.01,
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as shared:
        yield shared


def audience_client(
    fake: TikTokFake, client: httpx.Client, base_url: str | None = None, **settings: Any
) -> TikTokAudience:
    audience = client_for(destination(fake, base_url, **settings), client)
    assert isinstance(audience, TikTokAudience)
    # the policy's jitter (0.5 s) does not scale with the destination's backoff: keep tests fast
    audience.policy = dataclasses.replace(audience.policy, jitter=0.01)
    return audience


def members(audience: TikTokAudience, people: list[dict[str, Any]]) -> list[Member]:
    stats = IdentityStats()
    found = [audience.identity(p, stats) for p in people]
    return [m for m in found if m is not None]


def create_audience(
    fake: TikTokFake, client: httpx.Client, calculate_type: str = "EMAIL_SHA256"
) -> str:
    """A new audience holding one placeholder hash (TikTok creates audiences from a file)."""
    placeholder = sha("placeholder@example.com" if calculate_type == "EMAIL_SHA256" else "10")
    content = f"{placeholder}\n".encode()
    headers = {"Access-Token": TOKEN}
    upload = client.post(
        f"{fake.base_url}{API}/dmp/custom_audience/file/upload/",
        headers=headers,
        data={
            "advertiser_id": ADVERTISER,
            "calculate_type": calculate_type,
            "file_signature": hashlib.md5(content).hexdigest(),
        },
        files={"file": ("seed.txt", content, "text/plain")},
    ).json()
    created = client.post(
        f"{fake.base_url}{API}/dmp/custom_audience/create/",
        headers=headers,
        json={
            "advertiser_id": ADVERTISER,
            "custom_audience_name": "segctl test",
            "calculate_type": calculate_type,
            "file_paths": [upload["data"]["file_path"]],
        },
    ).json()
    audience_id: str = created["data"]["custom_audience_id"]
    return audience_id


def assert_clean(fake: TikTokFake) -> None:
    """No raw identifier reached TikTok, the token only ever went in its header."""
    assert fake.pii_leaks == []
    for request in fake.requests:
        assert TOKEN not in request.path
        assert all(TOKEN not in f"{k}={v}" for k, v in request.query.items())
        assert request.headers.get("access-token") == TOKEN
    fake.assert_limits()


def test_first_sync_replaces_the_audience_with_exactly_the_hashes(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        people = [person(i) for i in range(1200)]

        figures = tiktok.replace(audience_id, members(tiktok, people))

        assert fake.audience(audience_id) == {email_hash(i) for i in range(1200)}
        assert figures.received == 1200
        assert figures.details == {"calculate_type": "EMAIL_SHA256"}
        assert [r.json["action"] for r in fake.calls("update")] == ["REPLACE"]
        assert len(fake.calls("upload")) == 2  # the placeholder's and ours: one file, one upload
        assert_clean(fake)


@pytest.mark.parametrize(
    "suffix", ["", "/", API, API + "/"], ids=["host", "host/", "host+api", "host+api/"]
)
def test_base_url_is_the_host_and_a_path_given_still_works(
    client: httpx.Client, suffix: str
) -> None:
    """A proxy set as a bare host (as for every destination) once got ``unknown path
    /dmp/...``; a base_url ending in /open_api/v1.3, as segctl once required, still works."""
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client, base_url=fake.base_url + suffix)
        tiktok.add(audience_id, members(tiktok, [person(i) for i in range(3)]))
        assert fake.audience(audience_id) >= {email_hash(i) for i in range(3)}
        assert {r.path for r in fake.requests[2:]} == {
            f"{API}/dmp/custom_audience/file/upload/",
            f"{API}/dmp/custom_audience/update/",
        }
        assert all(r.status == 200 for r in fake.requests)


def test_a_tiktok_destination_in_segctl_yaml_defaults_to_the_host() -> None:
    from segctl.definitions.destinations import parse_destinations
    from segctl.definitions.source import Pos, Problems

    problems = Problems()
    found = parse_destinations(
        {"t": {"type": "tiktok", "advertiser_id": "1", "access_token": "x"}}, problems, Pos("")
    )
    assert not problems and found["t"].base_url == "https://business-api.tiktok.com"


def test_append_then_remove(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        tiktok.replace(audience_id, members(tiktok, [person(i) for i in range(5)]))

        added = tiktok.add(audience_id, members(tiktok, [person(i) for i in range(5, 8)]))
        removed = tiktok.remove(audience_id, members(tiktok, [person(0), person(6)]))

        assert fake.audience(audience_id) == {email_hash(i) for i in (1, 2, 3, 4, 5, 7)}
        assert (added.received, removed.received) == (3, 2)
        assert [r.json["action"] for r in fake.calls("update")] == ["REPLACE", "APPEND", "REMOVE"]
        update = fake.calls("update")[-1].json
        assert update["advertiser_id"] == ADVERTISER
        assert update["custom_audience_id"] == audience_id
        assert update["file_paths"] == [fake.calls("upload")[-1].response["data"]["file_path"]]
        assert_clean(fake)


def test_upload_is_a_file_of_hashes_signed_with_its_md5(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        mary = {"person_id": "mary", "email": " Mary@Example.com ", "phone": None}
        # two persons sharing an email make one line
        twin = {"person_id": "twin", "email": "mary@example.com", "phone": None}

        figures = tiktok.add(audience_id, members(tiktok, [mary, twin, person(1)]))

        upload = fake.calls("upload")[-1]
        filename, content = upload.files["file"]
        assert filename.endswith(".txt")
        assert content == f"{MARY}\n{email_hash(1)}\n".encode()
        assert upload.form == {
            "advertiser_id": ADVERTISER,
            "calculate_type": "EMAIL_SHA256",
            "file_signature": hashlib.md5(content).hexdigest(),
        }
        assert figures.received == 2  # lines sent
        assert fake.file(upload.response["data"]["file_path"]) == {MARY, email_hash(1)}
        assert_clean(fake)


def test_below_the_1000_minimum_is_permanent_with_tiktoks_message(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        tiktok.replace(audience_id, members(tiktok, [person(i) for i in range(1000)]))

        with pytest.raises(Permanent) as failure:
            tiktok.remove(audience_id, members(tiktok, [person(0)]))

        assert "40002" in failure.value.message
        assert "999 people after this update; at least 1000 are required" in failure.value.message
        assert len(fake.calls("update")) == 2  # not retried
        assert len(fake.audience(audience_id)) == 1000
        assert_clean(fake)


@pytest.mark.parametrize("code", [40100, 50000])  # rate limit; system error (also HTTP 200)
def test_rate_limit_and_system_error_codes_are_retried(client: httpx.Client, code: int) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        upload_fault = fake.inject(platform_error=code, endpoint="upload", times=2)
        update_fault = fake.inject(platform_error=code, endpoint="update", times=1)

        figures = tiktok.add(audience_id, members(tiktok, [person(1), person(2)]))

        assert (upload_fault.hits, update_fault.hits) == (2, 1)
        assert figures.received == 2
        assert {email_hash(1), email_hash(2)} <= fake.audience(audience_id)
        assert len(fake.calls("upload")) == 1 + 3
        assert len(fake.calls("update")) == 2
        assert_clean(fake)


def test_rate_limit_beyond_the_retries_stays_transient(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        fake.inject(platform_error=40100, endpoint="upload", times=None)

        with pytest.raises(Transient, match="TikTok 40100: Too many requests"):
            tiktok.add(audience_id, members(tiktok, [person(1)]))

        assert len(fake.calls("upload")) == 1 + 5  # max_retries=4
        assert fake.calls("update") == []


def test_other_codes_are_permanent_and_not_retried(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1, advertiser_id=ADVERTISER) as fake:
        audience_id = create_audience(fake, client)
        wrong_advertiser = audience_client(fake, client, advertiser_id="42")
        with pytest.raises(Permanent, match="TikTok 40001: No permission to operate advertiser"):
            wrong_advertiser.add(audience_id, members(wrong_advertiser, [person(1)]))
        tiktok = audience_client(fake, client)
        with pytest.raises(Permanent, match="TikTok 40002: custom_audience_id: audience"):
            tiktok.add("404", members(tiktok, [person(1)]))

        assert [r.response["code"] for r in fake.requests[2:]] == [40001, 0, 40002]


def test_http_errors_and_dropped_connections_are_retried(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        fake.inject(status=503, endpoint="upload")
        fake.inject(reset=True, endpoint="update")
        fake.inject(reset=True, after=True, endpoint="update")  # applied, the answer lost

        tiktok.add(audience_id, members(tiktok, [person(1)]))

        assert email_hash(1) in fake.audience(audience_id)
        assert len(fake.calls("update")) == 3


def test_chaos_still_converges(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        fake.chaos(0.3, seed=7, kinds=("status", "platform", "delay", "reset", "lost"))

        tiktok.replace(audience_id, members(tiktok, [person(i) for i in range(50)]))
        tiktok.add(audience_id, members(tiktok, [person(i) for i in range(50, 60)]))
        tiktok.remove(audience_id, members(tiktok, [person(i) for i in range(0, 60, 2)]))

        assert fake.audience(audience_id) == {email_hash(i) for i in range(1, 60, 2)}
        assert sum(1 for r in fake.requests if r.fault) >= 3
        assert_clean(fake)


def test_persons_without_an_email_are_skipped_for_email_audiences(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        stats = IdentityStats()
        people = [
            person(1),
            person(2, email=None),  # phone only
            person(3, email="not-an-email"),
            person(4, email=None, phone=None),
        ]

        found = [tiktok.identity(p, stats) for p in people]

        assert [m.person_id if m else None for m in found] == ["p00001", None, None, None]
        assert stats.no_identifier == 3
        assert stats.invalid_emails == 1
        tiktok.add(audience_id, [m for m in found if m])
        assert fake.file(fake.calls("upload")[-1].response["data"]["file_path"]) == {email_hash(1)}
        assert_clean(fake)


def test_phone_audiences_send_phone_hashes(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client, "PHONE_SHA256")
        tiktok = audience_client(fake, client, calculate_type="PHONE_SHA256")
        mary = {"person_id": "mary", "email": "a@b.co", "phone": "(555) 987-6543", "country": "US"}
        no_phone = person(2, phone=None)

        chosen = members(tiktok, [mary, no_phone])
        tiktok.add(audience_id, chosen)

        assert [m.person_id for m in chosen] == ["mary"]
        assert MARY_PHONE in fake.audience(audience_id)
        assert fake.calls("upload")[-1].form["calculate_type"] == "PHONE_SHA256"
        assert_clean(fake)


def test_nothing_to_send_sends_nothing_and_an_empty_replace_is_refused(
    client: httpx.Client,
) -> None:
    with TikTokFake(token=TOKEN, min_audience_size=1) as fake:
        audience_id = create_audience(fake, client)
        tiktok = audience_client(fake, client)
        phone_only = Member("p1", identity=HashedIdentity("p1", None, MARY_PHONE))

        assert tiktok.add(audience_id, []).received == 0
        assert tiktok.remove(audience_id, [phone_only]).received == 0  # never sent
        with pytest.raises(Permanent, match="TikTok cannot empty an audience"):
            tiktok.replace(audience_id, [])
        assert len(fake.requests) == 2  # the placeholder audience's own


def test_unsupported_calculate_type_is_permanent(client: httpx.Client) -> None:
    with TikTokFake(token=TOKEN) as fake:
        tiktok = audience_client(fake, client, calculate_type="IDFA_SHA256")
        with pytest.raises(Permanent, match="calculate_type 'IDFA_SHA256' is not supported"):
            tiktok.identity(person(1), IdentityStats())
        assert fake.requests == []
