"""Local fakes of the delivery platforms, for segctl's delivery tests.

Each fake is a real HTTP server on 127.0.0.1 that enforces the contract in
shared/API_CONTRACTS.md and can inject the platform's own faults::

    with MetaFake(token="meta-token") as meta:
        audience_id = meta.create_audience()
        meta.inject(platform_error=80003, times=2)
        ...  # point the client at meta.base_url
        assert meta.audience(audience_id) == {(email_hash, phone_hash)}
        meta.assert_limits()
"""

from __future__ import annotations

from .base import FakeServer, Fault, Recorded, Reply
from .google import GoogleFake
from .meta import MetaFake
from .resend import ResendFake
from .tiktok import TikTokFake
from .webhook import TEST_SECRET, Delivery, WebhookFake, sign

__all__ = [
    "TEST_SECRET",
    "Delivery",
    "FakeServer",
    "Fault",
    "GoogleFake",
    "MetaFake",
    "Recorded",
    "Reply",
    "ResendFake",
    "TikTokFake",
    "WebhookFake",
    "sign",
]
