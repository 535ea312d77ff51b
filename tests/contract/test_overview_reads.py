"""The reads an overview needs: many runs at once, runs per status, the oldest, the alert backlog.

A page of runs, a dashboard and a metrics scrape read these (``sagaguard.operator``); each
is one read of the store, whatever the number of runs, and each is the same on every store.
"""

from __future__ import annotations

import pytest

from sagaguard.exceptions import InvalidOperationIdError, StoreError
from sagaguard.storage import JournalStore, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.base import AlertBacklog, NewAlert

from .helpers import LEASE, T0, completed, run_becomes, start, started


def _alerting(alert_id: str) -> Transition:
    return Transition(
        kind="needs_manual_review",
        step=StepChange("charge", StepStatus.NEEDS_MANUAL_REVIEW, failure_reason="timed out"),
        run_status=RunStatus.NEEDS_MANUAL_REVIEW,
        alert=NewAlert(alert_id=alert_id, kind="needs_manual_review", payload={}, deliver_after=T0),
    )


def test_load_many_returns_the_runs_that_exist_in_the_order_named_each_once(
    store: JournalStore,
) -> None:
    for n, op in enumerate(("a", "b", "c")):
        claim = start(store, op, now=T0 + n)
        store.record(claim, [started("reserve")], now=T0 + n, lease_s=LEASE)

    many = store.load_many(["c", "nope", "a", "c", "b"])

    assert [snapshot.run.operation_id for snapshot in many] == ["c", "a", "b"]
    assert many == [store.load(op) for op in ("c", "a", "b")]
    assert many[0].steps[0].status is StepStatus.STARTED
    assert store.load_many([]) == []


def test_load_many_reads_beyond_one_statement_s_worth_of_ids(store: JournalStore) -> None:
    """SQLite takes a bounded number of parameters per statement: long lists are split."""
    for op in ("first", "last"):
        start(store, op)
    named = ["first", *(f"absent-{n}" for n in range(1_200)), "last"]

    assert [s.run.operation_id for s in store.load_many(named)] == ["first", "last"]


def test_load_many_leaves_out_an_id_no_journal_can_hold(store: JournalStore) -> None:
    start(store, "a")

    assert [s.run.operation_id for s in store.load_many(["bad-\ud800", "a"])] == ["a"]
    with pytest.raises(InvalidOperationIdError):
        store.load_many([17])  # type: ignore[list-item]


def test_count_runs_counts_each_status_and_leaves_out_those_with_none(
    store: JournalStore,
) -> None:
    assert store.count_runs() == {}
    for op in ("a", "b", "c", "d"):
        claim = start(store, op)
        if op in ("b", "c"):
            store.record(claim, [run_becomes(RunStatus.COMPLETED)], now=T0 + 1, lease_s=LEASE)
        if op == "d":
            store.record(claim, [_alerting("alert-d")], now=T0 + 1, lease_s=LEASE)

    assert store.count_runs() == {
        RunStatus.RUNNING: 1,
        RunStatus.COMPLETED: 2,
        RunStatus.NEEDS_MANUAL_REVIEW: 1,
    }


def test_oldest_run_is_the_least_recently_changed_of_a_status(store: JournalStore) -> None:
    """Waiting since: a run created first but changed last is not the oldest waiting one."""
    early = start(store, "created-first", now=T0)
    late = start(store, "created-second", now=T0 + 1)
    store.record(late, [_alerting("alert-2")], now=T0 + 2, lease_s=LEASE)
    store.record(early, [_alerting("alert-1")], now=T0 + 3, lease_s=LEASE)

    oldest = store.oldest_run(status=RunStatus.NEEDS_MANUAL_REVIEW)

    assert oldest == store.load("created-second").run
    assert store.oldest_run(status=RunStatus.COMPLETED) is None


def test_oldest_run_breaks_a_tie_by_creation(store: JournalStore) -> None:
    for n, op in enumerate(("second", "first")):
        claim = start(store, op, now=T0 + 1 - n)
        store.record(claim, [run_becomes(RunStatus.COMPLETED)], now=T0 + 5, lease_s=LEASE)

    oldest = store.oldest_run(status=RunStatus.COMPLETED)

    assert oldest is not None
    assert oldest.operation_id == "first"


def test_alert_backlog_counts_the_undelivered_and_the_failing(store: JournalStore) -> None:
    assert store.alert_backlog() == AlertBacklog(undelivered=0, failing=0, oldest_created_at=None)
    for n, op in enumerate(("a", "b", "c")):
        claim = start(store, op)
        store.record(claim, [_alerting(f"alert-{op}")], now=T0 + 10 + n, lease_s=LEASE)

    store.settle_alert("alert-a", now=T0 + 20)
    store.settle_alert("alert-b", now=T0 + 20, error="webhook down", retry_at=T0 + 30)

    assert store.alert_backlog() == AlertBacklog(
        undelivered=2, failing=1, oldest_created_at=T0 + 11
    )


def test_an_overview_of_a_store_with_completed_runs_only_has_no_backlog(
    store: JournalStore,
) -> None:
    claim = start(store, "done")
    store.record(
        claim,
        [completed("reserve", seq=1), run_becomes(RunStatus.COMPLETED)],
        now=T0 + 1,
        lease_s=LEASE,
    )

    assert store.count_runs() == {RunStatus.COMPLETED: 1}
    assert store.oldest_run(status=RunStatus.NEEDS_MANUAL_REVIEW) is None
    assert store.alert_backlog().undelivered == 0


def test_a_closed_store_refuses_the_overview_reads(store: JournalStore) -> None:
    start(store)
    store.close()

    for read in (
        lambda: store.load_many(["op-1"]),
        store.count_runs,
        lambda: store.oldest_run(status=RunStatus.RUNNING),
        store.alert_backlog,
    ):
        with pytest.raises(StoreError):
            read()
