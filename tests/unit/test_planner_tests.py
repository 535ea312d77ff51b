"""Parts 4 and 5 of the plan: the decision matrix and the partial-failure tests."""

from __future__ import annotations

from typing import Any

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.plan import (
    AlertKind,
    FaultKind,
    FaultPoint,
    PartialFailureTest,
    RunStatus,
    TestCategory,
)
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
        verify="Look the charge up by key",
        external_id="payment_id",
        timeout="10s",
    ),
    step(
        "book_delivery", "external_api", compensation="Cancel the draft", external_id="delivery_id"
    ),
    step("send_email", "email", "no", compensation="none"),
    alerts={"default": "shop-oncall", "payment": "finance"},
)

# The same without verify on the payment: a lost answer must go to a person.
BLIND = process(
    step("create_order", compensation="Cancel the order", external_id="order_id"),
    step("charge_payment", "payment", "no", compensation="Refund", external_id="payment_id"),
    step("send_email", "email", "yes", compensation="none"),
    alerts={"payment": "finance"},
)


def by_id(proc: Process) -> dict[str, PartialFailureTest]:
    return {t.id: t for t in plan(proc).tests}


def test_matrix_has_one_entry_per_step_and_situation_from_the_rules() -> None:
    """Each (step, situation) once, and each entry is what `decide` rules."""
    matrix = plan(CHECKOUT).decision_matrix
    assert len(matrix) == len(CHECKOUT.steps) * len(Situation)
    pairs = {(e.step, e.situation) for e in matrix}
    assert pairs == {(s.id, sit) for s in CHECKOUT.steps for sit in Situation}
    for entry in matrix:
        ruling = decide(CHECKOUT.step(entry.step), entry.situation, process=CHECKOUT)
        assert (entry.decision, entry.reason, entry.then, entry.alert) == (
            ruling.decision,
            ruling.reason,
            ruling.then,
            ruling.alert,
        )


def test_matrix_verifies_the_payment_and_retries_idempotent_steps_on_timeout() -> None:
    """The guide's incident: the payment timeout is verified, never retried."""
    cells = {(e.step, e.situation): e.decision for e in plan(CHECKOUT).decision_matrix}
    assert cells["charge_payment", Situation.TIMEOUT] is Decision.VERIFY
    assert cells["reserve_stock", Situation.TIMEOUT] is Decision.RETRY
    assert cells["send_email", Situation.CRASH_BEFORE_PERSIST] is Decision.MANUAL_REVIEW
    assert cells["send_email", Situation.LATER_STEP_FAILED] is Decision.NONE


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
    """failure_after_step per step in order, then one test of each other category."""
    tests = plan(CHECKOUT).tests
    after = [t.step for t in tests if t.category is TestCategory.FAILURE_AFTER_STEP]
    assert after == [s.id for s in CHECKOUT.steps]
    assert {t.category for t in tests} == set(TestCategory)
    assert len({t.id for t in tests}) == len(tests)


def test_failure_after_a_middle_step_fails_the_next_and_compensates_backward() -> None:
    """After charge_payment, book_delivery fails: charge, reserve, create are undone."""
    test = by_id(CHECKOUT)["failure_after_charge_payment"]
    [fault] = test.injection
    assert (fault.step, fault.point, fault.fault, fault.times) == (
        "book_delivery",
        FaultPoint.BEFORE_CALL,
        FaultKind.FAIL,
        None,
    )
    assert test.expected.run_status is RunStatus.COMPENSATED
    assert test.expected.compensated == ("charge_payment", "reserve_stock", "create_order")
    assert test.expected.active == ()
    assert test.expected.alert is None


def test_failure_after_the_last_step_is_a_crash_that_resumes_to_completed() -> None:
    """Nothing follows the last step: a crash after its commit must still end completed."""
    test = by_id(CHECKOUT)["failure_after_send_email"]
    [fault] = test.injection
    assert (fault.step, fault.point, fault.fault) == (
        "send_email",
        FaultPoint.AFTER_COMMIT,
        FaultKind.CRASH,
    )
    assert test.expected.run_status is RunStatus.COMPLETED
    assert test.expected.active == tuple(s.id for s in CHECKOUT.steps)
    assert any("not called a second time" in c for c in test.expected.checks)


