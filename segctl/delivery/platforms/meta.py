"""Meta Custom Audiences (Graph API): add, remove and replace hashed EMAIL/PHONE rows.

The contract is shared/API_CONTRACTS.md, "Meta". Every call sends ``{"schema": ["EMAIL",
"PHONE"], "data": [[email hash, phone hash], ...]}`` (``""`` for a missing key) in batches of
10,000 that share one upload session (``session_id``, ``batch_seq`` from 1, ``last_batch_flag``
on the last), encoded as the official SDK encodes them: POST parameters form-encoded, DELETE
parameters in the query string (removals go in batches of 300 so the URL stays short). The
token travels in the ``Authorization`` header, never in a URL, because URLs
end up in logs.

A replace (``usersreplace``) holds the audience until its last batch arrives, for at most 90
minutes: Meta refuses a second replace and any ``/users`` call meanwhile (subcode 1870145). This
client sends nothing else to an audience while it replaces it, waits a little when Meta says an
update is in progress, and starts a fresh session once when Meta reports the session lost
(timed out, or its first batch missing). A replace that fails midway leaves the audience as it
was: Meta applies it only when the last batch arrives.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import secrets
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from segctl.delivery.http import body, describe, retry_after
from segctl.delivery.platforms.base import AudienceClient, Figures, Member
from segctl.delivery.retry import Permanent, Transient

DEFAULT_VERSION = "v25.0"
SCHEMA = ("EMAIL", "PHONE")
THROTTLING = frozenset({4, 17, 613, 80003, 80004})
TRANSIENT = frozenset({1, 2})
UPDATE_IN_PROGRESS = 1870145
SESSION_LOST = frozenset({1870158, 1870147})  # replace session timed out / first batch missing
IN_PROGRESS_WAIT = 10.0  # seconds to wait when another update holds the audience
MAX_SAMPLES = 20  # invalid_entry_samples kept per call
DIGEST = re.compile(r"[0-9a-f]{64}")
# A removal carries its hashes in the query string (as the official SDK sends DELETE
# parameters), and servers and proxies commonly refuse request lines over 64 KB: a row of two
# hashes is ~160 bytes URL-encoded, so 300 rows keep a DELETE under ~50 KB.
DELETE_MAX_ROWS = 300


class SessionLost(Permanent):
    """Meta lost the replace session (timed out, or first batch missing): start a new one."""


def classify(response: httpx.Response, *, in_progress_wait: float = IN_PROGRESS_WAIT) -> Any:
    """Judge a Graph API answer: the parsed body, or raise Transient/Permanent.

    Throttling codes wait for ``X-Business-Use-Case-Usage`` ``estimated_time_to_regain_access``
    (minutes); codes 1 and 2, ``is_transient`` and 5xx are retried; "update in progress"
    (1870145) waits ``in_progress_wait`` seconds; a lost replace session raises
    :class:`SessionLost`; anything else is permanent, with Meta's message.
    """
    if response.is_success:
        return body(response)
    data = body(response)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise Transient(describe(response), retry_after=retry_after(response))
        raise Permanent(describe(response))
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    message = _message(response, error, code, subcode)
    if subcode == UPDATE_IN_PROGRESS:
        raise Transient(message, retry_after=in_progress_wait)
    if subcode in SESSION_LOST:
        raise SessionLost(message)
    if code in THROTTLING:
        raise Transient(message, retry_after=regain_seconds(response) or retry_after(response))
    if (
        code in TRANSIENT
        or error.get("is_transient") is True
        or response.status_code in (408, 429)
        or response.status_code >= 500
    ):
        raise Transient(message, retry_after=retry_after(response))
    raise Permanent(message)


def regain_seconds(response: httpx.Response) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage``,
    in seconds; None when absent or zero.

    >>> usage = '{"1": [{"type": "CUSTOM_AUDIENCE", "estimated_time_to_regain_access": 2}]}'
    >>> regain_seconds(httpx.Response(400, headers={"X-Business-Use-Case-Usage": usage}))
    120.0
    """
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", ""))
    except ValueError:
        return None
    entries = usage.values() if isinstance(usage, dict) else []
    minutes = [
        _minutes(item.get("estimated_time_to_regain_access"))
        for items in entries
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict)
    ]
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None


