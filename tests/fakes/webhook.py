"""A webhook receiver verifying Standard Webhooks signatures (shared/API_CONTRACTS.md, "Webhooks").

Accepts a POST on any path. A missing or wrong signature, or a timestamp further than
``tolerance`` seconds from now, is refused with 401 and not recorded as a delivery. Answers 410,
429 (with ``retry-after``, default 1 s) or 5xx on request through ``inject(status=...)``; with
``after=True`` the delivery is recorded and the answer is still an error (the receiver processed
it, the sender must retry), which is what ``unique_ids()`` de-duplicates.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from .base import FakeServer, PlatformError, Recorded, Rejected, Reply, retry_after_header

TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``webhook-signature`` value for a message: ``v1,<base64 HMAC-SHA256>``, computed by
    the official ``standardwebhooks`` library (so the receiver reads the secret exactly as a
    real receiver does: padding added, no-prefix secrets base64-decoded)."""
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    return Webhook(secret).sign(msg_id, moment, body)


@dataclass(frozen=True)
class Delivery:
    id: str  # webhook-id
    timestamp: int
    path: str
    body: bytes
    payload: Any  # the decoded JSON: an event, or a list of events for batches
    headers: dict[str, str]


class WebhookFake(FakeServer):
    """A Standard Webhooks receiver.

    Args:
        secret: the signing secret, ``whsec_<base64>``.
        tolerance: seconds a timestamp may differ from now (None: do not check).
        latency: seconds every request takes.
        rate_limit: (requests, seconds) the receiver accepts; over it answers 429 (retry-after 1).
        max_concurrent: requests in flight the sender should keep to (not refused; a violation
            for ``assert_limits``).
    """

    routes = (("POST", r"/.*", "deliver"),)
    transient_errors = (429, 503)

    def __init__(
        self,
        secret: str = TEST_SECRET,
        *,
        tolerance: float | None = 300.0,
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        max_concurrent: int | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit, max_concurrent=max_concurrent, latency=latency)
        self.secret = secret
        self.tolerance = tolerance
        self._deliveries: list[Delivery] = []

    @property
    def url(self) -> str:
        return self.base_url + "/webhook"

    @property
    def deliveries(self) -> list[Delivery]:
        """Every verified delivery, retries included."""
        with self.lock:
            return list(self._deliveries)

    def unique_ids(self) -> list[str]:
        """The webhook-ids delivered, each once, in first-delivery order."""
        return list(dict.fromkeys(d.id for d in self.deliveries))

    def events(self) -> list[Any]:
        """The events of the deliveries de-duplicated by webhook-id, batches flattened."""
        first = {d.id: d for d in reversed(self.deliveries)}
        events: list[Any] = []
        for msg_id in self.unique_ids():
            payload = first[msg_id].payload
            events.extend(payload if isinstance(payload, list) else [payload])
        return events

    def error_reply(self, status: int, message: str) -> Reply:
        headers = {"retry-after": "1"} if status == 429 else {}
        return Reply(status, {"error": message}, headers)

    def platform_reply(
        self, error: PlatformError, retry_after: float | None, req: Recorded
    ) -> Reply:
        reply = self.error_reply(int(error) if not isinstance(error, tuple) else error[0], "busy")
        if retry_after is not None:
            reply.headers["retry-after"] = retry_after_header(retry_after)
        return reply

    def on_deliver(self, req: Recorded) -> Reply:
        msg_id = req.headers.get("webhook-id", "")
        timestamp = req.headers.get("webhook-timestamp", "")
        signatures = req.headers.get("webhook-signature", "").split()
        if not (msg_id and timestamp.isdigit() and signatures):
            raise _unauthorised("missing webhook-id, webhook-timestamp or webhook-signature")
        if self.tolerance is not None and abs(self.wall() - int(timestamp)) > self.tolerance:
            raise _unauthorised("webhook-timestamp is too old or too new")
        expected = sign(self.secret, msg_id, timestamp, req.body)
        if not any(hmac.compare_digest(expected, s) for s in signatures):
            raise _unauthorised("no matching signature")
        try:  # strict JSON, as every receiver but Python's reads it: no NaN, no Infinity
            payload = json.loads(req.body, parse_constant=_not_json)
        except ValueError:
            raise Rejected(Reply(400, {"error": "the body is not JSON"})) from None
        self._deliveries.append(
            Delivery(msg_id, int(timestamp), req.path, req.body, payload, dict(req.headers))
        )
        return Reply(204, None)


def _unauthorised(message: str) -> Rejected:
    return Rejected(Reply(401, {"error": message}))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
