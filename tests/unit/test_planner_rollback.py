"""Parts 2 and 3 of the plan: rollback sequences and the policy for a failed compensation."""

from __future__ import annotations

from typing import Any

from sagaguard._legacy_rules import Decision
from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.plan import AlertKind, RunStatus


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {"process": "shop", "state_store": "database", "observability": []}
    data.update(top)
    data["steps"] = list(steps)
    return Process.model_validate(data)


# The guide's checkout, with a confirmation email placed before delivery on purpose.
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
        verify="Look the charge up by key",
        external_id="payment_id",
    ),
    step("send_email", "email", "no", compensation="none"),
    step(
        "book_delivery",
        "external_api",
        "no",
        compensation="Cancel the delivery draft",
        external_id="delivery_id",
    ),
    alerts={"default": "shop-oncall", "payment": "finance"},
    defaults={"compensation_attempts": 5, "backoff_base": "100ms", "backoff_max": "1m"},
)


def sequences(proc: Process) -> dict[str, Any]:
    return {s.failed_step: s for s in plan(proc).rollback_sequences}


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


def test_compensate_is_the_reverse_of_the_compensatable_steps_before() -> None:
    """Latest completed step first; read-only and irreversible steps are not compensated."""
    seq = sequences(CHECKOUT)
    assert seq["check_stock"].compensate == ()
    assert seq["create_order"].compensate == ()
    assert seq["charge_payment"].compensate == ("reserve_stock", "create_order")
    assert seq["book_delivery"].compensate == ("charge_payment", "reserve_stock", "create_order")


def test_irreversible_steps_met_on_the_way_carry_their_mitigation() -> None:
    """The email before delivery cannot be unsent: the sequence says what to do instead."""
    seq = sequences(CHECKOUT)
    [met] = seq["book_delivery"].irreversible
    assert met.step == "send_email"
    assert "never resend the original" in met.mitigation
    assert seq["charge_payment"].irreversible == ()


def test_procedure_lists_undo_and_mitigation_in_backward_order() -> None:
    """The procedure walks back from the failed step: mitigation, then each undo."""
    lines = sequences(CHECKOUT)["book_delivery"].procedure
    assert lines[0].startswith("book_delivery failed for good")
    assert lines[1].startswith("send_email cannot be undone")
    assert lines[2].startswith("compensate charge_payment: Refund the charge, by the payment_id")
    assert "alert to finance" in lines[2]
    assert lines[3].startswith("compensate reserve_stock")
    assert "up to 5 attempts" in lines[3]
    assert lines[-1] == "mark the run compensated once create_order is undone"


def test_final_status_failed_when_nothing_before_changed_anything() -> None:
    """Only a read-only step before: the run ends failed, not compensated."""
    seq = sequences(CHECKOUT)
    assert seq["create_order"].final_status is RunStatus.FAILED
    assert (
        seq["create_order"].procedure[-1]
        == "nothing before create_order changed anything: mark the run failed"
    )
    assert seq["reserve_stock"].final_status is RunStatus.COMPENSATED


def test_failed_step_with_unknown_outcome_is_verified_when_it_can_be() -> None:
    """charge_payment declares verify: its unknown outcome is verified before any rollback."""
    handling = sequences(CHECKOUT)["charge_payment"].failed_step_handling
    assert handling.definite_failure.decision is Decision.NONE
    assert "nothing to undo" in handling.definite_failure.instruction
    assert handling.unknown_outcome.decision is Decision.VERIFY
    assert "Look the charge up by key" in handling.unknown_outcome.instruction
    assert "alert to finance" in handling.unknown_outcome.instruction


def test_failed_step_with_unknown_outcome_and_no_verify_goes_to_a_person() -> None:
    """book_delivery is not idempotent and has no verify: manual review, rollback waits."""
    handling = sequences(CHECKOUT)["book_delivery"].failed_step_handling
    assert handling.unknown_outcome.decision is Decision.MANUAL_REVIEW
    assert "alert shop-oncall" in handling.unknown_outcome.instruction
    assert "rollback below waits" in handling.unknown_outcome.instruction


def test_failed_idempotent_step_with_unknown_outcome_is_retried_with_the_same_key() -> None:
    """reserve_stock is idempotent: retried with the same key, then a person."""
    handling = sequences(CHECKOUT)["reserve_stock"].failed_step_handling
    assert handling.unknown_outcome.decision is Decision.RETRY
    assert "{operation_id}:reserve_stock" in handling.unknown_outcome.instruction


def test_failure_policy_one_per_compensatable_step_with_defaults() -> None:
    """Attempts and backoff come from the process defaults.

    book_delivery is compensatable but last: no later step can fail, so it is never
    compensated and has no policy.
    """
    policies = plan(CHECKOUT).rollback_failure_policy
    assert [p.step for p in policies] == ["create_order", "reserve_stock", "charge_payment"]
    for policy in policies:
        assert policy.attempts == 5
        assert (policy.backoff.base_s, policy.backoff.max_s) == (0.1, 60.0)
        assert policy.alert_kind is AlertKind.COMPENSATION_FAILED
    assert "waiting 100ms doubling to at most 1m" in policies[0].retry_when


def test_failure_policy_halts_and_names_the_steps_left_completed() -> None:
    """A failed refund stops the rollback: earlier steps stay completed, latest first."""
    charge = {p.step: p for p in plan(CHECKOUT).rollback_failure_policy}["charge_payment"]
    assert charge.halted_steps == ("reserve_stock", "create_order")
    assert "reserve_stock, create_order stay completed" in charge.manual_review_when
    assert "after 5 failed attempts" in charge.manual_review_when


def test_failure_policy_routes_money_to_the_payment_route() -> None:
    """The refund's failure alerts finance; other compensations alert the default route."""
    policies = {p.step: p for p in plan(CHECKOUT).rollback_failure_policy}
    assert policies["charge_payment"].alert_route == "finance"
    assert policies["reserve_stock"].alert_to == "shop-oncall"


def test_failure_policy_names_a_missing_route() -> None:
    """No route at all: the policy says what to add."""
    shop = process(
        step("reserve", "reservation", compensation="Release", external_id="rid"),
        step("charge", "payment", compensation="Refund", external_id="pid"),
        step("ship", "external_api", "no"),
    )
    policies = {p.step: p for p in plan(shop).rollback_failure_policy}
    assert policies["reserve"].alert_route is None
    assert policies["reserve"].alert_to == "no route: add alerts.default"
    assert policies["charge"].alert_to == "no route: add alerts.payment or alerts.default"


def test_verify_not_found_calls_the_step_again_before_any_rollback() -> None:
    """Verify saying "it never happened" makes a retry safe: the engine calls it again."""
    handling = sequences(CHECKOUT)["charge_payment"].failed_step_handling
    text = handling.unknown_outcome.instruction
    assert (
        "Not found: it never happened, so charge_payment is called again with the same key "
        "while its 3 attempts last, then rolled back as below"
    ) in text
    assert "it failed definitely, roll back" not in text
    assert text.endswith("Verify cannot tell: needs_manual_review, alert to finance")
