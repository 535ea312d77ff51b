"""The harness must catch bugs: each mutant makes ``verify`` fail, where the original passes.

Engine mutants monkeypatch one small piece of the run driver (or the journal's fencing
rule) for the length of a test; saga mutants are otherwise correct sagas with one bug. Each
test names the scenario that must fail and the check that must catch it, and the first test
proves the same scenarios pass without the mutant: a harness that passes a broken saga is
worse than none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagaguard import rules
from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.engine.backward import Backward
from sagaguard.engine.calls import Call, Outcome, OutcomeKind
from sagaguard.engine.forward import Forward
from sagaguard.engine.staging import StagedRun
from sagaguard.model import Phase, Process, Step, StepClass
from sagaguard.rules import Decision, Ruling, Situation
from sagaguard.storage import journal
from sagaguard.testing import FakeProvider, Subject, World, load_subject, verify
from sagaguard.testing.harness import Report
from sagaguard.testing.subject import subject_source
from sagaguard.vocabulary import EventKind

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHECKOUT = str(EXAMPLES / "checkout.yaml")
RUNNABLE = str(EXAMPLES / "checkout_runnable.yaml")
PAYOUT = str(EXAMPLES / "b2b_payout.yaml")


def prove(target: str, *only: str) -> Report:
    return verify(load_subject(target), only=only, seed=11)


def checks(report: Report, scenario_id: str) -> set[tuple[str, str | None]]:
    """(check, step) of every failure of one scenario."""
    [result] = [r for r in report.results if r.scenario.id == scenario_id]
    return {(f.check, f.step) for f in result.failures}


# -- saga mutants' sagas ------------------------------------------------------------------


def charge_saga(*, hold_honours_keys: bool = True, verify_lies: bool = False) -> Subject:
    """A hold (idempotent) then a charge (not idempotent, verified), on fakes."""
    hold = FakeProvider("warehouse", honours_keys=hold_honours_keys, id_field="hold_id")
    psp = FakeProvider("psp", honours_keys=False, id_field="payment_id")
    saga = Saga("pay", alerts={"default": "ops"}, defaults={"backoff_max": "1s"})
    reserve = saga.step(
        id="reserve", changes=["reservation"], idempotent="yes", external_id="hold_id"
    )(hold.call)
    reserve.compensate(hold.compensate)
    charge = saga.step(id="charge", changes=["payment"], idempotent="no", external_id="payment_id")(
        psp.call
    )
    charge.compensate(psp.compensate)

    def never_found(ctx: StepContext) -> Applied | NotApplied:
        psp.lookup(ctx)  # asks, then ignores the answer
        return NotApplied("nothing found")

    charge.verify(never_found if verify_lies else psp.lookup)
    return Subject(saga=saga, world=World([hold, psp]))


def prove_subject(*only: str, **bugs: bool) -> Report:
    """Prove the charge saga with these bugs, each scenario on fresh fakes."""
    return verify(subject_source(lambda: charge_saga(**bugs), target="pay"), only=only, seed=11)


BASELINES = [
    (CHECKOUT, ("failure_after_charge_payment", "owners_racing_charge_payment")),
    (RUNNABLE, ("timeout_charge_payment", "failure_after_charge_payment")),
    (PAYOUT, ("failure_after_send_bank_transfer",)),
]


@pytest.mark.parametrize(("target", "scenarios"), BASELINES, ids=["checkout", "runnable", "payout"])
def test_without_a_mutant_the_scenarios_pass(target: str, scenarios: tuple[str, ...]) -> None:
    report = prove(target, *scenarios)
    assert report.passed, [str(f) for r in report.failed for f in r.failures]


def test_without_a_bug_the_charge_saga_passes() -> None:
    report = prove_subject()
    assert report.passed, [str(f) for r in report.failed for f in r.failures]


# -- engine mutants ------------------------------------------------------------------------


def test_compensations_in_the_wrong_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver numbers completions downwards, so its rollback undoes the oldest first."""

    def downwards(self: StagedRun) -> int:
        return 1000 - sum(1 for r in self.steps.values() if r.completed_seq is not None)

    monkeypatch.setattr(StagedRun, "next_seq", downwards)
    report = prove(CHECKOUT, "failure_after_charge_payment")
    assert ("invariant 2", "reserve_stock") in checks(report, "failure_after_charge_payment")


