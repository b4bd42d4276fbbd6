"""Resend segments as audiences against the local Resend fake (tests/fakes/resend.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes import ResendFake

from segctl.definitions.destinations import Destination
from segctl.delivery.identifiers import IdentityStats
from segctl.delivery.platforms import client_for
from segctl.delivery.platforms.base import Member
from segctl.delivery.platforms.resend import ResendAudience
from segctl.delivery.retry import Deferred, Permanent

API_KEY = "re_secret_key_0123456789"
SEGMENT = "3f2b2c1e-6a55-4c3e-9d0f-6a1b2c3d4e5f"


def person(i: int, **columns: Any) -> dict[str, Any]:
    return {
        "person_id": f"p{i:03d}",
        "email": f"  User.{i}@Example.com ",
        "first_name": f" Name{i} ",
        "last_name": f"Family{i}",
        **columns,
    }


def email(i: int) -> str:
    return f"User.{i}@Example.com"  # trimmed, case kept


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as shared:
        yield shared


def audience_client(
    fake: ResendFake, client: httpx.Client, *, rate_limit: float | None = 50.0, max_retries: int = 3
) -> ResendAudience:
    destination = Destination(
        name="resend",
        type="resend",
        settings={"from": "Team <team@example.com>"},
        secrets={"api_key": API_KEY},
        base_url=fake.base_url,
        max_retries=max_retries,
        rate_limit=rate_limit,
        backoff=0.01,
    )
    audience = client_for(destination, client)
    assert isinstance(audience, ResendAudience)
    # the policy's jitter (0.5 s) does not scale with the destination's backoff: keep tests fast
    audience.policy = dataclasses.replace(audience.policy, jitter=0.01)
    return audience


def members(resend: ResendAudience, people: list[dict[str, Any]]) -> list[Member]:
    stats = IdentityStats()
    found = [resend.identity(p, stats) for p in people]
    return [m for m in found if m is not None]


def assert_clean(fake: ResendFake) -> None:
    """The API key only ever went in the Authorization header."""
    for request in fake.requests:
        assert API_KEY not in request.path
        assert all(API_KEY not in f"{k}={v}" for k, v in request.query.items())
        assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_identity_is_the_trimmed_email_and_names() -> None:
    resend = ResendAudience(
        Destination("resend", "resend", {"from": "a@b.co"}, {"api_key": API_KEY})
    )
    stats = IdentityStats()
    people = [
        person(1),
        person(2, first_name=None, last_name="  "),
        person(3, email="not-an-email"),
        person(4, email=None),
    ]

    found = [resend.identity(p, stats) for p in people]

    assert found == [
        Member(
            "p001",
            contact={"email": email(1), "first_name": "Name1", "last_name": "Family1"},
        ),
        Member("p002", contact={"email": email(2)}),
        None,
        None,
    ]
    assert (stats.persons, stats.invalid_emails, stats.no_identifier) == (4, 1, 2)
    resend.close()


def test_add_and_remove_contacts_in_a_segment(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=(60, 1.0), segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)

        added = resend.add(SEGMENT, members(resend, [person(i) for i in range(5)]))
        removed = resend.remove(SEGMENT, members(resend, [person(1), person(3)]))

        assert fake.segment(SEGMENT) == {email(0), email(2), email(4)}
        assert (added.received, removed.received) == (5, 2)
        assert fake.contacts[email(0)]["first_name"] == "Name0"
        assert fake.contacts[email(1)]["last_name"] == "Family1"  # still a contact
        assert "unsubscribed" not in fake.calls("create_contact")[0].json  # never touched
        assert fake.counts["create_contact"] == 5
        assert fake.counts["add_to_segment"] == 5
        assert fake.counts["remove_from_segment"] == 2
        fake.assert_limits()
        assert_clean(fake)


def test_an_existing_contact_is_added_to_the_segment(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        resend.add(SEGMENT, members(resend, [person(1)]))
        fake.inject(status=409, endpoint="create_contact")  # "already exists": use the email

        resend.add(SEGMENT, members(resend, [person(1), person(2)]))

        assert fake.segment(SEGMENT) == {email(1), email(2)}
        assert fake.calls("add_to_segment")[1].params["contact"] == email(1)


def test_requests_are_paced_at_the_destination_rate(client: httpx.Client) -> None:
    # 2 requests a contact: 24 requests at 10/s, a burst of 10 first, take >= 1.4 s; a token
    # bucket at rate r sends at most 2r in any second, under the fake's 25
    with ResendFake(API_KEY, rate_limit=(25, 1.0), segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client, rate_limit=10.0)
        started = time.monotonic()

        resend.add(SEGMENT, members(resend, [person(i) for i in range(12)]))

        assert time.monotonic() - started >= 1.3
        assert len(fake.segment(SEGMENT)) == 12
        assert len(fake.requests) == 24  # never throttled, so never retried
        fake.assert_limits()


def test_unpaced_requests_trip_the_fakes_limit(client: httpx.Client) -> None:
    # the check above is meaningful: without pacing the fake sees the excess (and throttles)
    with ResendFake(API_KEY, rate_limit=(3, 1.0), segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client, rate_limit=None)

        resend.add(SEGMENT, members(resend, [person(1), person(2)]))

        assert fake.segment(SEGMENT) == {email(1), email(2)}  # retried after retry-after: 1
        with pytest.raises(AssertionError, match="more than 3 requests in 1s"):
            fake.assert_limits()


def test_rate_limit_exceeded_is_retried_after_retry_after(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        fault = fake.inject(platform_error="rate_limit_exceeded", retry_after=0.2, times=2)
        started = time.monotonic()

        figures = resend.add(SEGMENT, members(resend, [person(1)]))

        assert time.monotonic() - started >= 0.4
        assert fault.hits == 2
        assert figures.received == 1
        assert fake.segment(SEGMENT) == {email(1)}
        assert fake.counts["create_contact"] == 3


def test_server_errors_are_retried(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        fake.inject(platform_error="internal_server_error", endpoint="add_to_segment")
        fake.inject(reset=True, endpoint="remove_from_segment")

        resend.add(SEGMENT, members(resend, [person(1), person(2)]))
        resend.remove(SEGMENT, members(resend, [person(2)]))

        assert fake.segment(SEGMENT) == {email(1)}


def test_daily_quota_is_deferred_without_retries(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        fake.inject(platform_error="daily_quota_exceeded", times=None)

        with pytest.raises(Deferred) as failure:
            resend.add(SEGMENT, members(resend, [person(1), person(2)]))

        assert "daily_quota_exceeded" in failure.value.message
        assert failure.value.retry_after is not None and failure.value.retry_after >= 3600
        assert len(fake.requests) == 1
        assert fake.segment(SEGMENT) == set()


def test_a_contact_already_gone_counts_as_removed(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        resend.add(SEGMENT, members(resend, [person(1), person(2)]))
        gone = members(resend, [person(7)])  # never a contact: 404 "Contact not found"

        figures = resend.remove(SEGMENT, [*gone, *members(resend, [person(1)])])

        assert figures.received == 2
        assert fake.segment(SEGMENT) == {email(2)}
        assert [r.status for r in fake.calls("remove_from_segment")] == [404, 200]
        assert len(fake.calls("remove_from_segment")) == 2  # the 404 was not retried


def test_emails_are_escaped_in_paths(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        tagged = members(resend, [person(1, email="mary+news@example.com")])
        resend.add(SEGMENT, tagged)
        assert fake.segment(SEGMENT) == {"mary+news@example.com"}

        resend.remove(SEGMENT, tagged)

        assert fake.segment(SEGMENT) == set()
        assert fake.calls("remove_from_segment")[0].status == 200


def test_an_unknown_segment_is_permanent(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)

        with pytest.raises(Permanent, match="HTTP 404: Segment not found"):
            resend.add("no-such-segment", members(resend, [person(1), person(2)]))

        assert fake.counts["add_to_segment"] == 1


def test_a_rejected_contact_is_counted_and_the_batch_goes_on(client: httpx.Client) -> None:
    with ResendFake(API_KEY, rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)
        fake.inject(platform_error="validation_error", contains="User.2@", times=None)

        figures = resend.add(SEGMENT, members(resend, [person(i) for i in range(1, 4)]))

        assert fake.segment(SEGMENT) == {email(1), email(3)}
        assert (figures.received, figures.invalid) == (2, 1)
        assert figures.details["rejected_contacts"] == [
            {"person_id": "p002", "error": "HTTP 422: injected validation_error"}
        ]


def test_a_wrong_api_key_is_permanent(client: httpx.Client) -> None:
    with ResendFake("re_other", rate_limit=None, segments=[SEGMENT]) as fake:
        resend = audience_client(fake, client)

        with pytest.raises(Permanent, match="HTTP 403: API key is invalid"):
            resend.add(SEGMENT, members(resend, [person(1)]))

        assert len(fake.requests) == 1
