"""Part 1 of the plan, the step table: actions, classes, conditions, data and signals."""

from __future__ import annotations

from typing import Any

from sagaguard.model import Process, StepClass
from sagaguard.planner import plan


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {"process": "shop", "state_store": "database", "observability": []}
    data.update(top)
    data["steps"] = list(steps)
    return Process.model_validate(data)


SHOP = process(
    step("read_cart", "none"),
    step(
        "reserve",
        "reservation",
        compensation="Release it",
        external_id="reservation_id",
        timeout="5s",
    ),
    step(
        "charge",
        "payment",
        "unknown",
        compensation="Refund the charge by payment_id",
        verify="Look the charge up by key",
        external_id="payment_id",
        max_attempts=4,
    ),
    step("notify", "email", "no", compensation="none"),
    step("publish", "queue", "no"),
    alerts={"default": "oncall", "payment": "finance"},
    defaults={"timeout": "20s", "max_attempts": 2},
)


def test_one_row_per_step_in_order_with_positions() -> None:
    """Every step appears once, in process order, numbered from 1."""
    rows = plan(SHOP).steps
    assert [r.id for r in rows] == ["read_cart", "reserve", "charge", "notify", "publish"]
    assert [r.position for r in rows] == [1, 2, 3, 4, 5]


def test_classes_follow_the_model() -> None:
    """read_only / compensatable / irreversible, undeclared counting as irreversible."""
    classes = {r.id: r.step_class for r in plan(SHOP).steps}
    assert classes == {
        "read_cart": StepClass.READ_ONLY,
        "reserve": StepClass.COMPENSATABLE,
        "charge": StepClass.COMPENSATABLE,
        "notify": StepClass.IRREVERSIBLE,
        "publish": StepClass.IRREVERSIBLE,
    }


def test_compensation_only_for_compensatable_steps_and_names_the_external_id() -> None:
    """The reverse action addresses the id saved in the journal."""
    shop = plan(SHOP)
    assert shop.step("reserve").compensation == (
        "Release it, by the reservation_id saved in the journal"
    )
    # Already names its id: not repeated.
    assert shop.step("charge").compensation == "Refund the charge by payment_id"
    assert shop.step("read_cart").compensation is None
    assert shop.step("notify").compensation is None


def test_mitigation_for_irreversible_steps_derived_from_what_they_change() -> None:
    """An email cannot be unsent: correct it, never resend; a queue message is cancelled."""
    shop = plan(SHOP)
    email = shop.step("notify").mitigation or ""
    assert "send a correction" in email
    assert "never resend the original" in email
    queue = shop.step("publish").mitigation or ""
    assert "cancelling message" in queue
    assert shop.step("reserve").mitigation is None


def test_declared_mitigation_is_used_verbatim() -> None:
    """The spec's mitigation wins over a derived one."""
    shop = plan(
        process(step("mail", "email", "no", compensation="none", mitigation="Send a sorry note"))
    )
    assert shop.step("mail").mitigation == "Send a sorry note"


def test_rollback_condition_names_the_later_steps_undone_first() -> None:
    """A compensatable step waits for the later compensatable steps, latest first."""
    condition = plan(SHOP).step("reserve").rollback_condition
    assert "before charge is compensated (latest first)" in condition
    assert "when reserve never completed (no reservation_id in the journal)" in condition
    assert "when reserve is already compensated" in condition


def test_rollback_condition_says_how_an_unknown_outcome_is_settled() -> None:
    """Idempotent: retry with the key first; verify declared: verify first."""
    shop = plan(SHOP)
    assert "retry it with the same idempotency key first" in shop.step("reserve").rollback_condition
    assert "verify it first" in shop.step("charge").rollback_condition


def test_rollback_condition_for_steps_never_compensated() -> None:
    """Read-only and irreversible steps are never compensated; undeclared ones cannot be."""
    shop = plan(SHOP)
    assert shop.step("read_cart").rollback_condition == (
        "always: read_cart changes nothing, so there is nothing to undo"
    )
    assert "apply its mitigation" in shop.step("notify").rollback_condition
    # publish is last too: no rollback ever reaches it.
    assert shop.step("publish").rollback_condition == (
        "always: publish is the last step, so no later step can fail and no rollback reaches "
        "it (it could not be undone anyway)"
    )
    middle = plan(process(step("publish", "queue"), step("write", compensation="Delete it")))
    assert "declares no compensation" in middle.step("publish").rollback_condition


