"""The alert outbox: an alert is journaled with the transition that raises it, then delivered.

A crash between a commit and the notifier must not lose an alert, so the store keeps each
one until a delivery attempt succeeds; concurrent deliverers never take the same alert.
"""

from __future__ import annotations

import threading

import pytest

from sagaguard.exceptions import StaleOwnerError, StoreError
from sagaguard.storage import JournalStore, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.base import NewAlert, OutboxAlert

from .helpers import LEASE, T0, journal, start, started


def _review(alert_id: str, *, deliver_after: float = T0, step_id: str = "charge") -> Transition:
    return Transition(
        kind="needs_manual_review",
        step=StepChange(step_id, StepStatus.NEEDS_MANUAL_REVIEW, failure_reason="timed out"),
        run_status=RunStatus.NEEDS_MANUAL_REVIEW,
        alert=NewAlert(
            alert_id=alert_id,
            kind="needs_manual_review",
            payload={"step_id": step_id, "route": "finance"},
            deliver_after=deliver_after,
        ),
    )


def test_an_alert_is_due_only_after_the_raising_engine_had_its_chance(store: JournalStore) -> None:
    claim = start(store)
    store.record(claim, [_review("a-1", deliver_after=T0 + 30)], now=T0 + 1, lease_s=LEASE)

    assert store.claim_due_alerts(now=T0 + 29, lease_s=10) == []
    [due] = store.claim_due_alerts(now=T0 + 30, lease_s=10)

    assert due == OutboxAlert(
        alert_id="a-1",
        operation_id="op-1",
        kind="needs_manual_review",
        payload={"step_id": "charge", "route": "finance"},
        created_at=T0 + 1,
        attempts=0,
        last_error=None,
    )


def test_a_taken_alert_is_hidden_from_other_deliverers_until_its_lease_ends(
    store: JournalStore,
) -> None:
    claim = start(store)
    store.record(claim, [_review("a-1")], now=T0, lease_s=LEASE)

    assert [a.alert_id for a in store.claim_due_alerts(now=T0, lease_s=10)] == ["a-1"]
    assert store.claim_due_alerts(now=T0 + 9, lease_s=10) == []
    assert [a.alert_id for a in store.claim_due_alerts(now=T0 + 10, lease_s=10)] == ["a-1"]


def test_a_delivered_alert_is_never_due_again_and_leaves_an_event(store: JournalStore) -> None:
    claim = start(store)
    store.record(claim, [_review("a-1")], now=T0, lease_s=LEASE)

    store.settle_alert("a-1", now=T0 + 2)
    store.settle_alert("a-1", now=T0 + 3, error="late duplicate report")

    assert store.claim_due_alerts(now=T0 + 10_000, lease_s=10) == []
    last = store.events("op-1")[-1]
    assert (last.kind, last.actor, last.at) == ("alert_delivered", "notifier", T0 + 2)
    assert last.data == {"alert_id": "a-1", "failed_attempts": 0}
    assert last.reason == "needs_manual_review alert delivered"


def test_a_failed_delivery_is_counted_and_retried_at_the_time_given(store: JournalStore) -> None:
    claim = start(store)
    store.record(claim, [_review("a-1")], now=T0, lease_s=LEASE)

    store.settle_alert("a-1", now=T0 + 1, error="HTTP 503", retry_at=T0 + 60)
    store.settle_alert("a-1", now=T0 + 61, error="HTTP 502", retry_at=T0 + 180)

    assert store.claim_due_alerts(now=T0 + 179, lease_s=10) == []
    [due] = store.claim_due_alerts(now=T0 + 180, lease_s=10)
    assert (due.attempts, due.last_error) == (2, "HTTP 502")
    kinds = [e.kind for e in store.events("op-1")]
    assert kinds.count("alert_failed") == 1, "only the first failure is written to the trail"
    failed = next(e for e in store.events("op-1") if e.kind == "alert_failed")
    assert failed.reason == "needs_manual_review alert not delivered: HTTP 503"


