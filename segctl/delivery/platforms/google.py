"""Google Customer Match through the Data Manager API: ingest and remove hashed members.

The contract is shared/API_CONTRACTS.md, "Google". Each member is sent as one ``emailAddress``
and/or one ``phoneNumber`` identifier (SHA-256, lowercase hex) for the user list
``audience_id`` of the operating account in the destination's settings. Google rejects a whole
request for one invalid record, so members are checked here first and the invalid ones skipped
(counted in ``Figures.invalid``). There is no replace (``mirror`` adds and removes what segctl
added, on every platform).

Google processes a request after accepting it; the client polls ``requestStatus:retrieve`` a
few times, briefly, and reports what it learnt (``PROCESSING`` is a normal answer).
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import httpx

from segctl.definitions.destinations import (
    GOOGLE_ACCOUNT_TYPES,
    GOOGLE_CONSENT_KEYS,
    GOOGLE_CONSENT_VALUES,
)
from segctl.delivery.http import body, retry_after
from segctl.delivery.platforms.base import AudienceClient, Figures, Member
from segctl.delivery.retry import DeliveryFailure, Permanent, Transient, call

INGEST = "/v1/audienceMembers:ingest"
REMOVE = "/v1/audienceMembers:remove"
STATUS = "/v1/requestStatus:retrieve"
MAX_IDENTIFIERS = 10
RETRIED = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED"})
CONSENT_VALUES = GOOGLE_CONSENT_VALUES
DEFAULT_CONSENT = dict.fromkeys(GOOGLE_CONSENT_KEYS, "CONSENT_GRANTED")
ACCOUNT_TYPES = GOOGLE_ACCOUNT_TYPES
# Worst first: the status reported for several requests or destinations.
STATUS_ORDER = ("FAILED", "PARTIAL_SUCCESS", "PROCESSING", "SUCCESS")
DIGEST = re.compile(r"[0-9a-f]{64}")
DURATION = re.compile(r"(\d+(?:\.\d*)?)s")


def classify(response: httpx.Response) -> Any:
    """Judge a Data Manager answer: the parsed body, or raise Transient/Permanent.

    429 RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, 408 and 5xx are retried,
    honouring ``Retry-After`` or a ``google.rpc.RetryInfo`` delay; anything else is permanent.
    """
    if response.is_success:
        return body(response)
    data = body(response)
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    status = str(error.get("status") or "")
    message = _message(response, error, status)
    if status in RETRIED or response.status_code in (408, 429) or response.status_code >= 500:
        wait = retry_after(response)
        raise Transient(message, retry_after=wait if wait is not None else _retry_info(error))
    raise Permanent(message)


class GoogleAudience(AudienceClient):
    """A Customer Match user list; ``audience_id`` is its ``productDestinationId``.

    ``status_polls`` are the waits (seconds) before each ``requestStatus`` poll after a request;
    polling stops at the first answer that is not PROCESSING.
    """

    platform = "google"
    max_batch = 10_000
    status_polls: tuple[float, ...] = (0.25, 0.75, 2.0)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.destination.secrets['access_token']}"}

    def add(self, audience_id: str, members: list[Member]) -> Figures:
        """Ingest members into the user list, with consent and the Customer Match terms."""
        extra = {
            "consent": self._consent(),
            "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        }
        return self._send(INGEST, audience_id, members, extra)

    def remove(self, audience_id: str, members: list[Member]) -> Figures:
        """Remove members from the user list (the body takes no consent nor terms)."""
        return self._send(REMOVE, audience_id, members, {})

    # ---- helpers ----------------------------------------------------------------------------

    def _send(
        self, path: str, audience_id: str, members: list[Member], extra: dict[str, Any]
    ) -> Figures:
        destinations = [{"operatingAccount": self._account(), "productDestinationId": audience_id}]
        entries = [entry for entry in map(_entry, members) if entry is not None]
        figures = Figures(invalid=len(members) - len(entries))
        statuses: list[str] = []
        request_ids: list[str] = []
        for start in range(0, len(entries), self.max_batch):
            request = {
                "destinations": destinations,
                "audienceMembers": entries[start : start + self.max_batch],
                **extra,
                "encoding": "HEX",
                "validateOnly": False,
            }
            reply = self.request("POST", path, json=request, classify=classify)
            reply = reply if isinstance(reply, dict) else {}
            request_id = str(reply.get("requestId") or "")
            request_ids.append(request_id)
            if reply.get("fieldWarnings"):
                figures.details.setdefault("field_warnings", []).extend(reply["fieldWarnings"])
            sent = len(request["audienceMembers"])
            status, count, match_rate = self._poll(request_id, figures)
            if status == "FAILED":
                raise Permanent(
                    f"Google accepted request {request_id} and then reported it FAILED"
                    + _errors(figures.details.get("error_info"))
                )
            statuses.append(status)
            figures.received += count if count is not None else sent
            figures.match_rate = match_rate or figures.match_rate
        if request_ids:
            figures.details["request_ids"] = request_ids
            figures.details["request_status"] = _worst(statuses)
        return figures

    def _poll(self, request_id: str, figures: Figures) -> tuple[str, int | None, str | None]:
        """(status, recordCount, uploadMatchRateRange) after a few short polls; a failing poll
        never fails the request it asks about (it is recorded in ``figures.details``)."""
        status: tuple[str, int | None, str | None] = ("UNKNOWN", None, None)
        if not request_id:
            return status
        policy = dataclasses.replace(self.policy, max_retries=1)  # one retry: it is only news

        def poll() -> Any:
            with self.slots:
                return self.http.request(
                    "GET", STATUS, params={"requestId": request_id}, classify=classify
                )

        for wait in self.status_polls:
            time.sleep(wait)
            try:
                reply = call(poll, policy, self.limiter)
            except DeliveryFailure as failure:
                figures.details["request_status_error"] = failure.message
                return status
            status = _read_status(reply, figures)
            if status[0] != "PROCESSING":
                break
        return status

    def _account(self) -> dict[str, str]:
        settings = self.destination.settings
        account_id = re.sub(r"[\s-]", "", str(settings.get("operating_account_id") or ""))
        account_type = str(settings.get("account_type") or "GOOGLE_ADS")
        if not account_id.isdigit():
            raise Permanent(
                f"destination '{self.destination.name}': operating_account_id must be digits "
                f"(dashes allowed), got {settings.get('operating_account_id')!r}"
            )
        if account_type not in ACCOUNT_TYPES:
            raise Permanent(
                f"destination '{self.destination.name}': account_type must be one of "
                f"{', '.join(ACCOUNT_TYPES)}, got {account_type!r}"
            )
        return {"accountType": account_type, "accountId": account_id}

    def _consent(self) -> dict[str, str]:
        configured = self.destination.settings.get("consent")
        if configured is None:
            return dict(DEFAULT_CONSENT)
        where = f"destination '{self.destination.name}': consent"
        if not isinstance(configured, dict):
            raise Permanent(f"{where} must be a mapping of adUserData and adPersonalization")
        consent = dict(DEFAULT_CONSENT)
        for key, value in configured.items():
            if key not in DEFAULT_CONSENT:
                raise Permanent(f"{where}: unknown key {key!r} (adUserData, adPersonalization)")
            if value not in CONSENT_VALUES:
                raise Permanent(f"{where}.{key} must be one of {', '.join(CONSENT_VALUES)}")
            consent[key] = value
        return consent


def _entry(member: Member) -> dict[str, Any] | None:
    """One audience member, or None when it has no valid digest to send (anything that is not
    a lowercase SHA-256 hex digest could be raw PII, and would reject the whole request)."""
    identity = member.identity
    if identity is None:
        return None
    email, phone = identity.email, identity.phone  # (called per member: kept plain)
    identifiers = []
    if email and DIGEST.fullmatch(email):
        identifiers.append({"emailAddress": email})
    if phone and DIGEST.fullmatch(phone):
        identifiers.append({"phoneNumber": phone})
    if not identifiers or len(identifiers) > MAX_IDENTIFIERS:
        return None
    return {"userData": {"userIdentifiers": identifiers}}


def _read_status(reply: Any, figures: Figures) -> tuple[str, int | None, str | None]:
    """The worst requestStatus over the destinations, the record count and the match rate."""
    entries = reply.get("requestStatusPerDestination") if isinstance(reply, dict) else None
    statuses, counts, match_rate = [], [], None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        statuses.append(str(entry.get("requestStatus") or "UNKNOWN"))
        ingestion = _dict(entry.get("audienceMembersIngestionStatus"))
        removal = _dict(entry.get("audienceMembersRemovalStatus"))
        data = ingestion.get("userDataIngestionStatus") or removal.get("userDataRemovalStatus")
        if isinstance(data, dict):
            if isinstance(data.get("recordCount"), (int, str)):
                counts.append(int(data["recordCount"]))
            match_rate = data.get("uploadMatchRateRange") or match_rate
        if entry.get("errorInfo"):
            figures.details["error_info"] = entry["errorInfo"]
    count = max(counts) if counts else None  # the same members went to every destination
    return _worst(statuses), count, match_rate


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _worst(statuses: list[str]) -> str:
    for status in STATUS_ORDER:
        if status in statuses:
            return status
    return statuses[0] if statuses else "UNKNOWN"


def _errors(info: Any) -> str:
    counts = info.get("errorCounts") if isinstance(info, dict) else None
    if not isinstance(counts, list) or not counts:
        return ""
    return ": " + ", ".join(
        f"{c.get('reason', '?')} x{c.get('recordCount', '?')}"
        for c in counts
        if isinstance(c, dict)
    )


def _retry_info(error: dict[str, Any]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "30s"``)."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("rpc.RetryInfo"):
            found = DURATION.fullmatch(str(detail.get("retryDelay", "")))
            if found:
                return float(found.group(1))
    return None


def _message(response: httpx.Response, error: dict[str, Any], status: str) -> str:
    """``HTTP 400 INVALID_ARGUMENT: <Google's message> [field: problem; ...]``."""
    text = str(error.get("message") or "") or response.reason_phrase
    violations = [
        f"{v.get('field')}: {v.get('description')}"
        for detail in error.get("details") or []
        if isinstance(detail, dict)
        for v in detail.get("fieldViolations") or []
        if isinstance(v, dict)
    ]
    shown = [v for v in violations[:3] if v not in text]
    head = f"HTTP {response.status_code}" + (f" {status}" if status else "")
    message = f"{head}: {text}" + (f" [{'; '.join(shown)}]" if shown else "")
    return message[:500]