def test_irreversible_step_stays_active_after_a_later_failure() -> None:
    """An email sent before the failure remains: active, with its mitigation in the checks."""
    shop = process(
        step("mail", "email", "no", compensation="none", mitigation="Send a sorry note"),
        step("write", compensation="Delete it", external_id="row_id"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
    )
    test = by_id(shop)["failure_after_write"]
    assert test.expected.active == ("mail",)
    assert test.expected.compensated == ("write",)
    assert "mail stays done; its mitigation: Send a sorry note" in test.expected.checks


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
        assert any("without a second call" in c for c in test.expected.checks)
    assert "within 10s" in tests["timeout_charge_payment"].scenario


def test_unknown_outcome_without_verify_waits_for_finance() -> None:
    """A non-idempotent payment with no verify: manual review, alert to the payment route."""
    test = by_id(BLIND)["timeout_charge_payment"]
    expected = test.expected
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert expected.manual_review == ("charge_payment",)
    assert expected.active == ("create_order",)
    assert expected.compensated == ()
    assert expected.alert is not None
    assert (expected.alert.kind, expected.alert.route, expected.alert.step) == (
        AlertKind.NEEDS_MANUAL_REVIEW,
        "finance",
        "charge_payment",
    )
    assert "send_email never starts" in expected.checks


def test_retry_after_partial_success_resubmits_after_a_crash() -> None:
    """The client resends the operation_id after a crash past the payment: one run, no repeat."""
    test = by_id(CHECKOUT)["retry_after_partial_success_charge_payment"]
    assert [(i.point, i.fault) for i in test.injection] == [
        (FaultPoint.AFTER_COMMIT, FaultKind.CRASH),
        (FaultPoint.AFTER_COMMIT, FaultKind.RESUBMIT),
    ]
    assert test.expected.run_status is RunStatus.COMPLETED
    assert "create_order, reserve_stock, charge_payment keep attempts 1: none is called again" in (
        test.expected.checks
    )


def test_parallel_start_names_the_store_owner_mechanism() -> None:
    """Two workers on one operation_id: one run, and the database claims with FOR UPDATE."""
    test = by_id(CHECKOUT)["parallel_same_operation_id_create_order"]
    [injection] = test.injection
    assert injection.fault is FaultKind.CONCURRENT_START
    assert any("SELECT ... FOR UPDATE" in c for c in test.expected.checks)
    assert any("exactly one run" in c for c in test.expected.checks)


def test_compensation_failure_of_the_refund_halts_and_alerts_finance() -> None:
    """The last step fails, the delivery is undone, the refund fails: finance is alerted."""
    test = by_id(CHECKOUT)["compensation_failure_charge_payment"]
    assert [(i.step, i.point, i.fault) for i in test.injection] == [
        ("send_email", FaultPoint.BEFORE_CALL, FaultKind.FAIL),
        ("charge_payment", FaultPoint.BEFORE_COMPENSATION, FaultKind.FAIL),
    ]
    expected = test.expected
    assert expected.run_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert expected.compensated == ("book_delivery",)
    assert expected.manual_review == ("charge_payment",)
    assert expected.active == ("create_order", "reserve_stock")
    assert expected.alert is not None
    assert (expected.alert.kind, expected.alert.route) == (AlertKind.COMPENSATION_FAILED, "finance")


def test_no_compensation_failure_test_when_nothing_can_be_undone() -> None:
    """Without a compensatable step before the last, a compensation cannot fail."""
    shop = process(step("read", "none"), step("mail", "email", "no", compensation="none"))
    categories = {t.category for t in plan(shop).tests}
    assert TestCategory.COMPENSATION_FAILURE not in categories
    assert TestCategory.TIMEOUT in categories
