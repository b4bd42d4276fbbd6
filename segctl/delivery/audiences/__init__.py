"""Audiences, reconciled (SPEC 6): desired set vs synced set -> adds and removes.

desired = the segment's members in the last committed snapshot, minus persons without
consent, suppressed or forgotten. synced = what segctl has added there (``audience_members``,
with the identifiers it sent, so a removal never needs the raw data again). The difference is
sent in batches at the platform's limit; every successful batch is recorded at once, so a
failure or a crash leaves a smaller difference for the next push, never a wrong record.
``mirror`` is the same: it removes only what segctl added (a platform's replace would drop the
members someone else put in the audience); a file is written whole. A member who stays but
whose email or phone changed is sent again, their old identifiers removed.

A sync runs in four steps, a module each: :mod:`.stage` (read the difference from the state),
:mod:`.plan` (the members to add, remove or replace), :mod:`.send` (batches to the platform)
and :mod:`.record` (the synced set and the sync's figures); :mod:`.journal` keeps the changes
in doubt between send and record.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

from segctl import progress
from segctl.delivery import queries
from segctl.delivery.audiences.journal import JOURNAL, Journal
from segctl.delivery.audiences.plan import changes, replacement
from segctl.delivery.audiences.record import record_status
from segctl.delivery.audiences.result import SyncResult
from segctl.delivery.audiences.send import send_changes, send_replacement
from segctl.delivery.audiences.stage import Audience, person_change, stage
from segctl.delivery.model import Batch, Push, Reachability
from segctl.delivery.platforms import client_for
from segctl.delivery.platforms.base import MINIMUM_SIZE, AudienceClient
from segctl.delivery.retry import DeliveryFailure

if TYPE_CHECKING:
    from segctl.definitions.destinations import Destination
    from segctl.state import StateStore

#: Audiences synced at once by one push (each destination's own limits still apply).
CONCURRENT_SYNCS = 4

Key = tuple[str, str, str, str]  # destination, segment, audience id, mode


class Reconciler:
    """Reconciles every audience with a pending sync request.

    Different audiences are synced at once (up to :data:`CONCURRENT_SYNCS`): while one waits
    on its platform, another hashes or records. Each destination's ``concurrency`` and rate
    limit still bound the requests sent to it, whichever audiences they come from. The state
    is shared through :attr:`StateStore.lock`: a sync reads what it needs to plan under it,
    and each of its journal entries and records is a transaction of its own, as when syncs
    ran one after the other, so a crash at any point loses nothing.
    """

    def __init__(self, push: Push) -> None:
        self.push = push
        self.store = push.store
        self.results: list[SyncResult] = []

    def run(self) -> list[SyncResult]:
        groups: dict[Key, list[dict[str, Any]]] = {}
        for row in self.push.due("audience"):
            spec = json.loads(row["spec"])
            key = (row["destination"], row["segment"], spec["audience_id"], spec["mode"])
            group = groups.setdefault(key, [])
            if row["transition"] not in JOURNAL:  # a change in doubt only makes it due
                group.append(row)
        # Syncs of one audience (two segments feeding it) run one after the other, each
        # planned on what the one before recorded.
        lanes: dict[tuple[str, str], list[Key]] = {}
        for key in groups:
            lanes.setdefault((key[0], key[2]), []).append(key)
        done: dict[Key, SyncResult] = {}

        def lane(keys: list[Key]) -> None:
            for key in keys:
                done[key] = self.sync(*key, groups[key])

        if len(lanes) == 1:
            lane(*lanes.values())
        elif lanes:
            progress.phase(f"Syncing {len(lanes)} audiences")
            with ThreadPoolExecutor(max_workers=min(CONCURRENT_SYNCS, len(lanes))) as pool:
                futures = [pool.submit(copy_context().run, lane, keys) for keys in lanes.values()]
            for future in futures:  # every sync has ended: the first error, if any, is raised
                future.result()
        self.results = [done[key] for key in groups]
        return self.results

    def sync(
        self,
        name: str,
        segment: str,
        audience: str,
        mode: str,
        rows: list[dict[str, Any]] | None = None,
        *,
        dry_run: bool = False,
    ) -> SyncResult:
        """Make one audience match its segment (rows: the sync requests it answers).

        Modes: ``sync`` and ``mirror`` add and remove (what segctl added alone), ``add`` only
        adds, ``remove`` only removes.
        """
        result = SyncResult(name, audience, segment)
        progress.phase(f"Syncing audience {audience} on {name}")
        self.results.append(result)
        batch = Batch(f"{name}:{audience}", name, rows or [])
        destination = self.push.destinations.get(name)
        if destination is None:
            if rows:
                self.push.fail([batch], f"destination '{name}' is no longer configured")
            return result
        client: AudienceClient | None = None
        try:
            client = client_for(
                destination,
                self.push.client,
                self.push.limiters.get(name),
                slots=self.push.slots.get(name),
            )
            target = Audience(
                name,
                audience,
                segment,
                mode,
                self.push.reachability,
                self.push.person_columns,
            )
            self._reconcile(client, target, result, dry_run)
        except DeliveryFailure as failure:
            result.error = failure.message
            if rows:
                self.push.record_failure([batch], failure)
        else:
            # Removals held by the mass-exit guard keep the request pending (the push is
            # incomplete, exit 5) until `segctl push --confirm` lets them go.
            if rows and not result.held_removals:
                self.push.mark_sent(rows)
        finally:
            if client is not None:
                client.close()
            if not dry_run:
                record_status(self.store, destination.name, audience, result)
                if result.invalid:  # counted and said (API_CONTRACTS: skipped, counted)
                    self.push.report.messages.append(
                        f"{name}/{audience}: {result.invalid} invalid identifier(s) skipped, "
                        f"not sent ({result.invalid_emails} email(s), {result.invalid_phones} "
                        "phone(s); segctl status counts them under invalid)"
                    )
        return result

    def _reconcile(
        self, client: AudienceClient, target: Audience, result: SyncResult, dry_run: bool
    ) -> None:
        """Stage, plan, send and record one audience's difference."""
        journal = Journal(
            self.store, target.destination, target.segment, target.audience, target.mode
        )
        staged = stage(self.store, target, client, journal, write=not dry_run)
        if staged.replace:
            whole = replacement(client, staged, result, self.push.persons)
            if dry_run:  # added and removed as the replacement counts them
                result.added, result.removed = whole.counts()
                return
            send_replacement(self.store, client, target.audience, whole, result, journal)
            return
        planned = changes(client, staged, target.mode, result, self.push.persons)
        if dry_run:
            result.added = len(planned.adds)
            gone = [pid for pid, _ in planned.removes if pid not in planned.changed]
            result.removed = len(gone) + len(planned.shared)
            synced = len(queries.synced_persons(self.store, target.destination, target.audience))
            _below_minimum(client, target, synced + result.added - result.removed, result)
            return
        concurrency = client.destination.concurrency
        send_changes(self.store, client, concurrency, target.audience, planned, result, journal)


