"""The invariant checks: each catches a hand-built journal that breaks it, and real runs pass.

Violating journals are written through the in-memory store itself (``record`` applies any
transition it is given), so they have the exact shape a broken engine would leave behind.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sagaguard import StepFailed
from sagaguard.engine import (
    Alert,
    AlertKind,
    Applied,
    Engine,
    NotApplied,
    RecordingNotifier,
    Saga,
    StepContext,
)
from sagaguard.model import Process
from sagaguard.storage.base import (
    Claim,
    Event,
    NewRun,
    RunStatus,
    StepChange,
    StepStatus,
    Transition,
    idempotency_key,
)
from sagaguard.storage.memory import InMemoryStore
from sagaguard.testing import (
    CrashAt,
    FakeClock,
    FaultPoint,
    LedgerEntry,
    LedgerKind,
    MemoryLedger,
    SimulatedCrash,
    Violation,
    check_invariants,
)

OP = "op-1"


PROCESS = Process.model_validate(
    {
        "process": "checkout",
        "state_store": "database",
        "observability": ["logs", "alerts"],
        "defaults": {"max_attempts": 3, "compensation_attempts": 2},
        "steps": [
            {
                "id": "reserve",
                "changes": ["reservation"],
                "idempotent": "yes",
                "compensation": "release the stock",
            },
            {
                "id": "charge",
                "changes": ["payment"],
                "idempotent": "no",
                "compensation": "refund",
                "verify": "look the charge up",
            },
            {
                "id": "ship",
                "changes": ["external_api"],
                "idempotent": "yes",
                "compensation": "cancel the delivery",
                "max_attempts": 1,
            },
        ],
    }
)


class Journal:
    """Writes a run's journal transition by transition, as any engine could."""

    def __init__(self) -> None:
        self.store = InMemoryStore()
        new = NewRun(OP, "checkout", "1", {"cart": 1}, ("reserve", "charge", "ship"))
        created = self.store.create_run(new, owner="writer", now=1.0, lease_s=60)
        assert created.claim is not None
        self.claim: Claim = created.claim
        self.seq = 0

    def step(self, kind: str, step_id: str, status: str, **values: Any) -> Journal:
        change = StepChange(step_id, StepStatus(status), **values)
        return self._record(Transition(kind=kind, step=change))

    def run(self, kind: str, status: str) -> Journal:
        return self._record(Transition(kind=kind, run_status=RunStatus(status)))

    def started(self, step_id: str, attempt: int) -> Journal:
        return self.step("step_started", step_id, "started", attempts=attempt)

    def completed(self, step_id: str, attempt: int = 1) -> Journal:
        self.seq += 1
        self.started(step_id, attempt)
        return self.step("step_completed", step_id, "completed", completed_seq=self.seq)

    def compensated(self, step_id: str, attempt: int = 1) -> Journal:
        self.step("compensation_started", step_id, "compensating", compensation_attempts=attempt)
        return self.step("step_compensated", step_id, "compensated")

    def _record(self, transition: Transition) -> Journal:
        self.claim = self.store.record(self.claim, [transition], now=2.0, lease_s=60)
        return self

    def check(self, ledger: list[LedgerEntry], **options: Any) -> list[Violation]:
        return check_invariants(
            self.store.load(OP), self.store.events(OP), ledger, PROCESS, **options
        )


def entry(
    step_id: str, kind: str = "call", attempt: int = 1, key: str | None = None
) -> LedgerEntry:
    """One ledger line for the run under test."""
    return LedgerEntry(
        operation_id=OP,
        step_id=step_id,
        kind=LedgerKind(kind),
        idempotency_key=key or idempotency_key(OP, step_id),
        attempt=attempt,
        pid=1,
        time=0.0,
    )


def numbers(violations: list[Violation]) -> set[int]:
    """The invariant numbers broken."""
    return {v.invariant for v in violations}


# -- clean journals: hand-built and from real runs ---------------------------------------------


