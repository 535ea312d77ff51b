"""Parts 2 and 3 of the plan: rollback sequences and the policy for a failed compensation."""

from __future__ import annotations

from typing import Any

from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.plan import AlertKind, Plan, RollbackSequence, RunStatus
from sagaguard.planner.render.rollbacks import Rollbacks, procedure
from sagaguard.rules import Decision


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {"process": "shop", "state_store": "database", "observability": []}
    data.update(top)
    data["steps"] = list(steps)
    return Process.model_validate(data)


# The guide's checkout, every step compensatable, the email best-effort: there is no pivot.
CHECKOUT = process(
    step("check_stock", "none"),
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
    ),
    step("send_email", "email", "no", compensation="none", required=False),
    step(
        "book_delivery",
        "external_api",
        compensation="Cancel the delivery draft",
        external_id="delivery_id",
    ),
    alerts={"default": "shop-oncall", "payment": "finance"},
    defaults={
        "compensation_attempts": 5,
        "compensation_retry_for": "10m",
        "backoff_base": "100ms",
        "backoff_max": "1m",
    },
)

# A B2B payout: the bank transfer is the declared point of no return.
PAYOUT = process(
    step("debit", "payment", compensation="Credit back", external_id="debit_id"),
    step("fx", "payment", compensation="Reverse the trade", external_id="trade_id"),
    step("transfer", "payment", "no", compensation="none", pivot=True, verify="bank:find"),
    step("post_ledger", compensation="Reverse the posting", retry_for="2h"),
    step("advise", "email", "no", compensation="none", required=False),
    alerts={"default": "ops", "payment": "treasury"},
)


def sequences(proc: Process) -> dict[str, RollbackSequence]:
    return {s.failed_step: s for s in plan(proc).rollback_sequences}


def compensated(result: Plan, seq: RollbackSequence) -> list[str]:
    return [link.step for link in result.rollback_of(seq) if link.decision is Decision.COMPENSATE]


def test_one_sequence_per_step() -> None:
    """Every step can fail, so every step has a rollback sequence, in process order."""
    assert [s.failed_step for s in plan(CHECKOUT).rollback_sequences] == [
        "check_stock",
        "create_order",
        "reserve_stock",
        "charge_payment",
        "send_email",
        "book_delivery",
    ]


def test_a_rollback_undoes_the_compensatable_steps_before_latest_first() -> None:
    """Latest completed step first; read-only steps are not in the chain at all."""
    result = plan(CHECKOUT)
    seq = {s.failed_step: s for s in result.rollback_sequences}
    assert seq["create_order"].rollback_from is None
    assert compensated(result, seq["charge_payment"]) == ["reserve_stock", "create_order"]
    assert compensated(result, seq["book_delivery"]) == [
        "charge_payment",
        "reserve_stock",
        "create_order",
    ]
    assert seq["book_delivery"].compensate_count == 3
    assert [link.step for link in result.rollback_chain][-1] == "create_order"


def test_a_best_effort_step_before_the_failure_is_kept_not_undone() -> None:
    """The email cannot be unsent: the rollback keeps it and names its mitigation."""
    result = plan(CHECKOUT)
    seq = {s.failed_step: s for s in result.rollback_sequences}["book_delivery"]
    kept = [link for link in result.rollback_of(seq) if link.decision is Decision.KEEP]
    assert [link.step for link in kept] == ["send_email"]
    assert "never resend the original" in kept[0].instruction
    assert seq.keep_count == 1


def test_a_best_effort_failure_rolls_nothing_back() -> None:
    """A bounced email never refunds the charge: the run goes on and completes."""
    seq = sequences(CHECKOUT)["send_email"]
    assert seq.recovery is Decision.CONTINUE
    assert seq.rollback_from is None
    assert (seq.compensate_count, seq.keep_count) == (0, 0)
    assert seq.final_status is RunStatus.COMPLETED
    assert "best_effort_failed alert to shop-oncall" in seq.summary
    assert seq.refused.decision is Decision.CONTINUE


def test_after_the_pivot_recovery_is_forward_and_compensates_nothing() -> None:
    """The ledger posting fails after the transfer: retried for 2h, then treasury's case;
    the FX trade and the debit are never undone."""
    seq = sequences(PAYOUT)["post_ledger"]
    assert seq.recovery is Decision.MANUAL_REVIEW
    assert seq.summary == "forward: retry within 2h, then manual review (ops)"
    assert seq.rollback_from is None
    assert seq.compensate_count == 0
    assert seq.final_status is RunStatus.NEEDS_MANUAL_REVIEW
    assert seq.definite_failure.then is Decision.MANUAL_REVIEW
    assert seq.refused.decision is Decision.MANUAL_REVIEW
    assert "nothing is rolled back" in seq.refused.instruction


def test_the_pivot_failing_for_good_rolls_back_what_came_before() -> None:
    """A refused transfer is a no-go: the trade and the debit are undone, latest first."""
    result = plan(PAYOUT)
    seq = {s.failed_step: s for s in result.rollback_sequences}["transfer"]
    assert seq.recovery is Decision.ROLLBACK
    assert compensated(result, seq) == ["fx", "debit"]
    assert seq.final_status is RunStatus.COMPENSATED


def test_no_failure_after_the_pivot_ever_compensates_what_precedes_it() -> None:
    """The rollback chain stops before the pivot: nothing at or after it is in it."""
    result = plan(PAYOUT)
    assert [link.step for link in result.rollback_chain] == ["fx", "debit"]
    for seq in result.rollback_sequences[3:]:
        assert seq.rollback_from is None


