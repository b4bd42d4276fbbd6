"""Webhooks signed per Standard Webhooks; the batch key is the ``webhook-id``, so a retry (even
after a crash) carries the same id and the receiver can drop duplicates."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from segctl.definitions.destinations import Destination
from segctl.delivery.http import Http, default_classifier, describe
from segctl.delivery.retry import Deferred, Permanent
from segctl.delivery.signing import headers as signed_headers
from segctl.textfmt import json_text, json_value
from segctl.timeutil import iso

if TYPE_CHECKING:
    from segctl.delivery.model import Batch


def payload(row: dict[str, Any], person: dict[str, Any] | None) -> dict[str, Any]:
    """The SPEC's webhook body for one transition, with the action's static ``payload``
    object when it sets one (``payload: {action: send_retention_offer}``)."""

    body = {
        "type": f"segment.{'entered' if row['transition'] == 'enter' else 'exited'}",
        "segment": row["segment"],
        "person_id": row["person_id"],
        "as_of": iso(row["as_of"]),
        "run_id": row["run_id"],
        "person": {k: _jsonable(v) for k, v in (person or {}).items()},
    }
    static = json.loads(row["spec"]).get("payload") if row.get("spec") else None
    if static is not None:
        body["payload"] = static
    return body


def _jsonable(value: Any) -> Any:
    """A person's value as the body holds it (a nested one is converted when written)."""
    try:
        return json_value(value)
    except TypeError:
        return value


class Gone(Permanent):
    """410 Gone: the endpoint is disabled (Standard Webhooks); nothing more goes to it, in
    this push or a later one, until ``segctl push --retry-failed`` (its message's failure,
    :data:`GONE`, is what says so)."""


#: How a 410's failure is recorded; while a destination has such a failure, it is disabled.
GONE = "the endpoint is gone; fix the destination's url, then segctl push --retry-failed"


def classify(response: httpx.Response) -> Any:
    if response.status_code == 410:
        raise Gone(f"{describe(response)} ({GONE})")
    return default_classifier(response)


def endpoint(url: str, base_url: str) -> str:
    """Where a webhook is POSTed: its ``url``, or with a ``base_url`` (a proxy, a local
    receiver; SPEC 1: every destination takes one) that scheme, host and port before the
    url's path and query."""
    if not base_url:
        return url
    parts = urlsplit(url)
    return base_url.rstrip("/") + urlunsplit(("", "", parts.path, parts.query, ""))


class WebhookSender:
    def __init__(
        self, destination: Destination, client: httpx.Client | None, *, gone: bool = False
    ) -> None:
        self.destination = destination
        self.url = endpoint(str(destination.settings.get("url")), destination.base_url)
        extra = destination.settings.get("headers") or {}
        self.http = Http(destination, client, {"content-type": "application/json", **extra})
        self.gone = gone  # answered 410 (in this push, or one before: it is disabled)

    def send(self, batch: Batch, people: dict[str, dict[str, Any]]) -> None:
        if self.gone:  # not sent: pending until the url is fixed and the failure retried
            raise Deferred(
                "not sent: the endpoint answered 410 Gone and is disabled until segctl push "
                "--retry-failed (once the destination's url is fixed)"
            )
        bodies = [payload(r, people.get(r["person_id"])) for r in batch.rows]
        single = json.loads(batch.rows[0]["spec"]).get("batch", 1) == 1 and len(bodies) == 1
        data = json_text(bodies[0] if single else bodies, sort_keys=True).encode()
        secret = self.destination.secrets["secret"]
        headers = signed_headers(secret, batch.key, int(time.time()), data)
        try:
            self.http.request("POST", self.url, content=data, headers=headers, classify=classify)
        except Gone:
            self.gone = True
            raise

    def close(self) -> None:
        self.http.close()
