"""Part 6 of the plan: the production-readiness checklist, tailored to the spec."""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard.model import Process
from sagaguard.planner import plan
from sagaguard.planner.plan import Area, ChecklistItem


def step(
    step_id: str, changes: str = "database", idempotent: str = "yes", **kw: Any
) -> dict[str, Any]:
    return {"id": step_id, "changes": changes.split(","), "idempotent": idempotent, **kw}


def process(*steps: dict[str, Any], **top: Any) -> Process:
    data: dict[str, Any] = {"process": "shop", "state_store": "database", "observability": []}
    data.update(top)
    data["steps"] = list(steps) or [step("write", compensation="Delete", external_id="row_id")]
    return Process.model_validate(data)


def checklist(proc: Process) -> tuple[ChecklistItem, ...]:
    return plan(proc).checklist


def text(items: tuple[ChecklistItem, ...]) -> str:
    return "\n".join(f"{i.title}: {i.detail}" for i in items)


def test_minimal_process_still_gets_eight_items_in_both_areas() -> None:
    """Even one step yields at least 8 items, engineering and operations."""
    items = checklist(process(step("read", "none")))
    assert len(items) >= 8
    assert {i.area for i in items} == {Area.ENGINEERING, Area.OPERATIONS}


def test_ids_are_numbered_per_area_engineering_first() -> None:
    """E1, E2, ... then O1, O2, ..."""
    items = checklist(process())
    areas = [i.area for i in items]
    assert areas == sorted(areas, key=lambda a: a is Area.OPERATIONS)
    engineering = [i.id for i in items if i.area is Area.ENGINEERING]
    assert engineering == [f"E{n}" for n in range(1, len(engineering) + 1)]


def test_unknown_idempotency_names_the_step_and_what_to_confirm() -> None:
    """An `unknown` step gets an item naming it, the provider and the key to test."""
    proc = process(
        step(
            "charge_payment",
            "payment",
            "unknown",
            compensation="Refund",
            verify="shop.psp:find_charge",
            external_id="payment_id",
        )
    )
    [item] = [i for i in checklist(proc) if i.steps == ("charge_payment",) and "Confirm" in i.title]
    assert item.title == "Confirm with the payment provider whether charge_payment is idempotent"
    assert "({operation_id}:charge_payment)" in item.detail
    assert "Until then a timeout of charge_payment is verified" in item.detail


def test_a_verify_only_described_asks_for_code_to_be_bound() -> None:
    """The binding question: prose cannot be asked, so the item says what to bind."""
    proc = process(
        step("charge", "payment", "unknown", compensation="Refund", verify="Look it up by key")
    )
    [item] = [i for i in checklist(proc) if i.title.startswith("Bind verify code")]
    assert item.steps == ("charge",)
    assert "verify: module:function that does 'Look it up by key'" in item.detail


def test_missing_dead_letter_queue_and_alerts_say_what_to_add() -> None:
    """No DLQ, no alerts: both items say to add them."""
    titles = {i.title for i in checklist(process(observability=["logs"]))}
    assert "Add a dead-letter (review) queue" in titles
    assert "Add alerting (none exists today)" in titles


def test_present_dead_letter_queue_and_alerts_are_put_to_use() -> None:
    """With a DLQ and alerts, the items say what to send and when to fire."""
    titles = {i.title for i in checklist(process(observability=["dead_letter_queue", "alerts"]))}
    assert "Send runs needing review to the dead-letter queue" in titles
    assert "Alert on stuck and failed runs" in titles
    assert "Add alerting (none exists today)" not in titles


@pytest.mark.parametrize(
    ("store", "mechanism"),
    [
        ("database", "SELECT ... FOR UPDATE"),
        ("key_value", "compare-and-set lease key with expiry"),
        ("jobs_table", "SELECT ... FOR UPDATE SKIP LOCKED"),
        ("event_log", "claim event with the expected stream version"),
        ("state_machine", "conditional transition"),
    ],
)
def test_single_rollback_owner_fits_the_state_store(store: str, mechanism: str) -> None:
    """Each store gets its own way to a single rollback owner."""
    [owner] = [
        i for i in checklist(process(state_store=store)) if "single rollback owner" in i.title
    ]
    assert mechanism in owner.detail


def test_key_value_owner_uses_a_fencing_token() -> None:
    """A lease alone is not enough: a stale owner's writes must be refused."""
    [owner] = [
        i for i in checklist(process(state_store="key_value")) if "single rollback owner" in i.title
    ]
    assert "fencing token" in owner.detail
    assert "lease:shop:{operation_id}" in owner.detail


def test_journal_item_lists_the_external_ids() -> None:
    """What to persist names each step's external id."""
    proc = process(
        step("reserve", "reservation", compensation="Release", external_id="reservation_id"),
        step("charge", "payment", compensation="Refund", external_id="payment_id"),
    )
    journal = checklist(proc)[0]
    assert "reservation_id (reserve) and payment_id (charge)" in journal.detail


