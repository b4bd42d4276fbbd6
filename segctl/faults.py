"""Named crash points for the crash-safety tests.

``SEGCTL_CRASH_AT=NAME`` makes the process kill itself with SIGKILL when it reaches the point
NAME: no cleanup, no flush, exactly what a power cut or an OOM kill does. Unset (always, outside
tests) a crash point is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "SEGCTL_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