def test_procedure_lists_each_undo_in_backward_order() -> None:
    """The procedure walks back from the failed step: each undo, then the end state."""
    result = plan(CHECKOUT)
    seq = {s.failed_step: s for s in result.rollback_sequences}["book_delivery"]
    lines = procedure(result, seq, Rollbacks.of(result))
    assert lines[0].startswith("book_delivery failed for good")
    assert lines[1].startswith("send_email cannot be undone")
    assert lines[2].startswith("compensate charge_payment: Refund the charge, by the payment_id")
    assert lines[-1] == "mark the run compensated once create_order is undone"


def test_a_forward_procedure_retries_then_hands_over() -> None:
    result = plan(PAYOUT)
    seq = {s.failed_step: s for s in result.rollback_sequences}["post_ledger"]
    lines = procedure(result, seq)
    assert "nothing before it is compensated" in lines[0]
    assert "for 2h (at least 3 attempts)" in lines[1]
    assert lines[2] == "still failing: mark it needs_manual_review and alert ops"


def test_final_status_failed_when_nothing_before_changed_anything() -> None:
    """Only a read-only step before: the run ends failed, not compensated."""
    result = plan(CHECKOUT)
    seq = {s.failed_step: s for s in result.rollback_sequences}
    assert seq["create_order"].final_status is RunStatus.FAILED
    assert (
        procedure(result, seq["create_order"])[-1]
        == "nothing before create_order changed anything: mark the run failed"
    )
    assert seq["reserve_stock"].final_status is RunStatus.COMPENSATED


def test_an_unknown_outcome_is_verified_when_verify_code_is_bound() -> None:
    """charge_payment binds verify code: its lost answer is asked about, not retried."""
    handling = sequences(CHECKOUT)["charge_payment"].unknown_outcome
    assert handling.decision is Decision.VERIFY
    assert "code: shop.psp:find_charge" in handling.instruction
    assert "needs_manual_review, alert to finance" in handling.instruction


def test_an_unknown_outcome_with_verify_only_described_goes_to_a_person() -> None:
    """The bank transfer's verify is prose, not code: the engine cannot ask, a person does."""
    prose = process(
        step("debit", "payment", compensation="Credit back", external_id="debit_id"),
        step("transfer", "payment", "no", compensation="none", verify="Ask the bank"),
        alerts={"default": "ops"},
    )
    handling = sequences(prose)["transfer"].unknown_outcome
    assert handling.decision is Decision.MANUAL_REVIEW
    assert "no code is bound" in handling.instruction


def test_an_idempotent_unknown_outcome_is_retried_with_the_same_key() -> None:
    handling = sequences(CHECKOUT)["reserve_stock"].unknown_outcome
    assert (handling.decision, handling.then) == (Decision.RETRY, Decision.MANUAL_REVIEW)
    assert "{operation_id}:reserve_stock" in handling.instruction


def test_failure_policy_one_per_step_the_engine_compensates() -> None:
    """Compensations are retried for a time window, at least so many attempts.

    book_delivery is compensatable but last: no later step can fail, so it is never
    compensated and has no policy; nothing after a pivot has one either.
    """
    policies = plan(CHECKOUT).rollback_failure_policy
    assert [p.step for p in policies] == ["create_order", "reserve_stock", "charge_payment"]
    for policy in policies:
        assert (policy.bound.attempts, policy.bound.window_s) == (5, 600.0)
        assert (policy.backoff.base_s, policy.backoff.max_s) == (0.1, 60.0)
        assert policy.alert_kind is AlertKind.COMPENSATION_FAILED
    assert "for at least 10m and at least 5 attempts" in policies[0].retry_when
    assert "waiting 100ms doubling to at most 1m" in policies[0].retry_when
    assert [p.step for p in plan(PAYOUT).rollback_failure_policy] == ["debit", "fx"]


def test_failure_policy_halts_and_counts_the_steps_left_completed() -> None:
    """A failed refund stops the rollback: earlier steps stay completed."""
    result = plan(CHECKOUT)
    charge = {p.step: p for p in result.rollback_failure_policy}["charge_payment"]
    assert charge.halted_count == 2
    assert Rollbacks.of(result).halted("charge_payment") == ["reserve_stock", "create_order"]
    assert "reserve_stock and create_order stay completed" in charge.manual_review_when
    assert "refused or its outcome is unknown" in charge.manual_review_when


def test_failure_policy_routes_money_to_the_payment_route() -> None:
    """The refund's failure alerts finance; other compensations alert the default route."""
    policies = {p.step: p for p in plan(CHECKOUT).rollback_failure_policy}
    assert policies["charge_payment"].alert_route == "finance"
    assert policies["reserve_stock"].alert_to == "shop-oncall"


def test_without_a_route_the_case_goes_to_the_review_queue_never_a_placeholder() -> None:
    """Who works a case is a person or a route: the review queue, not "add alerts.default"."""
    shop = process(
        step("reserve", "reservation", compensation="Release", external_id="rid"),
        step("charge", "payment", compensation="Refund", external_id="pid"),
        step("ship", "external_api", "no"),
    )
    policies = {p.step: p for p in plan(shop).rollback_failure_policy}
    assert policies["reserve"].alert_route is None
    assert policies["reserve"].alert_to.startswith("whoever works the review queue")
    assert "add alerts" not in policies["charge"].alert_to