def test_manual_review_runbook_for_steps_a_person_must_settle() -> None:
    """A step without verify gets a runbook: who looks where, the commands, what each does."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        alerts={"default": "logistics"},
    )
    [runbook] = [
        i for i in checklist(proc) if i.title == "Write the manual-review runbook for ship"
    ]
    assert runbook.area is Area.OPERATIONS
    assert "logistics looks the idempotency key {operation_id}:ship up in the API it called" in (
        runbook.detail
    )
    assert "took effect: `--as completed` with its ship_id, and the run completes" in (
        runbook.detail
    )
    assert (
        "did not: `--as not_applied`, and ship is called again if its bound allows, else the "
        "run rolls back: write is compensated"
    ) in runbook.detail
    assert runbook.commands[:2] == ("sagaguard review list", "sagaguard runs show OPERATION_ID")
    assert (
        "sagaguard review resolve OPERATION_ID --step ship --as completed "
        "--result '{\"ship_id\": \"...\"}' --by NAME --note 'what you found'"
    ) in runbook.commands
    # Commands are commands: no Markdown backticks in them, so they copy as they are.
    assert not any("`" in c for c in runbook.commands)


def test_a_step_after_the_pivot_gets_a_runbook_without_a_rollback() -> None:
    """After the pivot a person finishes the run; `--as compensated` would mean nothing."""
    proc = process(
        step("transfer", "payment", "no", compensation="none", verify="bank:find"),
        step("post_ledger", compensation="Reverse", external_id="entry_id"),
        alerts={"default": "treasury"},
    )
    [runbook] = [
        i for i in checklist(proc) if i.title == "Write the manual-review runbook for post_ledger"
    ]
    assert "kept failing after the pivot for its retry window" in runbook.detail
    assert not any("--as compensated" in c for c in runbook.commands)


def test_best_effort_failures_have_someone_to_finish_them() -> None:
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="x", required=False),
        alerts={"default": "support"},
    )
    [item] = [i for i in checklist(proc) if i.title.startswith("Work the best_effort_failed")]
    assert item.steps == ("mail",)
    assert "mail -> support" in item.detail


def test_the_last_step_mitigation_is_not_tied_to_a_rollback_that_never_reaches_it() -> None:
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="Send a correction"),
        alerts={"default": "support"},
    )
    [own] = [i for i in checklist(proc) if i.title == "Own the mitigation of mail"]
    assert own.detail == (
        "mail cannot be undone and no rollback of the engine reaches it; if a completed shop "
        "run is undone later by other means, support does this: Send a correction"
    )


def test_the_point_of_no_return_is_an_engineering_item() -> None:
    """Derived: confirm it by declaring it; with a pivot finding, resolve that first."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="Apologise"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
    )
    [item] = [i for i in checklist(proc) if i.title == "Confirm mail as the point of no return"]
    assert "Declare pivot: true on it" in item.detail
    assert "first resolve SG001 on mail" in item.detail
    none = process(step("a", compensation="x", external_id="a_id"))
    assert "Name the point of no return" in {i.title for i in checklist(none)}
    declared = process(step("a", "payment", "no", compensation="none", pivot=True))
    assert "Keep a the point of no return" in {i.title for i in checklist(declared)}


def test_irreversible_step_mitigation_has_an_owner() -> None:
    proc = process(
        step("mail", "email", "no", compensation="none", mitigation="Send a sorry note"),
        alerts={"email": "support"},
    )
    [item] = [i for i in checklist(proc) if i.title == "Own the mitigation of mail"]
    assert "support does this: Send a sorry note" in item.detail


def test_retry_bounds_are_listed_per_step_with_windows_in_time() -> None:
    """Attempts for each step; a window after the pivot; compensations in time."""
    proc = process(
        step("a", timeout="5s", max_attempts=2, compensation="x", external_id="a_id"),
        step("b", compensation="y", external_id="b_id"),
        defaults={"compensation_retry_for": "20m"},
    )
    [bounds] = [i for i in checklist(proc) if i.title.startswith("Bound every retry")]
    assert "a at most 2 attempts of 5s, b at most 3 attempts of 30s" in bounds.detail
    assert "compensations are retried for at least 20m and at least 3 attempts" in bounds.detail
    assert "backoff 200ms doubling to at most 30s" in bounds.detail


def test_no_generic_advice() -> None:
    joined = text(checklist(process())).lower()
    for phrase in ("check the docs", "consult the documentation", "best practices", "as needed"):
        assert phrase not in joined


def test_journal_item_covers_every_step_including_those_without_an_external_id() -> None:
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none"),
    )
    [journal] = [i for i in checklist(proc) if i.title.startswith("Journal every step")]
    assert "Per step, all 2 of them" in journal.detail
    assert "(row_id (write))" in journal.detail


def test_key_retention_comes_from_the_resubmission_window() -> None:
    """Keys must outlive the step's whole retry window plus the spec's resubmission window."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step(
            "charge",
            "payment",
            "unknown",
            compensation="Refund",
            external_id="payment_id",
            verify="shop.psp:find",
            timeout="10s",
            max_attempts=4,
        ),
        defaults={"backoff_base": "1s", "backoff_max": "3s"},
        resubmission_window="72h",
    )
    [confirm] = [i for i in checklist(proc) if i.title.startswith("Confirm with")]
    # 4 x 10s, waits of at most 1s, 2s and 3s (capped): 46s; plus 72h, rounded up to 72h 1m.
    assert (
        "whether keys are kept at least 72h 1m: charge's whole retry window (46s) plus the 72h "
        "in which a shop client may send the same operation_id again"
    ) in confirm.detail
    twelve = process(*proc.model_dump(by_alias=True)["steps"], resubmission_window="12h")
    [short] = [i for i in checklist(twelve) if i.title.startswith("Confirm with")]
    assert "kept at least 12h 1m" in short.detail


def test_key_retention_after_the_pivot_covers_the_forward_recovery_window() -> None:
    proc = process(
        step("transfer", "payment", "no", compensation="none", verify="bank:find"),
        step("post", "external_api", "unknown", compensation="x", verify="gl:find", retry_for="2h"),
    )
    [confirm] = [
        i for i in checklist(proc) if i.title.startswith("Confirm with") and "post" in i.title
    ]
    assert "kept at least 26h 1m" in confirm.detail
