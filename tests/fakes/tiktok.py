"""TikTok Business API v1.3, custom audiences (shared/API_CONTRACTS.md, "TikTok").

Every answer is the envelope ``{"code", "message", "request_id", "data"}``; errors are a non-zero
``code`` with HTTP 200, as TikTok does (40002 invalid parameter, 40100 rate limit, 40104/40105
missing/invalid token, 40001 no permission). An audience holds a set of hashes.

Platform errors for ``inject(platform_error=...)``: an envelope code (40100 for throttling).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .base import FakeServer, PlatformError, Recorded, Rejected, Reply

DIGESTS = {"SHA256": re.compile(r"[0-9a-f]{64}"), "MD5": re.compile(r"[0-9a-f]{32}")}
CALCULATE_TYPES = {
    "EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "GAID_SHA256", "IDFA_MD5", "GAID_MD5",
}  # fmt: skip
ACTIONS = {"APPEND", "REMOVE", "REPLACE"}
MAX_FILE_BYTES = 1 << 30
BASE = r"/open_api/v1\.3/dmp/custom_audience"


def envelope(code: int = 0, message: str = "OK", data: Any = None, status: int = 200) -> Reply:
    body = {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": data or {}}
    return Reply(status, body)


def tiktok_error(code: int, message: str) -> Rejected:
    return Rejected(envelope(code, message))


@dataclass
class _File:
    advertiser_id: str
    calculate_type: str
    hashes: set[str]


@dataclass
class _Audience:
    advertiser_id: str
    name: str
    calculate_type: str
    hashes: set[str] = field(default_factory=set)


class TikTokFake(FakeServer):
    """TikTok DMP custom audience file upload, create and update.

    Args:
        token: the ``Access-Token`` to accept.
        min_audience_size: an update leaving fewer people than this fails (TikTok: 1,000).
        advertiser_id: when given, other advertiser ids get 40001 (no permission).
        rate_limit: (requests, seconds); over it answers HTTP 200 with code 40100.
        latency: seconds every request takes.
    """

    routes = (
        ("POST", BASE + r"/file/upload/?", "upload"),
        ("POST", BASE + r"/create/?", "create"),
        ("POST", BASE + r"/update/?", "update"),
    )
    transient_errors = (40100,)

    def __init__(
        self,
        token: str = "tiktok-token",
        *,
        min_audience_size: int = 1000,
        advertiser_id: str | None = None,
        rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__(rate_limit=rate_limit, latency=latency)
        self.token = token
        self.min_audience_size = min_audience_size
        self.advertiser_id = advertiser_id
        self._files: dict[str, _File] = {}
        self._audiences: dict[str, _Audience] = {}
        self._ids = itertools.count(7000000000000000001)

    # -- state for tests ---------------------------------------------------------------------------
    def create_audience(
        self,
        advertiser_id: str = "7001",
        calculate_type: str = "EMAIL_SHA256",
        hashes: Iterable[str] = (),
        name: str = "test",
    ) -> str:
        """Create an audience directly (TikTok needs a file; tests may start empty)."""
        with self.lock:
            audience_id = str(next(self._ids))
            self._audiences[audience_id] = _Audience(
                advertiser_id, name, calculate_type, set(hashes)
            )
            return audience_id

    def audience(self, audience_id: str) -> set[str]:
        """The hashes currently in an audience."""
        with self.lock:
            return set(self._audiences[audience_id].hashes)

    def audience_ids(self) -> list[str]:
        with self.lock:
            return list(self._audiences)

    def file(self, file_path: str) -> set[str]:
        """The hashes of an uploaded file."""
        with self.lock:
            return set(self._files[file_path].hashes)

    # -- platform hooks ----------------------------------------------------------------------------
    def authenticate(self, req: Recorded) -> None:
        token = req.headers.get("access-token")
        if not token:
            raise tiktok_error(40104, "Access token is null; set the Access-Token header.")
        if token != self.token:
            raise tiktok_error(40105, "The access token is invalid or has been revoked.")

    def error_reply(self, status: int, message: str) -> Reply:
        return envelope(50000 if status >= 500 else 40002, message, status=status)

    def platform_reply(
        self, error: PlatformError, retry_after: float | None, req: Recorded
    ) -> Reply:
        code = int(error) if not isinstance(error, tuple) else error[0]
        return envelope(
            code, "Too many requests. Please retry later." if code == 40100 else f"injected {code}"
        )

    def throttle_reply(self) -> Reply:
        return envelope(40100, "Too many requests. Please retry later.")

    # -- endpoints ---------------------------------------------------------------------------------
    def on_upload(self, req: Recorded) -> Reply:
        advertiser_id = self._advertiser(req.form.get("advertiser_id"))
        calculate_type = req.form.get("calculate_type", "")
        if calculate_type not in CALCULATE_TYPES:
            raise tiktok_error(40002, f"calculate_type: invalid value {calculate_type!r}")
        if "file" not in req.files:
            raise tiktok_error(40002, "file: a file is required")
        filename, data = req.files["file"]
        if not filename.lower().endswith((".csv", ".txt")):
            raise tiktok_error(40002, "file: only .csv and .txt files are supported")
        if len(data) >= MAX_FILE_BYTES:
            raise tiktok_error(40002, "file: the file must be under 1 GB")
        signature = req.form.get("file_signature", "")
        if signature.lower() != hashlib.md5(data).hexdigest():
            raise tiktok_error(40002, "file_signature: does not match the MD5 of the file")
        try:
            lines = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise tiktok_error(40002, "file: not UTF-8 text") from None
        if not lines:
            raise tiktok_error(40002, "file: the file is empty")
        self.saw_batch("upload", len(lines), None)
        pattern = DIGESTS[calculate_type.rsplit("_", 1)[1]]
        bad = [i for i, line in enumerate(lines) if not pattern.fullmatch(line)]
        for i in bad:
            if not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", lines[i]):
                self.leak(req.endpoint, lines[i])
        if bad:
            raise tiktok_error(
                40002,
                f"file: {len(bad)} line(s) are not lowercase {calculate_type} digests "
                f"(first at line {bad[0] + 1})",
            )
        file_path = f"dmp/{advertiser_id}/{uuid.uuid4().hex}{filename[filename.rfind('.') :]}"
        self._files[file_path] = _File(advertiser_id, calculate_type, set(lines))
        return envelope(data={"file_path": file_path})

    def on_create(self, req: Recorded) -> Reply:
        body = _json(req)
        advertiser_id = self._advertiser(body.get("advertiser_id"))
        name = body.get("custom_audience_name")
        if not isinstance(name, str) or not 0 < len(name) <= 128:
            raise tiktok_error(40002, "custom_audience_name: required, at most 128 characters")
        calculate_type = body.get("calculate_type")
        if calculate_type not in CALCULATE_TYPES:
            raise tiktok_error(40002, f"calculate_type: invalid value {calculate_type!r}")
        hashes = self._hashes(body.get("file_paths"), advertiser_id, calculate_type)
        audience_id = str(next(self._ids))
        self._audiences[audience_id] = _Audience(advertiser_id, name, calculate_type, hashes)
        return envelope(data={"custom_audience_id": audience_id})

    def on_update(self, req: Recorded) -> Reply:
        body = _json(req)
        advertiser_id = self._advertiser(body.get("advertiser_id"))
        audience_id = str(body.get("custom_audience_id", ""))
        audience = self._audiences.get(audience_id)
        if audience is None or audience.advertiser_id != advertiser_id:
            raise tiktok_error(40002, f"custom_audience_id: audience {audience_id!r} not found")
        action = body.get("action")
        if action not in ACTIONS:
            raise tiktok_error(40002, f"action: must be one of {sorted(ACTIONS)}, got {action!r}")
        hashes = self._hashes(body.get("file_paths"), advertiser_id, audience.calculate_type)
        after = {
            "APPEND": audience.hashes | hashes,
            "REMOVE": audience.hashes - hashes,
            "REPLACE": hashes,
        }[action]
        if len(after) < self.min_audience_size:
            raise tiktok_error(
                40002,
                f"The audience would have {len(after)} people after this update; "
                f"at least {self.min_audience_size} are required",
            )
        audience.hashes = after
        return envelope(data={"custom_audience_id": audience_id})

    # -- helpers -----------------------------------------------------------------------------------
    def _advertiser(self, value: Any) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
            raise tiktok_error(40002, "advertiser_id: required")
        if self.advertiser_id is not None and str(value) != self.advertiser_id:
            raise tiktok_error(40001, f"No permission to operate advertiser {value}")
        return str(value)

    def _hashes(self, paths: Any, advertiser_id: str, calculate_type: Any) -> set[str]:
        if not isinstance(paths, list) or not paths:
            raise tiktok_error(40002, "file_paths: at least one uploaded file path is required")
        hashes: set[str] = set()
        for path in paths:
            uploaded = self._files.get(path) if isinstance(path, str) else None
            if uploaded is None or uploaded.advertiser_id != advertiser_id:
                raise tiktok_error(40002, f"file_paths: unknown file {path!r}")
            if uploaded.calculate_type != calculate_type:
                raise tiktok_error(
                    40002,
                    f"file_paths: {path} is {uploaded.calculate_type}, the audience is "
                    f"{calculate_type} (one calculate_type per audience)",
                )
            hashes |= uploaded.hashes
        return hashes


def _json(req: Recorded) -> dict[str, Any]:
    if not isinstance(req.json, dict):
        raise tiktok_error(40002, "The request body must be a JSON object")
    return req.json
