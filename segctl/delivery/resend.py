"""Resend: transactional emails (``/emails/batch``, 100 per call, ``Idempotency-Key``) and
segments as audiences (contacts + segment membership).

Resend validates a batch strictly: one malformed address fails all 100 emails, so addresses are
checked first (:func:`valid_address`) and a malformed one is skipped and counted. Template
variables are strings and numbers only (:func:`template_variables`).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from segctl.definitions.destinations import Destination
from segctl.delivery.http import Http, body, describe, retry_after
from segctl.delivery.retry import Deferred, Permanent, Transient
from segctl.timeutil import iso

if TYPE_CHECKING:
    from segctl.delivery.model import Batch

QUOTA_ERRORS = ("daily_quota_exceeded", "monthly_quota_exceeded")


def classify(response: httpx.Response) -> Any:
    """429 rate_limit_exceeded is retried; quota errors wait for a later push."""
    if response.is_success:
        return body(response)
    data = body(response)
    name = data.get("name", "") if isinstance(data, dict) else ""
    if response.status_code == 429 and name in QUOTA_ERRORS:
        raise Deferred(describe(response), retry_after=3600.0)
    if response.status_code == 429 or response.status_code >= 500:
        raise Transient(describe(response), retry_after=retry_after(response))
    raise Permanent(describe(response))


# What Resend's strict batch validation refuses in a `to` address (one such address fails the
# whole batch of 100): no single @, whitespace, brackets, quotes or separators, no dot in the
# domain. Such addresses are skipped before sending, counted, with the reason in the outbox.
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\.]+")


def valid_address(raw: Any) -> bool:
    """Whether Resend would take ``raw`` (trimmed) as a recipient address.

    >>> [valid_address(a) for a in (" mary@example.com ", "mary@example", "a b@c.de")]
    [True, False, False]
    """
    return isinstance(raw, str) and _ADDRESS.fullmatch(raw.strip()) is not None


def why_not_sent(person: dict[str, Any] | None, reachable: bool) -> str | None:
    """Why an email to ``person`` is skipped (the outbox's reason), None when it is sent: the
    one rule of a push and of ``run --dry-run``'s plan. ``reachable``: the person gave the
    consent the project asks for and is not suppressed.

    >>> [why_not_sent(p, True) for p in (None, {"email": "x@y"}, {"email": "x@y.io"})]
    ['no email address', 'malformed email address', None]
    """
    if person is None or not person.get("email"):
        return "no email address"
    if not valid_address(person["email"]):  # would fail its whole batch of 100
        return "malformed email address"
    if not reachable:
        return "no consent or suppressed"
    return None


def email(row: dict[str, Any], person: dict[str, Any], sender: str) -> dict[str, Any]:
    """One email of a batch: the template with the person's columns (and the action's
    ``variables``) as template variables."""
    spec = json.loads(row["spec"])
    variables = template_variables(person)
    variables.update(template_variables(spec.get("variables") or {}))
    message: dict[str, Any] = {
        "from": sender,
        "to": [str(person["email"]).strip()],
        "template": {"id": spec["template"], "variables": variables},
    }
    if spec.get("subject"):
        message["subject"] = spec["subject"]
    return message


def template_variables(values: dict[str, Any]) -> dict[str, str | int | float]:
    """Template variables as Resend takes them: strings and numbers only. Booleans and dates
    become text (``true``, ``2026-03-01``), NULLs are left out (the template's default shows).

    >>> template_variables({"n": 3, "vip": True, "since": None, "plan": "pro"})
    {'n': 3, 'vip': 'true', 'plan': 'pro'}
    """
    out: dict[str, str | int | float] = {}
    for key, value in values.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # NULL
        out[str(key)] = _variable(value)
    return out


def _variable(value: Any) -> str | int | float:
    if isinstance(value, bool):  # before int: a bool is an int in Python, not in Resend
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (datetime, date, time)):
        return _when(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _when(value: datetime | date | time) -> str:
    """A moment as UTC with a ``Z`` (segctl's naive timestamps are UTC); a date or a time
    as it is."""
    return iso(value) if isinstance(value, datetime) else value.isoformat()


class EmailSender:
    def __init__(self, destination: Destination, client: httpx.Client | None) -> None:
        self.destination = destination
        self.http = Http(
            destination, client, {"authorization": f"Bearer {destination.secrets['api_key']}"}
        )

    def send(self, batch: Batch) -> None:
        """The batch's stored messages (``payload``: made once, so that a retry sends the body
        its key was first sent with)."""
        messages = [json.loads(r["payload"]) for r in batch.rows]
        self.http.request(
            "POST",
            "/emails/batch",
            json=messages,
            headers={"idempotency-key": batch.key},
            classify=classify,
        )

    def close(self) -> None:
        self.http.close()
