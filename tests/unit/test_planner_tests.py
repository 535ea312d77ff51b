"""Parts 4 and 5 of the plan: the decision matrix and the partial-failure tests as data."""

from __future__ import annotations

from typing import Any

from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import (
    AlertKind,
    ExpectedState,
    FaultKind,
    FaultPoint,
    Injection,
    PartialFailureTest,
    RunStatus,
    StepExpectation,
    StepStatus,
    TestCategory,
)
from sagaguard.planner.simulate import expect
from sagaguard.rules import Decision, Situation, decide
from sagaguard.vocabulary import AlertKind as EngineAlertKind


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {"process": "shop", "state_store": "database", "observability": []}
    data.update(top)
    data["steps"] = list(steps)
    return Process.model_validate(data)


CHECKOUT = process(
    step("create_order", compensation="Cancel the order", external_id="order_id"),
    step(
        "reserve_stock",
        "reservation",
        compensation="Release the reservation",
        external_id="reservation_id",
    ),
    step(
        "charge_payment",
        "payment",
        "unknown",
        compensation="Refund the charge",
        verify="shop.psp:find_charge",
        external_id="payment_id",
        timeout="10s",
    ),
    step(
        "book_delivery", "external_api", compensation="Cancel the draft", external_id="delivery_id"
    ),
    step("send_email", "email", "no", compensation="none", required=False),
    alerts={"default": "shop-oncall", "payment": "finance"},
)

# The same without verify on the payment: a lost answer must go to a person.
BLIND = process(
    step("create_order", compensation="Cancel the order", external_id="order_id"),
    step("charge_payment", "payment", "no", compensation="Refund", external_id="payment_id"),
    step("send_email", "email", "yes", compensation="none", required=False),
    alerts={"payment": "finance"},
)

# A payout: debit, FX, the bank transfer (declared pivot), the ledger, a best-effort advice.
PAYOUT = process(
    step("debit", "payment", compensation="Credit back", external_id="debit_id"),
    step("fx", "payment", compensation="Reverse the trade", external_id="trade_id"),
    step("transfer", "payment", "no", compensation="none", pivot=True, verify="bank:find"),
    step("post_ledger", compensation="Reverse the posting", retry_for="2h"),
    step("advise", "email", "no", compensation="none", required=False),
    alerts={"default": "ops", "payment": "treasury"},
)


def by_id(proc: Process) -> dict[str, PartialFailureTest]:
    return {t.id: t for t in plan(proc).tests}


def outcomes(proc: Process, expected: ExpectedState) -> dict[str, StepExpectation]:
    return expected.per_step([s.id for s in proc.steps])


def statuses(proc: Process, expected: ExpectedState) -> dict[str, StepStatus]:
    return {k: v.status for k, v in outcomes(proc, expected).items()}


def calls(proc: Process, expected: ExpectedState) -> dict[str, tuple[int, int | None]]:
    return {k: (v.calls.at_least, v.calls.at_most) for k, v in outcomes(proc, expected).items()}


def test_matrix_has_one_entry_per_step_and_situation_from_the_rules() -> None:
    """Each (step, situation) once, and each entry is what `rules.decide` rules."""
    matrix = plan(CHECKOUT).decision_matrix
    assert len(matrix) == len(CHECKOUT.steps) * len(Situation)
    for entry in matrix:
        ruling = decide(CHECKOUT.step(entry.step), entry.situation, process=CHECKOUT)
        bound = (entry.bound.attempts, entry.bound.window_s) if entry.bound else None
        ruled = (ruling.bound.attempts, ruling.bound.window_s) if ruling.bound else None
        assert (entry.decision, entry.then, entry.alert, bound) == (
            ruling.decision,
            ruling.then,
            ruling.alert,
            ruled,
        )
        assert entry.reason


def test_matrix_has_the_new_situations_and_returns_the_existing_run() -> None:
    cells = {(e.step, e.situation): e for e in plan(CHECKOUT).decision_matrix}
    assert cells["charge_payment", Situation.TIMEOUT].decision is Decision.VERIFY
    assert cells["reserve_stock", Situation.TIMEOUT].decision is Decision.RETRY
    assert cells["charge_payment", Situation.REFUSED].decision is Decision.ROLLBACK
    assert cells["send_email", Situation.REFUSED].decision is Decision.CONTINUE
    assert cells["send_email", Situation.REFUSED].alert is AlertKind.BEST_EFFORT_FAILED
    duplicate = cells["create_order", Situation.DUPLICATE_REQUEST]
    assert duplicate.decision is Decision.RETURN_EXISTING
    assert duplicate.reason.startswith("the same operation_id gets the existing run back")


