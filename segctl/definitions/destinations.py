"""Destinations of segctl.yaml -> typed, checked :class:`Destination` objects.

Secrets (tokens, API keys, webhook secrets) are kept apart from the other settings and never
appear in a message, a log line or the state; :func:`secret_values` lists them so that output
can be redacted as a last line of defence. A webhook secret is read here as the official
Standard Webhooks libraries read it (:func:`secret_key`), so a secret the receiver cannot
verify with is a configuration error; :mod:`segctl.delivery.signing` signs with the same key.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from segctl.definitions.source import Pos, Problems, YMap, did_you_mean, valid_keys

COMMON = ("type", "base_url", "timeout", "max_retries", "rate_limit", "concurrency", "backoff")
TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    # type: {"required": ..., "optional": ..., "secret": ...}
    "meta": {
        "required": ("ad_account_id", "access_token"),
        "optional": ("api_version",),
        "secret": ("access_token",),
    },
    "google": {
        "required": ("operating_account_id", "access_token"),
        "optional": ("account_type", "consent"),
        "secret": ("access_token",),
    },
    "tiktok": {
        "required": ("advertiser_id", "access_token"),
        "optional": ("calculate_type",),
        "secret": ("access_token",),
    },
    "resend": {"required": ("api_key", "from"), "optional": ("reply_to",), "secret": ("api_key",)},
    "webhook": {"required": ("url", "secret"), "optional": ("headers",), "secret": ("secret",)},
    "file": {"required": ("path",), "optional": ("platform",), "secret": ()},
}
BASE_URLS = {
    "meta": "https://graph.facebook.com",
    "google": "https://datamanager.googleapis.com",
    "tiktok": "https://business-api.tiktok.com",
    "resend": "https://api.resend.com",
}
#: Settings whose values the platforms take from a list (checked by ``validate``; the
#: platforms' clients read them from here).
GOOGLE_ACCOUNT_TYPES = (
    "GOOGLE_ADS",
    "DISPLAY_VIDEO_PARTNER",
    "DISPLAY_VIDEO_ADVERTISER",
    "DATA_PARTNER",
)
GOOGLE_CONSENT_VALUES = ("CONSENT_GRANTED", "CONSENT_DENIED", "CONSENT_STATUS_UNSPECIFIED")
GOOGLE_CONSENT_KEYS = ("adUserData", "adPersonalization")
TIKTOK_CALCULATE_TYPES = ("EMAIL_SHA256", "PHONE_SHA256")
FILE_PLATFORMS = ("meta", "google", "tiktok")
#: An http(s) URL with a host: ``base_url`` and a webhook's ``url``.
HTTP_URL = re.compile(r"https?://[^/\s?#]+(/\S*)?", re.IGNORECASE)
# Requests per second the platforms document (or a safe default).
# Resend allows 2 requests/second per team: stay a little under it.
DEFAULT_RATE = {"meta": 10.0, "google": 5.0, "tiktok": 10.0, "resend": 1.8, "webhook": 50.0}
DEFAULT_CONCURRENCY = {"meta": 4, "google": 8, "tiktok": 2, "resend": 2, "webhook": 8}


@dataclass(frozen=True)
class Destination:
    name: str
    type: str
    settings: dict[str, Any]
    secrets: dict[str, str] = field(repr=False)
    base_url: str = ""
    timeout: float = 30.0
    max_retries: int = 5
    rate_limit: float | None = None
    concurrency: int = 4
    backoff: float = 0.5
    #: What is legal but unwise in the settings (a short webhook key): ``validate`` prints them.
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never show secrets, even in a debugger
        return f"Destination(name={self.name!r}, type={self.type!r})"


def parse_destinations(raw: dict[str, Any], problems: Problems, pos: Pos) -> dict[str, Destination]:
    out: dict[str, Destination] = {}
    for name, spec in raw.items():
        at = raw.key_at(name) if isinstance(raw, YMap) else pos
        if not isinstance(spec, dict):
            problems.add(at, f"destination '{name}' must be a mapping with a 'type'")
            continue
        kind = spec.get("type")
        if kind not in TYPES:
            where = spec.at("type") if isinstance(spec, YMap) else at
            problems.add(
                where,
                f"destination '{name}': unknown type {kind!r}"
                f"{did_you_mean(str(kind), TYPES)} (types: {', '.join(TYPES)})",
            )
            continue
        rules = TYPES[kind]
        allowed = (*COMMON, *rules["required"], *rules["optional"])
        ok = True
        for key in spec:
            if key not in allowed:
                where = spec.key_at(key) if isinstance(spec, YMap) else at
                problems.add(
                    where, f"destination '{name}': unknown key '{key}'{valid_keys(key, allowed)}"
                )
                ok = False
        for key in rules["required"]:
            if key in spec and spec[key] == "":  # given, empty (a variable set to nothing?)
                where = spec.at(key) if isinstance(spec, YMap) else at
                problems.add(
                    where,
                    f"destination '{name}' ({kind}): '{key}' is empty (an environment "
                    "variable it names is set to nothing?)",
                )
                ok = False
            elif not spec.get(key):
                problems.add(
                    at,
                    f"destination '{name}' ({kind}) needs '{key}'"
                    + (
                        " (put the secret in an environment variable: "
                        f'{key}: "${{{name.upper()}_{key.upper()}}}")'
                        if key in rules["secret"]
                        else ""
                    ),
                )
                ok = False
        numbers = {}
        for key, low in (
            ("timeout", 0.001),
            ("max_retries", 0),
            ("rate_limit", 0.001),
            ("concurrency", 1),
            ("backoff", 0),
        ):
            value = spec.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                where = spec.at(key) if isinstance(spec, YMap) else at
                problems.add(where, f"destination '{name}': '{key}' must be a number >= {low}")
                ok = False
            numbers[key] = value
        ok = _check_settings(name, kind, spec, at, problems) and ok
        warnings: list[str] = []
        if ok and kind == "webhook":
            ok = _check_webhook_secret(name, spec, at, problems, warnings)
        if not ok:
            continue
        secrets = {k: str(spec[k]) for k in rules["secret"] if spec.get(k)}
        settings = {k: v for k, v in spec.items() if k not in COMMON and k not in secrets}
        out[name] = Destination(
            name=name,
            type=kind,
            settings=settings,
            secrets=secrets,
            base_url=str(spec.get("base_url") or BASE_URLS.get(kind, "")).rstrip("/"),
            timeout=float(numbers.get("timeout", 30.0)),
            max_retries=int(numbers.get("max_retries", 5)),
            rate_limit=float(numbers["rate_limit"])
            if "rate_limit" in numbers
            else DEFAULT_RATE.get(kind),
            concurrency=int(numbers.get("concurrency", DEFAULT_CONCURRENCY.get(kind, 4))),
            backoff=float(numbers.get("backoff", 0.5)),
            warnings=tuple(warnings),
        )
    return out


def _check_settings(
    name: str, kind: str, spec: dict[str, Any], at: Pos, problems: Problems
) -> bool:
    """The settings a platform would refuse at the first delivery, said by ``validate``
    instead, at their place: a URL that is not http(s) with a host, a value not in the
    platform's list, a Google account id that is not digits."""
    found: list[tuple[str, str]] = []

    def one_of(key: str, values: tuple[str, ...]) -> None:
        value = spec.get(key)
        if value is not None and value not in values:
            found.append((key, f"'{key}' must be one of {', '.join(values)}, not {value!r}"))

    for key in ("base_url", *(("url",) if kind == "webhook" else ())):
        value = spec.get(key)
        if value and not (isinstance(value, str) and HTTP_URL.fullmatch(value.strip())):
            found.append((key, f"'{key}' must be an http(s) URL with a host, not {value!r}"))
    if kind == "google":
        account = spec.get("operating_account_id")
        if account and not re.fullmatch(r"[\d\s-]+", str(account)):
            found.append(
                ("operating_account_id", "'operating_account_id' must be digits (dashes "
                 f"allowed), not {account!r}")
            )  # fmt: skip
        one_of("account_type", GOOGLE_ACCOUNT_TYPES)
        consent = spec.get("consent")
        if consent is not None and not (
            isinstance(consent, dict)
            and set(consent) <= set(GOOGLE_CONSENT_KEYS)
            and all(v in GOOGLE_CONSENT_VALUES for v in consent.values())
        ):
            found.append(
                ("consent", f"'consent' must map {' and/or '.join(GOOGLE_CONSENT_KEYS)} to one "
                 f"of {', '.join(GOOGLE_CONSENT_VALUES)}")
            )  # fmt: skip
    elif kind == "tiktok":
        one_of("calculate_type", TIKTOK_CALCULATE_TYPES)
    elif kind == "file":
        one_of("platform", FILE_PLATFORMS)
    for key, message in found:
        where = spec.at(key) if isinstance(spec, YMap) else at
        problems.add(where, f"destination '{name}': {message}")
    return not found


def _check_webhook_secret(
    name: str, spec: dict[str, Any], at: Pos, problems: Problems, warnings: list[str]
) -> bool:
    """A webhook secret must read as the official Standard Webhooks libraries read it, or
    every signature fails at the receiver (or, before, segctl failed mid-push): a config
    error, naming the destination and never the secret."""
    where = spec.at("secret") if isinstance(spec, YMap) else at
    secret = str(spec["secret"])
    if "${" in secret:  # an unset environment variable: already reported as such
        return True
    try:
        secret_key(secret)
    except SecretError as problem:
        problems.add(
            where,
            f"destination '{name}': {problem} (set it to the whsec_... secret the receiver "
            "verifies with)",
        )
        return False
    warnings.extend(f"destination '{name}': {w}" for w in secret_warnings(secret))
    return True


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


def secret_values(destinations: dict[str, Destination]) -> list[str]:
    """Every configured secret (to redact from any output)."""
    return sorted(
        {v for d in destinations.values() for v in d.secrets.values() if v}, key=len, reverse=True
    )
