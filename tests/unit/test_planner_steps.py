"""Part 1 of the plan, the step table: actions, classes, the pivot, conditions and signals."""

from __future__ import annotations

from typing import Any

from sagaguard.model import Phase, Process, StepClass
from sagaguard.planner import plan
from sagaguard.planner.plan import Answer, StepEntry
from sagaguard.rules import StepKind


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
        verify="shop.psp:find_charge",
        external_id="payment_id",
        max_attempts=4,
    ),
    step("ship", "external_api", "no", compensation="none", external_id="shipment_id"),
    step("publish", "queue", compensation="Publish order_cancelled"),
    step("notify", "email", "no", compensation="none", required=False),
    alerts={"default": "oncall", "payment": "finance"},
    defaults={"timeout": "20s", "max_attempts": 2},
)


def signal(entry: StepEntry, answer: Answer) -> str:
    [found] = [s for s in entry.signals if s.answer is answer]
    return f"{found.looks_like} → {found.then}"


def test_one_row_per_step_in_order_with_positions() -> None:
    """Every step appears once, in process order, numbered from 1."""
    rows = plan(SHOP).steps
    assert [r.id for r in rows] == ["read_cart", "reserve", "charge", "ship", "publish", "notify"]
    assert [r.position for r in rows] == [1, 2, 3, 4, 5, 6]


def test_classes_follow_the_model() -> None:
    """read_only / compensatable / irreversible, undeclared counting as irreversible."""
    classes = {r.id: r.step_class for r in plan(SHOP).steps}
    assert classes == {
        "read_cart": StepClass.READ_ONLY,
        "reserve": StepClass.COMPENSATABLE,
        "charge": StepClass.COMPENSATABLE,
        "ship": StepClass.IRREVERSIBLE,
        "publish": StepClass.COMPENSATABLE,
        "notify": StepClass.IRREVERSIBLE,
    }


def test_the_table_marks_the_derived_pivot_and_says_so() -> None:
    """The shipment cannot be undone: it is the point of no return, derived, not declared."""
    result = plan(SHOP)
    assert result.pivot is not None
    assert (result.pivot.step, result.pivot.declared) == ("ship", False)
    assert "derived" in result.pivot.reason
    assert [r.id for r in result.steps if r.pivot] == ["ship"]
    assert [r.phase for r in result.steps] == [
        Phase.BEFORE_PIVOT,
        Phase.BEFORE_PIVOT,
        Phase.BEFORE_PIVOT,
        Phase.PIVOT,
        Phase.AFTER_PIVOT,
        Phase.AFTER_PIVOT,
    ]


def test_a_declared_pivot_is_marked_declared() -> None:
    declared = plan(
        process(
            step("debit", "payment", compensation="Credit back"),
            step("transfer", "payment", "no", compensation="none", pivot=True),
        )
    )
    assert declared.pivot is not None
    assert (declared.pivot.step, declared.pivot.declared) == ("transfer", True)
    assert declared.pivot.reason == "transfer declares pivot: true"


def test_a_process_every_step_of_which_can_be_undone_has_no_pivot() -> None:
    result = plan(process(step("a", compensation="undo a"), step("b", compensation="undo b")))
    assert result.pivot is None
    assert not any(r.pivot for r in result.steps)


def test_after_the_pivot_a_compensation_is_for_a_person_only() -> None:
    """publish declares a compensation, but the engine never runs it after the pivot."""
    publish = plan(SHOP).step("publish")
    assert publish.compensation is not None
    assert not publish.compensation_runs
    assert publish.retry_for_s == 15 * 60.0
    assert "compensation_attempts" not in publish.persist
    assert any("a person to run by hand" in c for c in publish.rollback_conditions)
    assert plan(SHOP).step("charge").compensation_runs


def test_a_best_effort_row_says_so() -> None:
    notify = plan(SHOP).step("notify")
    assert not notify.required
    assert notify.retry_for_s is None  # no forward-recovery window: it is skipped instead
    assert "best_effort_failed alert goes to oncall" in signal(notify, Answer.REFUSED)
    assert "the run goes on without it" in signal(notify, Answer.REFUSED)


def test_compensation_names_the_external_id() -> None:
    """The reverse action addresses the id saved in the journal."""
    shop = plan(SHOP)
    assert shop.step("reserve").compensation == (
        "Release it, by the reservation_id saved in the journal"
    )
    assert shop.step("charge").compensation == "Refund the charge by payment_id"
    assert shop.step("read_cart").compensation is None


def test_mitigation_for_irreversible_steps_derived_from_what_they_change() -> None:
    """An email cannot be unsent: correct it, never resend."""
    email = plan(SHOP).step("notify").mitigation or ""
    assert "send a correction" in email
    assert "never resend the original" in email
    declared = plan(
        process(step("mail", "email", "no", compensation="none", mitigation="Send a sorry note"))
    )
    assert declared.step("mail").mitigation == "Send a sorry note"


def test_rollback_conditions_are_specific_to_the_kind_of_step() -> None:
    """Not four template lines: a reservation that became a shipment, an open chargeback."""
    shop = plan(SHOP)
    reserve = shop.step("reserve").rollback_conditions
    charge = shop.step("charge").rollback_conditions
    assert any("became a shipment" in c for c in reserve)
    assert any("chargeback or dispute is open on payment_id" in c for c in charge)
    assert reserve != charge
    assert any("it is retried with the same idempotency key first" in c for c in reserve)
    assert any("verify settles it first" in c for c in charge)
    assert any("once ship, the point of no return, completed" in c for c in charge)