def test_the_plan_speaks_the_one_vocabulary() -> None:
    """The plan's statuses, fault points and alert kinds are the engine's own enums."""
    import importlib

    from sagaguard import vocabulary
    from sagaguard.storage import base

    plan_module = importlib.import_module("sagaguard.planner.plan")
    for name in ("AlertKind", "FaultPoint", "RunStatus", "StepStatus"):
        assert getattr(plan_module, name) is getattr(vocabulary, name)
    assert base.RunStatus is vocabulary.RunStatus
    assert EngineAlertKind is AlertKind


def test_every_category_and_one_failure_after_each_step() -> None:
    tests = plan(CHECKOUT).tests
    after = [t.step for t in tests if t.category is TestCategory.FAILURE_AFTER_STEP]
    assert after == [s.id for s in CHECKOUT.steps]
    assert {t.category for t in tests} == set(TestCategory)
    assert len({t.id for t in tests}) == len(tests)


def test_every_test_states_the_end_of_every_step() -> None:
    """The runs of an expected state cover each step exactly once, in process order."""
    ids = [s.id for s in PAYOUT.steps]
    for test in plan(PAYOUT).tests:
        covered = []
        for run in test.expected.steps:
            covered += ids[ids.index(run.first) : ids.index(run.last) + 1]
        assert covered == ids, test.id


def test_failure_after_a_middle_step_fails_the_next_and_compensates_backward() -> None:
    """After charge_payment, book_delivery fails: charge, reserve, create are undone."""
    test = by_id(CHECKOUT)["failure_after_charge_payment"]
    [fault] = test.injection
    assert (fault.step, fault.point, fault.fault, fault.attempt) == (
        "book_delivery",
        FaultPoint.BEFORE_CALL,
        FaultKind.FAIL,
        None,
    )
    expected = test.expected
    assert expected.run_status is RunStatus.COMPENSATED
    assert statuses(CHECKOUT, expected) == {
        "create_order": StepStatus.COMPENSATED,
        "reserve_stock": StepStatus.COMPENSATED,
        "charge_payment": StepStatus.COMPENSATED,
        "book_delivery": StepStatus.FAILED,
        "send_email": StepStatus.PENDING,
    }
    assert calls(CHECKOUT, expected)["book_delivery"] == (3, 3)
    assert calls(CHECKOUT, expected)["send_email"] == (0, 0)
    assert outcomes(CHECKOUT, expected)["charge_payment"].compensations.at_most == 1
    assert expected.alerts == ()


def test_a_best_effort_failure_completes_the_run_with_an_alert_and_no_refund() -> None:
    """The email bounces on every attempt: nothing is compensated, the order stands."""
    expected = by_id(CHECKOUT)["failure_after_book_delivery"].expected
    assert expected.run_status is RunStatus.COMPLETED
    assert statuses(CHECKOUT, expected)["send_email"] is StepStatus.FAILED
    assert statuses(CHECKOUT, expected)["charge_payment"] is StepStatus.COMPLETED
    assert all(e.compensations.at_least == 0 for e in expected.steps)
    [alert] = expected.alerts
    assert (alert.kind, alert.step, alert.route) == (
        AlertKind.BEST_EFFORT_FAILED,
        "send_email",
        "shop-oncall",
    )


def test_a_failure_after_the_pivot_is_pushed_forward_then_waits_for_a_person() -> None:
    """The ledger keeps failing after the transfer: retried for 2h, at least 3 calls (the
    clock decides how many), then treasury's case; the trade and the debit stay."""
    expected = by_id(PAYOUT)["failure_after_transfer"].expected
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert statuses(PAYOUT, expected) == {
        "debit": StepStatus.COMPLETED,
        "fx": StepStatus.COMPLETED,
        "transfer": StepStatus.COMPLETED,
        "post_ledger": StepStatus.NEEDS_MANUAL_REVIEW,
        "advise": StepStatus.PENDING,
    }
    assert calls(PAYOUT, expected)["post_ledger"] == (3, None)
    assert all(e.compensations.at_least == 0 for e in expected.steps)
    [alert] = expected.alerts
    assert (alert.kind, alert.step, alert.route) == (
        AlertKind.NEEDS_MANUAL_REVIEW,
        "post_ledger",
        "ops",
    )


def test_the_pivot_failing_for_good_rolls_back_what_came_before() -> None:
    expected = by_id(PAYOUT)["failure_after_fx"].expected
    assert expected.run_status is RunStatus.COMPENSATED
    assert statuses(PAYOUT, expected)["transfer"] is StepStatus.FAILED
    assert statuses(PAYOUT, expected)["fx"] is StepStatus.COMPENSATED
    assert statuses(PAYOUT, expected)["debit"] is StepStatus.COMPENSATED


