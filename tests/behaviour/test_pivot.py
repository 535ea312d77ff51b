"""The point of no return and best-effort steps, on every store (DESIGN.md section 2).

A payout debits the buyer (undoable), transfers to the supplier (irreversible: the pivot),
posts the ledger and notifies the supplier (best-effort). Once the transfer is made nothing
before it is ever undone: a failing ledger posting is pushed forward, then a person looks.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from sagaguard.engine import AlertKind, Engine, FaultPoint, RecordingNotifier, Saga, SimulatedCrash
from sagaguard.storage import JournalStore, RunSnapshot, RunStatus, StepStatus
from sagaguard.testing import CrashAt, LedgerEntry, LedgerKind, check_invariants
from tests.behaviour.sagas import FakeClock, Provider

PAYOUT_STEPS = ["debit", "transfer", "post_ledger", "notify"]


def payout(provider: Provider, *, declare_pivot: str | None = None) -> Saga:
    """debit (undoable) -> transfer (irreversible) -> post_ledger (undoable) -> notify."""
    saga = Saga(
        "payout",
        alerts={"default": "payments-oncall", "email": "comms"},
        defaults={"max_attempts": 3, "retry_for": "10m", "timeout": "5s"},
    )

    def step(step_id: str, **fields: Any) -> Any:
        if declare_pivot == step_id:
            fields["pivot"] = True
        return saga.step(id=step_id, **fields)(provider.forward)

    step("debit", changes=["payment"], idempotent="yes").compensate(provider.compensate)
    step(
        "transfer",
        changes=["payment"],
        idempotent="yes",
        compensation="none",
        mitigation="claw back from the supplier",
    )
    step("post_ledger", changes=["database"], idempotent="yes").compensate(provider.compensate)
    step("notify", changes=["email"], idempotent="no", compensation="none", required=False)
    return saga


def ledger_of(provider: Provider) -> list[LedgerEntry]:
    """The provider's calls as the invariant checks read them."""
    return [
        LedgerEntry(
            operation_id=entry.key.split(":")[0],
            step_id=entry.step_id,
            kind=LedgerKind(entry.kind),
            idempotency_key=entry.key,
            attempt=entry.attempt,
            pid=os.getpid(),
            time=0.0,
        )
        for entry in provider.ledger
    ]


def assert_invariants_hold(
    store: JournalStore, snapshot: RunSnapshot, provider: Provider, saga: Saga, notifier: Any
) -> None:
    op = snapshot.run.operation_id
    found = check_invariants(
        snapshot,
        store.events(op),
        ledger_of(provider),
        saga.process,
        alerts=notifier.alerts,
        settled=True,
    )
    assert found == []


