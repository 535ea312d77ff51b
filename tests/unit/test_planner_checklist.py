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
            verify="Look it up",
            external_id="payment_id",
        )
    )
    [item] = [i for i in checklist(proc) if i.steps == ("charge_payment",) and "Confirm" in i.title]
    assert item.title == "Confirm with the payment provider whether charge_payment is idempotent"
    assert "({operation_id}:charge_payment)" in item.detail
    assert "Until then a timeout of charge_payment is verified" in item.detail


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
    assert "reservation_id (reserve), payment_id (charge)" in journal.detail
    assert journal.steps == ("reserve", "charge")


def test_manual_review_runbook_for_steps_a_person_must_settle() -> None:
    """A step without verify gets a runbook: who looks where, and what each answer means."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
        alerts={"default": "logistics"},
    )
    [runbook] = [
        i for i in checklist(proc) if i.title == "Write the manual-review runbook for ship"
    ]
    assert runbook.area is Area.OPERATIONS
    # The step's external id never reached the journal: look it up by its key.
    assert (
        "logistics looks the idempotency key {operation_id}:ship up in the API it called, then "
        "runs `sagaguard review resolve {operation_id} --step ship --as ...`"
    ) in runbook.detail
    # What the engine does with each resolution.
    assert "took effect -> `--as completed` with its ship_id in --result: the run completes" in (
        runbook.detail
    )
    assert (
        "did not -> `--as not_applied`: ship is called again if any of its 3 attempts remain, "
        "else the run rolls back write"
    ) in runbook.detail
    assert "undone by hand -> `--as compensated`: the rollback goes on with write" in (
        runbook.detail
    )


def test_an_idempotent_step_gets_a_runbook_for_retries_that_never_answered() -> None:
    """Its retries can end in review too; its attempts are spent by then."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("ship", "external_api", "yes", compensation="Cancel", external_id="ship_id"),
        alerts={"default": "logistics"},
    )
    [first] = [i for i in checklist(proc) if i.title == "Write the manual-review runbook for write"]
    assert first.detail.startswith("When none of write's 3 attempts with the same key got an")
    assert (
        "did not -> `--as not_applied`: its 3 attempts are spent, so the run fails, nothing "
        in (first.detail)
    )
    assert "`--as compensated`: the run ends compensated" in first.detail


def test_the_last_step_mitigation_is_not_tied_to_a_rollback_that_never_reaches_it() -> None:
    """An irreversible last step is never rolled back; its mitigation is for later undos."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none", mitigation="Send a correction"),
        alerts={"default": "support"},
    )
    [own] = [i for i in checklist(proc) if i.title == "Own the mitigation of mail"]
    assert own.detail == (
        "mail cannot be undone and, as the last step, is never rolled back; if a completed shop "
        "run is undone later by other means, support does this: Send a correction"
    )


def test_pivot_problem_becomes_an_engineering_item() -> None:
    """The checklist repeats the pivot fix as work to do."""
    proc = process(
        step("mail", "email", "no", compensation="none", mitigation="Apologise"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
    )
    assert "Move mail after ship" in {i.title for i in checklist(proc)}


def test_pivot_problem_of_a_step_without_compensation_becomes_an_item_too() -> None:
    """A side-effecting step with no compensation declared is irreversible by class."""
    proc = process(
        step("publish", "queue", "no", verify="Look the message up"),
        step("ship", "external_api", "no", compensation="Cancel", external_id="ship_id"),
    )
    [move] = [i for i in checklist(proc) if i.title == "Move publish after ship"]
    assert move.steps == ("publish", "ship")
    assert move.detail.startswith(
        "publish cannot be undone (no compensation declared), yet ship can still fail after it"
    )


def test_irreversible_step_mitigation_has_an_owner() -> None:
    """Who applies an irreversible step's mitigation is named."""
    proc = process(
        step("mail", "email", "no", compensation="none", mitigation="Send a sorry note"),
        alerts={"email": "support"},
    )
    [item] = [i for i in checklist(proc) if i.title == "Own the mitigation of mail"]
    assert "support does this: Send a sorry note" in item.detail


def test_retry_bounds_are_listed_per_step() -> None:
    """Attempts x timeout for each step, and the backoff."""
    proc = process(
        step("a", timeout="5s", max_attempts=2, compensation="x", external_id="a_id"),
        step("b", compensation="y", external_id="b_id"),
    )
    [bounds] = [i for i in checklist(proc) if i.title.startswith("Bound every retry")]
    assert "a 2x5s, b 3x30s" in bounds.detail
    assert "backoff 200ms doubling to 30s" in bounds.detail


def test_no_generic_advice() -> None:
    """Nothing like "check the docs": every item is about this process."""
    joined = text(checklist(process())).lower()
    for phrase in ("check the docs", "consult the documentation", "best practices", "as needed"):
        assert phrase not in joined


def test_journal_item_covers_every_step_including_those_without_an_external_id() -> None:
    """A step with no external id is journaled too: the item names all of them."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step("mail", "email", "no", compensation="none"),
    )
    [journal] = [i for i in checklist(proc) if i.title.startswith("Journal every step")]
    assert journal.steps == ("write", "mail")
    assert "Per step, all 2 of them" in journal.detail
    assert "(row_id (write); mail has none)" in journal.detail


def test_key_retention_asked_of_the_provider_covers_the_retry_and_resubmission_windows() -> None:
    """Keys must outlive the step's whole retry window plus the stated resubmission window."""
    proc = process(
        step("write", compensation="Delete", external_id="row_id"),
        step(
            "charge",
            "payment",
            "unknown",
            compensation="Refund",
            external_id="payment_id",
            verify="Look it up",
            timeout="10s",
            max_attempts=4,
        ),
        defaults={"backoff_base": "1s", "backoff_max": "3s"},
    )
    [confirm] = [i for i in checklist(proc) if i.title.startswith("Confirm with")]
    # 4 x 10s, waits of at most 1s, 2s and 3s (capped): 46s; plus 24h, rounded up to 24h 1m.
    assert (
        "whether keys are kept at least 24h 1m: charge's whole retry window (4 attempts x 10s "
        "timeout, plus up to 1s + 2s + 3s of backoff = 46s) plus the 24h in which a shop client "
        "may send the same operation_id again"
    ) in confirm.detail
    assert "backoff up to" not in confirm.detail
