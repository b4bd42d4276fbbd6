"""One audience client per platform; :data:`CLIENTS` maps a destination type to it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from segctl.delivery.platforms.base import AudienceClient

if TYPE_CHECKING:
    import threading

    import httpx

    from segctl.definitions.destinations import Destination
    from segctl.delivery.limits import RateLimiter


class _Registry(Mapping[str, Callable[..., Any]]):
    """Imports a platform module only when its client is asked for."""

    modules: ClassVar[dict[str, tuple[str, str]]] = {
        "meta": ("segctl.delivery.platforms.meta", "MetaAudience"),
        "google": ("segctl.delivery.platforms.google", "GoogleAudience"),
        "tiktok": ("segctl.delivery.platforms.tiktok", "TikTokAudience"),
        "resend": ("segctl.delivery.platforms.resend", "ResendAudience"),
        "file": ("segctl.delivery.platforms.file", "FileAudience"),
    }

    def __getitem__(self, kind: str) -> Callable[..., Any]:
        module, name = self.modules[kind]
        factory: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return factory

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.modules)

    def __len__(self) -> int:
        return len(self.modules)


CLIENTS = _Registry()


def client_for(
    destination: Destination,
    client: httpx.Client | None,
    limiter: RateLimiter | None = None,
    *,
    slots: threading.Semaphore | None = None,
) -> AudienceClient:
    """The audience client of a destination type (``limiter`` and ``slots``: the rate and the
    requests in flight, when shared with other clients of the destination)."""
    factory: Callable[..., AudienceClient] = CLIENTS[destination.type]
    return factory(destination, client, limiter, slots=slots)
