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
        verify="Look the message up",
    ),
)


def findings(proc: Process, code: str) -> list[Finding]:
    return [f for f in plan(proc).findings if f.code == code]


def test_a_well_designed_process_has_no_findings() -> None:
    """Compensations declared, money idempotent, email last, DLQ and alerts present."""
    assert plan(CLEAN).findings == ()


def test_every_emitted_code_is_documented() -> None:
    """Codes are a stable, documented set."""
    assert set(FINDING_CODES) == {f"SG{n:03d}" for n in range(1, 14)}


def test_sg001_pivot_ordering_names_the_step_and_where_it_belongs() -> None:
    """An email before a step that can still fail should move after the last such step."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("send_email", "email", "no", compensation="none", mitigation="Apologise"),
        step(
            "book_delivery",
            "external_api",
            "unknown",
            compensation="Cancel",
            external_id="delivery_id",
            verify="Look it up",
        ),
        step("audit", "database", "yes", compensation="Delete", external_id="audit_id"),
    )
    [finding] = findings(shop, "SG001")
    assert finding.severity is Severity.WARNING
    assert finding.step == "send_email"
    assert "book_delivery can still fail after it" in finding.message
    assert "Move send_email after book_delivery, the last step that can fail" in finding.message


def test_sg001_covers_a_side_effecting_step_that_declares_no_compensation() -> None:
    """No compensation declared is irreversible by class: the pivot check names it too."""
    shop = process(
        step("publish", "queue", "no", verify="Look the message up"),
        step("charge", "payment", "yes", compensation="Refund", external_id="payment_id"),
        step("write", compensation="Delete", external_id="row_id"),
    )
    [pivot] = findings(shop, "SG001")
    assert pivot.step == "publish"
    assert pivot.message.startswith(
        "publish declares no compensation, so it cannot be undone (queue) but charge can "
        "still fail after it"
    )
    assert pivot.message.endswith(
        "Move publish after charge, the last step that can fail, or give it a compensation (SG002)"
    )
    # SG002 keeps its own job (how to declare a compensation); SG001 does not repeat it.
    [missing] = findings(shop, "SG002")
    assert "compensation: none` with a mitigation" in missing.message
    assert "mitigation" not in pivot.message


def test_sg001_not_raised_for_a_read_only_step_or_one_that_nothing_can_fail_after() -> None:
    """Read-only steps are not irreversible; a step before retriable steps only is no pivot."""
    shop = process(
        step("look_up", "none"),
        step("publish", "queue", "no", verify="Look the message up"),
        step("log", "database", "yes", compensation="Delete", external_id="log_id"),
    )
    assert findings(shop, "SG001") == []


def test_sg001_not_raised_when_only_retriable_steps_follow() -> None:
    """After the pivot, idempotent non-money steps are retried until they succeed."""
    shop = process(
        step("mail", "email", "no", compensation="none", mitigation="x", verify="y"),
        step("log", "database", "yes", compensation="Delete", external_id="log_id"),
    )
    assert findings(shop, "SG001") == []


def test_sg001_a_payment_after_the_pivot_can_still_fail_even_if_idempotent() -> None:
    """A card can be declined whatever its idempotency: the email belongs after it."""
    shop = process(
        step("mail", "email", "no", compensation="none", mitigation="x", verify="y"),
        step("charge", "payment", "yes", compensation="Refund", external_id="payment_id"),
    )
    [finding] = findings(shop, "SG001")
    assert "Move mail after charge" in finding.message


def test_sg002_side_effect_without_compensation() -> None:
    """A queue publish with no compensation, followed by another step: warning."""
    shop = process(
        step("publish", "queue", "yes"),
        step("write", compensation="Delete", external_id="row_id"),
    )
    [finding] = findings(shop, "SG002")
    assert finding.severity is Severity.WARNING
    assert finding.step == "publish"
    assert "when write fails, nothing undoes it" in finding.message
    assert "publish a cancelling message" in finding.message


def test_sg002_on_the_last_step_is_only_info() -> None:
    """Nothing after the last step can fail, so its missing compensation never matters."""
    shop = process(step("write", compensation="Delete", external_id="r"), step("publish", "queue"))
    [finding] = findings(shop, "SG002")
    assert finding.severity is Severity.INFO


@pytest.mark.parametrize("idempotent", ["no", "unknown"])
def test_sg003_payment_neither_idempotent_nor_verifiable_is_an_error(idempotent: str) -> None:
    """Money with no idempotency and no verify: an error naming the route and the fix."""
    shop = process(
        step("charge", "payment", idempotent, compensation="Refund", external_id="payment_id"),
        alerts={"default": "oncall", "payment": "finance"},
    )
    [finding] = findings(shop, "SG003")
    assert finding.severity is Severity.ERROR
    assert "manual case for finance" in finding.message
    assert "{operation_id}:charge" in finding.message
    assert plan(shop).has_errors
    # The error replaces the generic "no verify" warnings for money.
    assert findings(shop, "SG005") == []
    assert findings(shop, "SG006") == []


def test_sg003_not_raised_with_verify_or_idempotency() -> None:
    """Either a verify or a confirmed idempotency key makes a lost answer recoverable."""
    verified = process(
        step(
            "charge",
            "payment",
            "unknown",
            compensation="Refund",
            external_id="pid",
            verify="Look it up",
        )
    )
    assert findings(verified, "SG003") == []
    assert findings(CLEAN, "SG003") == []


def test_sg004_more_than_twenty_steps_is_a_warning() -> None:
    """Twenty-one steps still plan, with a warning."""
    many = [step(f"s{i}", compensation="Delete", external_id="row_id") for i in range(21)]
    [finding] = findings(process(*many), "SG004")
    assert finding.severity is Severity.WARNING
    assert "21 steps" in finding.message
    assert findings(process(*many[:20]), "SG004") == []


def test_sg005_unknown_idempotency_without_verify_names_what_to_confirm() -> None:
    """The step and whom to ask are named."""
    shop = process(
        step("ship", "external_api", "unknown", compensation="Cancel", external_id="ship_id")
    )
    [finding] = findings(shop, "SG005")
    assert "Confirm with the API's owner" in finding.message
    assert "{operation_id}:ship" in finding.message


def test_sg006_not_idempotent_without_verify() -> None:
    """A non-idempotent step without verify sends every lost answer to a person."""
    shop = process(step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"))
    [finding] = findings(shop, "SG006")
    assert "look ship_id up in the API it called" in finding.message


def test_sg007_unknown_idempotency_with_verify_is_info() -> None:
    """Covered by verify, but still worth confirming with the provider."""
    shop = process(
        step(
            "charge",
            "payment",
            "unknown",
            compensation="Refund",
            external_id="pid",
            verify="Look it up",
        )
    )
    [finding] = findings(shop, "SG007")
    assert finding.severity is Severity.INFO
    assert "payment provider" in finding.message


def test_sg008_missing_alert_route_says_what_to_add() -> None:
    """No default route: the unrouted steps are named, and money asks for alerts.payment."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("charge", "payment", "yes", compensation="Refund", external_id="pid"),
        alerts={},
    )
    [finding] = findings(shop, "SG008")
    assert finding.step is None
    assert "nobody is alerted for write, charge" in finding.message
    assert "add alerts.default (and alerts.payment for charge)" in finding.message