def test_a_clean_hand_built_rollback_has_no_violation() -> None:
    journal = Journal().completed("reserve").completed("charge")
    journal.started("ship", 1).step("step_failed", "ship", "failed", failure_reason="no courier")
    journal.run("rollback_started", "compensating")
    journal.compensated("charge").compensated("reserve").run("run_compensated", "compensated")
    ledger = [
        entry("reserve"),
        entry("charge"),
        entry("ship"),
        entry("charge", "compensate"),
        entry("reserve", "compensate"),
    ]
    assert journal.check(ledger, settled=True) == []


def checkout_saga(ledger: MemoryLedger, effects: dict[str, Any]) -> Saga:
    """reserve (idempotent), charge (not idempotent, verify), ship; scripted by the input."""
    saga = Saga("checkout", defaults={"backoff_base": 0.001, "compensation_attempts": 2})

    @saga.step(changes=["reservation"], idempotent="yes")
    def reserve(ctx: StepContext) -> dict[str, str]:
        ledger.record(ctx, "call")
        return {"reservation": "r1"}

    @reserve.compensate
    def release(ctx: StepContext) -> None:
        """Release the stock"""
        ledger.record(ctx, "compensate")

    @saga.step(changes=["payment"], idempotent="no", external_id="payment_id")
    def charge(ctx: StepContext) -> dict[str, str]:
        ledger.record(ctx, "call")
        effects[ctx.idempotency_key] = {"payment_id": "p1"}
        if ctx.input.get("timeout") and ctx.attempt == 1:
            raise TimeoutError("the provider did not answer")
        return {"payment_id": "p1"}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund"""
        ledger.record(ctx, "compensate")
        if ctx.input.get("refund_fails"):
            raise StepFailed("refund refused")

    @charge.verify
    def find(ctx: StepContext) -> Applied | NotApplied:
        """Look the charge up"""
        ledger.record(ctx, "verify")
        found = effects.get(ctx.idempotency_key)
        return Applied(found) if found else NotApplied()

    @saga.step(changes=["external_api"], idempotent="yes", max_attempts=1)
    def ship(ctx: StepContext) -> dict[str, str]:
        ledger.record(ctx, "call")
        if ctx.input.get("ship_fails"):
            raise StepFailed("no courier")
        return {"delivery": "d1"}

    @ship.compensate
    def cancel(ctx: StepContext) -> None:
        """Cancel the delivery"""
        ledger.record(ctx, "compensate")

    return saga


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ({}, RunStatus.COMPLETED),
        ({"timeout": True}, RunStatus.COMPLETED),
        ({"ship_fails": True}, RunStatus.COMPENSATED),
        ({"ship_fails": True, "refund_fails": True}, RunStatus.NEEDS_MANUAL_REVIEW),
    ],
    ids=["happy", "timeout-verified", "rollback", "refund-fails"],
)
def test_real_engine_runs_pass_every_check(scenario: dict[str, Any], expected: RunStatus) -> None:
    ledger, notifier, clock = MemoryLedger(), RecordingNotifier(), FakeClock()
    saga = checkout_saga(ledger, {})
    with Engine(store="memory://", notifier=notifier, clock=clock, sleep=clock.sleep) as engine:
        snapshot = engine.run(saga, operation_id=OP, input=scenario)
        assert snapshot.run.status is expected
        violations = check_invariants(
            snapshot,
            engine.store.events(OP),
            ledger,
            saga.process,
            alerts=notifier.alerts,
            settled=True,
        )
    assert violations == []


def test_a_real_crash_after_the_charge_then_recovery_passes_every_check() -> None:
    ledger, effects = MemoryLedger(), dict[str, Any]()
    saga = checkout_saga(ledger, effects)
    store = InMemoryStore()
    faults = CrashAt(FaultPoint.AFTER_CALL, step_id="charge")
    with Engine(store=store, faults=faults) as crashing, pytest.raises(SimulatedCrash):
        crashing.run(saga, operation_id=OP, input={})
    with Engine(store=store, sagas=[saga], clock=lambda: 9e9, sleep=lambda s: None) as survivor:
        [snapshot] = survivor.recover()
    assert snapshot.run.status is RunStatus.COMPLETED
    assert len(ledger.select(step_id="charge", kind="call")) == 1
    assert check_invariants(snapshot, store.events(OP), ledger, saga.process, settled=True) == []


# -- invariant 1 ---------------------------------------------------------------------------------


def test_inv1_catches_a_non_idempotent_step_called_again_after_it_completed() -> None:
    journal = Journal().completed("reserve").completed("charge")
    journal.started("charge", 2).step("step_completed", "charge", "completed")
    found = journal.check([entry("reserve"), entry("charge"), entry("charge", attempt=2)])
    assert numbers(found) == {1}
    assert found[0].step_id == "charge"


def test_inv1_allows_a_repeat_after_verify_said_not_applied() -> None:
    journal = Journal().completed("reserve")
    journal.started("charge", 1).step("outcome_unknown", "charge", "unknown")
    journal.step("verify_called", "charge", "unknown")
    journal.step("verified_not_applied", "charge", "failed")
    journal.seq += 1
    journal.started("charge", 2).step("step_completed", "charge", "completed", completed_seq=2)
    ledger = [
        entry("reserve"),
        entry("charge"),
        entry("charge", "verify"),
        entry("charge", attempt=2),
    ]
    assert journal.check(ledger) == []


def test_inv1_catches_a_retry_with_another_idempotency_key() -> None:
    journal = Journal().started("reserve", 1).step("outcome_unknown", "reserve", "unknown")
    journal.started("reserve", 2)
    ledger = [entry("reserve"), entry("reserve", attempt=2, key="op-1:reserve:retry")]
    found = journal.check(ledger)
    assert numbers(found) == {1}
    assert "op-1:reserve:retry" in found[0].message


# -- invariant 2 ---------------------------------------------------------------------------------


def _two_done_then_rollback() -> Journal:
    journal = Journal().completed("reserve").completed("charge")
    journal.started("ship", 1).step("step_failed", "ship", "failed")
    return journal.run("rollback_started", "compensating")


def test_inv2_catches_compensation_out_of_reverse_order() -> None:
    journal = _two_done_then_rollback().compensated("reserve").compensated("charge")
    ledger = [
        entry("reserve"),
        entry("charge"),
        entry("ship"),
        entry("reserve", "compensate"),
        entry("charge", "compensate"),
    ]
    found = journal.check(ledger)
    assert numbers(found) == {2}
    assert len(found) == 2, "the journal order and the ledger order are both reported"


def test_inv2_catches_compensating_a_step_that_never_completed() -> None:
    journal = _two_done_then_rollback()
    journal.step("compensation_started", "ship", "compensating", compensation_attempts=1)
    found = journal.check(
        [entry("reserve"), entry("charge"), entry("ship"), entry("ship", "compensate")]
    )
    assert numbers(found) == {2}
    assert {v.step_id for v in found} == {"ship"}


def test_inv2_catches_a_compensation_repeated_after_success() -> None:
    journal = _two_done_then_rollback().compensated("charge")
    journal.step("compensation_started", "charge", "compensating", compensation_attempts=2)
    journal.step("step_compensated", "charge", "compensated")
    ledger = [entry("reserve"), entry("charge"), entry("ship")]
    ledger += [entry("charge", "compensate"), entry("charge", "compensate", attempt=2)]
    found = journal.check(ledger)
    assert numbers(found) == {2}
    assert any("2 times" in v.message for v in found)


def test_inv2_allows_a_compensation_retried_after_a_definite_failure() -> None:
    journal = _two_done_then_rollback()
    journal.step("compensation_started", "charge", "compensating", compensation_attempts=1)
    journal.step("compensation_attempt_failed", "charge", "completed")
    journal.compensated("charge", attempt=2).compensated("reserve")
    ledger = [entry("reserve"), entry("charge"), entry("ship")]
    ledger += [entry("charge", "compensate"), entry("charge", "compensate", attempt=2)]
    ledger += [entry("reserve", "compensate")]
    assert journal.check(ledger) == []


# -- invariant 3 ---------------------------------------------------------------------------------


def test_inv3_catches_a_blind_retry_of_an_unknown_outcome() -> None:
    journal = Journal().completed("reserve")
    journal.started("charge", 1).step("outcome_unknown", "charge", "unknown")
    journal.started("charge", 2)
    found = journal.check([entry("reserve"), entry("charge", attempt=2)])
    assert numbers(found) == {3}


def test_inv3_allows_an_idempotent_step_to_retry_an_unknown_outcome() -> None:
    journal = Journal().started("reserve", 1).step("outcome_unknown", "reserve", "unknown")
    journal.started("reserve", 2)
    assert journal.check([entry("reserve"), entry("reserve", attempt=2)]) == []


def test_inv3_catches_a_compensation_while_an_outcome_is_unknown() -> None:
    journal = Journal().completed("reserve")
    journal.started("charge", 1).step("outcome_unknown", "charge", "unknown")
    journal.run("rollback_started", "compensating").compensated("reserve")
    found = journal.check([entry("reserve"), entry("charge"), entry("reserve", "compensate")])
    assert numbers(found) == {3}
    assert "charge was unknown" in found[0].message


def test_inv3_catches_compensating_the_unknown_step_itself() -> None:
    journal = Journal().started("reserve", 1).step("outcome_unknown", "reserve", "unknown")
    journal.step("compensation_started", "reserve", "compensating", compensation_attempts=1)
    assert 3 in numbers(journal.check([entry("reserve")]))


# -- invariant 5 ---------------------------------------------------------------------------------


def test_inv5_catches_attempts_beyond_the_bound() -> None:
    journal = Journal().completed("reserve").completed("charge")
    journal.started("ship", 1).step("step_failed", "ship", "failed").started("ship", 2)
    found = journal.check(
        [entry("reserve"), entry("charge"), entry("ship"), entry("ship", attempt=2)]
    )
    assert numbers(found) == {5}
    assert "bound of 1" in found[0].message


def test_inv5_catches_an_attempt_count_reset_by_a_crash() -> None:
    journal = Journal().started("reserve", 1).step("outcome_unknown", "reserve", "unknown")
    journal.started("reserve", 1)
    found = journal.check([entry("reserve"), entry("reserve")])
    assert numbers(found) == {5}
    assert {"lost or reset" in v.message or "made 2 times" in v.message for v in found} == {True}


# -- invariant 6 ---------------------------------------------------------------------------------


def _refund_failed() -> Journal:
    journal = _two_done_then_rollback()
    journal.step("compensation_started", "charge", "compensating", compensation_attempts=1)
    return journal.step("compensation_failed", "charge", "compensation_failed")


def test_inv6_catches_a_failed_compensation_that_leaves_the_run_compensated() -> None:
    journal = _refund_failed().compensated("reserve").run("run_compensated", "compensated")
    found = journal.check([entry("reserve"), entry("charge"), entry("ship")])
    assert numbers(found) == {6}
    assert any("did not halt" in v.message or "must halt" in v.message for v in found)
    assert any("not needs_manual_review" in v.message for v in found)


def test_inv6_catches_a_compensation_failure_without_its_own_event() -> None:
    journal = _two_done_then_rollback()
    journal.step("compensation_started", "charge", "compensating", compensation_attempts=1)
    journal.step("compensation_attempt_failed", "charge", "compensation_failed")
    journal.run("awaiting_review", "needs_manual_review")
    found = journal.check([entry("reserve"), entry("charge"), entry("ship")])
    assert [(v.invariant, v.message) for v in found] == [
        (6, "compensation_failed without its own event")
    ]


def test_inv6_catches_a_missing_alert_and_accepts_a_sent_one() -> None:
    journal = _refund_failed().run("awaiting_review", "needs_manual_review")
    ledger = [entry("reserve"), entry("charge"), entry("ship")]
    found = journal.check(ledger, alerts=[])
    assert numbers(found) == {6}
    assert "0 alert(s)" in found[0].message
    alert = Alert(
        kind=AlertKind.COMPENSATION_FAILED,
        operation_id=OP,
        process="checkout",
        step_id="charge",
        route=None,
        reason="refund refused",
        run_status="needs_manual_review",
        at=0.0,
    )
    assert journal.check(ledger, alerts=[alert], settled=True) == []


# -- invariants 7, 8 and 9 ----------------------------------------------------------------------


def test_inv7_catches_a_second_run_created_under_one_operation_id() -> None:
    journal = Journal().completed("reserve")
    events = journal.store.events(OP)
    again = dataclasses.replace(events[0], seq=events[-1].seq + 1)
    found = check_invariants(journal.store.load(OP), [*events, again], [entry("reserve")], PROCESS)
    assert numbers(found) == {7}


def test_inv7_catches_a_journal_of_another_process() -> None:
    journal = Journal()
    assert journal.check([]) == []
    other = PROCESS.model_copy(update={"name": "refund"})
    found = check_invariants(journal.store.load(OP), journal.store.events(OP), [], other)
    assert [v.invariant for v in found] == [7]
    assert "'refund'" in found[0].message


def test_inv8_catches_a_call_the_journal_never_recorded() -> None:
    found = Journal().check([entry("reserve")])
    assert 8 in numbers(found)
    assert any("did not record first" in v.message for v in found)


def test_inv8_catches_an_audit_trail_that_does_not_replay_to_the_snapshot() -> None:
    journal = Journal().completed("reserve")
    events: list[Event] = [e for e in journal.store.events(OP) if e.kind != "step_started"]
    found = check_invariants(journal.store.load(OP), events, [], PROCESS)
    assert numbers(found) == {8, 5}


def test_inv9_catches_a_run_left_unfinished_only_when_asked() -> None:
    journal = Journal().completed("reserve")
    assert journal.check([entry("reserve")]) == []
    found = journal.check([entry("reserve")], settled=True)
    assert [v.invariant for v in found] == [9]


def test_inv9_catches_a_completed_run_with_a_step_not_done() -> None:
    journal = Journal().completed("reserve").run("run_completed", "completed")
    found = journal.check([entry("reserve")], settled=True)
    assert numbers(found) == {9}
    assert {v.step_id for v in found} == {"charge", "ship"}


# -- invariant 10 ----------------------------------------------------------------------------


def _with_steps(**changes: dict[str, Any]) -> Process:
    """PROCESS with some steps' fields changed (``charge={"pivot": True}``)."""
    data = PROCESS.model_dump(by_alias=True, exclude_none=True)
    for step in data["steps"]:
        step.update(changes.get(step["id"], {}))
    return Process.model_validate(data)