def test_an_idempotent_step_says_what_follows_retries_that_never_answer() -> None:
    """The engine sends it to a person with an alert once its attempts are spent."""
    unknown = plan(SHOP).step("reserve").failure_signals[2]
    assert unknown.endswith(
        "still no answer after 2 attempts: needs_manual_review, alert to oncall"
    )


def test_data_to_persist_includes_the_external_id_and_keys() -> None:
    """The journal fields of the guide, plus the step's own external id."""
    shop = plan(SHOP)
    charge = shop.step("charge").persist
    for field in (
        "operation_id",
        "step_id",
        "payment_id",
        "idempotency_key",
        "status",
        "attempts",
        "last_attempt_at",
        "reason",
        "compensation_attempts",
    ):
        assert field in charge
    read = shop.step("read_cart").persist
    assert "idempotency_key" not in read
    assert "compensation_attempts" not in read


def test_limits_come_from_the_step_or_the_defaults() -> None:
    """Own timeout / attempts when set, else the process defaults."""
    shop = plan(SHOP)
    assert (shop.step("reserve").timeout_s, shop.step("reserve").max_attempts) == (5.0, 2)
    assert (shop.step("charge").timeout_s, shop.step("charge").max_attempts) == (20.0, 4)


def test_alert_route_money_to_the_payment_route() -> None:
    """The payment step is routed to finance, the rest to the default."""
    shop = plan(SHOP)
    assert shop.step("charge").alert_route == "finance"
    assert shop.step("reserve").alert_route == "oncall"


def test_signals_distinguish_definite_failure_from_unknown_outcome() -> None:
    """Failure signals say what is a definite failure and what an unknown outcome leads to."""
    shop = plan(SHOP)
    charge = shop.step("charge")
    assert charge.failure_signals[0].startswith("definite failure: the payment provider")
    assert "retried, up to 4 attempts with backoff" in charge.failure_signals[0]
    assert "no answer within 20s" in charge.failure_signals[2]
    assert "verified before anything else (Look the charge up by key)" in charge.failure_signals[2]
    assert "person decides" in shop.step("notify").failure_signals[2]
    assert (
        "same idempotency key ({operation_id}:reserve)" in shop.step("reserve").failure_signals[2]
    )
    assert "payment_id is returned and committed to the journal" in charge.success_signals


def test_a_lasting_refusal_is_not_worded_as_something_to_retry() -> None:
    """A decline or a constraint violation repeats: the signal says how the run ends."""
    shop = plan(SHOP)
    decline = shop.step("charge").failure_signals[1]
    assert decline.startswith("definite refusal: a decline (card declined, insufficient funds)")
    assert decline.endswith(
        "a repeat gets the same answer: the run fails and rolls back: reserve is compensated"
    )
    assert "retried" not in decline
    first = plan(process(step("create_order", compensation="Cancel it", external_id="order_id")))
    constraint = first.step("create_order").failure_signals[1]
    assert constraint.startswith("definite refusal: a constraint or validation error")
    assert constraint.endswith(
        "the run fails with nothing to undo (create_order is the first step)"
    )
    passing = first.step("create_order").failure_signals[0]
    assert passing.startswith("definite failure: a deadlock or serialization failure")


def test_a_step_allowed_one_attempt_says_it_is_not_retried() -> None:
    """max_attempts: 1 means a passing failure gets no second attempt."""
    once = plan(process(step("write", compensation="Delete it", max_attempts=1)))
    signal = once.step("write").failure_signals[0]
    assert "max_attempts: 1 allows no second one" in signal
    assert "retried" not in signal


def test_the_last_step_is_never_compensated_so_its_row_says_so() -> None:
    """A compensatable last step: no later step can fail, so its undo never runs."""
    shop = plan(
        process(
            step("write", compensation="Delete the row", external_id="row_id"),
            step("book", "external_api", compensation="Cancel it", external_id="booking_id"),
        )
    )
    book = shop.step("book")
    assert book.rollback_condition == (
        "always: book is the last step, so no later step can fail and its compensation never runs"
    )
    assert "compensation_attempts" not in book.persist
    assert "compensation_attempts" in shop.step("write").persist
