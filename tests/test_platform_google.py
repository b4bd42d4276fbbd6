"""GoogleAudience against the Data Manager fake: bodies, local checks, batching, request status,
errors and waits.

Every test's fake is checked on the way out: no raw identifier reached it, the client kept to
its limits (300 requests a minute, 10 in flight), and the token travelled only in the
Authorization header.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes import GoogleFake

from segctl.definitions.destinations import Destination
from segctl.delivery.identifiers import HashedIdentity, hash_identity, sha256_hex
from segctl.delivery.platforms import client_for
from segctl.delivery.platforms.base import Member
from segctl.delivery.platforms.google import GoogleAudience, classify
from segctl.delivery.retry import Deferred, Permanent, Transient

TOKEN = "ya29.google-secret-token"
LIST = "7788990011"
# The contract's test vectors: sha256("alexz@example.com"), sha256("+18005550100").
ALEX_EMAIL = "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"
ALEX_PHONE = "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
JEFFERSON = sha256_hex("jeffersonloveshiking@gmail.com")  # the contract's Gmail example

PEOPLE: list[dict[str, Any]] = [
    {"person_id": "alex", "email": "AlexZ@example.com", "phone": "1-800-555-0100", "country": "US"},
    {"person_id": "jeff", "email": " Jefferson.Loves.hiking@gmail.com", "phone": None},
    {"person_id": "phone", "email": None, "phone": "+44 20 7946 0958", "country": None},
    {
        "person_id": "both",
        "email": "user.name+NYC@Example.com",
        "phone": "030 1234567",
        "country": "DE",
    },
]


def member(person: dict[str, Any]) -> Member:
    return Member(str(person["person_id"]), identity=hash_identity(person, "google"))


def people(*ids: str) -> list[Member]:
    return [member(p) for p in PEOPLE if p["person_id"] in ids]


def expected(members: list[Member]) -> set[frozenset[tuple[str, str]]]:
    """What the fake should hold: each member as its set of identifiers."""
    out: set[frozenset[tuple[str, str]]] = set()
    for m in members:
        assert m.identity is not None
        ids = {("emailAddress", m.identity.email), ("phoneNumber", m.identity.phone)}
        out.add(frozenset((k, v) for k, v in ids if v))
    return out


def destination(fake: GoogleFake, **settings: Any) -> Destination:
    return Destination(
        name="google",
        type="google",
        settings={"operating_account_id": "1234567890", **settings},
        secrets={"access_token": TOKEN},
        base_url=fake.base_url,
        timeout=5.0,
        max_retries=3,
        rate_limit=None,
        backoff=0.01,
    )


def make_client(fake: GoogleFake, http: httpx.Client, **settings: Any) -> GoogleAudience:
    """A client of the fake whose retries and status polls wait milliseconds, not seconds."""
    client = GoogleAudience(destination(fake, **settings), http)
    client.policy = dataclasses.replace(client.policy, jitter=0.01)
    client.status_polls = (0.0, 0.01, 0.01)
    return client


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One HTTP client for the module, as the worker shares one (each costs an SSL context)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture
def google() -> Iterator[GoogleFake]:
    with GoogleFake(token=TOKEN) as fake:
        yield fake
        assert fake.pii_leaks == []
        fake.assert_limits()
        for req in fake.requests:
            assert TOKEN not in req.path and TOKEN not in repr(req.query)
            assert req.headers.get("authorization", "").startswith("Bearer ")


@pytest.fixture
def client(google: GoogleFake, http: httpx.Client) -> Iterator[GoogleAudience]:
    audience = make_client(google, http)
    yield audience
    audience.close()


@pytest.fixture(scope="module")
def many() -> list[Member]:
    return [member({"person_id": f"s{i}", "email": f"user{i}@example.com"}) for i in range(25_000)]


# ---- adds and removes ---------------------------------------------------------------------------


def test_first_add_sends_the_contract_body(google: GoogleFake, client: GoogleAudience) -> None:
    figures = client.add(LIST, people("alex"))

    [req] = google.calls("ingest")
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.json == {
        "destinations": [
            {
                "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                "productDestinationId": LIST,
            }
        ],
        "audienceMembers": [
            {
                "userData": {
                    "userIdentifiers": [{"emailAddress": ALEX_EMAIL}, {"phoneNumber": ALEX_PHONE}]
                }
            }
        ],
        "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"},
        "encoding": "HEX",
        "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        "validateOnly": False,
    }
    assert google.audience(LIST) == {
        frozenset({("emailAddress", ALEX_EMAIL), ("phoneNumber", ALEX_PHONE)})
    }
    [poll] = google.calls("request_status")
    assert poll.query == {"requestId": req.response["requestId"]}
    assert (figures.received, figures.invalid) == (1, 0)
    assert figures.match_rate == "MATCH_RATE_RANGE_81_TO_90"
    assert figures.details == {
        "request_ids": [req.response["requestId"]],
        "request_status": "SUCCESS",
    }


def test_first_add_holds_exactly_the_hashed_members(
    google: GoogleFake, client: GoogleAudience
) -> None:
    members = people("alex", "jeff", "phone", "both")
    client.add(LIST, members)
    assert google.audience(LIST) == expected(members)
    assert JEFFERSON in google.identifiers(LIST)
    assert sha256_hex("user.name+nyc@example.com") in google.identifiers(LIST)


def test_incremental_add_and_remove(google: GoogleFake, client: GoogleAudience) -> None:
    client.add(LIST, people("alex", "jeff"))
    client.add(LIST, people("phone", "both"))
    assert google.audience(LIST) == expected(people("alex", "jeff", "phone", "both"))

    figures = client.remove(LIST, people("jeff", "both"))
    assert google.audience(LIST) == expected(people("alex", "phone"))
    [req] = google.calls("remove")
    assert set(req.json) == {"destinations", "audienceMembers", "encoding", "validateOnly"}
    assert figures.received == 2 and figures.match_rate is None


def test_settings_account_type_consent_and_dashed_account(
    google: GoogleFake, http: httpx.Client
) -> None:
    client = make_client(
        google,
        http,
        operating_account_id="123-456-7890",
        account_type="DATA_PARTNER",
        consent={"adPersonalization": "CONSENT_DENIED"},
    )
    client.add(LIST, people("alex"))
    client.close()
    [req] = google.calls("ingest")
    assert req.json["destinations"][0]["operatingAccount"] == {
        "accountType": "DATA_PARTNER",
        "accountId": "1234567890",
    }
    assert req.json["consent"] == {
        "adUserData": "CONSENT_GRANTED",
        "adPersonalization": "CONSENT_DENIED",
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"operating_account_id": "acme"}, "operating_account_id must be digits"),
        ({"account_type": "YOUTUBE"}, "account_type must be one of"),
        ({"consent": "granted"}, "consent must be a mapping"),
        ({"consent": {"adUserData": "YES"}}, "consent.adUserData must be one of"),
        ({"consent": {"ad_user_data": "CONSENT_GRANTED"}}, "unknown key 'ad_user_data'"),
    ],
)
def test_bad_settings_fail_before_sending(
    google: GoogleFake, http: httpx.Client, settings: dict[str, Any], message: str
) -> None:
    client = make_client(google, http, **settings)
    with pytest.raises(Permanent, match=message):
        client.add(LIST, people("alex"))
    client.close()
    assert google.requests == []


def test_invalid_members_are_skipped_so_the_request_is_accepted(
    google: GoogleFake, client: GoogleAudience
) -> None:
    odd = [
        Member("contact-only", contact={"email": "raw@example.com"}),
        Member("empty", identity=HashedIdentity("empty", None, None)),
        Member("raw", identity=HashedIdentity("raw", "raw@example.com", None)),
        Member("upper", identity=HashedIdentity("upper", ALEX_EMAIL.upper(), None)),
    ]
    figures = client.add(LIST, [*odd, *people("jeff")])
    assert google.audience(LIST) == expected(people("jeff"))
    assert (figures.received, figures.invalid) == (1, 4)
    assert client.add(LIST, odd).invalid == 4
    assert google.counts["ingest"] == 1  # nothing left to send: no request


def test_batches_of_10000(google: GoogleFake, client: GoogleAudience, many: list[Member]) -> None:
    figures = client.add(LIST, many)

    assert google.counts["ingest"] == 3 and google.counts["request_status"] == 3
    assert google.max_batch["ingest"] == 10_000
    assert [len(r.json["audienceMembers"]) for r in google.calls("ingest")] == [10_000] * 2 + [
        5_000
    ]
    assert figures.received == 25_000 and len(figures.details["request_ids"]) == 3
    assert google.identifiers(LIST) == {m.identity.email for m in many if m.identity}

    client.remove(LIST, many[:12_000])
    assert google.counts["remove"] == 2
    assert len(google.audience(LIST)) == 13_000


def test_no_replace(client: GoogleAudience, http: httpx.Client, google: GoogleFake) -> None:
    assert isinstance(client_for(destination(google), http), GoogleAudience)
    with pytest.raises(Permanent, match="google has no replace"):
        client.replace(LIST, people("alex"))


# ---- request status -----------------------------------------------------------------------------


def test_processing_is_reported_and_polling_is_bounded(http: httpx.Client) -> None:
    with GoogleFake(token=TOKEN, processing_polls=100) as google:
        client = make_client(google, http)
        figures = client.add(LIST, people("alex", "jeff"))
        client.close()
        assert google.counts["request_status"] == len(client.status_polls)
        assert figures.details["request_status"] == "PROCESSING"
        assert figures.received == 2 and figures.match_rate is None  # the accepted members
        assert google.audience(LIST) == expected(people("alex", "jeff"))


def test_processing_then_success(http: httpx.Client) -> None:
    with GoogleFake(token=TOKEN, processing_polls=1) as google:
        client = make_client(google, http)
        figures = client.add(LIST, people("alex"))
        client.close()
        assert google.counts["request_status"] == 2
        assert figures.details["request_status"] == "SUCCESS"
        assert figures.match_rate == "MATCH_RATE_RANGE_81_TO_90"


def test_a_failing_status_poll_does_not_fail_the_add(
    google: GoogleFake, client: GoogleAudience
) -> None:
    google.inject(status=500, endpoint="request_status", times=None)
    figures = client.add(LIST, people("alex"))
    assert google.audience(LIST) == expected(people("alex"))
    assert figures.details["request_status"] == "UNKNOWN"
    assert "HTTP 500" in figures.details["request_status_error"]
    assert google.counts["request_status"] == 2  # one poll, one retry, then it gives up


def test_a_failed_request_is_permanent() -> None:
    """The fake never reports FAILED, so this one answer comes from a MockTransport."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/audienceMembers:ingest":
            return httpx.Response(200, json={"requestId": "r1"})
        failed = {
            "requestStatus": "FAILED",
            "errorInfo": {"errorCounts": [{"reason": "INVALID_ARGUMENT", "recordCount": "1"}]},
        }
        return httpx.Response(200, json={"requestStatusPerDestination": [failed]})

    fake_destination = dataclasses.replace(
        Destination("google", "google", {"operating_account_id": "1"}, {"access_token": TOKEN}),
        base_url="https://datamanager.example",
        rate_limit=None,
    )
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = GoogleAudience(fake_destination, http)
        client.status_polls = (0.0,)
        with pytest.raises(Permanent, match="r1 and then reported it FAILED: INVALID_ARGUMENT x1"):
            client.add(LIST, people("alex"))