def test_sg008_not_raised_for_read_only_steps() -> None:
    """A read-only step never alerts, so it needs no route."""
    shop = process(step("read", "none"), alerts={})
    assert findings(shop, "SG008") == []


def test_sg009_and_sg010_missing_dead_letter_queue_and_alerting() -> None:
    """Observability gaps are named with the process and its routes."""
    shop = process(
        *[step("write", compensation="Delete", external_id="row_id")], observability=["logs"]
    )
    [dlq] = findings(shop, "SG009")
    [alerting] = findings(shop, "SG010")
    assert "runs of shop that end in needs_manual_review" in dlq.message
    assert "routes to oncall" in alerting.message


def test_sg009_never_names_the_last_step_as_a_failed_compensation() -> None:
    """The last step is never compensated, so it cannot strand a run in review."""
    shop = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("charge", "payment", "yes", compensation="Refund", external_id="payment_id"),
        observability=["alerts"],
    )
    [dlq] = findings(shop, "SG009")
    assert "write after a failed compensation" in dlq.message
    assert "charge after a failed compensation" not in dlq.message
    alone = process(
        step("charge", "payment", "yes", compensation="Refund", external_id="pid"),
        observability=["alerts"],
    )
    [dlq] = findings(alone, "SG009")
    assert "failed compensation" not in dlq.message


def test_sg011_compensation_without_external_id() -> None:
    """A compensation must know which object to undo."""
    shop = process(
        step("write", compensation="Delete the row"),
        step("ship", compensation="Cancel", external_id="shipment_id"),
    )
    [finding] = findings(shop, "SG011")
    assert finding.step == "write"
    assert "persist one (e.g. write_ref)" in finding.message


def test_sg011_spares_the_last_step_whose_compensation_never_runs() -> None:
    assert findings(process(step("write", compensation="Delete the row")), "SG011") == []


def test_sg012_irreversible_without_mitigation_shows_the_derived_one() -> None:
    """The plan derives a mitigation and asks to confirm it."""
    shop = process(step("mail", "email", "no", compensation="none", verify="Look it up"))
    [finding] = findings(shop, "SG012")
    assert finding.severity is Severity.INFO
    assert "send a correction" in finding.message


def test_sg013_read_only_step_with_a_compensation() -> None:
    """A compensation on a read-only step never runs."""
    [finding] = findings(process(step("read", "none", compensation="Forget it")), "SG013")
    assert finding.step == "read"


def test_findings_are_ordered_errors_first() -> None:
    """Errors come before warnings, warnings before infos."""
    shop = process(
        step("mail", "email", "no", compensation="none"),
        step("charge", "payment", "no", compensation="Refund", external_id="pid"),
        observability=[],
    )
    ranks = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    order = [ranks[f.severity] for f in plan(shop).findings]
    assert order == sorted(order)
    assert order[0] == 0
