"""The last line of defence for secrets: every message the CLI prints passes through
:func:`redact`, which masks any configured secret value (tokens, API keys, webhook secrets)
that might have slipped into it (a platform echoing a header, an exception quoting a URL)."""

from __future__ import annotations

import threading

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
MASK = "***"


def register(values: list[str]) -> None:
    """Remember secret values (those of 4+ characters: shorter ones would mask too much)."""
    with _LOCK:
        _SECRETS.update(v for v in values if len(v) >= 4)


def forget_all() -> None:
    """Forget every registered secret (for a process that loads several projects, e.g. tests:
    one project's secrets must not mask another's output)."""
    with _LOCK:
        _SECRETS.clear()


def redact(text: str) -> str:
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
