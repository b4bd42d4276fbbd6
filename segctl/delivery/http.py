"""HTTP plumbing shared by the destinations: one client per destination, failures classified.

Messages carry the platform's own words (status, error message) and never a header, a URL
query or a body that could hold a secret.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx

from segctl.definitions.destinations import Destination
from segctl.delivery.retry import Permanent, Transient

#: How an HTTP response is judged: returns the parsed body or raises Transient/Permanent.
Classifier = Callable[[httpx.Response], Any]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # neither seconds nor a date: as if there were none
        return None
    return max(0.0, parsed.timestamp() - time.time())


def body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def default_classifier(response: httpx.Response) -> Any:
    """2xx ok; 408/429/5xx transient; other 4xx permanent."""
    if response.is_success:
        return body(response)
    message = describe(response)
    if response.status_code in (408, 409, 425, 429) or response.status_code >= 500:
        raise Transient(message, retry_after=retry_after(response))
    raise Permanent(message)


def describe(response: httpx.Response) -> str:
    """``HTTP 400: <the platform's message>``, short."""
    data = body(response)
    detail = ""
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            detail = str(error.get("message") or error.get("name") or "")
        elif isinstance(error, str):
            detail = error
        detail = detail or str(data.get("message", ""))
    text = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
    return text[:500]


class Http:
    """A destination's HTTP client: base URL, timeout, classification of failures."""

    def __init__(
        self,
        destination: Destination,
        client: httpx.Client | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.destination = destination
        self.client = client or httpx.Client(timeout=destination.timeout)
        self.owned = client is None
        self.headers = headers or {}

    def request(
        self, method: str, path: str, *, classify: Classifier = default_classifier, **kwargs: Any
    ) -> Any:
        url = path if path.startswith("http") else f"{self.destination.base_url}{path}"
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.client.request(
                method, url, headers=headers, timeout=self.destination.timeout, **kwargs
            )
        except httpx.TimeoutException:
            raise Transient(f"timed out after {self.destination.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise Transient(f"connection failed: {type(exc).__name__}") from None
        return classify(response)

    def close(self) -> None:
        if self.owned:
            self.client.close()
