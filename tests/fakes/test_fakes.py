"""The fakes enforce the contracts: valid requests change state, invalid ones get the platform's
own error, and the fault injection does what it says. Driven with httpx over real sockets."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fakes import GoogleFake, MetaFake, ResendFake, TikTokFake, WebhookFake, sign
from fakes.webhook import TEST_SECRET


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


MARY = sha("mary@example.com")
MARY_PHONE = sha("15559876543")
ALEX = sha("alexz@example.com")
ALEX_PHONE = sha("+18005550100")


def test_hash_vectors_from_the_contract() -> None:
    assert MARY == "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"
    assert MARY_PHONE == "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"
    assert ALEX == "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"
    assert ALEX_PHONE == "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"


# -- Meta -----------------------------------------------------------------------------------------
@pytest.fixture
def meta() -> Iterator[tuple[MetaFake, httpx.Client]]:
    with MetaFake(token="meta-token") as fake, httpx.Client(base_url=fake.base_url) as client:
        yield fake, client


def meta_users(
    client: httpx.Client,
    audience_id: str,
    data: list[Any],
    *,
    schema: Any = ("EMAIL", "PHONE"),
    edge: str = "users",
    method: str = "POST",
    session: dict[str, Any] | None = None,
) -> httpx.Response:
    params: dict[str, str] = {
        "access_token": "meta-token",
        "payload": json.dumps(
            {"schema": list(schema) if isinstance(schema, tuple) else schema, "data": data}
        ),
    }
    if session is not None:
        params["session"] = json.dumps(session)
    url = f"/v25.0/{audience_id}/{edge}"
    if method == "DELETE":  # the official SDK sends DELETE parameters in the query string
        return client.request("DELETE", url, params=params)
    return client.post(url, data=params)


def session(session_id: int, seq: int, last: bool = False) -> dict[str, Any]:
    return {"session_id": session_id, "batch_seq": seq, "last_batch_flag": last}


def test_meta_create_add_remove(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    created = client.post(
        "/v25.0/act_123/customaudiences",
        data={"name": "vip", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"},
        headers={"Authorization": "Bearer meta-token"},
    )
    assert created.status_code == 200
    audience_id = created.json()["id"]

    added = meta_users(client, audience_id, [[MARY, MARY_PHONE], [ALEX, ""], ["", ""]])
    assert added.json() | {"session_id": 0} == {
        "audience_id": audience_id,
        "session_id": 0,
        "num_received": 3,
        "num_invalid_entries": 1,  # the all-empty row
        "invalid_entry_samples": {},
    }
    assert fake.audience(audience_id) == {(MARY, MARY_PHONE), (ALEX, "")}

    # a JSON body works as well as a form, and a removal matches people by any identifier
    removed = client.request(
        "DELETE",
        f"/v25.0/{audience_id}/users",
        json={"access_token": "meta-token", "payload": {"schema": "EMAIL_SHA256", "data": [ALEX]}},
    )
    assert removed.status_code == 200
    assert fake.audience(audience_id) == {(MARY, MARY_PHONE)}
    assert meta_users(
        client, audience_id, [MARY], schema="EMAIL_SHA256", method="DELETE"
    ).is_success
    assert fake.audience(audience_id) == set()
    assert fake.counts["add_users"] == 1 and fake.counts["remove_users"] == 2
    assert fake.max_batch["add_users"] == 3
    # ...accepted as Meta accepts it, but the official SDK never sends it: flagged
    assert fake.encoding_violations() == [
        f"encoding: DELETE /v25.0/{audience_id}/users has a application/json body; "
        "parameters go in the URL"
    ]


def test_meta_rejects_raw_pii_and_records_the_leak(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    raw = meta_users(client, audience_id, [[MARY, "+1 555 987 6543"]])
    assert raw.status_code == 400 and raw.json()["error"]["code"] == 100
    upper = meta_users(client, audience_id, [MARY.upper()], schema="EMAIL_SHA256")
    assert upper.json()["error"]["code"] == 100
    assert fake.pii_leaks == [("add_users", "+1 555 987 6543")]  # upper-case hex is not a leak
    assert fake.audience(audience_id) == set()
    bad_schema = meta_users(client, audience_id, [[MARY]], schema=["EMAIL", "EMAIL_SHA256"])
    assert bad_schema.json()["error"]["code"] == 100
    wrong_width = meta_users(client, audience_id, [[MARY]])
    assert wrong_width.json()["error"]["code"] == 100


def test_meta_auth_and_unknown_audience(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    assert client.get(f"/v25.0/{audience_id}").json()["error"]["code"] == 104
    wrong = client.get(f"/v25.0/{audience_id}", params={"access_token": "nope"})
    assert wrong.json()["error"]["code"] == 190
    error = meta_users(client, "999", [MARY], schema="EMAIL_SHA256").json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "OAuthException")
    assert set(error) == {"message", "type", "code", "error_subcode", "fbtrace_id", "is_transient"}


def test_meta_batch_limit(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    too_many = meta_users(client, audience_id, [MARY] * 10_001, schema="EMAIL_SHA256")
    assert too_many.json()["error"]["code"] == 100
    assert fake.max_batch["add_users"] == 10_001
    with pytest.raises(AssertionError, match="add_users: 10001 > 10000"):
        fake.assert_limits()


def test_meta_sessions_count_up_and_end(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    assert meta_users(client, audience_id, [[MARY, ""]], session=session(7, 1)).is_success
    assert meta_users(client, audience_id, [[ALEX, ""]], session=session(7, 2, True)).is_success
    assert meta_users(client, audience_id, [[ALEX, ""]], session=session(7, 2, True)).is_success
    after_end = meta_users(client, audience_id, [[ALEX, ""]], session=session(7, 3))
    assert after_end.json()["error"]["code"] == 100
    zero = meta_users(client, audience_id, [[ALEX, ""]], session=session(8, 0))
    assert zero.json()["error"]["code"] == 100


def test_meta_replace(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    meta_users(client, audience_id, [[MARY, MARY_PHONE]])

    def replace(seq: int, data: list[Any], last: bool = False, sid: int = 42) -> httpx.Response:
        return meta_users(
            client, audience_id, data, edge="usersreplace", session=session(sid, seq, last)
        )

    def subcode(response: httpx.Response) -> tuple[int, int]:
        error = response.json()["error"]
        return error["code"], error.get("error_subcode")

    assert subcode(replace(2, [[ALEX, ""]], sid=41)) == (2650, 1870147)  # first batch missing
    assert replace(1, [[ALEX, ""]]).json()["session_id"] == 42
    assert fake.replace_in_progress(audience_id)
    assert fake.audience(audience_id) == {(MARY, MARY_PHONE)}  # unchanged until the end
    assert subcode(meta_users(client, audience_id, [[MARY, ""]])) == (2650, 1870145)
    assert subcode(replace(1, [[MARY, ""]], sid=43)) == (2650, 1870145)  # one at a time
    assert replace(2, [["", ALEX_PHONE]], last=True).is_success
    assert fake.audience(audience_id) == {(ALEX, ""), ("", ALEX_PHONE)}
    assert not fake.replace_in_progress(audience_id)
    assert meta_users(client, audience_id, [[MARY, ""]]).is_success  # /users allowed again


def test_meta_replace_times_out(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    first = session(5, 1)
    assert meta_users(
        client, audience_id, [[ALEX, ""]], edge="usersreplace", session=first
    ).is_success
    fake.advance(90 * 60 + 1)
    late = meta_users(
        client, audience_id, [[MARY, ""]], edge="usersreplace", session=session(5, 2, True)
    )
    assert late.json()["error"]["error_subcode"] == 1870158
    assert fake.audience(audience_id) == set()
    assert meta_users(client, audience_id, [[MARY, ""]]).is_success  # the audience is free again


def test_meta_timeout_is_configurable() -> None:
    with MetaFake(replace_timeout=0.05) as fake, httpx.Client(base_url=fake.base_url) as client:
        audience_id = fake.create_audience()
        meta_users(client, audience_id, [[ALEX, ""]], edge="usersreplace", session=session(5, 1))
        time.sleep(0.1)
        assert not fake.replace_in_progress(audience_id)


def test_meta_throttling_error(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience(account="555")
    fault = fake.inject(platform_error=80003, times=2, retry_after=3)
    for _ in range(2):
        throttled = meta_users(client, audience_id, [MARY], schema="EMAIL_SHA256")
        error = throttled.json()["error"]
        assert (error["code"], error["is_transient"]) == (80003, True)
        usage = json.loads(throttled.headers["X-Business-Use-Case-Usage"])
        assert usage["555"][0]["estimated_time_to_regain_access"] == 3
    assert meta_users(client, audience_id, [MARY], schema="EMAIL_SHA256").is_success
    assert fault.hits == 2
    assert [r.status for r in fake.requests] == [400, 400, 200]
    fake.assert_limits()  # injected faults are not the client's fault


# -- Google ---------------------------------------------------------------------------------------
@pytest.fixture
def google() -> Iterator[tuple[GoogleFake, httpx.Client]]:
    with (
        GoogleFake(token="g-token") as fake,
        httpx.Client(base_url=fake.base_url, headers={"Authorization": "Bearer g-token"}) as client,
    ):
        yield fake, client


DESTINATION = {
    "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
    "productDestinationId": "555",
}


def ingest_body(members: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "destinations": [DESTINATION],
        "audienceMembers": [{"userData": {"userIdentifiers": ids}} for ids in members],
        "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"},
        "encoding": "HEX",
        "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        "validateOnly": False,
        **extra,
    }


def remove_body(members: list[Any]) -> dict[str, Any]:
    body = ingest_body(members)
    return {k: body[k] for k in ("destinations", "audienceMembers", "encoding")}


def test_google_ingest_status_remove(google: tuple[GoogleFake, httpx.Client]) -> None:
    fake, client = google
    members = [[{"emailAddress": MARY}, {"phoneNumber": MARY_PHONE}], [{"emailAddress": ALEX}]]
    ingested = client.post("/v1/audienceMembers:ingest", json=ingest_body(members))
    assert ingested.status_code == 200
    assert fake.identifiers("555") == {MARY, ALEX}
    status = client.get(
        "/v1/requestStatus:retrieve", params={"requestId": ingested.json()["requestId"]}
    )
    [entry] = status.json()["requestStatusPerDestination"]
    assert entry["requestStatus"] == "SUCCESS"
    counts = entry["audienceMembersIngestionStatus"]["userDataIngestionStatus"]
    assert (counts["recordCount"], counts["userIdentifierCount"]) == (2, 3)

    removed = client.post(
        "/v1/audienceMembers:remove", json=remove_body([[{"phoneNumber": MARY_PHONE}]])
    )
    assert removed.status_code == 200 and set(removed.json()) == {"requestId"}
    assert fake.audience("555") == {frozenset({("emailAddress", ALEX)})}

    with_consent = remove_body([[{"emailAddress": ALEX}]]) | {"consent": {}}
    refused = client.post("/v1/audienceMembers:remove", json=with_consent)
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake.identifiers("555") == {ALEX}
    unknown = client.get("/v1/requestStatus:retrieve", params={"requestId": "nope"})
    assert unknown.json()["error"]["status"] == "NOT_FOUND"
    fake.assert_limits()


def test_google_one_bad_record_rejects_the_request(google: tuple[GoogleFake, httpx.Client]) -> None:
    fake, client = google
    members = [
        [{"emailAddress": MARY}],
        [{"emailAddress": "mary@example.com"}],  # raw PII
        [{"emailAddress": ALEX, "phoneNumber": ALEX_PHONE}],  # two in one identifier
        [{"phoneNumber": ALEX_PHONE.upper()}],  # hex must be lowercase
        [{"address": {"givenName": MARY, "familyName": ALEX, "regionCode": "US"}}],
    ]
    response = client.post("/v1/audienceMembers:ingest", json=ingest_body(members, extra=1))
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["status"]) == (400, 400, "INVALID_ARGUMENT")
    fields = {v["field"] for v in error["details"][0]["fieldViolations"]}
    assert fields == {
        "extra",
        "audienceMembers[1].userData.userIdentifiers[0].emailAddress",
        "audienceMembers[2].userData.userIdentifiers[0]",
        "audienceMembers[3].userData.userIdentifiers[0].phoneNumber",
        "audienceMembers[4].userData.userIdentifiers[0].address",
    }
    assert fake.audience("555") == set()
    assert fake.pii_leaks == [("ingest", "mary@example.com")]


def test_google_body_rules(google: tuple[GoogleFake, httpx.Client]) -> None:
    fake, client = google

    def ingest(body: dict[str, Any]) -> int:
        return client.post("/v1/audienceMembers:ingest", json=body).status_code

    one = [[{"emailAddress": MARY}]]
    address = {"givenName": MARY, "familyName": ALEX, "regionCode": "US", "postalCode": "94043"}
    assert ingest(ingest_body([[{"address": address}, {"emailAddress": ALEX}]])) == 200
    assert ingest(ingest_body(one, encoding="UTF8")) == 400
    assert (
        ingest(ingest_body(one, termsOfService={"customerMatchTermsOfServiceStatus": "REJECTED"}))
        == 400
    )
    assert ingest(ingest_body(one, consent={"adUserData": "YES"})) == 400
    assert ingest(ingest_body([[{"emailAddress": MARY}] * 11])) == 400
    assert ingest(ingest_body(one) | {"destinations": [DESTINATION] * 11}) == 400
    assert ingest(ingest_body([[{"emailAddress": MARY}]] * 10_001)) == 400
    dashed = {
        **DESTINATION,
        "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "123-456-7890"},
    }
    assert ingest(ingest_body(one) | {"destinations": [dashed]}) == 400
    assert ingest(ingest_body(one, validateOnly=True)) == 200
    assert fake.identifiers("555") == {ALEX}  # validateOnly changed nothing
    assert fake.max_batch == {
        "ingest": 10_001,
        "ingest.destinations": 11,
        "ingest.identifiers": 11,
    }
    with pytest.raises(AssertionError) as failure:
        fake.assert_limits()
    assert "ingest: 10001 > 10000" in str(failure.value)
    assert "ingest.identifiers: 11 > 10" in str(failure.value)
    assert "ingest.destinations: 11 > 10" in str(failure.value)


def test_google_auth_and_quota() -> None:
    with (
        GoogleFake(token="g-token", rate_limit=(2, 60.0)) as fake,
        httpx.Client(base_url=fake.base_url) as client,
    ):
        anonymous = client.get("/v1/requestStatus:retrieve", params={"requestId": "x"})
        assert (anonymous.status_code, anonymous.json()["error"]["status"]) == (
            401,
            "UNAUTHENTICATED",
        )
        client.headers["Authorization"] = "Bearer g-token"
        body = ingest_body([[{"emailAddress": MARY}]])
        assert [
            client.post("/v1/audienceMembers:ingest", json=body).status_code for _ in range(3)
        ] == [
            200,
            200,
            429,
        ]
        assert fake.requests[-1].response["error"]["status"] == "RESOURCE_EXHAUSTED"
        fake.advance(61)
        assert client.post("/v1/audienceMembers:ingest", json=body).status_code == 200
        fake.assert_limits(allow_throttling=True)
        with pytest.raises(AssertionError, match="rate: more than 2 requests in 60s"):
            fake.assert_limits()


def test_google_processing_then_success() -> None:
    with (
        GoogleFake(processing_polls=1) as fake,
        httpx.Client(
            base_url=fake.base_url, headers={"Authorization": "Bearer google-token"}
        ) as client,
    ):
        request_id = client.post(
            "/v1/audienceMembers:ingest", json=ingest_body([[{"emailAddress": MARY}]])
        ).json()["requestId"]
        statuses = [
            client.get("/v1/requestStatus:retrieve", params={"requestId": request_id}).json()[
                "requestStatusPerDestination"
            ][0]["requestStatus"]
            for _ in range(2)
        ]
        assert statuses == ["PROCESSING", "SUCCESS"]


def test_google_platform_errors_and_concurrency() -> None:
    with (
        GoogleFake(latency=3.0) as fake,  # long enough for all 12 to overlap, even under load
        httpx.Client(base_url=fake.base_url, headers={"Authorization": "Bearer google-token"}) as c,
    ):
        fake.inject(platform_error="UNAVAILABLE")
        fake.inject(platform_error="RESOURCE_EXHAUSTED")
        body = ingest_body([[{"emailAddress": MARY}]])
        with ThreadPoolExecutor(12) as pool:
            responses = pool.map(
                lambda _: c.post("/v1/audienceMembers:ingest", json=body), range(12)
            )
            statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 10 + [429, 503]
        assert fake.max_concurrent == 12
        with pytest.raises(AssertionError, match="concurrency: 11 > 10 in flight"):
            fake.assert_limits()


# -- TikTok ---------------------------------------------------------------------------------------
TT = "/open_api/v1.3/dmp/custom_audience"


@pytest.fixture
def tiktok() -> Iterator[tuple[TikTokFake, httpx.Client]]:
    with (
        TikTokFake(token="tt-token", min_audience_size=2) as fake,
        httpx.Client(base_url=fake.base_url, headers={"Access-Token": "tt-token"}) as client,
    ):
        yield fake, client


def upload(
    client: httpx.Client,
    lines: list[str],
    calculate_type: str = "EMAIL_SHA256",
    signature: str | None = None,
) -> dict[str, Any]:
    data = "".join(line + "\n" for line in lines).encode()
    response = client.post(
        f"{TT}/file/upload/",
        data={
            "advertiser_id": "42",
            "calculate_type": calculate_type,
            "file_signature": signature or hashlib.md5(data).hexdigest(),
        },
        files={"file": ("audience.csv", data, "text/csv")},
    )
    assert response.status_code == 200  # TikTok errors come with HTTP 200
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "request_id", "data"}
    return body


def test_tiktok_upload_create_update(tiktok: tuple[TikTokFake, httpx.Client]) -> None:
    fake, client = tiktok
    emails = [sha(f"user{i}@example.com") for i in range(4)]
    first = upload(client, emails[:3])["data"]["file_path"]
    created = client.post(
        f"{TT}/create/",
        json={
            "advertiser_id": "42",
            "custom_audience_name": "vip",
            "calculate_type": "EMAIL_SHA256",
            "file_paths": [first],
        },
    ).json()
    assert created["code"] == 0
    audience_id = created["data"]["custom_audience_id"]
    assert fake.audience(audience_id) == set(emails[:3])

    def update(
        action: str, lines: list[str], calculate_type: str = "EMAIL_SHA256"
    ) -> dict[str, Any]:
        path = upload(client, lines, calculate_type)["data"]["file_path"]
        body = {
            "advertiser_id": "42",
            "custom_audience_id": audience_id,
            "file_paths": [path],
            "action": action,
        }
        result: dict[str, Any] = client.post(f"{TT}/update/", json=body).json()
        return result

    assert update("APPEND", emails[3:])["code"] == 0
    assert update("REMOVE", emails[:1])["code"] == 0
    assert fake.audience(audience_id) == set(emails[1:])
    assert update("REPLACE", emails[:2])["code"] == 0
    assert fake.audience(audience_id) == set(emails[:2])
    assert update("DELETE", emails[:1])["code"] == 40002  # there is no DELETE action
    too_small = update("REMOVE", emails[:1])  # would leave 1 < 2 people
    assert too_small["code"] != 0 and "at least 2" in too_small["message"]
    assert update("APPEND", [MARY_PHONE], "PHONE_SHA256")["code"] != 0  # one calculate_type
    assert fake.audience(audience_id) == set(emails[:2])


def test_tiktok_upload_rules(tiktok: tuple[TikTokFake, httpx.Client]) -> None:
    fake, client = tiktok
    assert upload(client, [MARY], signature="0" * 32)["code"] == 40002
    assert upload(client, [MARY, "mary@example.com"])["code"] == 40002
    assert upload(client, [MARY.upper()])["code"] == 40002
    assert upload(client, [MARY], calculate_type="EMAIL")["code"] == 40002
    assert fake.pii_leaks == [("upload", "mary@example.com")]
    missing = client.post(f"{TT}/create/", json={"advertiser_id": "42"}).json()
    assert missing["code"] == 40002
    long_name = {
        "advertiser_id": "42",
        "custom_audience_name": "x" * 129,
        "calculate_type": "EMAIL_SHA256",
        "file_paths": [upload(client, [MARY])["data"]["file_path"]],
    }
    assert client.post(f"{TT}/create/", json=long_name).json()["code"] == 40002


def test_tiktok_auth_and_throttling() -> None:
    with TikTokFake(rate_limit=(1, 60.0)) as fake, httpx.Client(base_url=fake.base_url) as client:
        assert client.post(f"{TT}/create/", json={}).json()["code"] == 40104
        client.headers["Access-Token"] = "wrong"
        assert client.post(f"{TT}/create/", json={}).json()["code"] == 40105
        client.headers["Access-Token"] = "tiktok-token"
        assert client.post(f"{TT}/create/", json={}).json()["code"] == 40002
        limited = client.post(f"{TT}/create/", json={})
        assert (limited.status_code, limited.json()["code"]) == (200, 40100)
        fake.advance(60)
        fake.inject(platform_error=40100)
        injected = client.post(f"{TT}/create/", json={})
        assert (injected.status_code, injected.json()["code"]) == (200, 40100)


# -- Resend ---------------------------------------------------------------------------------------
@pytest.fixture
def resend() -> Iterator[tuple[ResendFake, httpx.Client]]:
    with (
        ResendFake(rate_limit=None, segments=["seg-1"]) as fake,
        httpx.Client(
            base_url=fake.base_url, headers={"Authorization": "Bearer re_test_key"}
        ) as client,
    ):
        yield fake, client


EMAIL = {
    "from": "Shop <hi@shop.example>",
    "to": ["mary@example.com"],
    "subject": "Hi",
    "html": "<p>Hi</p>",
}


def test_resend_contacts_and_segments(resend: tuple[ResendFake, httpx.Client]) -> None:
    fake, client = resend
    created = client.post("/contacts", json={"email": "mary@example.com", "first_name": "Mary"})
    assert created.json()["object"] == "contact"
    contact_id = created.json()["id"]
    client.post("/contacts", json={"email": "alex@example.com"})
    assert client.post(f"/contacts/{contact_id}/segments/seg-1").is_success
    assert client.post("/contacts/alex@example.com/segments/seg-1").is_success
    assert fake.segment("seg-1") == {"mary@example.com", "alex@example.com"}
    page = client.get("/segments/seg-1/contacts", params={"limit": 1}).json()
    assert (page["has_more"], page["data"][0]["email"]) == (True, "mary@example.com")
    rest = client.get("/segments/seg-1/contacts", params={"after": contact_id}).json()
    assert [c["email"] for c in rest["data"]] == ["alex@example.com"]
    assert client.delete("/contacts/mary@example.com/segments/seg-1").is_success
    assert fake.segment("seg-1") == {"alex@example.com"}
    unknown = client.post(f"/contacts/{contact_id}/segments/seg-2")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "statusCode": 404,
        "message": "Segment not found",
        "name": "not_found",
    }
    assert client.post("/contacts", json={"email": "nope"}).json()["name"] == "validation_error"


def test_resend_idempotency(resend: tuple[ResendFake, httpx.Client]) -> None:
    fake, client = resend
    key = {"Idempotency-Key": "run-1/welcome/p1"}
    first = client.post("/emails", json=EMAIL, headers=key)
    again = client.post("/emails", json=EMAIL, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(fake.emails) == 1 and fake.emails[0]["idempotency_key"] == "run-1/welcome/p1"
    conflict = client.post("/emails", json=EMAIL | {"subject": "Other"}, headers=key)
    assert (conflict.status_code, conflict.json()["name"]) == (409, "invalid_idempotent_request")
    too_long = client.post("/emails", json=EMAIL, headers={"Idempotency-Key": "k" * 257})
    assert too_long.status_code == 400
    fake.advance(24 * 3600 + 1)  # keys are kept for 24 hours
    assert client.post("/emails", json=EMAIL, headers=key).json() != first.json()
    assert len(fake.emails) == 2


def test_resend_batch_and_validation(resend: tuple[ResendFake, httpx.Client]) -> None:
    fake, client = resend
    batch = [
        EMAIL,
        {"to": "alex@example.com", "template": {"id": "welcome", "variables": {"n": 1}}},
    ]
    sent = client.post("/emails/batch", json=batch, headers={"Idempotency-Key": "b1"})
    assert len(sent.json()["data"]) == 2
    assert (
        client.post("/emails/batch", json=batch, headers={"Idempotency-Key": "b1"}).json()
        == sent.json()
    )
    over = client.post("/emails/batch", json=[EMAIL] * 101)
    assert (over.status_code, over.json()["name"]) == (422, "validation_error")
    no_subject = {k: v for k, v in EMAIL.items() if k != "subject"}
    assert client.post("/emails", json=no_subject).status_code == 422
    assert client.post("/emails/batch", json=[EMAIL, no_subject]).status_code == 422
    assert len(fake.emails) == 2
    with pytest.raises(AssertionError, match="send_batch: 101 > 100"):
        fake.assert_limits()


def test_resend_auth_rate_limit_and_quota() -> None:
    with ResendFake() as fake, httpx.Client(base_url=fake.base_url) as client:
        assert client.post("/emails", json=EMAIL).json()["name"] == "missing_api_key"
        client.headers["Authorization"] = "Bearer re_other"
        assert client.post("/emails", json=EMAIL).status_code == 403
        client.headers["Authorization"] = "Bearer re_test_key"
        statuses = [client.post("/emails", json=EMAIL) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert statuses[2].json()["name"] == "rate_limit_exceeded"
        assert statuses[2].headers["retry-after"] == "1"
        fake.advance(1)
        fake.inject(platform_error="daily_quota_exceeded")
        quota = client.post("/emails", json=EMAIL)
        assert (quota.status_code, quota.json()["name"]) == (429, "daily_quota_exceeded")
        assert "retry-after" not in quota.headers
        fake.inject(platform_error="rate_limit_exceeded", retry_after=0)
        assert client.post("/emails", json=EMAIL).headers["retry-after"] == "0"
        assert len(fake.emails) == 2


# -- Webhooks -------------------------------------------------------------------------------------
def test_webhook_signature_test_vector() -> None:
    signature = sign(
        TEST_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    with WebhookFake(tolerance=None) as fake, httpx.Client() as client:
        body = b'{"test": 2432232314}'
        headers = {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": f"v1,bm90IGl0 {signature}",  # any one may match
        }
        assert client.post(fake.url, content=body, headers=headers).status_code == 204
        assert fake.deliveries[0].payload == {"test": 2432232314}


def deliver(
    client: httpx.Client, fake: WebhookFake, msg_id: str, event: Any, *, secret: str = TEST_SECRET
) -> int:
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    return client.post(fake.url, content=body, headers=headers).status_code


def test_webhook_verifies_and_records() -> None:
    with WebhookFake() as fake, httpx.Client() as client:
        assert deliver(client, fake, "m1", {"type": "segment.entered"}) == 204
        assert deliver(client, fake, "m1", {"type": "segment.entered"}) == 204  # a retry
        assert deliver(client, fake, "m2", [{"type": "segment.exited"}, {"type": "x"}]) == 204
        assert deliver(client, fake, "m3", {}, secret="whsec_" + "A" * 32) == 401
        stale = {"webhook-id": "m4", "webhook-timestamp": "1614265330"}
        stale["webhook-signature"] = sign(TEST_SECRET, "m4", 1614265330, b"{}")
        assert client.post(fake.url, content=b"{}", headers=stale).status_code == 401
        assert client.post(fake.url, content=b"{}").status_code == 401
        assert len(fake.deliveries) == 3
        assert fake.unique_ids() == ["m1", "m2"]
        assert fake.events() == [
            {"type": "segment.entered"},
            {"type": "segment.exited"},
            {"type": "x"},
        ]


def test_webhook_error_answers() -> None:
    with WebhookFake() as fake, httpx.Client() as client:
        fake.inject(status=410)
        fake.inject(status=429)
        fake.inject(status=503, after=True)
        assert deliver(client, fake, "m1", {}) == 410
        busy = client.post(fake.url, content=b"{}")
        assert (busy.status_code, busy.headers["retry-after"]) == (429, "1")
        assert deliver(client, fake, "m1", {}) == 503  # processed, but the sender must retry
        assert deliver(client, fake, "m1", {}) == 204
        assert [d.id for d in fake.deliveries] == ["m1", "m1"]
        assert fake.unique_ids() == ["m1"]


# -- fault injection and plumbing (shared by every fake) ------------------------------------------
def test_status_faults_then_success_and_path_matcher() -> None:
    with WebhookFake() as fake, httpx.Client() as client:
        fake.inject(status=503, times=2, path="/other")
        fake.inject(status=500, times=None, endpoint="nothing")
        assert deliver(client, fake, "m1", {}) == 204
        other = fake.base_url + "/other"
        assert [client.post(other).status_code for _ in range(3)] == [503, 503, 401]
        assert [r.fault is not None for r in fake.requests] == [False, True, True, False]


def test_contains_matcher_fails_one_batch(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    fake.inject(platform_error=100, contains=ALEX, times=None)
    assert meta_users(client, audience_id, [MARY], schema="EMAIL_SHA256").is_success
    assert (
        meta_users(client, audience_id, [ALEX], schema="EMAIL_SHA256").json()["error"]["code"]
        == 100
    )
    assert (
        meta_users(client, audience_id, [ALEX], schema="EMAIL_SHA256", method="DELETE").status_code
        == 400
    )
    assert fake.audience(audience_id) == {(MARY,)}


def test_delay_and_reset(meta: tuple[MetaFake, httpx.Client]) -> None:
    fake, client = meta
    audience_id = fake.create_audience()
    fake.inject(delay=0.3)
    started = time.monotonic()
    assert meta_users(client, audience_id, [MARY], schema="EMAIL_SHA256").is_success
    assert time.monotonic() - started >= 0.3
    fake.inject(reset=True)
    with pytest.raises(httpx.TransportError):
        meta_users(client, audience_id, [ALEX], schema="EMAIL_SHA256")
    assert fake.audience(audience_id) == {(MARY,)}
    fake.inject(reset=True, after=True)  # the request takes effect, the answer is lost
    with pytest.raises(httpx.TransportError):
        meta_users(client, audience_id, [ALEX], schema="EMAIL_SHA256")
    assert fake.audience(audience_id) == {(MARY,), (ALEX,)}
    assert [r.status for r in fake.requests] == [200, 0, 0]
    fake.inject(delay=1)
    with (
        httpx.Client(base_url=fake.base_url, timeout=0.1) as impatient,
        pytest.raises(httpx.ReadTimeout),  # a client giving up does not disturb the fake
    ):
        meta_users(impatient, audience_id, [MARY], schema="EMAIL_SHA256")
    assert meta_users(client, audience_id, [MARY], schema="EMAIL_SHA256").is_success


def test_chaos_is_seeded_and_transient() -> None:
    def run(seed: int) -> list[int]:
        with (
            TikTokFake() as fake,
            httpx.Client(
                base_url=fake.base_url, headers={"Access-Token": "tiktok-token"}
            ) as client,
        ):
            fake.chaos(0.5, seed=seed, kinds=("status", "platform", "delay"))
            codes = []
            for _ in range(20):
                response = client.post(f"{TT}/create/", json={})
                codes.append(response.status_code * 100_000 + response.json()["code"])
            return codes

    first = run(1)
    assert first == run(1)
    assert {c // 100_000 for c in first} > {200}  # some 5xx
    assert {c % 100_000 for c in first} >= {40100, 40002}  # throttling and the real answer


def test_stop_releases_everything() -> None:
    threads = threading.active_count()
    fake = MetaFake().start()
    url = fake.base_url
    fake.inject(delay=5)
    with httpx.Client(timeout=10) as client:
        pending = threading.Thread(target=lambda: client.get(url + "/v25.0/1"), daemon=True)
        pending.start()
        time.sleep(0.1)
        started = time.monotonic()
        fake.stop()  # cuts the injected delay short
        pending.join()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.ConnectError):
            client.get(url)
    # A handler thread ends a moment after its socket closes (on a loaded machine, after the
    # check above): every thread the fake started is gone within a few seconds, or it leaked.
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == threads


def test_malformed_and_unknown_paths(google: tuple[GoogleFake, httpx.Client]) -> None:
    fake, client = google
    bad = client.post(
        "/v1/audienceMembers:ingest", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, bad.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    missing = client.get("/v2/nothing")
    assert (missing.status_code, missing.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert fake.counts[""] == 1
    with pytest.raises(ValueError, match="unknown Google status"):
        fake.inject(platform_error="SLOW_DOWN")
