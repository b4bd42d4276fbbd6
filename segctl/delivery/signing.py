"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where the key is
the base64-decoded secret without its ``whsec_`` prefix, read as the official ``standardwebhooks``
library reads it (:func:`segctl.definitions.destinations.secret_key`, which checks it when the
configuration loads): a receiver that verifies with the official library and the same secret
therefore always agrees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from segctl.definitions.destinations import secret_key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
