"""The expected end of a run under the faults a fault harness adds to a plan's tests.

A crash before a call leaves ``started`` and no effect; faults at the verify points make
verify fail or crash; counts are of calls made. Each expectation follows the rulebook.
"""

from __future__ import annotations

from tests.unit.test_planner_tests import BLIND, CHECKOUT, PAYOUT, outcomes, process, step

from sagaguard.model import Process
from sagaguard.planner.context import Planning
from sagaguard.planner.simulate import expect
from sagaguard.planner.testplan import ExpectedState, FaultKind, Injection
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus


def _expect(proc: Process, *faults: tuple[str, FaultPoint, FaultKind, int | None]) -> ExpectedState:
    injections = tuple(
        Injection(step=s, point=point, fault=fault, attempt=attempt)
        for s, point, fault, attempt in faults
    )
    return expect(Planning(proc), injections)


def _counts(proc: Process, expected: ExpectedState, step_id: str) -> tuple[int | None, ...]:
    """How often the step's call, verify and compensation run (their upper bounds)."""
    found = outcomes(proc, expected)[step_id]
    return (
        found.calls.at_most,
        found.verifies.at_most,
        found.compensations.at_most,
    )


CRASH_BEFORE = (FaultPoint.BEFORE_CALL, FaultKind.CRASH, 1)


def test_a_crash_before_the_call_is_verified_found_missing_and_called_once() -> None:
    expected = _expect(CHECKOUT, ("charge_payment", *CRASH_BEFORE))
    assert expected.run_status is RunStatus.COMPLETED
    assert _counts(CHECKOUT, expected, "charge_payment") == (1, 1, 0)


def test_a_crash_before_an_idempotent_call_is_repeated_and_counts_one_call() -> None:
    expected = _expect(CHECKOUT, ("reserve_stock", *CRASH_BEFORE))
    assert expected.run_status is RunStatus.COMPLETED
    assert _counts(CHECKOUT, expected, "reserve_stock") == (1, 0, 0)


def test_a_crash_before_a_call_nothing_can_settle_goes_to_a_person() -> None:
    expected = _expect(BLIND, ("charge_payment", *CRASH_BEFORE))
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    charge = outcomes(BLIND, expected)["charge_payment"]
    assert (charge.status, charge.calls.at_most) == (StepStatus.NEEDS_MANUAL_REVIEW, 0)
    assert [a.kind for a in expected.alerts] == [AlertKind.NEEDS_MANUAL_REVIEW]


def test_an_idempotent_step_with_one_attempt_crashed_before_its_call_waits_for_a_person() -> None:
    """The crashed attempt counts against the bound although its call was never made."""
    once = process(step("hold", "reservation", max_attempts=1, compensation="Release"))
    expected = _expect(once, ("hold", *CRASH_BEFORE))
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert _counts(once, expected, "hold") == (0, 0, 0)


LOST = ("charge_payment", FaultPoint.AFTER_CALL, FaultKind.TIMEOUT, 1)


def test_verify_failing_once_is_asked_again_and_finds_the_charge() -> None:
    expected = _expect(
        CHECKOUT, LOST, ("charge_payment", FaultPoint.BEFORE_VERIFY, FaultKind.FAIL, 1)
    )
    assert expected.run_status is RunStatus.COMPLETED
    assert _counts(CHECKOUT, expected, "charge_payment") == (1, 2, 0)


def test_verify_failing_every_time_is_bounded_then_a_person_decides() -> None:
    expected = _expect(
        CHECKOUT, LOST, ("charge_payment", FaultPoint.BEFORE_VERIFY, FaultKind.FAIL, None)
    )
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    charge = outcomes(CHECKOUT, expected)["charge_payment"]
    assert charge.status is StepStatus.NEEDS_MANUAL_REVIEW
    assert charge.verifies.at_most == 3, "max_attempts verify calls"
    assert [(a.kind, a.route) for a in expected.alerts] == [
        (AlertKind.NEEDS_MANUAL_REVIEW, "finance")
    ]


def test_a_crash_at_verify_asks_again_on_restart_and_counts_only_calls_made() -> None:
    before = _expect(
        CHECKOUT, LOST, ("charge_payment", FaultPoint.BEFORE_VERIFY, FaultKind.CRASH, 1)
    )
    after = _expect(CHECKOUT, LOST, ("charge_payment", FaultPoint.AFTER_VERIFY, FaultKind.CRASH, 1))
    assert before.run_status is after.run_status is RunStatus.COMPLETED
    assert _counts(CHECKOUT, before, "charge_payment") == (1, 1, 0)
    assert _counts(CHECKOUT, after, "charge_payment") == (1, 2, 0)


def test_a_best_effort_step_whose_verify_keeps_failing_stays_unknown_and_the_run_completes() -> (
    None
):
    mail = process(
        step("order", compensation="Cancel"),
        step("mail", "email", "no", compensation="none", required=False, verify="m:find"),
    )
    expected = _expect(
        mail,
        ("mail", FaultPoint.AFTER_CALL, FaultKind.TIMEOUT, 1),
        ("mail", FaultPoint.BEFORE_VERIFY, FaultKind.FAIL, None),
    )
    assert expected.run_status is RunStatus.COMPLETED
    assert outcomes(mail, expected)["mail"].status is StepStatus.UNKNOWN
    assert [a.kind for a in expected.alerts] == [AlertKind.BEST_EFFORT_FAILED]


def test_a_settle_delay_asks_verify_twice_before_not_found_counts() -> None:
    """The transfer's crash came before its call: verify finds nothing, twice, then a retry."""
    lagging = process(
        step("debit", "payment", compensation="Credit back"),
        step("transfer", "payment", "no", compensation="none", verify="b:f", verify_after="2m"),
    )
    expected = _expect(lagging, ("transfer", *CRASH_BEFORE))
    assert expected.run_status is RunStatus.COMPLETED
    assert _counts(lagging, expected, "transfer") == (1, 2, 0)


def test_a_crash_before_a_compensation_is_no_compensation_call() -> None:
    expected = _expect(
        PAYOUT,
        ("transfer", FaultPoint.BEFORE_CALL, FaultKind.REFUSE, 1),
        ("fx", FaultPoint.BEFORE_COMPENSATION, FaultKind.CRASH, 1),
    )
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    fx = outcomes(PAYOUT, expected)["fx"]
    assert (fx.status, fx.compensations.at_most) == (StepStatus.COMPENSATION_FAILED, 0)
    assert [a.kind for a in expected.alerts] == [AlertKind.COMPENSATION_FAILED]


def test_a_crash_right_after_a_commit_finds_the_next_step_started_with_no_call() -> None:
    """The result of a step and the next step's started share one commit."""
    expected = _expect(BLIND, ("create_order", FaultPoint.AFTER_COMMIT, FaultKind.CRASH, 1))
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert outcomes(BLIND, expected)["create_order"].status is StepStatus.COMPLETED
    charge = outcomes(BLIND, expected)["charge_payment"]
    assert (charge.status, charge.calls.at_most) == (StepStatus.NEEDS_MANUAL_REVIEW, 0)


def test_a_crash_right_after_the_last_commit_changes_nothing() -> None:
    expected = _expect(CHECKOUT, ("send_email", FaultPoint.AFTER_COMMIT, FaultKind.CRASH, 1))
    assert expected.run_status is RunStatus.COMPLETED
    assert {o.status for o in outcomes(CHECKOUT, expected).values()} == {StepStatus.COMPLETED}
