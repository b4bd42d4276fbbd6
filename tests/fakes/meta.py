"""Meta Marketing API, Custom Audiences (shared/API_CONTRACTS.md, "Meta").

Any Graph version prefix (``/v25.0/...``). Parameters come from the query string, a form body
or a JSON body (``payload`` and ``session`` as JSON strings or objects), so the official SDK's
DELETE with parameters in the URL works too. Both are accepted, as Meta accepts them, but a
request not encoded as the official SDK encodes it (a POST whose body is not form-encoded, a
DELETE with a body instead of query parameters) is an ``encoding`` violation that
``assert_limits()`` reports (``encoding_violations()`` lists them).

Audience rows are tuples of the hashes in key order EMAIL, PHONE (``EMAIL_SHA256`` counts as
EMAIL): ``("<email hash>", "<phone hash>")`` for a two-key schema, ``("<hash>",)`` for one key.
A removal removes every row sharing a non-empty identifier with a removed row (Meta matches
people, not rows).

Platform errors for ``inject(platform_error=...)``: a code (1, 2, 4, 17, 613, 80003, 80004, 100,
200, 294, 2650...) or ``(code, subcode)``; throttling codes carry ``X-Business-Use-Case-Usage``
with ``estimated_time_to_regain_access`` = ``retry_after`` (minutes, default 0).
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from .base import ANY_HEX64, HEX64, FakeServer, PlatformError, Recorded, Rejected, Reply, bearer

Row = tuple[tuple[str, str], ...]  # ((key, hash), ...) sorted by key; "" for an unknown key
KEYS = {"EMAIL": "EMAIL", "EMAIL_SHA256": "EMAIL", "PHONE": "PHONE", "PHONE_SHA256": "PHONE"}
THROTTLING = (4, 17, 613, 80003, 80004)
TRANSIENT = (1, 2, *THROTTLING)
MESSAGES = {
    1: "An unknown error occurred",
    2: "Service temporarily unavailable",
    4: "Application request limit reached",
    17: "User request limit reached",
    613: "Calls to this api have exceeded the rate limit.",
    80003: "There have been too many calls to this ad-account. Wait a bit and try again.",
    80004: "There have been too many calls from this ad-account. Wait a bit and try again.",
    100: "Invalid parameter",
    200: "Permissions error",
    294: "Managing advertisements requires the extended permission for ads_management",
    2650: "Failed to update the custom audience",
}
SUBCODES = {
    1870145: "A replace operation is already in progress on this audience",
    1870158: "The replace session has timed out",
    1870147: "The first batch (batch_seq 1) of this replace session is missing",
}
VERSION = r"/v\d+\.\d+"


def meta_error(
    code: int, message: str = "", *, subcode: int | None = None, status: int = 400
) -> Rejected:
    error: dict[str, Any] = {
        "message": message or SUBCODES.get(subcode or 0) or MESSAGES.get(code, "Error"),
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": secrets.token_urlsafe(8),
        "is_transient": code in TRANSIENT,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return Rejected(Reply(status, {"error": error}))


@dataclass
class _Session:
    kind: str  # "users" (add or remove) or "replace"
    started: float
    rows: set[Row] = field(default_factory=set)
    seqs: set[int] = field(default_factory=set)
    final: int | None = None  # the batch_seq that carried last_batch_flag
    done: bool = False
    timed_out: bool = False


@dataclass
class _Audience:
    name: str
    account: str
    rows: set[Row] = field(default_factory=set)
    replace: _Session | None = None  # the replace in progress


class MetaFake(FakeServer):
    """Graph API custom audiences.

    Args:
        token: the access token to accept (``access_token`` parameter or Bearer header).
        replace_timeout: seconds a usersreplace session may last (Meta: 90 minutes).
        max_rows: records allowed per request.
        rate_limit, latency: see ``FakeServer``; over the rate limit answers code 80003.
    """

    routes = (
        ("POST", VERSION + r"/act_(?P<account>\d+)/customaudiences", "create_audience"),
        ("GET", VERSION + r"/(?P<audience_id>\d+)", "get_audience"),
        ("POST", VERSION + r"/(?P<audience_id>\d+)/users", "add_users"),
        ("DELETE", VERSION + r"/(?P<audience_id>\d+)/users", "remove_users"),
        ("POST", VERSION + r"/(?P<audience_id>\d+)/usersreplace", "replace_users"),
    )
    transient_errors = (2, *THROTTLING)

    def __init__(
        self,
        token: str = "meta-token",
        *,
        replace_timeout: float = 90 * 60,
        max_rows: int = 10_000,
        rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__(rate_limit=rate_limit, latency=latency)
        self.token = token
        self.replace_timeout = replace_timeout
        self.max_rows = max_rows
        self._audiences: dict[str, _Audience] = {}
        self._sessions: dict[tuple[str, int], _Session] = {}
        self._ids = itertools.count(23850000000000001)

    # -- state for tests ---------------------------------------------------------------------------
    def create_audience(self, name: str = "test", account: str = "1") -> str:
        """Create an audience directly; returns its id."""
        with self.lock:
            audience_id = str(next(self._ids))
            self._audiences[audience_id] = _Audience(name, account)
            return audience_id

    def audience(self, audience_id: str) -> set[tuple[str, ...]]:
        """The rows currently in the audience (see the module docstring)."""
        with self.lock:
            return {tuple(value for _, value in row) for row in self._audiences[audience_id].rows}

    def audience_ids(self) -> list[str]:
        with self.lock:
            return list(self._audiences)

    def replace_in_progress(self, audience_id: str) -> bool:
        with self.lock:
            audience = self._audiences[audience_id]
            self._expire(audience)
            return audience.replace is not None

    # -- platform hooks ----------------------------------------------------------------------------
    def authenticate(self, req: Recorded) -> None:
        token = _params(req).get("access_token") or bearer(req)
        if not token:
            raise meta_error(104, "An access token is required to request this resource.")
        if token != self.token:
            raise meta_error(190, "Invalid OAuth access token - Cannot parse access token")

    def error_reply(self, status: int, message: str) -> Reply:
        code = 2 if status >= 500 else 4 if status == 429 else 100
        return meta_error(code, message, status=status).reply

    def platform_reply(
        self, error: PlatformError, retry_after: float | None, req: Recorded
    ) -> Reply:
        code, subcode = error if isinstance(error, tuple) else (int(error), None)
        reply = meta_error(code, subcode=subcode, status=500 if code in (1, 2) else 400).reply
        if code in THROTTLING:
            account = req.params.get("account") or self._account(req.params.get("audience_id"))
            usage = {
                "type": "CUSTOM_AUDIENCE",
                "call_count": 100,
                "total_cputime": 100,
                "total_time": 100,
                "estimated_time_to_regain_access": int(retry_after or 0),
            }
            reply.headers["X-Business-Use-Case-Usage"] = json.dumps({account: [usage]})
        return reply

    def throttle_reply(self) -> Reply:
        return self.platform_reply(80003, 0, Recorded("", "", {}, {}, b""))

    # -- endpoints ---------------------------------------------------------------------------------
    def on_create_audience(self, req: Recorded, account: str) -> dict[str, Any]:
        self._check_encoding(req)
        params = _params(req)
        if not params.get("name"):
            raise meta_error(100, "(#100) The parameter name is required")
        if params.get("subtype", "CUSTOM") != "CUSTOM":
            raise meta_error(100, "(#100) subtype must be CUSTOM for a customer list")
        source = params.get("customer_file_source", "USER_PROVIDED_ONLY")
        if source not in (
            "USER_PROVIDED_ONLY",
            "PARTNER_PROVIDED_ONLY",
            "BOTH_USER_AND_PARTNER_PROVIDED",
        ):
            raise meta_error(100, f"(#100) Invalid customer_file_source {source!r}")
        return {"id": self.create_audience(str(params["name"]), account)}

    def on_get_audience(self, req: Recorded, audience_id: str) -> dict[str, Any]:
        audience = self._audience(audience_id)
        size = len(audience.rows)
        return {
            "id": audience_id,
            "name": audience.name,
            "approximate_count_lower_bound": size,
            "approximate_count_upper_bound": size,
        }

    def encoding_violations(self) -> list[str]:
        """Requests not encoded as the official SDK encodes them (see the module docstring)."""
        return [v for v in self.violations if v.startswith("encoding:")]

    def _check_encoding(self, req: Recorded) -> None:
        """The SDK form-encodes POST parameters and puts DELETE parameters in the query string
        (a JSON body on DELETE is the least documented combination)."""
        kind = req.headers.get("content-type", "").split(";")[0].strip()
        problem = None
        if req.method == "POST" and req.body and kind != "application/x-www-form-urlencoded":
            problem = f"POST {req.path} has a {kind or 'untyped'} body, not a form-encoded one"
        elif req.method == "DELETE" and req.body:
            problem = f"DELETE {req.path} has a {kind or 'untyped'} body; parameters go in the URL"
        elif req.method == "DELETE" and "payload" not in req.query:
            problem = f"DELETE {req.path} has no payload in its query string"
        if problem:
            with self.lock:
                self._violations.append(("encoding", problem))

    def on_add_users(self, req: Recorded, audience_id: str) -> dict[str, Any]:
        return self._users(req, audience_id, remove=False)

    def on_remove_users(self, req: Recorded, audience_id: str) -> dict[str, Any]:
        return self._users(req, audience_id, remove=True)

    def _users(self, req: Recorded, audience_id: str, *, remove: bool) -> dict[str, Any]:
        self._check_encoding(req)
        audience = self._audience(audience_id)
        params = _params(req)
        session = _session(params, required=False)
        self._expire(audience)
        if audience.replace is not None:
            raise meta_error(2650, subcode=1870145)
        rows, received, invalid = self._rows(params, req.endpoint)
        if session is not None:
            session_id, seq, last = session
            state = self._sessions.setdefault(
                (audience_id, session_id), _Session("users", self.now())
            )
            if state.kind != "users":
                raise meta_error(100, f"(#100) session_id {session_id} belongs to a replace")
            if state.final is not None and seq > state.final:
                raise meta_error(
                    100, f"(#100) session {session_id} ended at batch_seq {state.final}"
                )
            state.seqs.add(seq)
            if last:
                state.final = seq
        if remove:
            gone = {pair for row in rows for pair in row if pair[1]}
            audience.rows = {row for row in audience.rows if not gone.intersection(row)}
        else:
            audience.rows |= rows
        return _response(audience_id, session, received, invalid)

    def on_replace_users(self, req: Recorded, audience_id: str) -> dict[str, Any]:
        self._check_encoding(req)
        audience = self._audience(audience_id)
        params = _params(req)
        session = _session(params, required=True)
        assert session is not None
        session_id, seq, last = session
        self._expire(audience)
        state = self._sessions.get((audience_id, session_id))
        if state is not None and state.kind != "replace":
            raise meta_error(100, f"(#100) session_id {session_id} belongs to a /users upload")
        if state is not None and state.timed_out:
            raise meta_error(2650, subcode=1870158)
        if state is None and seq != 1:
            raise meta_error(2650, subcode=1870147)
        if state is None and audience.replace is not None:
            raise meta_error(2650, subcode=1870145)
        rows, received, invalid = self._rows(params, req.endpoint)
        if state is None:
            state = audience.replace = self._sessions[audience_id, session_id] = _Session(
                "replace", self.now()
            )
        if state.done and state.final is not None and seq > state.final:
            raise meta_error(100, f"(#100) session {session_id} ended at batch_seq {state.final}")
        if not state.done:  # a re-sent batch of a finished replace changes nothing
            state.rows |= rows
            state.seqs.add(seq)
            if last:
                state.final = seq
            if state.final is not None and state.seqs >= set(range(1, state.final + 1)):
                audience.rows, audience.replace, state.done = set(state.rows), None, True
        return _response(audience_id, session, received, invalid)

    # -- helpers -----------------------------------------------------------------------------------
    def _audience(self, audience_id: str) -> _Audience:
        audience = self._audiences.get(audience_id)
        if audience is None:
            raise meta_error(
                100,
                f"Unsupported request. Object with ID '{audience_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                subcode=33,
            )
        return audience

    def _account(self, audience_id: str | None) -> str:
        audience = self._audiences.get(audience_id or "")
        return audience.account if audience else "0"

    def _expire(self, audience: _Audience) -> None:
        replace = audience.replace
        if replace is not None and self.now() - replace.started > self.replace_timeout:
            replace.timed_out, audience.replace = True, None

    def _rows(self, params: dict[str, Any], endpoint: str) -> tuple[set[Row], int, int]:
        """Validate the payload: (rows, records received, invalid entries)."""
        payload = _load(params.get("payload"), "payload")
        if not isinstance(payload, dict):
            raise meta_error(100, "(#100) The parameter payload is required")
        schema, data = payload.get("schema"), payload.get("data")
        keys = [schema] if isinstance(schema, str) else schema
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, str) and k in KEYS for k in keys)
            or len({KEYS[k] for k in keys}) != len(keys)
        ):
            raise meta_error(100, f"(#100) Invalid schema {schema!r}")
        if not isinstance(data, list):
            raise meta_error(100, "(#100) payload.data must be a list")
        self.saw_batch(endpoint, len(data), self.max_rows)
        if len(data) > self.max_rows:
            raise meta_error(100, f"(#100) At most {self.max_rows} records per request")
        rows: set[Row] = set()
        invalid, bad = 0, []
        for i, item in enumerate(data):
            values = [item] if isinstance(item, str) else item
            if (
                not isinstance(values, list)
                or len(values) != len(keys)
                or not all(isinstance(v, str) for v in values)
            ):
                raise meta_error(100, f"(#100) payload.data[{i}] does not match the schema")
            for value in values:
                if value and not HEX64.fullmatch(value):
                    bad.append(i)
                    if not ANY_HEX64.fullmatch(value):
                        self.leak(endpoint, value)
            if not any(values):
                invalid += 1
            else:
                rows.add(tuple(sorted(zip((KEYS[k] for k in keys), values, strict=True))))
        if bad:
            raise meta_error(
                100,
                f"(#100) {len(bad)} value(s) are not lowercase SHA-256 hex digests "
                f"(first at payload.data[{bad[0]}]); hash identifiers before sending",
            )
        return rows, len(data), invalid


def _params(req: Recorded) -> dict[str, Any]:
    body = req.json if isinstance(req.json, dict) else {}
    return {**req.query, **req.form, **body}


def _load(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise meta_error(100, f"(#100) {name} is not valid JSON") from None


def _session(params: dict[str, Any], *, required: bool) -> tuple[int, int, bool] | None:
    raw = _load(params.get("session"), "session")
    if raw is None:
        if required:
            raise meta_error(100, "(#100) The parameter session is required")
        return None
    if not isinstance(raw, dict):
        raise meta_error(100, "(#100) session must be an object")
    session_id, seq, last = raw.get("session_id"), raw.get("batch_seq"), raw.get("last_batch_flag")
    if type(session_id) is not int or not 0 < session_id < 2**63:
        raise meta_error(100, "(#100) session.session_id must be a positive int64")
    if type(seq) is not int or seq < 1:
        raise meta_error(100, "(#100) session.batch_seq must be an integer from 1")
    if not isinstance(last, bool | None):
        raise meta_error(100, "(#100) session.last_batch_flag must be a boolean")
    return session_id, seq, bool(last)


def _response(
    audience_id: str, session: tuple[int, int, bool] | None, received: int, invalid: int
) -> dict[str, Any]:
    return {
        "audience_id": audience_id,
        "session_id": session[0] if session else secrets.randbelow(2**62) + 1,
        "num_received": received,
        "num_invalid_entries": invalid,
        "invalid_entry_samples": {},
    }
