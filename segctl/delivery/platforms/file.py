"""``file`` audiences: a hashed CSV per segment for a manual upload (SPEC 6).

The file always holds the whole desired audience (written to a temporary name, then renamed,
so a reader never sees half a file); hashes follow the destination's ``platform`` (default
meta).
"""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path
from typing import Any

from segctl.delivery.platforms.base import AudienceClient, Figures, Member


class FileAudience(AudienceClient):
    always_replace = True
    max_batch = 10**9

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.platform = str(self.destination.settings.get("platform", "meta"))
        self.folder = Path(str(self.destination.settings["path"]))

    def replace(self, audience_id: str, members: list[Member]) -> Figures:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{audience_id}.csv"
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email_sha256", "phone_sha256"])
            for member in members:
                identity = member.identity
                assert identity is not None
                writer.writerow([identity.email or "", identity.phone or ""])
        os.replace(partial, path)
        return Figures(received=len(members), details={"file": str(path)})
