"""Google Data Manager API, Customer Match (shared/API_CONTRACTS.md, "Google").

Bodies are checked field by field as proto JSON is: an unknown field, a missing one, a wrong enum
or an identifier that is not a lowercase SHA-256 hex digest rejects the whole request (400
INVALID_ARGUMENT listing every problem as ``fieldViolations``); nothing is applied.

A list (keyed by ``productDestinationId``) holds members as frozensets of identifiers,
``frozenset({("emailAddress", "<hex>"), ("phoneNumber", "<hex>")})``; a removal removes every
member sharing an identifier with a removed member.

Platform errors for ``inject(platform_error=...)``: a status name ("RESOURCE_EXHAUSTED" 429,
"UNAVAILABLE" 503, "DEADLINE_EXCEEDED" 504, "INTERNAL" 500, "INVALID_ARGUMENT" 400, ...).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any

from .base import ANY_HEX64, HEX64, FakeServer, PlatformError, Recorded, Rejected, Reply, bearer

Member = frozenset[tuple[str, str]]
STATUSES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
BY_CODE = {code: name for name, code in reversed(STATUSES.items())}
INGEST_FIELDS = {
    "destinations", "audienceMembers", "consent", "encoding", "termsOfService", "validateOnly",
    "encryptionInfo",
}  # fmt: skip
REMOVE_FIELDS = {"destinations", "audienceMembers", "encoding", "validateOnly", "encryptionInfo"}
ACCOUNT_TYPES = {"GOOGLE_ADS", "DISPLAY_VIDEO_PARTNER", "DISPLAY_VIDEO_ADVERTISER", "DATA_PARTNER"}
CONSENT = {"CONSENT_GRANTED", "CONSENT_DENIED", "CONSENT_STATUS_UNSPECIFIED"}
HASHED = ("emailAddress", "phoneNumber")
ADDRESS_FIELDS = {"givenName", "familyName", "regionCode", "postalCode"}


def google_error(
    status: str,
    message: str,
    violations: list[tuple[str, str]] | None = None,
    *,
    http: int | None = None,
) -> Rejected:
    code = http or STATUSES[status]
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    error["details"] = (
        [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": f, "description": d} for f, d in violations],
            }
        ]
        if violations
        else []
    )
    return Rejected(Reply(code, {"error": error}))


@dataclass
class _Request:
    kind: str  # "ingest" or "remove"
    destinations: list[dict[str, Any]]
    records: int
    identifiers: int
    polls: int = 0


class GoogleFake(FakeServer):
    """Data Manager audienceMembers:ingest / :remove and requestStatus:retrieve.

    Args:
        token: the OAuth access token to accept (``Authorization: Bearer``).
        rate_limit: (requests, seconds); over it answers 429 RESOURCE_EXHAUSTED.
        max_concurrent: requests in flight the client should keep to (not refused; a violation
            for ``assert_limits``).
        processing_polls: how many requestStatus polls of each request answer PROCESSING first.
        max_members, max_identifiers, max_destinations: the per-request limits.
        latency: seconds every request takes (makes concurrency observable).
    """

    routes = (
        ("POST", r"/v1/audienceMembers:ingest", "ingest"),
        ("POST", r"/v1/audienceMembers:remove", "remove"),
        ("GET", r"/v1/requestStatus:retrieve", "request_status"),
    )
    transient_errors = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")

    def __init__(
        self,
        token: str = "google-token",
        *,
        rate_limit: tuple[int, float] | None = (300, 60.0),
        max_concurrent: int | None = 10,
        processing_polls: int = 0,
        max_members: int = 10_000,
        max_identifiers: int = 10,
        max_destinations: int = 10,
        latency: float = 0.0,
    ) -> None:
        super().__init__(rate_limit=rate_limit, max_concurrent=max_concurrent, latency=latency)
        self.token = token
        self.processing_polls = processing_polls
        self.max_members = max_members
        self.max_identifiers = max_identifiers
        self.max_destinations = max_destinations
        self._lists: dict[str, set[Member]] = {}
        self._status: dict[str, _Request] = {}

    # -- state for tests ---------------------------------------------------------------------------
    def audience(self, list_id: str) -> set[Member]:
        """The members of a user list (empty if nothing was ever sent to it)."""
        with self.lock:
            return set(self._lists.get(list_id, ()))

    def identifiers(self, list_id: str, kind: str = "emailAddress") -> set[str]:
        """One kind of identifier across a list's members, e.g. every email hash."""
        return {value for member in self.audience(list_id) for k, value in member if k == kind}

    # -- platform hooks ----------------------------------------------------------------------------
    def authenticate(self, req: Recorded) -> None:
        if bearer(req) != self.token:
            raise google_error(
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )

    def error_reply(self, status: int, message: str) -> Reply:
        name = BY_CODE.get(status) or ("INTERNAL" if status >= 500 else "UNKNOWN")
        return google_error(name, message, http=status).reply

    def platform_reply(
        self, error: PlatformError, retry_after: float | None, req: Recorded
    ) -> Reply:
        if error not in STATUSES:
            raise ValueError(f"unknown Google status {error!r}; one of {sorted(STATUSES)}")
        return google_error(str(error), f"injected {error}").reply

    def throttle_reply(self) -> Reply:
        limit, per = self.rate_limit or (0, 0.0)
        return google_error(
            "RESOURCE_EXHAUSTED", f"Quota exceeded: more than {limit} requests per {per:g}s."
        ).reply

    # -- endpoints ---------------------------------------------------------------------------------
    def on_ingest(self, req: Recorded) -> dict[str, Any]:
        return self._apply(req, "ingest", INGEST_FIELDS)

    def on_remove(self, req: Recorded) -> dict[str, Any]:
        return self._apply(req, "remove", REMOVE_FIELDS)

    def on_request_status(self, req: Recorded) -> dict[str, Any]:
        request_id = req.query.get("requestId")
        if not request_id:
            raise google_error("INVALID_ARGUMENT", "requestId is required")
        status = self._status.get(request_id)
        if status is None:
            raise google_error("NOT_FOUND", f"Request {request_id} not found")
        status.polls += 1
        per_destination = []
        for destination in status.destinations:
            entry: dict[str, Any] = {"destination": destination, "requestStatus": "SUCCESS"}
            counts: dict[str, Any] = {
                "recordCount": status.records,
                "userIdentifierCount": status.identifiers,
            }
            if status.polls <= self.processing_polls:
                entry["requestStatus"] = "PROCESSING"
            elif status.kind == "ingest":
                counts["uploadMatchRateRange"] = "MATCH_RATE_RANGE_81_TO_90"
                entry["audienceMembersIngestionStatus"] = {"userDataIngestionStatus": counts}
            else:
                entry["audienceMembersRemovalStatus"] = {"userDataRemovalStatus": counts}
            per_destination.append(entry)
        return {"requestStatusPerDestination": per_destination}

    def _apply(self, req: Recorded, kind: str, allowed: set[str]) -> dict[str, Any]:
        body = req.json
        if not isinstance(body, dict):
            raise google_error("INVALID_ARGUMENT", "The request body must be a JSON object")
        problems: list[tuple[str, str]] = []
        _unknown(body, allowed, "", problems)
        destinations = self._destinations(body.get("destinations"), kind, problems)
        encoding = body.get("encoding")
        if encoding not in ("HEX", "BASE64"):
            problems.append(("encoding", "encoding must be HEX or BASE64"))
        members = self._members(body.get("audienceMembers"), kind, encoding, req, problems)
        if kind == "ingest":
            terms = body.get("termsOfService")
            if (
                not isinstance(terms, dict)
                or terms.get("customerMatchTermsOfServiceStatus") != "ACCEPTED"
            ):
                problems.append(("termsOfService", "the Customer Match terms must be ACCEPTED"))
            else:
                _unknown(terms, {"customerMatchTermsOfServiceStatus"}, "termsOfService", problems)
            _consent(body.get("consent"), "consent", problems)
        if not isinstance(body.get("validateOnly", False), bool):
            problems.append(("validateOnly", "validateOnly must be a boolean"))
        if problems:
            raise google_error(
                "INVALID_ARGUMENT",
                f"Request contains {len(problems)} invalid argument(s): "
                + "; ".join(f"{f}: {d}" for f, d in problems[:5]),
                problems,
            )
        request_id = str(uuid.uuid4())
        identifiers = sum(len(m) for m in members)
        self._status[request_id] = _Request(kind, destinations, len(members), identifiers)
        if not body.get("validateOnly"):
            for destination in destinations:
                current = self._lists.setdefault(destination["productDestinationId"], set())
                if kind == "ingest":
                    current.update(members)
                else:
                    gone = frozenset().union(*members)
                    self._lists[destination["productDestinationId"]] = {
                        m for m in current if not m & gone
                    }
        return {"requestId": request_id}

    def _destinations(
        self, value: Any, kind: str, problems: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value:
            problems.append(("destinations", "at least one destination is required"))
            return []
        self.saw_batch(f"{kind}.destinations", len(value), self.max_destinations)
        if len(value) > self.max_destinations:
            problems.append(("destinations", f"at most {self.max_destinations} destinations"))
        for i, destination in enumerate(value):
            where = f"destinations[{i}]"
            if not isinstance(destination, dict):
                problems.append((where, "must be an object"))
                continue
            _unknown(
                destination,
                {
                    "operatingAccount",
                    "productDestinationId",
                    "loginAccount",
                    "linkedAccount",
                    "reference",
                },
                where,
                problems,
            )
            account = destination.get("operatingAccount")
            if not isinstance(account, dict):
                problems.append((f"{where}.operatingAccount", "operatingAccount is required"))
            else:
                _unknown(
                    account, {"accountType", "accountId"}, f"{where}.operatingAccount", problems
                )
                if account.get("accountType") not in ACCOUNT_TYPES:
                    problems.append(
                        (f"{where}.operatingAccount.accountType", "invalid accountType")
                    )
                account_id = account.get("accountId")
                if not isinstance(account_id, str) or not account_id.isdigit():
                    problems.append(
                        (f"{where}.operatingAccount.accountId", "accountId must be digits only")
                    )
            list_id = destination.get("productDestinationId")
            if not isinstance(list_id, str) or not list_id:
                problems.append(
                    (f"{where}.productDestinationId", "productDestinationId is required")
                )
        return [d for d in value if isinstance(d, dict)]

    def _members(
        self,
        value: Any,
        kind: str,
        encoding: Any,
        req: Recorded,
        problems: list[tuple[str, str]],
    ) -> list[Member]:
        if not isinstance(value, list) or not value:
            problems.append(("audienceMembers", "at least one audience member is required"))
            return []
        self.saw_batch(kind, len(value), self.max_members)
        if len(value) > self.max_members:
            problems.append(("audienceMembers", f"at most {self.max_members} members per request"))
        members = []
        for i, member in enumerate(value):
            where = f"audienceMembers[{i}]"
            data = member.get("userData") if isinstance(member, dict) else None
            if not isinstance(member, dict) or not isinstance(data, dict):
                problems.append((f"{where}.userData", "userData is required"))
                continue
            _unknown(member, {"userData", "consent", "destinationReferences"}, where, problems)
            _unknown(data, {"userIdentifiers"}, f"{where}.userData", problems)
            _consent(member.get("consent"), f"{where}.consent", problems)
            ids = data.get("userIdentifiers")
            if not isinstance(ids, list) or not ids:
                problems.append((f"{where}.userData.userIdentifiers", "at least one identifier"))
                continue
            self.saw_batch(f"{kind}.identifiers", len(ids), self.max_identifiers)
            if len(ids) > self.max_identifiers:
                problems.append(
                    (f"{where}.userData.userIdentifiers", f"at most {self.max_identifiers}")
                )
            found = set()
            for j, identifier in enumerate(ids):
                pair = self._identifier(
                    identifier, f"{where}.userData.userIdentifiers[{j}]", encoding, req, problems
                )
                if pair is not None:
                    found.add(pair)
            members.append(frozenset(found))
        return members

    def _identifier(
        self, value: Any, where: str, encoding: Any, req: Recorded, problems: list[tuple[str, str]]
    ) -> tuple[str, str] | None:
        if not isinstance(value, dict) or len(value) != 1:
            problems.append((where, "exactly one of emailAddress, phoneNumber, address"))
            return None
        ((key, item),) = value.items()
        if key in HASHED:
            if not isinstance(item, str) or not _hashed(item, encoding):
                problems.append(
                    (f"{where}.{key}", f"must be a SHA-256 digest encoded as {encoding}")
                )
                if isinstance(item, str) and not _looks_hashed(item):
                    self.leak(req.endpoint, item)
                return None
            return key, item
        if key != "address":
            problems.append((where, f'Unknown name "{key}"'))
            return None
        if not isinstance(item, dict) or set(item) != ADDRESS_FIELDS:
            problems.append((f"{where}.address", f"address needs exactly {sorted(ADDRESS_FIELDS)}"))
            return None
        for name in ("givenName", "familyName"):
            if not isinstance(item[name], str) or not _hashed(item[name], encoding):
                problems.append((f"{where}.address.{name}", "must be a SHA-256 digest"))
                if isinstance(item[name], str) and not _looks_hashed(item[name]):
                    self.leak(req.endpoint, item[name])
                return None
        region, postal = item["regionCode"], item["postalCode"]
        if not (isinstance(region, str) and len(region) == 2 and region.isalpha()):
            problems.append((f"{where}.address.regionCode", "a two-letter region code"))
            return None
        if not isinstance(postal, str) or not postal:
            problems.append((f"{where}.address.postalCode", "postalCode is required"))
            return None
        return "address", "|".join(str(item[k]) for k in sorted(ADDRESS_FIELDS))


def _unknown(
    obj: dict[str, Any], allowed: set[str], where: str, problems: list[tuple[str, str]]
) -> None:
    for name in obj:
        if name not in allowed:
            problems.append((f"{where}.{name}".lstrip("."), f'Unknown name "{name}"'))


def _consent(value: Any, where: str, problems: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problems.append((where, "consent must be an object"))
        return
    _unknown(value, {"adUserData", "adPersonalization"}, where, problems)
    for name in ("adUserData", "adPersonalization"):
        if name in value and value[name] not in CONSENT:
            problems.append((f"{where}.{name}", f"invalid value {value[name]!r}"))


def _hashed(value: str, encoding: Any) -> bool:
    if encoding == "BASE64":
        try:
            return len(base64.b64decode(value, validate=True)) == 32
        except (binascii.Error, ValueError):
            return False
    return bool(HEX64.fullmatch(value))


def _looks_hashed(value: str) -> bool:
    """A digest in any encoding or case: wrong, perhaps, but not a leak of raw PII."""
    return bool(ANY_HEX64.fullmatch(value)) or _hashed(value, "BASE64")
