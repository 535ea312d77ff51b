"""Retention: prune removes finished runs past a cutoff, never a run that is active or in review."""

from __future__ import annotations

import pytest

from sagaguard.exceptions import RunNotFoundError, StoreError
from sagaguard.storage import Claim, JournalStore, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.base import NewAlert

from .helpers import LEASE, T0, journal, run_becomes, start


def _finish(store: JournalStore, claim: Claim, status: RunStatus, *, at: float) -> None:
    store.record(claim, [run_becomes(status)], now=at, lease_s=LEASE, release=True)


def _runs(store: JournalStore) -> set[str]:
    return {run.operation_id for run in store.list_runs()}


def test_finished_runs_older_than_the_cutoff_are_removed_with_their_trail(
    store: JournalStore,
) -> None:
    for number, status in enumerate((RunStatus.COMPLETED, RunStatus.COMPENSATED, RunStatus.FAILED)):
        _finish(store, start(store, f"old-{number}"), status, at=T0 + 10)
    _finish(store, start(store, "recent"), RunStatus.COMPLETED, at=T0 + 100)
    kept = journal(store, "recent")

    removed = store.prune(older_than=T0 + 50)

    assert removed == 3
    assert _runs(store) == {"recent"}
    for number in range(3):
        with pytest.raises(RunNotFoundError):
            store.load(f"old-{number}")
        with pytest.raises(RunNotFoundError):
            store.events(f"old-{number}")
    assert journal(store, "recent") == kept


def test_active_runs_and_runs_in_review_are_never_pruned(store: JournalStore) -> None:
    start(store, "running")
    compensating = start(store, "compensating")
    store.record(compensating, [run_becomes(RunStatus.COMPENSATING)], now=T0, lease_s=LEASE)
    review = start(store, "review")
    store.record(
        review, [run_becomes(RunStatus.NEEDS_MANUAL_REVIEW)], now=T0, lease_s=LEASE, release=True
    )
    before = {op: journal(store, op) for op in _runs(store)}

    assert store.prune(older_than=T0 + 1e9) == 0

    assert {op: journal(store, op) for op in _runs(store)} == before


@pytest.mark.parametrize(
    "status", [RunStatus.RUNNING, RunStatus.COMPENSATING, RunStatus.NEEDS_MANUAL_REVIEW]
)
def test_asking_to_prune_an_unfinished_status_is_refused(
    store: JournalStore, status: RunStatus
) -> None:
    _finish(store, start(store, "done"), RunStatus.COMPLETED, at=T0)

    with pytest.raises(StoreError, match=f"{status.value} are never pruned"):
        store.prune(older_than=T0 + 1e9, statuses=[status, RunStatus.COMPLETED])

    assert _runs(store) == {"done"}


def test_only_the_statuses_named_are_pruned(store: JournalStore) -> None:
    _finish(store, start(store, "done"), RunStatus.COMPLETED, at=T0)
    _finish(store, start(store, "undone"), RunStatus.COMPENSATED, at=T0)

    assert store.prune(older_than=T0 + 1, statuses=[RunStatus.COMPLETED]) == 1

    assert _runs(store) == {"undone"}


def test_a_finished_run_with_an_alert_not_yet_delivered_is_kept(store: JournalStore) -> None:
    claim = start(store, "told")
    alert = NewAlert("a-1", "best_effort_failed", {"route": "ops"}, deliver_after=T0)
    store.record(
        claim,
        [
            Transition("best_effort_failed", StepChange("ship", StepStatus.FAILED), alert=alert),
            run_becomes(RunStatus.COMPLETED),
        ],
        now=T0,
        lease_s=LEASE,
        release=True,
    )

    assert store.prune(older_than=T0 + 10) == 0
    store.settle_alert("a-1", now=T0 + 1)
    assert store.prune(older_than=T0 + 10) == 1
    assert store.claim_due_alerts(now=T0 + 1e6, lease_s=1) == []


def test_the_cutoff_is_exclusive(store: JournalStore) -> None:
    _finish(store, start(store, "edge"), RunStatus.COMPLETED, at=T0 + 10)

    assert store.prune(older_than=T0 + 10) == 0
    assert store.prune(older_than=T0 + 10.5) == 1


def test_an_operation_id_can_be_used_again_once_its_run_is_pruned(store: JournalStore) -> None:
    _finish(store, start(store, "op-1"), RunStatus.COMPLETED, at=T0)
    store.prune(older_than=T0 + 1)

    assert start(store, "op-1", now=T0 + 2).fencing_token == 1
