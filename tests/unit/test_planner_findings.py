"""Part 7 of the plan: findings about the process design, each code triggered and not."""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard.model import Process
from sagaguard.planner import FINDING_CODES, plan
from sagaguard.planner.plan import Finding, Severity


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {
        "process": "shop",
        "state_store": "database",
        "observability": ["dead_letter_queue", "alerts"],
        "alerts": {"default": "oncall"},
    }
    data.update(top)
    data["steps"] = list(steps)
    return Process.model_validate(data)


CLEAN = process(
    step("write", compensation="Delete the row", external_id="row_id"),
    step("charge", "payment", "yes", compensation="Refund", external_id="payment_id"),
    step(
        "mail",
        "email",
        "no",
        compensation="none",
        mitigation="Send a correction",
        verify="shop.mailer:find_message",
        required=False,
    ),
)


def findings(proc: Process, code: str) -> list[Finding]:
    return [f for f in plan(proc).findings if f.code == code]


def codes(proc: Process) -> set[str]:
    return {f.code for f in plan(proc).findings}


def test_a_well_designed_process_has_no_findings() -> None:
    """Compensations declared, money idempotent, the email best-effort and last."""
    assert plan(CLEAN).findings == ()


def test_every_emitted_code_is_documented() -> None:
    assert set(FINDING_CODES) == {f"SG{n:03d}" for n in range(1, 17)}


# --- SG001: the point of no return --------------------------------------------------------


