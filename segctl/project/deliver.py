"""A project's deliveries: push what is pending, sync an audience now, forget persons.

:func:`worker` is the one place a delivery :class:`~segctl.delivery.worker.Worker` is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segctl.errors import UsageError

if TYPE_CHECKING:
    import httpx

    from segctl.delivery.audiences.result import SyncResult
    from segctl.delivery.model import Report
    from segctl.delivery.worker import Worker
    from segctl.project import Project
    from segctl.state import StateStore


def worker(project: Project, store: StateStore, client: httpx.Client | None) -> Worker:
    """The delivery worker over an open state (whose connection holds the persons view)."""
    from segctl.delivery.worker import Worker

    return Worker(
        store,
        project.reachability,
        project.config.destinations,
        client=client,
        root=project.root,
        person_columns=list(project.schema["persons"]),
        retry_waiting=project.retry_waiting,
    )


def push(
    project: Project,
    confirm: list[str],
    *,
    wait: float,
    client: httpx.Client | None,
    retry_failed: bool = False,
) -> Report:
    """Deliver what is pending; first release the held exits of the ``confirm`` segments and,
    with ``retry_failed``, make the failed deliveries pending again."""
    from segctl.state import StateStore

    for name in confirm:
        project.segment_names([name])
    project.schema  # noqa: B018 - the persons view must exist before the state is attached
    with StateStore.open(
        project.config.state_dir,
        con=project.engine.driver.con,
        wait=wait,
        write=True,
        command="segctl push",
    ) as store:
        return worker(project, store, client).push(confirm, retry_failed=retry_failed)


def sync(
    project: Project,
    segment: str,
    destination: str,
    *,
    mode: str,
    dry_run: bool,
    wait: float,
    client: httpx.Client | None,
) -> list[SyncResult]:
    """Reconcile one segment's audiences on one destination now (``mode``: add, remove or
    mirror)."""
    from segctl.delivery.audiences import Reconciler
    from segctl.state import StateStore

    project.segment_names([segment])
    if mode not in ("add", "remove", "mirror"):
        raise UsageError(f"--mode is add, remove or mirror, not {mode!r}")
    defined = project.definitions.segments[segment].audiences
    audiences = [a for a in defined if a.destination == destination]
    if not audiences:
        known = [a.destination for a in defined]
        raise UsageError(
            f"segment '{segment}' has no audience on '{destination}'"
            + (f" (it has: {', '.join(known)})" if known else "")
        )
    project.schema  # noqa: B018 - the persons view must exist before the state is attached
    with StateStore.open(
        project.config.state_dir,
        con=project.engine.driver.con,
        wait=wait,
        write=not dry_run,
        command="segctl sync",
    ) as store:
        reconciler = Reconciler(worker(project, store, client))
        return [
            reconciler.sync(destination, segment, a.audience_id, mode, dry_run=dry_run)
            for a in audiences
        ]


def forget(
    project: Project, person_ids: list[str], *, wait: float, client: httpx.Client | None
) -> dict[str, Any]:
    """Erasure: drop the persons' data from the state in one transaction (keeping an audit
    record without PII), then remove them from every audience that holds them."""
    from segctl.delivery import queries
    from segctl.delivery.audiences import Reconciler
    from segctl.state import StateStore, erasure

    if not person_ids:
        raise UsageError("name at least one person id")
    project.schema  # noqa: B018 - the persons view must exist before the state is attached
    with StateStore.open(
        project.config.state_dir,
        con=project.engine.driver.con,
        wait=wait,
        create=True,
        command="segctl forget",
    ) as store:
        affected = queries.audiences_of(store, person_ids)
        with store.transaction():
            erasure.forget(store, person_ids, {"audiences": len(affected)})
            queries.forget_deliveries(store, person_ids)
            queries.settle_holds(store, "an erasure")  # a hold of theirs alone
        reconciler = Reconciler(worker(project, store, client))
        results = [
            reconciler.sync(
                destination, segment, audience, "mirror" if mode == "mirror" else "remove"
            )
            for destination, audience, segment, mode in affected
        ]
        left = queries.still_in_audiences(store, person_ids)
    return {
        "forgotten": len(person_ids),
        "audiences": len(affected),
        "still_in_audiences": left,
        "errors": [r.error for r in results if r.error],
    }


def audience_changes(project: Project, person_id: str, *, wait: float) -> list[dict[str, Any]]:
    """What the pending audience syncs will do for one person (``segctl person``)."""
    from segctl.delivery.audiences import person_changes
    from segctl.state import StateStore

    project.schema  # noqa: B018 - the persons view must exist before the state is attached
    with StateStore.open(project.config.state_dir, con=project.engine.driver.con, wait=wait) as s:
        return person_changes(
            s,
            person_id,
            project.config.destinations,
            project.reachability,
            list(project.schema["persons"]),
        )