def test_an_unknown_alert_id_is_ignored(store: JournalStore) -> None:
    start(store)
    before = journal(store)

    store.settle_alert("no-such-alert", now=T0)

    assert journal(store) == before


def test_a_stale_owner_raises_no_alert(store: JournalStore) -> None:
    stale = start(store, owner="worker-a")
    store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)

    with pytest.raises(StaleOwnerError):
        store.record(stale, [_review("a-1")], now=T0 + LEASE + 2, lease_s=LEASE)

    assert store.claim_due_alerts(now=T0 + 10_000, lease_s=10) == []


def test_a_rejected_payload_raises_no_alert(store: JournalStore) -> None:
    claim = start(store)
    bad = Transition(kind="note", data={"not json": {1, 2}})

    with pytest.raises(StoreError, match="JSON"):
        store.record(claim, [_review("a-1"), bad], now=T0, lease_s=LEASE)

    assert store.claim_due_alerts(now=T0 + 10_000, lease_s=10) == []
    assert store.load("op-1").run.status is RunStatus.RUNNING


def test_alerts_are_due_earliest_first_up_to_the_limit(store: JournalStore) -> None:
    for number, delay in enumerate((30.0, 10.0, 20.0)):
        claim = start(store, f"op-{number}")
        store.record(
            claim, [_review(f"a-{number}", deliver_after=T0 + delay)], now=T0, lease_s=LEASE
        )

    first = store.claim_due_alerts(now=T0 + 100, lease_s=10, limit=2)
    rest = store.claim_due_alerts(now=T0 + 100, lease_s=10, limit=2)

    assert [a.alert_id for a in first] == ["a-1", "a-2"]
    assert [a.alert_id for a in rest] == ["a-0"]


def test_concurrent_deliverers_never_take_the_same_alert(store: JournalStore) -> None:
    for number in range(40):
        claim = start(store, f"op-{number}")
        store.record(claim, [_review(f"a-{number}")], now=T0, lease_s=LEASE)
    taken: list[list[str]] = []
    barrier = threading.Barrier(4)

    def deliverer() -> None:
        barrier.wait()
        mine: list[str] = []
        while batch := store.claim_due_alerts(now=T0 + 1, lease_s=60, limit=3):
            mine.extend(a.alert_id for a in batch)
        taken.append(mine)

    threads = [threading.Thread(target=deliverer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [alert_id for mine in taken for alert_id in mine]
    assert sorted(every) == sorted(f"a-{n}" for n in range(40))


def test_record_with_release_applies_and_lets_go_in_one_write(store: JournalStore) -> None:
    claim = start(store)

    store.record(
        claim,
        [started("reserve"), Transition(kind="run_failed", run_status=RunStatus.FAILED)],
        now=T0 + 5,
        lease_s=LEASE,
        release=True,
    )

    snapshot = store.load("op-1")
    assert (snapshot.run.owner, snapshot.run.lease_expires_at) == (None, None)
    assert snapshot.run.status is RunStatus.FAILED
    assert snapshot.run.updated_at == T0 + 5
    events = store.events("op-1")
    assert [e.kind for e in events][-3:] == ["step_started", "run_failed", "released"]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].data == {"fencing_token": 1}
    # Released: anyone may claim it at once, and the old claim is spent.
    assert store.claim("op-1", owner="worker-b", now=T0 + 6, lease_s=LEASE).fencing_token == 2


def test_record_with_release_and_nothing_to_apply_only_releases(store: JournalStore) -> None:
    claim = start(store)

    store.record(claim, [], now=T0 + 5, lease_s=LEASE, release=True)

    assert store.load("op-1").run.owner is None
    assert store.events("op-1")[-1].kind == "released"


def test_a_stale_release_with_record_changes_nothing(store: JournalStore) -> None:
    stale = start(store, owner="worker-a")
    store.claim("op-1", owner="worker-b", now=T0 + LEASE + 1, lease_s=LEASE)
    before = journal(store)

    with pytest.raises(StaleOwnerError):
        store.record(stale, [started("reserve")], now=T0 + LEASE + 2, lease_s=LEASE, release=True)

    assert journal(store) == before