def test_sg001_a_best_effort_email_before_a_step_that_rolls_back_moves_after_it() -> None:
    """The email is sent before delivery can fail and roll back: move it, say after what."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("send_email", "email", "no", compensation="none", mitigation="x", required=False),
        step(
            "book_delivery",
            "external_api",
            "unknown",
            compensation="Cancel",
            external_id="delivery_id",
            verify="shop.carrier:find",
        ),
        step("audit", compensation="Delete", external_id="audit_id"),
    )
    [finding] = findings(shop, "SG001")
    assert (finding.severity, finding.step) == (Severity.WARNING, "send_email")
    assert "sent before book_delivery, which can still fail and roll the run back" in (
        finding.message
    )
    assert finding.message.endswith(
        "Move it after book_delivery, the last step whose failure rolls back"
    )


def test_sg001_names_several_notifications_once_in_their_order() -> None:
    """Never two findings each saying "after the last step": one, with both, in order."""
    shop = process(
        step(
            "sms", "external_api", "no", action="Send an SMS", compensation="none", required=False
        ),
        step("mail", "email", "no", compensation="none", required=False),
        step("charge", "payment", "no", compensation="Refund", verify="psp:find"),
    )
    [finding] = findings(shop, "SG001")
    assert finding.step == "sms"
    assert "sms and mail are notifications" in finding.message
    assert "move them, in this order, after charge" in finding.message.lower()


def test_sg001_a_notification_as_the_derived_pivot_suggests_best_effort_and_a_move() -> None:
    """A required welcome email before the CRM profile became the point of no return."""
    signup = process(
        step("create_account", compensation="Soft-delete", external_id="user_id"),
        step("send_welcome_email", "email", "no", compensation="none", mitigation="Apologise"),
        step(
            "create_profile",
            "external_api",
            "unknown",
            compensation="Archive",
            verify="crm:find",
            external_id="crm_id",
        ),
    )
    [finding] = findings(signup, "SG001")
    assert finding.step == "send_welcome_email"
    assert "a notification, is the derived pivot" in finding.message
    assert "mark send_welcome_email required: false and move it after create_profile" in (
        finding.message
    )
    assert "declare pivot: true on it" in finding.message


def test_sg001_an_irreversible_payment_before_the_pivot_is_authorized_early() -> None:
    shop = process(
        step("charge", "payment", "no", compensation="none", verify="psp:find"),
        step("ship", "reservation", "no", compensation="none", pivot=True, verify="wh:find"),
    )
    [finding] = findings(shop, "SG001")
    assert finding.step == "charge"
    assert "Authorize the payment early instead" in finding.message
    assert "capture it at ship, the point of no return" in finding.message


def test_sg001_an_effect_before_a_later_declared_pivot_suggests_moving_the_pivot() -> None:
    shop = process(
        step("provision", "external_api", "no", compensation="none", verify="cloud:find"),
        step("charge", "payment", "yes", compensation="Refund", pivot=True),
    )
    [finding] = findings(shop, "SG001")
    assert finding.step == "provision"
    assert "The pivot is declared on charge" in finding.message
    assert "move pivot: true to it" in finding.message


def test_sg001_a_step_after_the_pivot_that_can_be_refused_is_authorized_before_it() -> None:
    """A charge after the shipment can be declined with nothing left to roll back."""
    shop = process(
        step("ship", "external_api", "no", compensation="none", verify="carrier:find"),
        step("charge", "payment", "yes", compensation="Refund", external_id="payment_id"),
    )
    [finding] = findings(shop, "SG001")
    assert finding.step == "charge"
    assert "comes after ship, the point of no return, and can be refused" in finding.message
    assert "Authorize the payment before ship" in finding.message


def test_sg001_a_reservation_after_the_pivot_moves_before_it() -> None:
    shop = process(
        step("ship", "external_api", "no", compensation="none", verify="carrier:find"),
        step("hold", "reservation", "yes", compensation="Release", external_id="hold_id"),
    )
    [finding] = findings(shop, "SG001")
    assert "Move hold before ship: it can be undone" in finding.message


def test_sg001_never_asks_to_move_a_bank_transfer_after_its_remittance_email() -> None:
    """The transfer is the point of no return; the ledger and the email are pushed forward."""
    payout = process(
        step("debit", "payment", compensation="Credit back", external_id="debit_id"),
        step("transfer", "payment", "no", compensation="none", verify="bank:find"),
        step("post_ledger", compensation="Reverse", external_id="entry_id"),
        step("advise", "email", "no", compensation="none", mitigation="x", required=False),
    )
    assert findings(payout, "SG001") == []
    assert not any("Move transfer" in f.message for f in plan(payout).findings)


def test_sg001_not_raised_for_a_read_only_step_or_when_only_retriable_steps_follow() -> None:
    shop = process(
        step("look_up", "none"),
        step("mail", "email", "no", compensation="none", mitigation="x", verify="mail:find"),
        step("log", compensation="Delete", external_id="log_id"),
    )
    assert findings(shop, "SG001") == []


# --- SG014: a notification that would give money back ------------------------------------


def test_sg014_a_required_email_whose_bounce_would_refund_the_payment_is_an_error() -> None:
    """The old checkout: a bounced confirmation email refunds a paid order."""
    shop = process(
        step("create_order", compensation="Cancel", external_id="order_id"),
        step("charge_payment", "payment", "yes", compensation="Refund", external_id="pid"),
        step("send_email", "email", "no", compensation="none", mitigation="x", verify="m:find"),
    )
    [finding] = findings(shop, "SG014")
    assert (finding.severity, finding.step) == (Severity.ERROR, "send_email")
    assert "charge_payment is compensated (Refund)" in finding.message
    assert "Mark send_email required: false" in finding.message
    assert not plan(shop).ready


def test_sg014_not_raised_for_a_best_effort_email_or_one_that_undoes_no_money() -> None:
    assert findings(CLEAN, "SG014") == []
    no_money = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="x", verify="m:find"),
    )
    assert findings(no_money, "SG014") == []


# --- SG002 and SG003 ------------------------------------------------------------------------


def test_sg002_a_step_a_rollback_passes_without_a_compensation_is_a_warning() -> None:
    shop = process(
        step("publish", "queue", "yes", required=False),
        step("write", compensation="Delete", external_id="row_id"),
        step("charge", "payment", "yes", compensation="Refund", external_id="pid"),
    )
    [finding] = findings(shop, "SG002")
    assert (finding.severity, finding.step) == (Severity.WARNING, "publish")
    assert "when a later step fails and the run rolls back, nothing undoes it" in finding.message
    assert "publish a cancelling message" in finding.message


def test_sg002_a_missing_compensation_that_makes_the_pivot_is_a_warning() -> None:
    shop = process(step("publish", "queue", "yes"), step("write", compensation="Delete"))
    [finding] = findings(shop, "SG002")
    assert finding.severity is Severity.WARNING
    assert "so it became the point of no return" in finding.message


def test_sg002_where_no_rollback_reaches_it_is_only_info() -> None:
    shop = process(step("write", compensation="Delete", external_id="r"), step("publish", "queue"))
    [finding] = findings(shop, "SG002")
    assert finding.severity is Severity.INFO
    assert "no rollback of the engine reaches it" in finding.message


@pytest.mark.parametrize("idempotent", ["no", "unknown"])
def test_sg003_payment_neither_idempotent_nor_verifiable_is_an_error(idempotent: str) -> None:
    shop = process(
        step("charge", "payment", idempotent, compensation="Refund", external_id="payment_id"),
        alerts={"default": "oncall", "payment": "finance"},
    )
    [finding] = findings(shop, "SG003")
    assert finding.severity is Severity.ERROR
    assert "manual case for finance" in finding.message
    assert "{operation_id}:charge" in finding.message
    assert plan(shop).has_errors
    assert not plan(shop).ready
    assert findings(shop, "SG005") == findings(shop, "SG006") == []


def test_sg003_not_raised_with_verify_or_idempotency() -> None:
    verified = process(
        step("charge", "payment", "unknown", compensation="Refund", external_id="p", verify="m:f")
    )
    assert findings(verified, "SG003") == []
    assert findings(CLEAN, "SG003") == []


def test_sg004_more_than_twenty_steps_is_a_warning() -> None:
    many = [step(f"s{i}", compensation="Delete", external_id="row_id") for i in range(21)]
    [finding] = findings(process(*many), "SG004")
    assert finding.severity is Severity.WARNING
    assert "21 steps" in finding.message
    assert findings(process(*many[:20]), "SG004") == []


# --- lost answers: SG005, SG006, SG007, SG016 -------------------------------------------


def test_sg005_unknown_idempotency_without_verify_names_what_to_confirm() -> None:
    shop = process(
        step("ship", "external_api", "unknown", compensation="Cancel", external_id="ship_id")
    )
    [finding] = findings(shop, "SG005")
    assert "Confirm with the API's owner" in finding.message
    assert "goes to oncall" in finding.message


def test_sg006_not_idempotent_without_verify() -> None:
    shop = process(step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"))
    [finding] = findings(shop, "SG006")
    assert finding.severity is Severity.WARNING
    assert "look ship_id up in the API it called" in finding.message


def test_sg006_for_a_best_effort_step_is_info_and_says_the_run_goes_on() -> None:
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="x", required=False),
    )
    [finding] = findings(shop, "SG006")
    assert finding.severity is Severity.INFO
    assert "the run goes on" in finding.message


def test_sg007_unknown_idempotency_with_verify_code_is_info() -> None:
    shop = process(
        step("charge", "payment", "unknown", compensation="Refund", external_id="p", verify="m:f")
    )
    [finding] = findings(shop, "SG007")
    assert finding.severity is Severity.INFO
    assert "payment provider" in finding.message


def test_sg016_a_verify_described_but_not_bound_sends_lost_answers_to_a_person() -> None:
    """The binding question: prose is not code, so the engine cannot ask."""
    prose = process(
        step("charge", "payment", "unknown", compensation="Refund", external_id="p", verify="Look")
    )
    [finding] = findings(prose, "SG016")
    assert finding.severity is Severity.WARNING
    assert "goes to oncall" in finding.message
    assert "verify: module:function" in finding.message
    assert findings(prose, "SG007") == []
    bound = plan(prose, verify_bound=frozenset({"charge"})).findings
    assert "SG016" not in {f.code for f in bound}
    assert "SG007" in {f.code for f in bound}


# --- who is told: SG008, SG010, SG015 ---------------------------------------------------


def test_sg008_missing_alert_route_says_what_to_add() -> None:
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("charge", "payment", "yes", compensation="Refund", external_id="pid"),
        alerts={},
    )
    [finding] = findings(shop, "SG008")
    assert finding.step is None
    assert "nobody is alerted for write and charge" in finding.message
    assert "(and alerts.payment for charge)" in finding.message


def test_sg008_not_raised_for_read_only_steps() -> None:
    assert findings(process(step("read", "none"), alerts={}), "SG008") == []


def test_sg015_a_case_for_a_person_with_neither_route_nor_alerting_is_an_error() -> None:
    """Somebody must learn that a run waits: no route and no alerting is not ready."""
    silent = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        alerts={},
        observability=["logs"],
    )
    [finding] = findings(silent, "SG015")
    assert finding.severity is Severity.ERROR
    assert "write and ship can end in needs_manual_review" in finding.message
    assert not plan(silent).ready
    assert findings(silent, "SG008") == []
    routed = process(
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        observability=["logs"],
    )
    assert findings(routed, "SG015") == []
    alerting = process(
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        alerts={},
    )
    assert findings(alerting, "SG015") == []


def test_sg009_and_sg010_missing_dead_letter_queue_and_alerting() -> None:
    shop = process(step("write", compensation="Delete", external_id="row_id"), observability=[])
    [dlq] = findings(shop, "SG009")
    [alerting] = findings(shop, "SG010")
    assert "runs of shop that end in needs_manual_review" in dlq.message
    assert "routes to oncall" in alerting.message


def test_sg009_names_a_failure_after_the_pivot_among_the_stuck_runs() -> None:
    payout = process(
        step("debit", "payment", compensation="Credit back", external_id="debit_id"),
        step("transfer", "payment", "no", compensation="none", verify="bank:find"),
        step("post_ledger", compensation="Reverse", external_id="entry_id"),
        observability=["alerts"],
    )
    [dlq] = findings(payout, "SG009")
    assert "post_ledger failing after the pivot" in dlq.message
    assert "debit after a failed compensation" in dlq.message


def test_sg011_a_step_the_engine_compensates_needs_an_external_id() -> None:
    shop = process(
        step("write", compensation="Delete the row"),
        step("ship", compensation="Cancel", external_id="shipment_id"),
    )
    [finding] = findings(shop, "SG011")
    assert finding.step == "write"
    assert "persist one (e.g. write_ref)" in finding.message
    assert findings(process(step("write", compensation="Delete the row")), "SG011") == []


def test_sg012_irreversible_without_mitigation_shows_the_derived_one() -> None:
    shop = process(step("mail", "email", "no", compensation="none", verify="m:f"))
    [finding] = findings(shop, "SG012")
    assert finding.severity is Severity.INFO
    assert "send a correction" in finding.message


def test_sg013_read_only_step_with_a_compensation() -> None:
    [finding] = findings(process(step("read", "none", compensation="Forget it")), "SG013")
    assert finding.step == "read"


def test_findings_are_ordered_errors_first() -> None:
    shop = process(
        step("mail", "email", "no", compensation="none"),
        step("charge", "payment", "no", compensation="Refund", external_id="pid"),
        observability=[],
    )
    ranks = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    order = [ranks[f.severity] for f in plan(shop).findings]
    assert order == sorted(order)
    assert order[0] == 0