def test_the_spec_rollback_condition_comes_first() -> None:
    own = plan(
        process(
            step("book", "reservation", compensation="Cancel", rollback_condition="Not after 6pm"),
            step("pay", "payment", compensation="Refund"),
        )
    )
    assert own.step("book").rollback_conditions[0] == "Not after 6pm"


def test_rollback_condition_for_steps_never_compensated() -> None:
    shop = plan(SHOP)
    assert shop.step("read_cart").rollback_conditions == (
        "always: read_cart changes nothing, so there is nothing to undo",
    )
    assert "apply its mitigation" in shop.step("ship").rollback_conditions[0]
    last = plan(process(step("write", compensation="Delete"), step("book", compensation="Cancel")))
    assert "is the last step" in last.step("book").rollback_conditions[-1]
    middle = plan(process(step("publish", "queue"), step("write", compensation="Delete it")))
    assert "declares no compensation" in middle.step("publish").rollback_conditions[0]


def test_payment_signals_carry_the_protocol_codes() -> None:
    """2xx with the charge id = success; 402 = refusal; 409 same key = in progress; 5xx =
    unknown: verified, never taken for a refusal."""
    charge = plan(SHOP).step("charge")
    assert "2xx with the charge (or debit) id and a succeeded status" in signal(
        charge, Answer.SUCCESS
    )
    refused = signal(charge, Answer.REFUSED)
    assert refused.startswith("402 or a decline")
    assert "StepFailed(retry=False)" in refused
    in_progress = signal(charge, Answer.IN_PROGRESS)
    assert in_progress.startswith("409 under the same idempotency key")
    assert "never a refusal" in in_progress
    assert "verified before anything else" in in_progress
    assert signal(charge, Answer.UNKNOWN).startswith("5xx, a timeout or a reset connection")


def test_a_bank_transfer_a_dns_change_and_a_test_suite_get_signals_of_their_own() -> None:
    """No card wording for a wire, a DNS record or a CI run."""
    deploy = plan(
        process(
            step("run_tests", "none", action="Run the integration test suite on the build"),
            step(
                "switch_dns",
                "external_api",
                action="Point the www CNAME record at the green stack",
                compensation="Point it back",
            ),
            step(
                "pay_supplier",
                "payment",
                "no",
                action="Send the SEPA credit transfer to the supplier",
                compensation="none",
            ),
        )
    )
    tests = signal(deploy.step("run_tests"), Answer.REFUSED)
    dns = signal(deploy.step("switch_dns"), Answer.SUCCESS)
    wire = signal(deploy.step("pay_supplier"), Answer.REFUSED)
    assert "tests fail" in tests
    assert "INSYNC" in dns
    assert "RJCT with a reason code" in wire
    for text in (tests, dns, wire):
        assert "card" not in text
        assert "402" not in text


def test_signals_in_the_spec_override_the_derived_ones() -> None:
    own = plan(
        process(
            step(
                "charge",
                "payment",
                compensation="Refund",
                signals={"refused": "HTTP 402 with decline_code", "in_progress": "HTTP 409"},
            )
        )
    ).step("charge")
    by_answer = {s.answer: s for s in own.signals}
    assert by_answer[Answer.REFUSED].looks_like == "HTTP 402 with decline_code"
    assert by_answer[Answer.REFUSED].from_spec
    assert not by_answer[Answer.SUCCESS].from_spec


def test_what_follows_a_signal_is_the_ruling_for_this_step() -> None:
    """A refusal of the pivot rolls back; after the pivot a refusal goes to a person."""
    shop = plan(SHOP)
    assert "the run rolls back: charge and reserve are compensated" in signal(
        shop.step("ship"), Answer.REFUSED
    )
    assert "needs_manual_review, alert to oncall" in signal(shop.step("publish"), Answer.REFUSED)
    assert "nothing is rolled back" in signal(shop.step("publish"), Answer.REFUSED)


def test_an_idempotent_step_says_what_follows_retries_that_never_answer() -> None:
    unknown = signal(plan(SHOP).step("reserve"), Answer.UNKNOWN)
    assert "retried with the same key ({operation_id}:reserve), at most 2 attempts" in unknown
    assert unknown.endswith("then needs_manual_review, alert to oncall")


def test_verify_bound_says_whether_the_engine_can_ask() -> None:
    """Code bound: verifiable. Only described: the engine cannot ask, a person decides."""
    shop = plan(SHOP)
    charge = shop.step("charge")
    assert (charge.verify_bound, charge.kind) == (True, StepKind.VERIFIABLE)
    described = plan(
        process(step("charge", "payment", "unknown", compensation="Refund", verify="Look it up"))
    ).step("charge")
    assert (described.verify_bound, described.kind) == (False, StepKind.VERIFY_UNBOUND)
    assert "no code is bound" in signal(described, Answer.UNKNOWN)


def test_data_to_persist_includes_the_external_id_and_keys() -> None:
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
    shop = plan(SHOP)
    assert (shop.step("reserve").timeout_s, shop.step("reserve").max_attempts) == (5.0, 2)
    assert (shop.step("charge").timeout_s, shop.step("charge").max_attempts) == (20.0, 4)


def test_alert_route_money_to_the_payment_route() -> None:
    shop = plan(SHOP)
    assert shop.step("charge").alert_route == "finance"
    assert shop.step("reserve").alert_to == "oncall"


def test_a_step_allowed_one_attempt_says_it_is_not_retried() -> None:
    """max_attempts: 1 means a passing failure gets no second attempt: "at most 1 attempt"."""
    once = plan(process(step("write", compensation="Delete it", max_attempts=1))).step("write")
    failure = signal(once, Answer.FAILURE)
    assert "at most 1 attempt " in failure
    assert "1 attempts" not in failure
