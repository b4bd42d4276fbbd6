"""Resend segments as audiences: contacts added to and removed from a segment, one at a time.

Resend's contacts are global and a segment (formerly an audience) holds some of them, so the
``audience_id`` is the segment id and members carry contacts (email, names), not hashes. An add is
``POST /contacts`` (an existing contact is fine) then ``POST /contacts/{id}/segments/{segment}``;
a removal is ``DELETE /contacts/{email}/segments/{segment}``, where a 404 means the contact is
already gone. Both are idempotent, so a batch cut short is simply sent again.

Resend allows 2 requests per second by default: the destination's ``rate_limit`` paces every
request, and batches of 100 record progress often. Failures are classified as for emails
(:func:`segctl.delivery.resend.classify`): 429 ``rate_limit_exceeded`` is retried after its
``retry-after``, a daily or monthly quota defers the rest to a later push, anything else is
permanent. A contact Resend rejects (422 on ``POST /contacts``) is counted as invalid with
Resend's message and the batch goes on; the contact is not retried until it changes segment.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from segctl.delivery.http import describe
from segctl.delivery.identifiers import IdentityStats, normalize_email
from segctl.delivery.platforms.base import AudienceClient, Figures, Member
from segctl.delivery.resend import classify
from segctl.delivery.retry import Permanent

NAMES = ("first_name", "last_name")
MAX_SAMPLES = 10  # rejected contacts kept in the figures


class Rejected(Permanent):
    """Resend refused one contact (422): recorded for it alone, the batch goes on."""


def classify_contact(response: httpx.Response) -> Any:
    """``POST /contacts``: 409 (it exists) is fine, 422 rejects the contact alone."""
    if response.status_code == 409:
        return None
    if response.status_code == 422:
        raise Rejected(describe(response))
    return classify(response)


def classify_removal(response: httpx.Response) -> Any:
    """``DELETE .../segments/...``: a 404 (the contact is gone) counts as removed."""
    return None if response.status_code == 404 else classify(response)


class ResendAudience(AudienceClient):
    """A Resend segment (``audience_id``: the segment id) kept in step, contact by contact."""

    platform = "resend"
    max_batch = 100  # two requests a contact at 2/s: record progress every ~100 s

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.destination.secrets.get('api_key', '')}"}

    def identity(self, person: dict[str, Any], stats: IdentityStats) -> Member | None:
        """The person's contact (trimmed email, names), or None (skipped) without a valid email.

        The email is only trimmed, not lowercased: it is a contact to write to, not a hash.
        """
        stats.persons += 1
        raw = person.get("email")
        if not isinstance(raw, str) or normalize_email(raw, self.platform) is None:
            stats.invalid_emails += int(bool(raw))
            stats.no_identifier += 1
            return None
        contact = {"email": raw.strip()}
        for name in NAMES:
            value = person.get(name)
            if isinstance(value, str) and value.strip():
                contact[name] = value.strip()
        return Member(str(person["person_id"]), contact=contact)

    def add(self, audience_id: str, members: list[Member]) -> Figures:
        figures = Figures()
        rejected: list[dict[str, str]] = []
        segment = quote(audience_id, safe="")
        for member in members:
            contact = member.contact or {}
            if not contact.get("email"):
                continue
            try:
                created = self.request("POST", "/contacts", json=contact, classify=classify_contact)
            except Rejected as failure:
                figures.invalid += 1
                rejected.append({"person_id": member.person_id, "error": failure.message})
                continue
            # The id Resend gave (keeps emails out of URLs), or the email for an existing contact.
            ref = created.get("id") if isinstance(created, dict) else None
            path = _contact_path(str(ref or contact["email"]), segment)
            self.request("POST", path, classify=classify)
            figures.received += 1
        if rejected:
            figures.details["rejected_contacts"] = rejected[:MAX_SAMPLES]
        return figures

    def remove(self, audience_id: str, members: list[Member]) -> Figures:
        figures = Figures()
        segment = quote(audience_id, safe="")
        for member in members:
            email = (member.contact or {}).get("email")
            if not email:  # never sent: nothing to remove
                continue
            self.request("DELETE", _contact_path(str(email), segment), classify=classify_removal)
            figures.received += 1
        return figures


def _contact_path(contact: str, segment: str) -> str:
    return f"/contacts/{quote(contact, safe='@')}/segments/{segment}"
