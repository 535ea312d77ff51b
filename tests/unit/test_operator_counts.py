"""Counts for dashboards and metrics: runs per status, the review queue, the alert backlog."""

from __future__ import annotations

from tests.unit.journal_records import T0, CountingStore

from sagaguard.operator import JournalCounts, WaitingRun, journal_counts
from sagaguard.storage import NewRun, StepChange, Transition
from sagaguard.storage.base import NewAlert, RunStatus, StepStatus
from sagaguard.storage.memory import InMemoryStore
from sagaguard.vocabulary import EventKind


def _stop(store: InMemoryStore, op: str, *, at: float, status: RunStatus) -> None:
    created = store.create_run(
        NewRun(op, "checkout", "3", {}, ("charge",)), owner="w", now=at, lease_s=30
    )
    assert created.claim is not None
    alert = None
    if status is RunStatus.NEEDS_MANUAL_REVIEW:
        alert = NewAlert(f"alert-{op}", "needs_manual_review", {}, deliver_after=at)
    move = Transition(
        kind=EventKind.NEEDS_MANUAL_REVIEW,
        step=StepChange("charge", StepStatus.NEEDS_MANUAL_REVIEW),
        run_status=status,
        alert=alert,
    )
    store.record(created.claim, [move], now=at, lease_s=30, release=True)


def test_an_empty_journal_counts_zero_everywhere() -> None:
    counts = journal_counts(InMemoryStore())

    assert counts.runs_by_status == tuple((status, 0) for status in RunStatus)
    assert counts.review_queue == 0
    assert counts.oldest_waiting is None
    assert (counts.undelivered_alerts, counts.failing_alerts) == (0, 0)
    assert counts.oldest_undelivered_alert_at is None


def test_counts_take_three_reads_and_name_the_run_waiting_longest() -> None:
    store = InMemoryStore()
    _stop(store, "late", at=T0 + 50, status=RunStatus.NEEDS_MANUAL_REVIEW)
    _stop(store, "early", at=T0 + 10, status=RunStatus.NEEDS_MANUAL_REVIEW)
    for n in range(4):
        _stop(store, f"done-{n}", at=T0 + n, status=RunStatus.COMPLETED)
    store.settle_alert("alert-late", now=T0 + 60, error="webhook down", retry_at=T0 + 90)
    counting = CountingStore(store)

    counts = journal_counts(counting)  # type: ignore[arg-type]

    assert sorted(counting.reads) == ["alert_backlog", "count_runs", "oldest_run"]
    assert counts.runs(RunStatus.COMPLETED) == 4
    assert counts.runs(RunStatus.RUNNING) == 0
    assert counts.review_queue == 2
    assert counts.oldest_waiting == WaitingRun("early", "checkout", "3", T0 + 10)
    assert (counts.undelivered_alerts, counts.failing_alerts) == (2, 1)
    assert counts.oldest_undelivered_alert_at == T0 + 10


def test_counts_are_json() -> None:
    counts = JournalCounts(
        runs_by_status=tuple((status, 1) for status in RunStatus),
        oldest_waiting=WaitingRun("o-1", "checkout", "3", T0),
        undelivered_alerts=2,
        failing_alerts=0,
        oldest_undelivered_alert_at=T0,
    )

    assert counts.to_json() == {
        "runs_by_status": {status.value: 1 for status in RunStatus},
        "review_queue": 1,
        "oldest_waiting": {
            "operation_id": "o-1",
            "process": "checkout",
            "version": "3",
            "waiting_since": "2025-06-15T15:06:40.250Z",
        },
        "undelivered_alerts": 2,
        "failing_alerts": 0,
        "oldest_undelivered_alert_at": "2025-06-15T15:06:40.250Z",
    }
