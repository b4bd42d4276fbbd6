"""Resend: contacts, segments and emails (shared/API_CONTRACTS.md, "Resend").

Errors are ``{"statusCode", "message", "name"}``. ``Idempotency-Key`` on ``/emails`` and
``/emails/batch`` is kept for ``idempotency_ttl`` (24 h): the same key and payload answer the
original response and send nothing; another payload is 409 ``invalid_idempotent_request``.
``fake.emails`` lists what was actually sent, so a retried email appears once.

``/emails/batch`` validates strictly by default, as Resend does: one invalid email (a malformed
address, a template variable that is not a string or a number) fails the whole batch with 422;
with ``x-batch-validation: permissive`` the valid ones are sent and the others listed in
``errors`` (``[{"index", "message"}]``).

Platform errors for ``inject(platform_error=...)``: an error name: "rate_limit_exceeded" (429 with
``retry-after``, default 1 s), "daily_quota_exceeded" / "monthly_quota_exceeded" (429, no
retry-after), "validation_error" (422), "internal_server_error" (500), ...
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .base import FakeServer, PlatformError, Recorded, Rejected, Reply, bearer, retry_after_header

NAMES = {
    "validation_error": 422,
    "missing_required_field": 422,
    "invalid_idempotency_key": 400,
    "missing_api_key": 401,
    "invalid_api_key": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "invalid_idempotent_request": 409,
    "concurrent_idempotent_requests": 409,
    "rate_limit_exceeded": 429,
    "daily_quota_exceeded": 429,
    "monthly_quota_exceeded": 429,
    "internal_server_error": 500,
    "application_error": 500,
}
BY_STATUS = {status: name for name, status in reversed(NAMES.items())}
MAX_BATCH = 100
MAX_RECIPIENTS = 50


def resend_error(name: str, message: str, status: int | None = None) -> Rejected:
    status = status or NAMES.get(name, 500)
    return Rejected(Reply(status, {"statusCode": status, "message": message, "name": name}))


class ResendFake(FakeServer):
    """Resend contacts, segments and (batch) emails.

    Args:
        api_key: the key to accept (``Authorization: Bearer re_...``).
        rate_limit: (requests, seconds), Resend's default 2 per second; None turns it off.
            Over it: 429 ``rate_limit_exceeded`` with ``retry-after: 1``.
        segments: segment ids that exist from the start (``create_segment`` adds more).
        idempotency_ttl: seconds an idempotency key is remembered.
        latency: seconds every request takes.
    """

    routes = (
        ("POST", r"/contacts", "create_contact"),
        ("POST", r"/contacts/(?P<contact>[^/]+)/segments/(?P<segment_id>[^/]+)", "add_to_segment"),
        (
            "DELETE",
            r"/contacts/(?P<contact>[^/]+)/segments/(?P<segment_id>[^/]+)",
            "remove_from_segment",
        ),
        ("POST", r"/segments", "create_segment"),
        ("GET", r"/segments/(?P<segment_id>[^/]+)/contacts", "list_segment"),
        ("POST", r"/emails", "send"),
        ("POST", r"/emails/batch", "send_batch"),
    )
    transient_errors = ("rate_limit_exceeded",)

    def __init__(
        self,
        api_key: str = "re_test_key",
        *,
        rate_limit: tuple[int, float] | None = (2, 1.0),
        segments: Iterable[str] = (),
        idempotency_ttl: float = 24 * 3600,
        latency: float = 0.0,
    ) -> None:
        super().__init__(rate_limit=rate_limit, latency=latency)
        self.api_key = api_key
        self.idempotency_ttl = idempotency_ttl
        self._contacts: dict[str, dict[str, Any]] = {}  # id -> contact
        self._segments: dict[str, dict[str, None]] = {s: {} for s in segments}  # ordered ids
        self._keys: dict[str, tuple[str, float, Reply]] = {}  # key -> (fingerprint, expiry, reply)
        self._emails: list[dict[str, Any]] = []

    # -- state for tests ---------------------------------------------------------------------------
    def create_segment(self, segment_id: str | None = None) -> str:
        with self.lock:
            segment_id = segment_id or str(uuid.uuid4())
            self._segments.setdefault(segment_id, {})
            return segment_id

    def segment(self, segment_id: str) -> set[str]:
        """The emails of the contacts in a segment."""
        with self.lock:
            return {self._contacts[c]["email"] for c in self._segments[segment_id]}

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        """Contacts by email."""
        with self.lock:
            return {c["email"]: dict(c) for c in self._contacts.values()}

    @property
    def emails(self) -> list[dict[str, Any]]:
        """Every email sent: its payload plus ``id`` and ``idempotency_key``."""
        with self.lock:
            return [dict(e) for e in self._emails]

    # -- platform hooks ----------------------------------------------------------------------------
    def authenticate(self, req: Recorded) -> None:
        key = bearer(req)
        if not key:
            raise resend_error(
                "missing_api_key",
                "Missing API key in the authorization header. Include the following header "
                "in the request: Authorization: Bearer YOUR_API_KEY",
            )
        if key != self.api_key:
            raise resend_error("invalid_api_key", "API key is invalid")

    def error_reply(self, status: int, message: str) -> Reply:
        return resend_error(BY_STATUS.get(status, "application_error"), message, status).reply

    def platform_reply(
        self, error: PlatformError, retry_after: float | None, req: Recorded
    ) -> Reply:
        name = str(error)
        if name not in NAMES:
            raise ValueError(f"unknown Resend error {name!r}; one of {sorted(NAMES)}")
        reply = resend_error(name, f"injected {name}").reply
        if name == "rate_limit_exceeded":
            reply.headers["retry-after"] = retry_after_header(
                1 if retry_after is None else retry_after
            )
        return reply

    def throttle_reply(self) -> Reply:
        limit, per = self.rate_limit or (0, 1.0)
        reply = resend_error(
            "rate_limit_exceeded",
            f"Too many requests. You can only make {limit} requests per {per:g} second(s).",
        ).reply
        reply.headers.update(
            {"retry-after": retry_after_header(per), "ratelimit-limit": str(limit),
             "ratelimit-remaining": "0", "ratelimit-reset": retry_after_header(per)}
        )  # fmt: skip
        return reply

    # -- contacts and segments ---------------------------------------------------------------------
    def on_create_contact(self, req: Recorded) -> dict[str, Any]:
        body = _object(req.json)
        email = body.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise resend_error("validation_error", "The `email` field must be a valid email.")
        existing = self._find(email)
        contact = existing or {"id": str(uuid.uuid4()), "object": "contact", "email": email}
        for name in ("first_name", "last_name", "unsubscribed"):
            if name in body:
                contact[name] = body[name]
        contact.setdefault("unsubscribed", False)
        self._contacts[contact["id"]] = contact
        return {"object": "contact", "id": contact["id"]}

    def on_create_segment(self, req: Recorded) -> dict[str, Any]:
        name = _object(req.json).get("name")
        if not isinstance(name, str) or not name:
            raise resend_error("validation_error", "The `name` field is required.")
        return {"object": "segment", "id": self.create_segment(), "name": name}

    def on_add_to_segment(self, req: Recorded, contact: str, segment_id: str) -> dict[str, Any]:
        found, members = self._contact(contact), self._segment(segment_id)
        members[found["id"]] = None
        return {"id": segment_id}

    def on_remove_from_segment(
        self, req: Recorded, contact: str, segment_id: str
    ) -> dict[str, Any]:
        found, members = self._contact(contact), self._segment(segment_id)
        members.pop(found["id"], None)
        return {"id": segment_id, "deleted": True}

    def on_list_segment(self, req: Recorded, segment_id: str) -> dict[str, Any]:
        ids = list(self._segment(segment_id))
        if "after" in req.query:
            ids = ids[ids.index(req.query["after"]) + 1 :] if req.query["after"] in ids else []
        limit = req.query.get("limit")
        if limit is not None and not (limit.isdigit() and 1 <= int(limit) <= 100):
            raise resend_error("validation_error", "`limit` must be between 1 and 100.")
        page = ids[: int(limit)] if limit else ids
        return {
            "object": "list",
            "has_more": len(page) < len(ids),
            "data": [self._contacts[c] for c in page],
        }

    def _find(self, contact: str) -> dict[str, Any] | None:
        if contact in self._contacts:
            return self._contacts[contact]
        lowered = contact.lower()
        return next((c for c in self._contacts.values() if c["email"].lower() == lowered), None)

    def _contact(self, contact: str) -> dict[str, Any]:
        found = self._find(contact)
        if found is None:
            raise resend_error("not_found", "Contact not found")
        return found

    def _segment(self, segment_id: str) -> dict[str, None]:
        if segment_id not in self._segments:
            raise resend_error("not_found", "Segment not found")
        return self._segments[segment_id]

    # -- emails ------------------------------------------------------------------------------------
    def on_send(self, req: Recorded) -> Reply:
        def send() -> Reply:
            email = _object(req.json)
            _check_email(email, "")
            return Reply(200, {"id": self._deliver(email, req)})

        return self._idempotent(req, send)

    def on_send_batch(self, req: Recorded) -> Reply:
        def send() -> Reply:
            emails = req.json
            if not isinstance(emails, list) or not emails:
                raise resend_error("validation_error", "The body must be a non-empty array.")
            self.saw_batch("send_batch", len(emails), MAX_BATCH)
            if len(emails) > MAX_BATCH:
                raise resend_error(
                    "validation_error", f"Too many emails: at most {MAX_BATCH} per batch."
                )
            mode = req.headers.get("x-batch-validation", "strict")
            if mode not in ("strict", "permissive"):
                raise resend_error(
                    "validation_error", "x-batch-validation must be strict or permissive."
                )
            valid, errors = [], []
            for i, email in enumerate(emails):
                try:
                    _check_email(_object(email), f"[{i}]")
                except Rejected as rejected:
                    if mode == "strict":  # one invalid email fails the whole batch
                        raise
                    errors.append({"index": i, "message": rejected.reply.body["message"]})
                else:
                    valid.append(email)
            data = [{"id": self._deliver(e, req)} for e in valid]
            return Reply(
                200, {"data": data, "errors": errors} if mode == "permissive" else {"data": data}
            )

        return self._idempotent(req, send)

    def _idempotent(self, req: Recorded, send: Callable[[], Reply]) -> Reply:
        key = req.headers.get("idempotency-key")
        if key is None:
            return send()
        if not 1 <= len(key) <= 256:
            raise resend_error(
                "invalid_idempotency_key", "The idempotency key must be 1 to 256 characters."
            )
        canonical = json.dumps(req.json, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(f"{req.path} {canonical}".encode()).hexdigest()
        now = self.now()
        seen = self._keys.get(key)
        if seen is not None and seen[1] > now:
            if seen[0] != fingerprint:
                raise resend_error(
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload. "
                    "Change your idempotency key or payload.",
                )
            return seen[2]
        reply = send()
        self._keys[key] = (fingerprint, now + self.idempotency_ttl, reply)
        return reply

    def _deliver(self, email: dict[str, Any], req: Recorded) -> str:
        email_id = str(uuid.uuid4())
        key = req.headers.get("idempotency-key")
        self._emails.append({**email, "id": email_id, "idempotency_key": key})
        return email_id


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise resend_error("validation_error", "The body must be a JSON object.")
    return value


# An address, bare or as ``Name <address>``: one @, no whitespace, a dot in the domain.
_ADDRESS = re.compile(
    r"(?:[^<>]*<)?[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\.]+>?"
)


def _check_email(email: dict[str, Any], where: str) -> None:
    """What Resend validates: the required fields, the recipients' addresses, and template
    variables (strings and numbers only)."""

    def fail(message: str) -> Rejected:
        return resend_error("validation_error", f"{where}{' ' if where else ''}{message}")

    to = email.get("to")
    recipients = [to] if isinstance(to, str) else to
    if not isinstance(recipients, list) or not recipients:
        raise fail("Missing `to` field.")
    if len(recipients) > MAX_RECIPIENTS:
        raise fail(f"`to` accepts at most {MAX_RECIPIENTS} recipients.")
    for recipient in recipients:
        if not isinstance(recipient, str) or not _ADDRESS.fullmatch(recipient):
            raise fail(
                f"Invalid `to` field. The email address needs to follow the "
                f"`email@example.com` or `Name <email@example.com>` format: {recipient!r}"
            )
    template = email.get("template")
    if template is not None:  # a template may supply from, subject and body
        if not isinstance(template, dict) or not isinstance(template.get("id"), str):
            raise fail("Invalid `template` field: expected {id, variables?}.")
        variables = template.get("variables", {})
        if not isinstance(variables, dict):
            raise fail("Invalid `template.variables` field: expected an object.")
        for name, value in variables.items():
            # Resend takes strings and numbers only (a bool is not a number, nor is null)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise fail(
                    f"Invalid `template.variables.{name}`: expected a string or a number, "
                    f"got {json.dumps(value)}."
                )
        return
    sender = email.get("from")
    if not isinstance(sender, str) or "@" not in sender:
        raise fail("Missing or invalid `from` field.")
    if not isinstance(email.get("subject"), str) or not email["subject"]:
        raise fail("Missing `subject` field.")
    if not any(isinstance(email.get(k), str) for k in ("html", "text", "react")):
        raise fail("Missing `html` or `text` field.")
