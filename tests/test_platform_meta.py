"""MetaAudience against the Meta fake: rows, sessions, batching, replace, errors and waits.

Every test's fake is checked on the way out: no raw identifier reached it, the client kept to
its limits, and the token travelled only in the Authorization header.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fakes import MetaFake, Recorded
from fakes.meta import MESSAGES

from segctl.definitions.destinations import Destination
from segctl.delivery import retry
from segctl.delivery.identifiers import HashedIdentity, hash_identity
from segctl.delivery.platforms import client_for
from segctl.delivery.platforms.base import Member
from segctl.delivery.platforms.meta import MetaAudience
from segctl.delivery.retry import Deferred, Permanent, Transient

TOKEN = "EAAB-meta-secret-token"
# The contract's test vectors: sha256("mary@example.com"), sha256("15559876543").
MARY_EMAIL = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"
MARY_PHONE = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"
ALEX_EMAIL = "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"

PEOPLE: list[dict[str, Any]] = [
    {
        "person_id": "mary",
        "email": " Mary@Example.com ",
        "phone": "(555) 987-6543",
        "country": "US",
    },
    {"person_id": "alex", "email": "alexz@example.com", "phone": None, "country": None},
    {"person_id": "phone", "email": None, "phone": "+44 20 7946 0958", "country": None},
    {"person_id": "both", "email": "both@example.org", "phone": "030 1234567", "country": "DE"},
]


def member(person: dict[str, Any]) -> Member:
    return Member(str(person["person_id"]), identity=hash_identity(person, "meta"))


def people(*ids: str) -> list[Member]:
    return [member(p) for p in PEOPLE if p["person_id"] in ids]


def synthetic(start: int, stop: int) -> list[Member]:
    return [
        member({"person_id": f"s{i}", "email": f"user{i}@example.com"}) for i in range(start, stop)
    ]


def rows(members: list[Member]) -> set[tuple[str, ...]]:
    """What the fake should hold: (email hash, phone hash), "" for a missing one."""
    out: set[tuple[str, ...]] = set()
    for m in members:
        assert m.identity is not None
        out.add((m.identity.email or "", m.identity.phone or ""))
    return out


def destination(fake: MetaFake, **settings: Any) -> Destination:
    return Destination(
        name="meta",
        type="meta",
        settings={"ad_account_id": "1", **settings},
        secrets={"access_token": TOKEN},
        base_url=fake.base_url,
        timeout=5.0,
        max_retries=3,
        rate_limit=None,
        backoff=0.01,
    )


def sent(req: Recorded) -> dict[str, Any]:
    """The parameters of a request as the official SDK encodes them: form fields on POST,
    query parameters on DELETE, each value JSON. Anything else fails the test."""
    if req.method == "DELETE":
        assert not req.body, "a DELETE carries its parameters in the URL"
        fields = req.query
    else:
        kind = req.headers.get("content-type", "")
        assert kind.startswith("application/x-www-form-urlencoded"), kind
        fields = req.form
    return {k: json.loads(v) for k, v in fields.items() if k in ("payload", "session")}


def sessions(requests: list[Recorded]) -> list[tuple[int, int, bool, int]]:
    """(session_id, batch_seq, last_batch_flag, estimated_num_total) per request."""
    out = []
    for req in requests:
        s = sent(req)["session"]
        out.append(
            (s["session_id"], s["batch_seq"], s["last_batch_flag"], s["estimated_num_total"])
        )
    return out


@pytest.fixture
def meta() -> Iterator[MetaFake]:
    with MetaFake(token=TOKEN) as fake:
        yield fake
        assert fake.pii_leaks == []
        fake.assert_limits()
        for req in fake.requests:
            assert TOKEN not in req.path and TOKEN not in repr(req.query)
            assert "access_token" not in req.query
            assert req.headers.get("authorization", "").startswith("Bearer ")


def make_client(fake: MetaFake, http: httpx.Client, **changes: Any) -> MetaAudience:
    """A client of the fake whose retries wait milliseconds, not seconds."""
    client = MetaAudience(dataclasses.replace(destination(fake), **changes), http)
    client.policy = dataclasses.replace(client.policy, jitter=0.01)
    client.in_progress_wait = 0.01
    return client


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One HTTP client for the module, as the worker shares one (each costs an SSL context)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture
def client(meta: MetaFake, http: httpx.Client) -> Iterator[MetaAudience]:
    audience = make_client(meta, http)
    yield audience
    audience.close()


@pytest.fixture
def audience_id(meta: MetaFake) -> str:
    return meta.create_audience()


@pytest.fixture(scope="module")
def many() -> list[Member]:
    return synthetic(0, 25_000)


# ---- adds and removes ---------------------------------------------------------------------------


def test_first_add_holds_exactly_the_hashed_rows(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    members = people("mary", "alex", "phone", "both")
    figures = client.add(audience_id, members)

    assert meta.audience(audience_id) == rows(members)
    assert (MARY_EMAIL, MARY_PHONE) in meta.audience(audience_id)
    assert (ALEX_EMAIL, "") in meta.audience(audience_id)
    assert (figures.received, figures.invalid) == (4, 0)
    assert figures.details == {"invalid_entry_samples": {}}
    [req] = meta.calls("add_users")
    assert req.path == f"/v25.0/{audience_id}/users"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent(req)["payload"]["schema"] == ["EMAIL", "PHONE"]
    [(session_id, seq, last, total)] = sessions([req])
    assert 0 < session_id < 2**63 and (seq, last, total) == (1, True, 4)


def test_posts_are_form_encoded_and_deletes_carry_query_parameters(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    """As the official SDK: the fake flags any other encoding (a JSON body on POST or DELETE)."""
    client.add(audience_id, people("mary", "alex"))
    client.remove(audience_id, people("alex"))
    client.replace(audience_id, people("mary"))
    assert {r.endpoint for r in meta.requests} >= {"add_users", "remove_users", "replace_users"}
    for req in meta.requests:
        params = sent(req)  # asserts the encoding
        assert params["payload"]["schema"] == ["EMAIL", "PHONE"]
        assert req.json is None
    assert meta.encoding_violations() == []
    assert rows(people("mary")) == meta.audience(audience_id)


def test_the_fake_flags_a_json_body(http: httpx.Client) -> None:
    with MetaFake(token=TOKEN) as meta:
        body = {"payload": {"schema": ["EMAIL"], "data": [["a" * 64]]}}
        url = f"{meta.base_url}/v25.0/{meta.create_audience()}/users"
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert http.post(url, json=body, headers=auth).status_code == 200  # Meta accepts it...
        assert http.request("DELETE", url, json=body, headers=auth).status_code == 200
        assert len(meta.encoding_violations()) == 2  # ...the SDK never sends it
        with pytest.raises(AssertionError, match="encoding"):
            meta.assert_limits()


def test_removals_go_in_batches_short_enough_for_a_url(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    members = synthetic(0, 700)
    client.add(audience_id, members)
    figures = client.remove(audience_id, members)
    removals = meta.calls("remove_users")
    assert [len(sent(r)["payload"]["data"]) for r in removals] == [300, 300, 100]
    assert (
        max(len(r.path) + len("&".join(f"{k}={v}" for k, v in r.query.items())) for r in removals)
        < 65_536
    )
    assert figures.received == 700 and meta.audience(audience_id) == set()
    assert [s[1:3] for s in sessions(removals)] == [(1, False), (2, False), (3, True)]


def test_incremental_add_and_remove(meta: MetaFake, client: MetaAudience, audience_id: str) -> None:
    client.add(audience_id, people("mary", "alex"))
    client.add(audience_id, people("phone", "both"))
    assert meta.audience(audience_id) == rows(people("mary", "alex", "phone", "both"))

    figures = client.remove(audience_id, people("alex", "both"))
    assert meta.audience(audience_id) == rows(people("mary", "phone"))
    assert figures.received == 2
    [req] = meta.calls("remove_users")
    assert (req.method, req.path) == ("DELETE", f"/v25.0/{audience_id}/users")
    assert set(req.query) == {"payload", "session"} and not req.body  # as the SDK: in the URL
    assert sessions(meta.calls("add_users"))[0][0] != sessions(meta.calls("add_users"))[1][0]


def test_members_without_a_digest_are_skipped_not_sent(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    odd = [
        Member("contact-only", contact={"email": "raw@example.com"}),
        Member("empty", identity=HashedIdentity("empty", None, None)),
        Member("raw", identity=HashedIdentity("raw", "raw@example.com", None)),
    ]
    figures = client.add(audience_id, [*odd, *people("alex")])
    assert meta.audience(audience_id) == rows(people("alex"))
    assert (figures.received, figures.invalid) == (1, 3)
    assert client.add(audience_id, odd).invalid == 3
    assert meta.counts["add_users"] == 1  # nothing left to send: no request


def test_api_version_setting_and_registry(
    meta: MetaFake, http: httpx.Client, audience_id: str
) -> None:
    client = client_for(destination(meta, api_version="24.0"), http)
    assert isinstance(client, MetaAudience)
    client.add(audience_id, people("mary"))
    client.close()
    assert [r.path for r in meta.requests] == [f"/v24.0/{audience_id}/users"]


def test_batches_of_10000_share_one_session(
    meta: MetaFake, client: MetaAudience, audience_id: str, many: list[Member]
) -> None:
    figures = client.add(audience_id, many)

    assert meta.counts["add_users"] == 3
    assert meta.max_batch == {"add_users": 10_000}
    assert [len(sent(r)["payload"]["data"]) for r in meta.calls("add_users")] == [10_000] * 2 + [
        5_000
    ]
    found = sessions(meta.calls("add_users"))
    assert len({s[0] for s in found}) == 1
    assert [s[1:] for s in found] == [(1, False, 25_000), (2, False, 25_000), (3, True, 25_000)]
    assert figures.received == 25_000 and len(meta.audience(audience_id)) == 25_000

    client.remove(audience_id, many[:12_000])
    assert meta.counts["remove_users"] == 40  # 300 per DELETE: the hashes travel in its URL
    assert meta.audience(audience_id) == rows(many[12_000:])


# ---- replace ------------------------------------------------------------------------------------


def test_replace_leaves_exactly_the_new_set(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    client.add(audience_id, people("mary", "alex", "phone"))
    figures = client.replace(audience_id, people("phone", "both"))

    assert meta.audience(audience_id) == rows(people("phone", "both"))
    assert figures.received == 2 and "replace_restarts" not in figures.details
    [req] = meta.calls("replace_users")
    assert req.path == f"/v25.0/{audience_id}/usersreplace"
    assert sessions([req])[0][1:] == (1, True, 2)
    assert not meta.replace_in_progress(audience_id)


def test_replace_in_batches_of_10000(
    meta: MetaFake, client: MetaAudience, audience_id: str, many: list[Member]
) -> None:
    client.add(audience_id, people("mary"))
    figures = client.replace(audience_id, many)

    assert meta.counts["replace_users"] == 3 and meta.max_batch["replace_users"] == 10_000
    found = sessions(meta.calls("replace_users"))
    assert len({s[0] for s in found}) == 1
    assert [s[1:3] for s in found] == [(1, False), (2, False), (3, True)]
    assert meta.audience(audience_id) == rows(many) and figures.received == 25_000


def test_replace_with_nobody_empties_the_audience(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    client.add(audience_id, people("mary", "alex"))
    client.replace(audience_id, [])
    assert meta.audience(audience_id) == set()
    assert sessions(meta.calls("replace_users"))[0][1:] == (1, True, 0)


def test_replace_refuses_to_empty_for_members_it_cannot_send(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    client.add(audience_id, people("mary"))
    with pytest.raises(Permanent, match="none of the 1 members has a usable identifier"):
        client.replace(audience_id, [Member("x", identity=HashedIdentity("x", None, None))])
    assert meta.audience(audience_id) == rows(people("mary"))
    assert meta.counts["replace_users"] == 0


def test_update_in_progress_waits_then_succeeds(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    busy = meta.inject(platform_error=(2650, 1870145), endpoint="replace_users")
    client.replace(audience_id, people("mary", "alex"))
    assert busy.hits == 1 and meta.counts["replace_users"] == 2
    assert meta.audience(audience_id) == rows(people("mary", "alex"))


def test_update_in_progress_for_too_long_stays_transient(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    meta.inject(platform_error=(2650, 1870145), times=None)
    with pytest.raises(Transient, match="already in progress") as failure:
        client.add(audience_id, people("mary"))
    assert failure.value.retry_after == client.in_progress_wait
    assert meta.counts["add_users"] == 4  # the first try and max_retries=3 retries


def expire_at_batch_2(meta: MetaFake, *, times: int) -> list[int]:
    """Move the fake's clock past the 90-minute replace limit when a session's batch 2 arrives
    (``times`` times); returns the session ids it expired."""
    expired: list[int] = []

    def hook(req: Recorded) -> bool:
        session = sent(req)["session"]
        if session["batch_seq"] == 2 and len(expired) < times:
            expired.append(session["session_id"])
            meta.advance(91 * 60)
        return False  # not a fault: the fake itself answers "session timed out"

    meta.inject(endpoint="replace_users", match=hook, times=None)
    return expired


def test_replace_restarts_once_when_the_session_times_out(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    client.max_batch = 2  # three batches of the four people
    client.add(audience_id, people("mary"))
    expired = expire_at_batch_2(meta, times=1)
    figures = client.replace(audience_id, people("alex", "phone", "both"))

    assert meta.audience(audience_id) == rows(people("alex", "phone", "both"))
    assert figures.details["replace_restarts"] == 1
    found = sessions(meta.calls("replace_users"))
    assert [(s[0] == expired[0], s[1]) for s in found] == [
        (True, 1),
        (True, 2),  # answered 1870158
        (False, 1),
        (False, 2),
    ]
    assert meta.calls("replace_users")[1].response["error"]["error_subcode"] == 1870158


def test_replace_fails_permanently_after_a_second_timeout(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    client.max_batch = 2
    client.add(audience_id, people("mary"))
    expire_at_batch_2(meta, times=2)
    with pytest.raises(Permanent, match="timed out") as failure:
        client.replace(audience_id, people("alex", "phone", "both"))
    assert not isinstance(failure.value, Transient)
    assert meta.counts["replace_users"] == 4
    assert meta.audience(audience_id) == rows(people("mary"))  # unchanged


def test_replace_restarts_when_the_first_batch_is_missing(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    client.max_batch = 2

    def lost_first_batch(req: Recorded) -> bool:
        if sent(req)["session"]["batch_seq"] != 2:
            return False
        meta.advance(91 * 60)  # Meta forgot the session: nothing holds the audience
        return True

    meta.inject(platform_error=(2650, 1870147), endpoint="replace_users", match=lost_first_batch)
    client.replace(audience_id, people("alex", "phone", "both"))
    assert meta.audience(audience_id) == rows(people("alex", "phone", "both"))
    assert len({s[0] for s in sessions(meta.calls("replace_users"))}) == 2


def test_nothing_else_reaches_an_audience_during_a_replace(
    meta: MetaFake, http: httpx.Client, client: MetaAudience, audience_id: str
) -> None:
    client.max_batch = 2
    other = make_client(meta, http)  # another client of the same audience, same process
    meta.inject(endpoint="replace_users", delay=0.2, times=2)
    with ThreadPoolExecutor(3) as pool:
        replacing = pool.submit(client.replace, audience_id, people("mary", "alex", "phone"))
        deadline = time.monotonic() + 5
        while not meta.counts["replace_users"] and time.monotonic() < deadline:
            time.sleep(0.01)
        adding = pool.submit(other.add, audience_id, people("both"))
        second = pool.submit(other.replace, audience_id, people("mary"))
        replacing.result(), adding.result(), second.result()
    other.close()

    first, rest = meta.requests[:2], meta.requests[2:]
    assert [r.endpoint for r in first] == ["replace_users", "replace_users"]
    [(one, seq_one, _, _), (two, seq_two, last, _)] = sessions(first)
    assert (one, seq_one) == (two, 1) and (seq_two, last) == (2, True)  # undisturbed
    assert sorted(r.endpoint for r in rest) == ["add_users", "replace_users"]
    assert all(r.status == 200 for r in meta.requests)  # never "update in progress"


# ---- errors and waits ---------------------------------------------------------------------------


def test_throttling_waits_the_time_to_regain_access(
    meta: MetaFake, client: MetaAudience, audience_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(retry, "_sleep", sleeps.append)  # a minute, without waiting one
    client.policy = dataclasses.replace(client.policy, max_wait=120)
    throttled = meta.inject(platform_error=80004, retry_after=1)  # minutes

    client.add(audience_id, people("mary"))
    assert throttled.hits == 1 and meta.counts["add_users"] == 2
    assert [s for s in sleeps if s >= 1] == [60.0]
    assert meta.audience(audience_id) == rows(people("mary"))


def test_throttling_longer_than_the_policy_allows_defers(
    meta: MetaFake, client: MetaAudience, audience_id: str
) -> None:
    meta.inject(platform_error=80003, retry_after=5)
    with pytest.raises(Deferred, match="too many calls") as failure:
        client.add(audience_id, people("mary"))
    assert failure.value.retry_after == 300.0
    assert meta.counts["add_users"] == 1 and meta.audience(audience_id) == set()


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"platform_error": 2},
                                   {"platform_error": 1}, {"platform_error": 17},
                                   {"platform_error": 613}, {"reset": True},
                                   {"reset": True, "after": True}])  # fmt: skip
def test_transient_failures_are_retried(
    meta: MetaFake, client: MetaAudience, audience_id: str, fault: dict[str, Any]
) -> None:
    injected = meta.inject(times=2, **fault)
    client.add(audience_id, people("mary", "alex"))
    assert injected.hits == 2 and meta.counts["add_users"] == 3
    assert meta.audience(audience_id) == rows(people("mary", "alex"))


@pytest.mark.parametrize("code", [100, 200, 294, 2650])
def test_permanent_errors_carry_the_platform_message(
    meta: MetaFake, client: MetaAudience, audience_id: str, code: int
) -> None:
    meta.inject(platform_error=code)
    with pytest.raises(Permanent) as failure:
        client.add(audience_id, people("mary"))
    assert MESSAGES[code] in failure.value.message
    assert f"code {code}" in failure.value.message and "fbtrace_id" in failure.value.message
    assert TOKEN not in failure.value.message
    assert meta.counts["add_users"] == 1  # never retried
    assert meta.audience(audience_id) == set()


def test_unknown_audience_and_bad_token_are_permanent(
    meta: MetaFake, http: httpx.Client, client: MetaAudience
) -> None:
    with pytest.raises(Permanent, match="does not exist"):
        client.add("404", people("mary"))
    wrong = make_client(meta, http, secrets={"access_token": "nope"})
    with pytest.raises(Permanent, match="Invalid OAuth access token"):
        wrong.remove(meta.create_audience(), people("mary"))
    wrong.close()
    assert len(meta.requests) == 2


def test_chaos_still_converges(meta: MetaFake, http: httpx.Client, audience_id: str) -> None:
    client = make_client(meta, http, max_retries=8)
    client.max_batch = 3
    meta.chaos(0.3, seed=7, kinds=("status", "platform", "reset", "lost"))
    client.add(audience_id, people("mary", "alex", "phone", "both"))
    client.remove(audience_id, people("alex"))
    client.replace(audience_id, people("alex", "both", "phone", "mary"))
    client.remove(audience_id, people("mary"))
    client.close()
    assert meta.audience(audience_id) == rows(people("alex", "both", "phone"))
    assert any(r.fault for r in meta.requests)
