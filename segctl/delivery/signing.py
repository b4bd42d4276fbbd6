"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where the key is
the base64-decoded secret without its ``whsec_`` prefix, read as the official ``standardwebhooks``
library reads it: surrounding whitespace ignored (a secret pasted into an env file often ends in
a newline), missing ``=`` padding added, and a secret without the prefix base64-decoded too. A
receiver that verifies with the official library and the same secret therefore always agrees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

PREFIX = "whsec_"
#: The Standard Webhooks minimum key length (bytes); shorter keys are accepted with a warning.
MIN_KEY_BYTES = 24
# The standard base64 alphabet and at most two '=' at the end. The official library decodes
# without validation (it silently drops other characters, so a url-safe or mistyped secret
# would sign with a different key than the one the user meant): refuse those instead.
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class SecretError(ValueError):
    """A webhook secret that cannot be read (the message never quotes the secret)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret, as the official library reads it.

    >>> secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\\n") == secret_key(
    ...     "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=")
    True

    Raises:
        SecretError: the secret is empty or not base64.
    """
    text = secret.strip()
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    if not text.rstrip("="):
        raise SecretError("the webhook secret is empty (a key of zero bytes)")
    if not _BASE64.fullmatch(text):
        raise SecretError(
            f"the webhook secret is not base64 (expected {PREFIX} then standard base64: "
            "A-Z, a-z, 0-9, + and /)"
        )
    try:
        # As the official library does: padding added (b64decode ignores any extra '=').
        key = base64.b64decode(text + "==")
    except binascii.Error:
        raise SecretError(
            "the webhook secret is not base64 (its length is not that of any base64 text: "
            "a character is missing or extra)"
        ) from None
    if not key:
        raise SecretError("the webhook secret is empty (a key of zero bytes)")
    return key


def secret_warnings(secret: str) -> list[str]:
    """What is legal but weak about a (readable) secret."""
    key = secret_key(secret)
    if len(key) < MIN_KEY_BYTES:
        return [
            f"the webhook secret's key is {len(key)} bytes, under the Standard Webhooks minimum "
            f'of {MIN_KEY_BYTES} (generate one with: python -c "import base64, os; '
            f"print('{PREFIX}' + base64.b64encode(os.urandom(32)).decode())\")"
        ]
    return []


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