class MetaAudience(AudienceClient):
    """A Meta customer-list custom audience; ``audience_id`` is the custom audience's id."""

    platform = "meta"
    max_batch = 10_000
    sessions = True  # the batches of one upload share a session (API_CONTRACTS, Meta)
    in_progress_wait = IN_PROGRESS_WAIT

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.destination.secrets['access_token']}"}

    @property
    def version(self) -> str:
        version = str(self.destination.settings.get("api_version") or DEFAULT_VERSION)
        return version if version.startswith("v") else f"v{version}"

    def add(self, audience_id: str, members: list[Member]) -> Figures:
        """Add members (``POST /{v}/{audience_id}/users``), one session for all batches."""
        return self._users("POST", audience_id, members)

    def remove(self, audience_id: str, members: list[Member]) -> Figures:
        """Remove members (``DELETE /{v}/{audience_id}/users``, same body as an add)."""
        return self._users("DELETE", audience_id, members)

    def replace(self, audience_id: str, members: list[Member]) -> Figures:
        """Make the audience hold exactly ``members`` (``POST /{v}/{audience_id}/usersreplace``).

        All batches share one session; Meta swaps the audience when the last one arrives. A lost
        session is restarted once from ``batch_seq`` 1, then the replace fails permanently.
        Members without a usable identifier are skipped; if none is left out of a non-empty
        list, nothing is sent (an empty audience would be a loss, not a replace).
        """
        rows, skipped = _rows(members)
        if members and not rows:
            raise Permanent(
                f"none of the {len(members)} members has a usable identifier: "
                "not replacing the audience with an empty one"
            )
        with self._exclusive(audience_id):
            try:
                figures = self._session("usersreplace", "POST", audience_id, rows)
            except SessionLost as lost:
                try:
                    figures = self._session("usersreplace", "POST", audience_id, rows)
                except SessionLost as again:
                    raise Permanent(
                        f"{again.message} (after restarting the replace once: {lost.message})"
                    ) from None
                figures.details["replace_restarts"] = 1
        figures.invalid += skipped
        return figures

    # ---- helpers ----------------------------------------------------------------------------

    def _users(self, method: str, audience_id: str, members: list[Member]) -> Figures:
        rows, skipped = _rows(members)
        figures = Figures(details={"invalid_entry_samples": {}})
        if rows:
            with self._exclusive(audience_id):
                figures = self._session("users", method, audience_id, rows)
        figures.invalid += skipped
        return figures

    def in_session(
        self, method: str, audience_id: str, batches: list[list[Member]]
    ) -> Generator[Figures | Permanent, None, None]:
        """A sync's adds (POST) or removes (DELETE) in one ``/users`` session: each batch of
        members in requests of at most ``max_batch`` rows (300 for DELETE), ``batch_seq``
        counting the requests; a batch Meta refuses for good yields its error and the next
        batches still go."""
        rows = [_rows(batch) for batch in batches]
        requests = [list(self._requests(method, found)) if found else [] for found, _ in rows]
        total = sum(len(found) for found, _ in rows)
        last = max((i for i, r in enumerate(requests) if r), default=-1)
        sender = self._sender("users", method, audience_id, total)
        with self._exclusive(audience_id):
            for i, ((_, skipped), parts) in enumerate(zip(rows, requests, strict=True)):
                try:
                    figures = _summed(
                        sender(part, i == last and j == len(parts) - 1)
                        for j, part in enumerate(parts)
                    )
                except Permanent as refused:
                    yield refused
                    continue
                figures.invalid += skipped
                yield figures

    def _requests(self, method: str, rows: list[list[str]]) -> Iterator[list[list[str]]]:
        """``rows`` in the requests Meta takes: ``max_batch`` rows, 300 for a DELETE."""
        size = min(self.max_batch, DELETE_MAX_ROWS) if method == "DELETE" else self.max_batch
        for i in range(0, len(rows), size):
            yield rows[i : i + size]

    def _sender(
        self, edge: str, method: str, audience_id: str, total: int
    ) -> Callable[[list[list[str]], bool], Figures]:
        """A new upload session's request sender: each call sends the next batch
        (``batch_seq`` from 1; ``last`` sets ``last_batch_flag``) and returns what Meta
        reported for it."""
        path = f"/{self.version}/{quote(audience_id, safe='')}/{edge}"
        session_id = secrets.randbelow(2**63 - 1) + 1  # a positive int64
        sequence = itertools.count(1)

        def send(batch: list[list[str]], last: bool) -> Figures:
            payload = {
                "payload": {"schema": list(SCHEMA), "data": batch},
                "session": {
                    "session_id": session_id,
                    "batch_seq": next(sequence),
                    "last_batch_flag": last,
                    "estimated_num_total": total,
                },
            }
            # As the official SDK: POST parameters form-encoded, DELETE ones in the query
            # string, each parameter's value JSON (compact: it travels in the URL).
            fields = {k: json.dumps(v, separators=(",", ":")) for k, v in payload.items()}
            sent = {"params": fields} if method == "DELETE" else {"data": fields}
            reply = self.request(method, path, **sent, classify=self._classify)
            reply = reply if isinstance(reply, dict) else {}
            samples: dict[str, Any] = {}
            _keep_samples(samples, reply.get("invalid_entry_samples"))
            return Figures(
                received=_int(reply.get("num_received")) or 0,
                invalid=_int(reply.get("num_invalid_entries")) or 0,
                details={"invalid_entry_samples": samples},
            )

        return send

    def _session(self, edge: str, method: str, audience_id: str, rows: list[list[str]]) -> Figures:
        """Send ``rows`` in the batches of one new session; sums what Meta reported."""
        batches = list(self._requests(method, rows)) or [[]]  # replacing with nobody: one
        sender = self._sender(edge, method, audience_id, len(rows))
        return _summed(
            sender(batch, seq == len(batches)) for seq, batch in enumerate(batches, start=1)
        )

    def _classify(self, response: httpx.Response) -> Any:
        return classify(response, in_progress_wait=self.in_progress_wait)

    @contextmanager
    def _exclusive(self, audience_id: str) -> Iterator[None]:
        """Nothing else from this process touches the audience meanwhile (Meta allows one
        replace at a time and no /users calls during one)."""
        key = (self.destination.base_url, audience_id)
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(key, threading.Lock())
        with lock:
            yield


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _rows(members: list[Member]) -> tuple[list[list[str]], int]:
    """EMAIL, PHONE rows (``""`` for a missing key) and the number of members skipped because
    they have no SHA-256 digest to send (anything else could be raw PII)."""
    rows: list[list[str]] = []
    match = DIGEST.fullmatch
    for member in members:  # (kept plain: called per member of large audiences)
        identity = member.identity
        if identity is None:
            continue
        email, phone = identity.email or "", identity.phone or ""
        email = email if email and match(email) else ""
        phone = phone if phone and match(phone) else ""
        if email or phone:
            rows.append([email, phone])
    return rows, len(members) - len(rows)