def test_a_failure_after_the_pivot_is_pushed_forward_then_reviewed_never_rolled_back(
    engine: Engine, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    provider = Provider()
    provider.always("post_ledger", "fail")
    saga = payout(provider)
    snapshot = engine.run(saga, operation_id="op-fwd", input=None)

    assert saga.process.pivot is not None
    assert saga.process.pivot.id == "transfer"
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    posting = snapshot.step("post_ledger")
    assert posting.status is StepStatus.NEEDS_MANUAL_REVIEW
    # Retried with backoff for the whole window, not only max_attempts times.
    assert posting.attempts > saga.process.max_attempts_for(saga.process.step("post_ledger"))
    assert posting.first_attempt_at is not None
    assert clock.now - posting.first_attempt_at >= 600.0
    assert provider.order("compensate") == [], "nothing before the pivot is undone"
    assert [s.status for s in snapshot.steps[:2]] == [StepStatus.COMPLETED] * 2
    assert provider.calls("notify") == []
    kinds = [e.kind for e in engine.store.events("op-fwd") if e.step_id == "post_ledger"]
    assert kinds.count("forward_recovery") == posting.attempts - 1
    assert "rollback_started" not in [e.kind for e in engine.store.events("op-fwd")]
    assert [(a.kind, a.step_id) for a in notifier.alerts] == [
        (AlertKind.NEEDS_MANUAL_REVIEW, "post_ledger")
    ]
    assert notifier.alerts[0].route == "payments-oncall"
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_a_failure_after_the_pivot_that_clears_within_its_window_completes(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    """A ledger outage longer than max_attempts but shorter than retry_for heals itself."""
    provider = Provider()
    provider.plan("post_ledger", *["fail"] * 5)
    saga = payout(provider)
    snapshot = engine.run(saga, operation_id="op-heal", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    assert snapshot.step("post_ledger").attempts == 6
    assert provider.order("compensate") == []
    assert notifier.alerts == []
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_a_refusal_after_the_pivot_goes_to_a_person_at_once(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("post_ledger", "refuse")
    saga = payout(provider)
    snapshot = engine.run(saga, operation_id="op-refused", input=None)

    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert len(provider.calls("post_ledger")) == 1, "a repeat cannot change a refusal"
    assert provider.order("compensate") == []
    reason = snapshot.step("post_ledger").failure_reason or ""
    assert reason.startswith("refused for good on attempt 1")
    assert [a.kind for a in notifier.alerts] == [AlertKind.NEEDS_MANUAL_REVIEW]
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_the_pivot_itself_refused_rolls_back_what_came_before(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("transfer", "refuse")
    saga = payout(provider)
    snapshot = engine.run(saga, operation_id="op-nogo", input=None)

    assert snapshot.run.status is RunStatus.COMPENSATED
    assert provider.order("compensate") == ["debit"]
    assert snapshot.step("transfer").status is StepStatus.FAILED
    assert provider.calls("post_ledger") == []
    assert notifier.alerts == []
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_a_declared_pivot_moves_the_point_of_no_return(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    """Declared on the debit, the pivot is there: a refused transfer no longer refunds it."""
    provider = Provider()
    provider.plan("transfer", "refuse")
    saga = payout(provider, declare_pivot="debit")
    snapshot = engine.run(saga, operation_id="op-declared", input=None)

    assert saga.process.pivot_declared
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert provider.order("compensate") == [], "the debit is past the point of no return"
    assert snapshot.step("debit").status is StepStatus.COMPLETED
    assert snapshot.step("transfer").status is StepStatus.NEEDS_MANUAL_REVIEW
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_a_best_effort_step_refused_ends_failed_alerts_and_the_run_completes(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    provider = Provider()
    provider.plan("notify", "refuse")
    saga = payout(provider)
    snapshot = engine.run(saga, operation_id="op-bounce", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    notify = snapshot.step("notify")
    assert (notify.status, notify.kept) == (StepStatus.FAILED, True)
    assert len(provider.calls("notify")) == 1
    assert provider.order("compensate") == []
    assert [(a.kind, a.step_id, a.route) for a in notifier.alerts] == [
        (AlertKind.BEST_EFFORT_FAILED, "notify", "comms")
    ]
    assert notifier.alerts[0].run_status == RunStatus.RUNNING
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_a_best_effort_step_timing_out_is_never_retried_blind_and_the_run_completes(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    """No verify, not idempotent: the step stays unknown, a person is told, the run ends."""
    provider = Provider()
    provider.plan("notify", "timeout_applied")
    saga = payout(provider)
    snapshot = engine.run(saga, operation_id="op-silent", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    notify = snapshot.step("notify")
    assert (notify.status, notify.kept) == (StepStatus.UNKNOWN, True)
    assert len(provider.calls("notify")) == 1, "never retried blind"
    assert [a.kind for a in notifier.alerts] == [AlertKind.BEST_EFFORT_FAILED]
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def signup(provider: Provider) -> Saga:
    """account (undoable) -> sms (best-effort) -> charge (undoable)."""
    saga = Saga("signup", alerts={"default": "ops"})
    saga.step(id="account", changes=["database"], idempotent="yes")(provider.forward).compensate(
        provider.compensate
    )
    saga.step(
        id="sms", changes=["external_api"], idempotent="yes", compensation="none", required=False
    )(provider.forward)
    saga.step(id="charge", changes=["payment"], idempotent="yes")(provider.forward).compensate(
        provider.compensate
    )
    return saga


def test_a_best_effort_step_early_in_the_run_never_rolls_it_back(
    engine: Engine, notifier: RecordingNotifier
) -> None:
    """An SMS that fails before the charge: the charge still happens, the run completes."""
    provider = Provider()
    saga = signup(provider)
    provider.always("sms", "fail")
    snapshot = engine.run(saga, operation_id="op-sms", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    assert len(provider.calls("sms")) == saga.process.max_attempts_for(saga.process.step("sms"))
    assert provider.order("call")[-1] == "charge"
    assert provider.order("compensate") == []
    assert [a.kind for a in notifier.alerts] == [AlertKind.BEST_EFFORT_FAILED]
    assert_invariants_hold(engine.store, snapshot, provider, saga, notifier)


def test_a_recovered_run_does_not_call_again_a_best_effort_step_it_went_on_without(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    provider.plan("sms", "refuse")
    saga = signup(provider)
    crash = CrashAt(FaultPoint.BEFORE_CALL, step_id="charge")
    dying = Engine(store=store, clock=clock, sleep=clock.sleep, owner="dying", faults=crash)
    with pytest.raises(SimulatedCrash):
        dying.run(saga, operation_id="op-again", input=None)
    clock.advance(3600)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="w", sagas=[saga]) as worker:
        [snapshot] = worker.recover()
    assert snapshot.run.status is RunStatus.COMPLETED
    assert len(provider.calls("sms")) == 1, "the run went on without it: not called again"
    assert snapshot.step("sms").status is StepStatus.FAILED