def test_a_refusal_after_the_pivot_goes_to_a_person_at_once() -> None:
    """A refusal cannot change on a repeat: one call, then review, no window spent."""
    refused = Injection(
        step="post_ledger", point=FaultPoint.BEFORE_CALL, fault=FaultKind.REFUSE, attempt=1
    )
    expected = expect(Planning(PAYOUT), (refused,))
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert calls(PAYOUT, expected)["post_ledger"] == (1, 1)
    assert statuses(PAYOUT, expected)["post_ledger"] is StepStatus.NEEDS_MANUAL_REVIEW


def test_the_pivot_refused_is_a_no_go_that_rolls_back() -> None:
    refused = Injection(
        step="transfer", point=FaultPoint.BEFORE_CALL, fault=FaultKind.REFUSE, attempt=1
    )
    expected = expect(Planning(PAYOUT), (refused,))
    assert expected.run_status is RunStatus.COMPENSATED
    assert calls(PAYOUT, expected)["transfer"] == (1, 1)
    assert [s for s, st in statuses(PAYOUT, expected).items() if st is StepStatus.COMPENSATED] == [
        "debit",
        "fx",
    ]


def test_a_best_effort_step_timing_out_stays_unknown_and_the_run_completes() -> None:
    """No verify, not idempotent: never retried blind, an alert, and the run goes on."""
    timeout = Injection(
        step="advise", point=FaultPoint.AFTER_CALL, fault=FaultKind.TIMEOUT, attempt=1
    )
    expected = expect(Planning(PAYOUT), (timeout,))
    assert expected.run_status is RunStatus.COMPLETED
    assert statuses(PAYOUT, expected)["advise"] is StepStatus.UNKNOWN
    assert calls(PAYOUT, expected)["advise"] == (1, 1)
    assert [a.kind for a in expected.alerts] == [AlertKind.BEST_EFFORT_FAILED]


def test_failure_after_the_last_step_is_a_crash_that_resumes_to_completed() -> None:
    test = by_id(CHECKOUT)["failure_after_send_email"]
    [fault] = test.injection
    assert (fault.step, fault.point, fault.fault, fault.attempt) == (
        "send_email",
        FaultPoint.AFTER_COMMIT,
        FaultKind.CRASH,
        1,
    )
    assert test.expected.run_status is RunStatus.COMPLETED
    assert set(statuses(CHECKOUT, test.expected).values()) == {StepStatus.COMPLETED}
    assert set(calls(CHECKOUT, test.expected).values()) == {(1, 1)}


def test_unknown_outcome_tests_target_the_payment_and_expect_verify() -> None:
    """Crash before persist and timeout hit the payment; verify finds it, no second charge."""
    tests = by_id(CHECKOUT)
    for test_id, fault in (
        ("crash_before_persist_charge_payment", FaultKind.CRASH),
        ("timeout_charge_payment", FaultKind.TIMEOUT),
    ):
        test = tests[test_id]
        [injection] = test.injection
        assert (injection.step, injection.point, injection.fault) == (
            "charge_payment",
            FaultPoint.AFTER_CALL,
            fault,
        )
        assert test.expected.run_status is RunStatus.COMPLETED
        charge = outcomes(CHECKOUT, test.expected)["charge_payment"]
        assert (charge.calls.at_most, charge.verifies.at_most) == (1, 1)
    assert "within 10s" in tests["timeout_charge_payment"].scenario


def test_an_idempotent_lost_answer_is_called_again_with_the_same_key() -> None:
    retried = expect(
        Planning(CHECKOUT),
        (
            Injection(
                step="reserve_stock",
                point=FaultPoint.AFTER_CALL,
                fault=FaultKind.TIMEOUT,
                attempt=1,
            ),
        ),
    )
    assert calls(CHECKOUT, retried)["reserve_stock"] == (2, 2)
    assert retried.run_status is RunStatus.COMPLETED


def test_unknown_outcome_without_verify_waits_for_finance() -> None:
    """A non-idempotent payment with no verify: manual review, alert to the payment route."""
    expected = by_id(BLIND)["timeout_charge_payment"].expected
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert statuses(BLIND, expected) == {
        "create_order": StepStatus.COMPLETED,
        "charge_payment": StepStatus.NEEDS_MANUAL_REVIEW,
        "send_email": StepStatus.PENDING,
    }
    [alert] = expected.alerts
    assert (alert.kind, alert.route, alert.step) == (
        AlertKind.NEEDS_MANUAL_REVIEW,
        "finance",
        "charge_payment",
    )


def test_a_verify_only_described_is_not_relied_on() -> None:
    """The same payment with its verify in words: the engine cannot ask, so a person does."""
    prose = process(
        step("create_order", compensation="Cancel", external_id="order_id"),
        step("charge", "payment", "unknown", compensation="Refund", verify="Look it up"),
        alerts={"default": "ops"},
    )
    expected = by_id(prose)["timeout_charge"].expected
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert outcomes(prose, expected)["charge"].verifies.at_least == 0
    bound = plan(prose, verify_bound=frozenset({"charge"}))
    bound_expected = {t.id: t for t in bound.tests}["timeout_charge"].expected
    assert bound_expected.run_status is RunStatus.COMPLETED
    assert outcomes(prose, bound_expected)["charge"].verifies.at_least == 1


