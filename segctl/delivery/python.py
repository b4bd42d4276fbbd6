"""The ``python`` action (SPEC section 6): your function, called from the outbox with the same
guarantees as a webhook.

``{function: "package.module:callable", batch?: N, max_retries?: 5, backoff?: 0.5}`` calls the
function with one record per transition (``batch``: a list of up to N records per call)::

    {"id": "evt_3f1c...",              # stable: the same on every retry, even after kill -9
     "type": "segment.entered",        # or "segment.exited"
     "segment": "power_users", "person_id": "u42",
     "as_of": "2026-11-17T00:00:00Z", "run_id": 7,
     "person": {"person_id": "u42", "email": "...", ...}}   # the person's columns, as JSON

A call that returns has delivered its records; an exception is retried with exponential backoff
(``max_retries`` times, first wait ``backoff`` seconds), then the records stay pending for the
next ``segctl push``, with the exception as their last error. A push killed between the call and
its record calls again with the same records and ids: de-duplicate on ``id`` and the effect is
exactly once. Calls are made one at a time, in the pushing process, each in a thread of its own
so that one that does not return within ``timeout`` seconds (default 60) fails like a webhook's
timeout: its records stay pending, and the function is not called again while that call runs
(user code need not be thread-safe).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segctl.delivery.retry import Deferred, Transient
from segctl.delivery.webhook import payload

if TYPE_CHECKING:
    from segctl.delivery.model import Batch

DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.5
DEFAULT_TIMEOUT = 60.0

#: The calls that did not return in time and still run (a Python thread cannot be stopped),
#: by function: it is not called again until its call ends (``segctl watch`` pushes again).
_running: dict[str, threading.Thread] = {}


class Hung(Deferred):
    """A call that did not return within its timeout: its records stay pending, retried
    later (not now: the call may still be running, and user code need not be
    thread-safe)."""


def record_id(row: dict[str, Any]) -> str:
    """A transition's stable id: derived from its outbox idempotency key (state, run, segment,
    transition, action and person), so a retry or a re-run push carries the same one.

    >>> record_id({"idempotency_key": "run1:vip:enter:0:u1"})
    'evt_aeb9996f179dfadb889d5f449fabd431'
    """
    digest = hashlib.sha256(str(row["idempotency_key"]).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def record(row: dict[str, Any], person: dict[str, Any] | None) -> dict[str, Any]:
    """What the function receives for one transition: the webhook's event with its ``id``."""
    return {"id": record_id(row), **payload(row, person)}


class PythonSender:
    """Calls one action's function with the records of a batch."""

    def __init__(self, reference: str, root: Path | None) -> None:
        self.reference = reference
        self.root = root
        self._function: Callable[..., Any] | None = None

    @property
    def function(self) -> Callable[..., Any]:
        from segctl.definitions.callables import BadReference, resolve

        if self._function is None:
            try:
                self._function = resolve(self.reference, self.root)
            except BadReference as problem:
                # validate checked it: the module changed since; pending until it is fixed
                raise Transient(f"python action: {problem}") from None
        return self._function

    def send(self, batch: Batch, people: dict[str, dict[str, Any]]) -> None:
        spec = json.loads(batch.rows[0]["spec"])
        records = [record(r, people.get(r["person_id"])) for r in batch.rows]
        timeout = float(spec.get("timeout", DEFAULT_TIMEOUT))
        earlier = _running.get(self.reference)
        if earlier is not None and earlier.is_alive():
            raise Hung(
                f"{self.reference}: a call that timed out is still running; not called "
                "again until it returns",
                retry_after=timeout,
            )
        function = self.function
        failure: list[BaseException] = []

        def call() -> None:
            try:
                function(records if "batch" in spec else records[0])
            except BaseException as exc:  # any of the user's code is worth a retry
                # (a sys.exit() in a hook ended the whole run: exit 0, no output, rows pending;
                # an asyncio.CancelledError, not an Exception, ended the call as a success)
                failure.append(exc)

        thread = threading.Thread(target=call, name=f"python {self.reference}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            _running[self.reference] = thread
            raise Hung(
                f"{self.reference} did not return within {timeout:g} s (the action's "
                "timeout); not called again until it returns",
                retry_after=timeout,
            )
        if failure:
            exc = failure[0]
            raise Transient(
                f"{self.reference} raised {type(exc).__name__}: {str(exc)[:300]}"
            ) from None