# ---- errors and waits ---------------------------------------------------------------------------


def test_quota_exceeded_waits_for_retry_after(google: GoogleFake, client: GoogleAudience) -> None:
    quota = google.inject(status=429, retry_after=0.5, endpoint="ingest")
    started = time.monotonic()
    client.add(LIST, people("alex"))
    assert time.monotonic() - started >= 0.5
    assert quota.hits == 1 and google.counts["ingest"] == 2
    assert google.calls("ingest")[0].response["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert google.audience(LIST) == expected(people("alex"))


def test_quota_exceeded_for_long_defers(google: GoogleFake, client: GoogleAudience) -> None:
    google.inject(status=429, retry_after=120)
    with pytest.raises(Deferred, match="RESOURCE_EXHAUSTED") as failure:
        client.add(LIST, people("alex"))
    assert failure.value.retry_after == 120.0
    assert google.counts["ingest"] == 1 and google.audience(LIST) == set()


def test_retry_info_gives_the_wait() -> None:
    error = {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    with pytest.raises(Transient, match="HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded") as failure:
        classify(httpx.Response(429, json=error))
    assert failure.value.retry_after == 7.0


@pytest.mark.parametrize("fault", [{"platform_error": "RESOURCE_EXHAUSTED"},
                                   {"platform_error": "UNAVAILABLE"},
                                   {"platform_error": "DEADLINE_EXCEEDED"},
                                   {"platform_error": "INTERNAL"}, {"status": 502},
                                   {"reset": True}, {"reset": True, "after": True}])  # fmt: skip
def test_transient_failures_are_retried(
    google: GoogleFake, client: GoogleAudience, fault: dict[str, Any]
) -> None:
    injected = google.inject(times=2, endpoint="remove", **fault)
    client.add(LIST, people("alex", "jeff"))
    client.remove(LIST, people("jeff"))
    assert injected.hits == 2 and google.counts["remove"] == 3
    assert google.audience(LIST) == expected(people("alex"))


@pytest.mark.parametrize(
    "status", ["INVALID_ARGUMENT", "FAILED_PRECONDITION", "PERMISSION_DENIED", "NOT_FOUND"]
)
def test_permanent_errors_carry_the_platform_message(
    google: GoogleFake, client: GoogleAudience, status: str
) -> None:
    google.inject(platform_error=status)
    with pytest.raises(Permanent) as failure:
        client.add(LIST, people("alex"))
    assert f"{status}: injected {status}" in failure.value.message
    assert TOKEN not in failure.value.message
    assert google.counts["ingest"] == 1 and google.counts["request_status"] == 0
    assert google.audience(LIST) == set()


def test_a_rejected_body_names_the_fields(google: GoogleFake, client: GoogleAudience) -> None:
    with pytest.raises(Permanent, match=r"HTTP 400 INVALID_ARGUMENT: .*productDestinationId"):
        client.add("", people("alex"))  # a user list id is required
    assert len(google.requests) == 1


def test_bad_token_is_permanent(google: GoogleFake, http: httpx.Client) -> None:
    wrong = GoogleAudience(
        dataclasses.replace(destination(google), secrets={"access_token": "expired"}), http
    )
    with pytest.raises(Permanent, match="UNAUTHENTICATED"):
        wrong.add(LIST, people("alex"))
    wrong.close()
    assert len(google.requests) == 1


def test_chaos_still_converges(google: GoogleFake, http: httpx.Client) -> None:
    client = make_client(google, http)
    client.policy = dataclasses.replace(client.policy, max_retries=8)
    client.max_batch = 2
    google.chaos(0.3, seed=11, kinds=("status", "platform", "reset", "lost"))
    client.add(LIST, people("alex", "jeff", "phone", "both"))
    client.remove(LIST, people("jeff", "both"))
    client.add(LIST, people("both"))
    client.close()
    assert google.audience(LIST) == expected(people("alex", "phone", "both"))
    assert any(r.fault for r in google.requests)
