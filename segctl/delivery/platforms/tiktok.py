"""TikTok custom audiences (Business API v1.3): files of hashes, uploaded and then applied.

Every change is a file of SHA-256 hashes, one per line, uploaded with the MD5 of its bytes
(``dmp/custom_audience/file/upload/`` -> ``data.file_path``) and applied to the audience by
``dmp/custom_audience/update/`` with action APPEND, REMOVE or REPLACE. A TikTok audience has a
single ``calculate_type``: the destination's ``calculate_type`` setting, EMAIL_SHA256 (default)
or PHONE_SHA256; persons without that identifier are skipped.

TikTok answers errors inside its envelope ``{"code", "message", "request_id", "data"}``, usually
with HTTP 200. Code 40100 (rate limit) and the 5xxxx system errors are retried; every other code
is permanent and keeps TikTok's message, such as an update that would leave the audience below
its 1,000 people minimum. Retrying is safe: an upload only creates a new file, and the update
actions are set operations.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from segctl.definitions.destinations import TIKTOK_CALCULATE_TYPES
from segctl.delivery.http import body, describe, retry_after
from segctl.delivery.identifiers import HashedIdentity, IdentityStats
from segctl.delivery.platforms.base import AudienceClient, Figures, Member
from segctl.delivery.retry import Permanent, Transient

#: The API's path under the host; a destination's ``base_url`` is the host, as for Meta and
#: Google (a ``base_url`` that already ends in it, as segctl once required, still works).
API_PATH = "/open_api/v1.3"
UPLOAD = "/dmp/custom_audience/file/upload/"
UPDATE = "/dmp/custom_audience/update/"
#: calculate_type -> the HashedIdentity field it is made of.
CALCULATE_TYPES = dict(zip(TIKTOK_CALCULATE_TYPES, ("email", "phone"), strict=True))
DEFAULT_CALCULATE_TYPE = "EMAIL_SHA256"
RATE_LIMITED = 40100


def classify(response: httpx.Response) -> dict[str, Any]:
    """TikTok's envelope -> its ``data``, or Transient (40100, 5xxxx, HTTP 429/5xx) / Permanent.

    A non-zero ``code`` is an error even with HTTP 200; the message keeps TikTok's code, message
    and request id (what TikTok support asks for).
    """
    status = response.status_code
    data = body(response)
    code = data.get("code") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(code, int) and not isinstance(code, bool):
        if code == 0 and response.is_success:
            payload = data.get("data")
            return payload if isinstance(payload, dict) else {}
        message = f"TikTok {code}: {data.get('message') or 'no message'}"
        if status != 200:
            message = f"HTTP {status}, {message}"
        if data.get("request_id"):
            message += f" (request_id {data['request_id']})"
    else:  # not TikTok's envelope: a proxy or a gateway answered
        code = None
        message = describe(response)
        if response.is_success:
            message = f"HTTP {status}: not a TikTok API response"
    if code == RATE_LIMITED or (code or 0) >= 50000 or status in (408, 429) or status >= 500:
        raise Transient(message[:500], retry_after=retry_after(response))
    raise Permanent(message[:500])


def api_path(base_url: str) -> str:
    """What goes between ``base_url`` and an endpoint: the API path, unless already there.

    >>> api_path("https://proxy.example.com"), api_path("https://h.example/open_api/v1.3")
    ('/open_api/v1.3', '')
    """
    return "" if base_url.rstrip("/").endswith(API_PATH) else API_PATH


class TikTokAudience(AudienceClient):
    """A TikTok custom audience (``audience_id``: the custom_audience_id), changed one
    uploaded file at a time; the destination sets ``advertiser_id`` and ``calculate_type``."""

    platform = "tiktok"
    max_batch = 1_000_000  # hashes per file: 65 bytes a line, far below TikTok's 1 GB a file

    def auth_headers(self) -> dict[str, str]:
        return {"Access-Token": self.destination.secrets.get("access_token", "")}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``path`` under the API's path on the destination's host."""
        base = self.destination.base_url.rstrip("/")
        return super().request(method, base + api_path(base) + path, **kwargs)

    @property
    def calculate_type(self) -> str:
        """The audience's identifier type; Permanent when it is not one segctl can send."""
        value = str(self.destination.settings.get("calculate_type") or DEFAULT_CALCULATE_TYPE)
        if value not in CALCULATE_TYPES:
            raise Permanent(
                f"destination '{self.destination.name}': calculate_type {value!r} is not "
                f"supported (use {' or '.join(CALCULATE_TYPES)})"
            )
        return value

    def member(self, identity: HashedIdentity, stats: IdentityStats) -> Member | None:
        """The person's hashes, or None (skipped) without the audience's identifier."""
        if self._hash(identity) is None:
            if not identity.empty:  # has the other identifier, which this audience cannot take
                stats.no_identifier += 1
            return None
        return Member(identity.person_id, identity=identity)

    def add(self, audience_id: str, members: list[Member]) -> Figures:
        return self._update("APPEND", audience_id, members)

    def remove(self, audience_id: str, members: list[Member]) -> Figures:
        return self._update("REMOVE", audience_id, members)

    def replace(self, audience_id: str, members: list[Member]) -> Figures:
        return self._update("REPLACE", audience_id, members)

    # ---- one change: upload a file, apply it --------------------------------------------------

    def _update(self, action: str, audience_id: str, members: list[Member]) -> Figures:
        calculate_type = self.calculate_type
        # Stored members without the audience's identifier were never sent: nothing to remove.
        # Persons sharing an identifier make one line.
        hashes = list(dict.fromkeys(h for m in members if (h := self._hash(m.identity))))
        if not hashes:
            if action == "REPLACE":
                raise Permanent(
                    f"no member has a {calculate_type} identifier: TikTok cannot empty an "
                    "audience (an update may not leave fewer than 1,000 people)"
                )
            return Figures()
        file_path = self._upload(hashes, calculate_type, action)
        self.request(
            "POST",
            UPDATE,
            json={
                "advertiser_id": self._advertiser_id,
                "custom_audience_id": audience_id,
                "file_paths": [file_path],
                "action": action,
            },
            classify=classify,
        )
        return Figures(received=len(hashes), details={"calculate_type": calculate_type})

    def _upload(self, hashes: list[str], calculate_type: str, action: str) -> str:
        content = "".join(f"{digest}\n" for digest in hashes).encode("ascii")
        data = self.request(
            "POST",
            UPLOAD,
            data={
                "advertiser_id": self._advertiser_id,
                "calculate_type": calculate_type,
                "file_signature": hashlib.md5(content, usedforsecurity=False).hexdigest(),
            },
            files={"file": (f"segctl-{action.lower()}.txt", content, "text/plain")},
            classify=classify,
        )
        file_path = data.get("file_path")
        if not isinstance(file_path, str) or not file_path:
            raise Permanent("TikTok's file upload answered no data.file_path")
        return file_path

    def _hash(self, identity: HashedIdentity | None) -> str | None:
        """The hash this audience takes (email or phone), if the person has it."""
        if identity is None:
            return None
        return identity.email if CALCULATE_TYPES[self.calculate_type] == "email" else identity.phone

    @property
    def _advertiser_id(self) -> str:
        return str(self.destination.settings.get("advertiser_id", ""))
