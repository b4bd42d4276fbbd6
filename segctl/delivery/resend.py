"""Resend: transactional emails (``/emails/batch``, 100 per call, ``Idempotency-Key``) and
segments as audiences (contacts + segment membership)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from segctl.delivery.destinations import Destination
from segctl.delivery.http import Http, body, describe, retry_after
from segctl.delivery.retry import Deferred, Permanent, Transient

if TYPE_CHECKING:
    from segctl.delivery.worker import Batch

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


def email(row: dict[str, Any], person: dict[str, Any], sender: str) -> dict[str, Any]:
    spec = json.loads(row["spec"])
    variables = {k: _text(v) for k, v in person.items()}
    variables.update({k: _text(v) for k, v in (spec.get("variables") or {}).items()})
    message: dict[str, Any] = {
        "from": sender,
        "to": [str(person["email"]).strip()],
        "template": {"id": spec["template"], "variables": variables},
    }
    if spec.get("subject"):
        message["subject"] = spec["subject"]
    return message


def _text(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class EmailSender:
    def __init__(self, destination: Destination, client: httpx.Client | None) -> None:
        self.destination = destination
        self.http = Http(
            destination, client, {"authorization": f"Bearer {destination.secrets['api_key']}"}
        )

    def send(self, batch: Batch, people: dict[str, dict[str, Any]]) -> None:
        sender = str(self.destination.settings["from"])
        messages = [email(r, people[r["person_id"]], sender) for r in batch.rows]
        self.http.request(
            "POST",
            "/emails/batch",
            json=messages,
            headers={"idempotency-key": batch.key},
            classify=classify,
        )

    def close(self) -> None:
        self.http.close()