def _below_minimum(client: AudienceClient, target: Audience, size: int, result: SyncResult) -> None:
    """A dry run's warning when the audience would hold fewer people than its platform
    matches ads for (as the plan of ``run --dry-run`` says it; a file has no minimum)."""
    minimum = MINIMUM_SIZE.get(client.platform)
    if minimum and size < minimum:
        result.warnings.append(
            f"{client.platform} audience {target.audience} would hold {size} people, below "
            f"the platform's minimum of {minimum}"
        )


def person_changes(
    store: StateStore,
    person_id: str,
    destinations: dict[str, Destination],
    reachability: Reachability,
    person_columns: Collection[str],
) -> list[dict[str, Any]]:
    """What the audience syncs a push will run do for one person (``segctl person``): rows
    of :data:`~segctl.delivery.queries.PENDING_KEYS` whose transition is ``add``, ``remove``
    or ``update``; a removal a hold keeps is ``held``, an add with no identifier the platform
    takes ``skipped``."""
    found = []
    for request in queries.sync_requests(store):
        destination = destinations.get(request["destination"])
        if destination is None:
            continue
        name, segment, audience, mode = (
            request[k] for k in ("destination", "segment", "audience", "mode")
        )
        target = Audience(name, audience, segment, mode, reachability, person_columns)
        client = client_for(destination, None)
        try:
            journal = Journal(store, name, segment, audience, mode)
            change = person_change(store, target, client, journal, person_id)
        finally:
            client.close()
        if change is None:
            continue
        status = "pending"
        if change == "remove" and queries.segment_held(store, segment):
            status = "held"
        elif change == "skip":
            change, status = "add", "skipped"
        row = {k: request[k] for k in queries.PENDING_KEYS if k in request}
        found.append({**row, "kind": "audience", "transition": change, "status": status})
    return found