def test_retry_after_partial_success_resubmits_after_a_crash() -> None:
    test = by_id(CHECKOUT)["retry_after_partial_success_charge_payment"]
    assert [(i.point, i.fault) for i in test.injection] == [
        (FaultPoint.AFTER_COMMIT, FaultKind.CRASH),
        (FaultPoint.AFTER_COMMIT, FaultKind.RESUBMIT),
    ]
    assert test.expected.run_status is RunStatus.COMPLETED
    assert set(calls(CHECKOUT, test.expected).values()) == {(1, 1)}


def test_parallel_start_names_the_store_owner_mechanism() -> None:
    test = by_id(CHECKOUT)["parallel_same_operation_id_create_order"]
    [injection] = test.injection
    assert injection.fault is FaultKind.CONCURRENT_START
    assert "SELECT ... FOR UPDATE" in test.scenario
    assert set(calls(CHECKOUT, test.expected).values()) == {(1, 1)}


def test_compensation_failure_of_the_refund_halts_and_alerts_finance() -> None:
    """The latest step whose failure rolls back fails, the delivery draft is undone, the
    refund keeps failing for its window: finance is alerted, the earlier steps stay."""
    test = by_id(CHECKOUT)["compensation_failure_charge_payment"]
    assert [(i.step, i.point, i.fault) for i in test.injection] == [
        ("book_delivery", FaultPoint.BEFORE_CALL, FaultKind.FAIL),
        ("charge_payment", FaultPoint.BEFORE_COMPENSATION, FaultKind.FAIL),
    ]
    expected = test.expected
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert statuses(CHECKOUT, expected) == {
        "create_order": StepStatus.COMPLETED,
        "reserve_stock": StepStatus.COMPLETED,
        "charge_payment": StepStatus.COMPENSATION_FAILED,
        "book_delivery": StepStatus.FAILED,
        "send_email": StepStatus.PENDING,
    }
    refund = outcomes(CHECKOUT, expected)["charge_payment"].compensations
    assert (refund.at_least, refund.at_most) == (3, None)
    [alert] = expected.alerts
    assert (alert.kind, alert.route) == (AlertKind.COMPENSATION_FAILED, "finance")


def test_a_refused_or_unknown_compensation_goes_to_a_person_at_once() -> None:
    for fault, point in (
        (FaultKind.REFUSE, FaultPoint.BEFORE_COMPENSATION),
        (FaultKind.CRASH, FaultPoint.AFTER_COMPENSATION),
    ):
        expected = expect(
            Planning(CHECKOUT),
            (
                Injection(
                    step="book_delivery",
                    point=FaultPoint.BEFORE_CALL,
                    fault=FaultKind.REFUSE,
                    attempt=1,
                ),
                Injection(step="reserve_stock", point=point, fault=fault, attempt=1),
            ),
        )
        reserve = outcomes(CHECKOUT, expected)["reserve_stock"]
        assert reserve.status is StepStatus.COMPENSATION_FAILED
        assert (reserve.compensations.at_least, reserve.compensations.at_most) == (1, 1)
        assert statuses(CHECKOUT, expected)["create_order"] is StepStatus.COMPLETED


def test_a_compensation_that_fails_once_is_retried_and_the_rollback_goes_on() -> None:
    expected = expect(
        Planning(CHECKOUT),
        (
            Injection(
                step="book_delivery",
                point=FaultPoint.BEFORE_CALL,
                fault=FaultKind.REFUSE,
                attempt=1,
            ),
            Injection(
                step="charge_payment",
                point=FaultPoint.BEFORE_COMPENSATION,
                fault=FaultKind.FAIL,
                attempt=1,
            ),
        ),
    )
    assert expected.run_status is RunStatus.COMPENSATED
    assert outcomes(CHECKOUT, expected)["charge_payment"].compensations.at_most == 2


def test_no_compensation_failure_test_when_nothing_can_be_undone() -> None:
    shop = process(step("read", "none"), step("mail", "email", "no", compensation="none"))
    categories = {t.category for t in plan(shop).tests}
    assert TestCategory.COMPENSATION_FAILURE not in categories
    assert TestCategory.TIMEOUT in categories


def test_the_compensation_failure_test_never_fails_a_step_after_the_pivot() -> None:
    """Only a failure at or before the pivot rolls back: the pivot triggers the test."""
    test = by_id(PAYOUT)["compensation_failure_fx"]
    assert test.injection[0].step == "transfer"