def _summed(replies: Iterable[Figures]) -> Figures:
    """What Meta reported for several requests (sent as they are iterated): counts summed,
    invalid-entry samples gathered (up to :data:`MAX_SAMPLES`)."""
    figures = Figures()
    samples: dict[str, Any] = {}
    for one in replies:
        _keep_samples(samples, one.details.pop("invalid_entry_samples", None))
        figures.add(one)
    figures.details["invalid_entry_samples"] = samples
    return figures


def _keep_samples(samples: dict[str, Any], reported: Any) -> None:
    if isinstance(reported, list):
        reported = {str(len(samples) + i): item for i, item in enumerate(reported)}
    if isinstance(reported, dict):
        for key, value in reported.items():
            if len(samples) >= MAX_SAMPLES:
                return
            samples[str(key)] = value


def _message(
    response: httpx.Response, error: dict[str, Any], code: int | None, subcode: int | None
) -> str:
    """``HTTP 400: Invalid parameter: <user message> (code 100, subcode 33, fbtrace_id ...)``."""
    text = str(error.get("message") or "")
    user_message = error.get("error_user_msg")
    if user_message and str(user_message) not in text:
        text = f"{text}: {user_message}" if text else str(user_message)
    where = [f"code {code}" if code is not None else ""]
    where.append(f"subcode {subcode}" if subcode is not None else "")
    where.append(f"fbtrace_id {error['fbtrace_id']}" if error.get("fbtrace_id") else "")
    found = ", ".join(part for part in where if part)
    message = f"HTTP {response.status_code}: {text or 'error'}" + (f" ({found})" if found else "")
    return message[:500]


def _minutes(value: Any) -> float:
    """A number of minutes from Meta's usage header; 0 when it is not one."""
    try:
        minutes = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return minutes if math.isfinite(minutes) else 0.0


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
