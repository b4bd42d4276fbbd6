"""What one audience sync did (``segctl sync`` prints it; ``segctl status`` shows its record)."""

from __future__ import annotations

from dataclasses import dataclass, field

from segctl.delivery.platforms.base import Figures


@dataclass
class SyncResult:
    destination: str
    audience: str
    segment: str
    added: int = 0
    removed: int = 0
    skipped: int = 0  # persons with no usable identifier
    invalid_emails: int = 0  # identifiers given but invalid, skipped (not sent)
    invalid_phones: int = 0
    held_removals: int = 0
    figures: Figures = field(default_factory=Figures)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # a dry run's: below the minimum size

    @property
    def invalid(self) -> int:
        """The identifiers skipped as invalid (an email, a phone: a person may have both)."""
        return self.invalid_emails + self.invalid_phones
