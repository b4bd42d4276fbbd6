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
    held_removals: int = 0
    figures: Figures = field(default_factory=Figures)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # a dry run's: below the minimum size
