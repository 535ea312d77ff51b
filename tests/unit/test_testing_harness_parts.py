"""The harness's parts one by one: the faulting caller, the fault points, the world, the
comparison with the plan, the order check and the matrix's families."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tests.unit.test_planner_tests import CHECKOUT, PAYOUT

from sagaguard.engine import Applied, NotApplied, Saga, SimulatedCrash, StepContext
from sagaguard.engine.calls import Call, OutcomeKind
from sagaguard.model import Process
from sagaguard.planner.testplan import Count, ExpectedState, FaultKind, Injection, StepExpectation
from sagaguard.storage.base import Event
from sagaguard.testing import MemoryLedger
from sagaguard.testing.caller import FaultingCaller
from sagaguard.testing.compare import compare
from sagaguard.testing.injector import ScheduledFaults
from sagaguard.testing.invariants import rollback_order
from sagaguard.testing.ledger import LedgerEntry, LedgerKind
from sagaguard.testing.matrix import build_matrix
from sagaguard.testing.scenario import Observed, ScenarioKind, StepObservation
from sagaguard.testing.world import World
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus


@dataclass
class _Effect:
    idempotency_key: str | None
    undone: bool = False


class _Fake:
    def __init__(self) -> None:
        self.made: list[_Effect] = []

    def effects(self) -> list[_Effect]:
        return list(self.made)

    def call(self, ctx: StepContext) -> dict[str, str]:
        self.made.append(_Effect(ctx.idempotency_key))
        return {"id": "x"}

    def find(self, ctx: StepContext) -> Applied | NotApplied:
        return NotApplied("never")


def _saga(fake: _Fake) -> Saga:
    saga = Saga("t")
    step = saga.step(id="charge", changes=["payment"], idempotent="no")(fake.call)
    step.verify(fake.find)
    return saga


def _ctx(attempt: int = 1) -> StepContext:
    return StepContext(
        operation_id="op",
        step_id="charge",
        attempt=attempt,
        idempotency_key="op:charge",
        fencing_token=1,
        input=None,
        results={},
        external_ids={},
    )


def _caller(fake: _Fake, *faults: Injection) -> FaultingCaller:
    return FaultingCaller(
        saga=_saga(fake), faults=faults, ledger=MemoryLedger(), world=World([fake])
    )


def _fault(point: FaultPoint, fault: FaultKind, attempt: int | None = 1) -> Injection:
    return Injection(step="charge", point=point, fault=fault, attempt=attempt)


def test_a_refusal_is_answered_without_calling_the_step_and_is_still_a_call() -> None:
    fake = _Fake()
    caller = _caller(fake, _fault(FaultPoint.BEFORE_CALL, FaultKind.REFUSE))
    outcome = caller.call(Call(fake.call, _ctx(), 5.0))
    assert (outcome.kind, outcome.retryable) == (OutcomeKind.FAILED, False)
    assert fake.made == [], "nothing changed"
    assert [e.kind for e in caller.ledger.entries()] == [LedgerKind.CALL]


def test_a_timeout_lets_the_effect_happen_and_loses_the_answer() -> None:
    fake = _Fake()
    caller = _caller(fake, _fault(FaultPoint.AFTER_CALL, FaultKind.TIMEOUT))
    lost = caller.call(Call(fake.call, _ctx(), 5.0))
    assert lost.kind is OutcomeKind.UNKNOWN
    assert len(fake.made) == 1
    assert caller.call(Call(fake.call, _ctx(attempt=2), 5.0)).kind is OutcomeKind.OK


def test_a_fault_aimed_at_one_attempt_wins_over_every_attempt() -> None:
    fake = _Fake()
    caller = _caller(
        fake,
        _fault(FaultPoint.BEFORE_CALL, FaultKind.FAIL, None),
        _fault(FaultPoint.AFTER_CALL, FaultKind.TIMEOUT, 2),
    )
    assert caller.call(Call(fake.call, _ctx(1), 5.0)).kind is OutcomeKind.FAILED
    assert caller.call(Call(fake.call, _ctx(2), 5.0)).kind is OutcomeKind.UNKNOWN
    assert len(fake.made) == 1


def test_a_verify_fault_means_verify_could_not_tell_and_a_lie_is_named() -> None:
    fake = _Fake()
    caller = _caller(fake, _fault(FaultPoint.BEFORE_VERIFY, FaultKind.FAIL))
    assert caller.call(Call(fake.find, _ctx(), 5.0)).kind is OutcomeKind.UNKNOWN
    fake.call(_ctx())
    answer = caller.call(Call(fake.find, _ctx(), 5.0))  # verify call 2: no fault
    assert isinstance(answer.value, NotApplied)
    assert caller.lies == [
        ("charge", "verify said not applied while the provider held the effect (op:charge)")
    ]


def test_fault_points_crash_once_per_attempt_and_run_hooks_first() -> None:
    seen: list[str] = []
    faults = ScheduledFaults([_fault(FaultPoint.AFTER_COMMIT, FaultKind.CRASH, None)])
    faults.hooks[(FaultPoint.AFTER_COMMIT, "charge", 1)] = lambda: seen.append("hook")
    with pytest.raises(SimulatedCrash):
        faults.check(FaultPoint.AFTER_COMMIT, operation_id="op", step_id="charge", attempt=1)
    faults.check(FaultPoint.AFTER_COMMIT, operation_id="op", step_id="charge", attempt=1)
    with pytest.raises(SimulatedCrash):
        faults.check(FaultPoint.AFTER_COMMIT, operation_id="op", step_id="charge", attempt=2)
    assert seen == ["hook"]
    assert [h.attempt for h in faults.crashes] == [1, 2]


def test_the_world_names_double_effects_strays_and_undone_completions() -> None:
    from sagaguard.storage.base import NewRun

    process = Process.model_validate(
        {
            "process": "t",
            "state_store": "database",
            "observability": [],
            "steps": [
                {"id": "a", "changes": ["payment"], "idempotent": "no"},
                {"id": "b", "changes": ["payment"], "idempotent": "no"},
            ],
        }
    )
    snapshot = NewRun("op", "t", "1", None, ("a", "b")).snapshot(owner=None, now=0, lease_s=1)
    fake = _Fake()
    fake.made += [_Effect("op:a"), _Effect("op:a"), _Effect(None)]
    found = World([fake]).check(snapshot, process, fresh=True)
    messages = [v.message for v in found]
    assert any("without an idempotency key" in m for m in messages)
    assert any("2 live effects under op:a" in m for m in messages)
    assert any("journal says pending" in m for m in messages)
    assert World().check(snapshot, process, fresh=True) == [], "no fakes, nothing to judge"


def test_compare_names_every_field_that_differs_from_the_plan() -> None:
    expected = ExpectedState(
        run_status=RunStatus.COMPLETED,
        steps=(
            StepExpectation(
                first="a",
                last="a",
                status=StepStatus.COMPLETED,
                calls=Count(at_least=1, at_most=1),
                verifies=Count(at_least=0, at_most=0),
                compensations=Count(at_least=0, at_most=None),
            ),
        ),
        alerts=(),
    )
    observed = Observed(
        run_status=RunStatus.NEEDS_MANUAL_REVIEW,
        steps={"a": StepObservation(StepStatus.NEEDS_MANUAL_REVIEW, 2, 0, 5)},
        alerts=((AlertKind.NEEDS_MANUAL_REVIEW, "a", "ops"),),
    )
    messages = [str(f) for f in compare(expected, observed, ["a"])]
    assert messages == [
        "expected: the run ended needs_manual_review, the plan expects completed",
        "expected [a]: ended needs_manual_review, the plan expects completed",
        "expected [a]: 2 calls, the plan expects 1",
        "expected [a]: a needs_manual_review alert to ops the plan does not expect",
    ]


def _event(seq: int, step: str, to: str) -> Event:
    return Event("op", seq, 0.0, "w", "k", step, None, to, None)


def _undo(step: str) -> LedgerEntry:
    return LedgerEntry("op", step, LedgerKind.COMPENSATE, f"op:{step}", 1, 1, 0.0)


def test_rollback_order_follows_the_audit_trail_not_the_journal_numbers() -> None:
    events = [_event(1, "a", "completed"), _event(2, "b", "completed")]
    assert rollback_order(events, [_undo("b"), _undo("a")]) == []
    [wrong] = rollback_order(events, [_undo("a"), _undo("b")])
    assert (wrong.invariant, wrong.step_id) == (2, "b")


def test_the_matrix_has_every_family_with_unique_ids() -> None:
    scenarios = build_matrix(CHECKOUT)
    ids = [s.id for s in scenarios]
    assert len(ids) == len(set(ids))
    for step in CHECKOUT.steps[:-1]:  # the last one's after_commit crash is a plan test
        for point in ("before_call", "after_commit"):
            assert f"crash_{point}_{step.id}" in ids
    assert "crash_after_call_charge_payment" not in ids, "the plan's own test covers it"
    assert "crash_before_persist_charge_payment" in ids
    assert {"duplicate_sequential", "duplicate_concurrent"} <= set(ids)
    assert "owners_racing_charge_payment" in ids
    assert "compensation_fails_always_reserve_stock" in ids
    assert "verify_fails_once_charge_payment" in ids
    assert "best_effort_refuse_send_email" in ids
    assert "crash_before_compensation_send_email" not in ids, "an email is never undone"
    kinds = {s.kind for s in scenarios}
    assert ScenarioKind.PIVOT not in kinds, "no step after a pivot in this checkout"
    payout = {s.id for s in build_matrix(PAYOUT)}
    assert "refused_after_pivot_post_ledger" in payout
    assert "compensation_fails_once_fx" in payout
    assert "crash_before_compensation_debit" in payout
    assert "compensation_fails_once_post_ledger" not in payout, "never undone after the pivot"


def test_a_spec_without_code_is_simulated_with_what_it_declares() -> None:
    from sagaguard.testing.clock import FakeClock
    from sagaguard.testing.simulated import simulate_providers

    saga, world = simulate_providers(CHECKOUT, clock=FakeClock())
    charge = saga.handlers("charge_payment")
    email = saga.handlers("send_email")
    assert charge.verify is not None
    assert charge.compensate is not None
    assert email.compensate is None
    assert email.verify is None
    assert len(world.fakes) == len(CHECKOUT.steps), "every step changes something"
    honours: dict[str, Any] = {f.name: f.honours_keys for f in world.fakes}  # type: ignore[attr-defined]
    assert honours["charge_payment"] is False, "idempotent: unknown charges twice if retried"
    assert honours["reserve_stock"] is True