def test_inv10_catches_a_rollback_past_a_completed_pivot() -> None:
    """The charge is the declared pivot: once it completed, undoing the reserve is forbidden."""
    pivoted = _with_steps(charge={"pivot": True})
    journal = _two_done_then_rollback().compensated("charge").compensated("reserve")
    calls = [entry("reserve"), entry("charge"), entry("ship")]
    calls += [entry("charge", "compensate"), entry("reserve", "compensate")]
    found = check_invariants(journal.store.load(OP), journal.store.events(OP), calls, pivoted)
    assert numbers(found) == {10}
    assert {v.step_id for v in found} == {None, "charge", "reserve"}
    # The same journal is a clean rollback when no step is the point of no return.
    assert journal.check(calls) == []


def test_inv10_catches_a_rollback_for_a_best_effort_step() -> None:
    best_effort = _with_steps(ship={"required": False})
    journal = _two_done_then_rollback()
    found = check_invariants(
        journal.store.load(OP),
        journal.store.events(OP),
        [entry("reserve"), entry("charge"), entry("ship")],
        best_effort,
    )
    assert [(v.invariant, v.step_id) for v in found] == [(10, "ship")]
    assert "best-effort" in found[0].message


def test_violation_reads_as_one_line_naming_invariant_run_and_step() -> None:
    violation = Violation(1, OP, "charge", "called twice")
    assert str(violation) == "invariant 1 [op-1/charge]: called twice"