def test_a_non_idempotent_step_retried_after_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatch retries every lost answer, as if every step were idempotent."""
    decide = rules.decide

    def retry_lost_answers(step: Step, situation: Situation, **kw: Any) -> Ruling:
        ruling = decide(step, situation, **kw)
        if situation in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
            retried = decide(step, Situation.DEFINITE_FAILURE, **kw)
            return dataclasses.replace(ruling, decision=Decision.RETRY, bound=retried.bound)
        return ruling

    monkeypatch.setattr(rules, "decide", retry_lost_answers)
    report = prove(RUNNABLE, "timeout_charge_payment")
    found = checks(report, "timeout_charge_payment")
    assert ("world", "charge_payment") in found, "charged twice"
    assert ("invariant 3", "charge_payment") in found, "retried blind"


def test_a_compensation_run_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollback asks for each compensation call twice (the first answer is dropped)."""
    attempt = Backward._attempt

    def twice(self: Backward, step: Step) -> Any:
        moves = attempt(self, step)
        try:
            request = next(moves)
            while True:
                if isinstance(request, Call):
                    yield request
                request = moves.send((yield request))
        except StopIteration as stop:
            return stop.value

    monkeypatch.setattr(Backward, "_attempt", twice)
    report = prove(CHECKOUT, "failure_after_charge_payment")
    assert ("invariant 2", "charge_payment") in checks(report, "failure_after_charge_payment")


def test_a_verify_answer_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify finds the charge; the driver takes it for "not applied" and charges again."""
    verified = Forward._verified

    def ignoring(self: Forward, step: Step, outcome: Outcome) -> Any:
        if outcome.kind is OutcomeKind.OK and isinstance(outcome.value, Applied):
            outcome = Outcome(OutcomeKind.OK, value=NotApplied("answer ignored"))
        return verified(self, step, outcome)

    monkeypatch.setattr(Forward, "_verified", ignoring)
    report = prove(RUNNABLE, "timeout_charge_payment")
    found = checks(report, "timeout_charge_payment")
    assert ("world", "charge_payment") in found, "charged twice"
    assert ("expected", "charge_payment") in found


def test_a_stale_owner_not_fenced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal accepts a write whatever its fencing token and owner."""

    def accept(claim: Any, run: Any) -> Any:
        return run

    monkeypatch.setattr(journal, "check_current", accept)
    report = prove(CHECKOUT, "owners_racing_charge_payment")
    found = checks(report, "owners_racing_charge_payment")
    assert any(check == "invariant 4" for check, _ in found), found


def test_a_result_not_persisted_before_the_next_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver keeps each step's result back until the run's last commit."""
    flush = StagedRun.flush
    held: dict[int, list[Any]] = {}

    def late(self: StagedRun, *, extra_lease_s: float = 0.0, release: bool = False) -> None:
        kept = held.setdefault(id(self), [])
        if release:
            self._pending[:0] = kept
            kept.clear()
        else:
            kept += [t for t in self._pending if t.kind == EventKind.STEP_COMPLETED]
            self._pending = [t for t in self._pending if t.kind != EventKind.STEP_COMPLETED]
        flush(self, extra_lease_s=extra_lease_s, release=release)

    monkeypatch.setattr(StagedRun, "flush", late)
    report = prove(RUNNABLE, "crash_before_call_book_delivery", "failure_after_charge_payment")
    assert not report.passed
    assert ("expected", "charge_payment") in checks(report, "crash_before_call_book_delivery")
    # Rolled back while the journal still says "started": an effect never confirmed undone.
    assert ("invariant 3", "charge_payment") in checks(report, "failure_after_charge_payment")


def test_a_rollback_that_runs_past_the_pivot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatch rolls back a failure after the pivot, undoing what came before it."""
    decide = rules.decide

    def past_the_pivot(step: Step, situation: Situation, *, process: Process, **kw: Any) -> Ruling:
        ruling = decide(step, situation, process=process, **kw)
        after = process.phase(step) is Phase.AFTER_PIVOT
        failed = situation in (Situation.DEFINITE_FAILURE, Situation.REFUSED)
        if failed and after and ruling.ends is Decision.MANUAL_REVIEW:
            return dataclasses.replace(ruling, then=Decision.ROLLBACK, alert=None)
        undoable = step.step_class is StepClass.COMPENSATABLE
        if situation is Situation.LATER_STEP_FAILED and undoable:
            return dataclasses.replace(ruling, decision=Decision.COMPENSATE)
        return ruling

    monkeypatch.setattr(rules, "decide", past_the_pivot)
    report = prove(PAYOUT, "failure_after_send_bank_transfer")
    found = checks(report, "failure_after_send_bank_transfer")
    assert any(check == "invariant 10" for check, _ in found), found


# -- saga mutants --------------------------------------------------------------------------


def test_an_idempotent_step_that_ignores_its_key() -> None:
    """The hold is declared idempotent, but its provider makes a new hold on every call."""
    report = prove_subject("timeout_reserve", hold_honours_keys=False)
    assert ("world", "reserve") in checks(report, "timeout_reserve"), "held twice"


def test_a_verify_that_always_says_not_applied() -> None:
    report = prove_subject("timeout_charge", verify_lies=True)
    found = checks(report, "timeout_charge")
    assert ("verify", "charge") in found, "the lie is named"
    assert ("world", "charge") in found, "charged twice"


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return
