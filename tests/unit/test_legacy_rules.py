"""The recovery rules, cell by cell: DESIGN.md section 2 is the contract of ``decide``."""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Process, Step


def make_step(**fields: Any) -> Step:
    data: dict[str, Any] = {"id": "s", "changes": ["external_api"], "idempotent": "no"}
    data.update(fields)
    return Step.model_validate(data)


READ_ONLY = make_step(changes=["none"], idempotent="yes")
IDEMPOTENT = make_step(idempotent="yes", compensation="undo it")
NOT_IDEMPOTENT_VERIFY = make_step(idempotent="no", verify="look it up", compensation="undo")
UNKNOWN_VERIFY = make_step(idempotent="unknown", verify="look it up", compensation="undo")
NOT_IDEMPOTENT_BLIND = make_step(idempotent="no", compensation="undo it")
UNKNOWN_BLIND = make_step(idempotent="unknown", compensation="undo it")

COLUMNS = {
    "read_only": READ_ONLY,
    "idempotent_yes": IDEMPOTENT,
    "no_with_verify": NOT_IDEMPOTENT_VERIFY,
    "unknown_with_verify": UNKNOWN_VERIFY,
    "no_without_verify": NOT_IDEMPOTENT_BLIND,
    "unknown_without_verify": UNKNOWN_BLIND,
}


def make_process(*steps: Step, **defaults: Any) -> Process:
    return Process.model_validate(
        {
            "process": "shop",
            "state_store": "database",
            "observability": [],
            "defaults": defaults,
            "steps": [s.model_dump(exclude_none=True) for s in steps],
        }
    )


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_definite_failure_is_retried_then_compensated_in_every_column(column: str) -> None:
    """Row `definite_failure`: nothing changed, so a bounded retry is safe for every step."""
    ruling = decide(COLUMNS[column], Situation.DEFINITE_FAILURE)
    assert ruling.decision is Decision.RETRY
    assert ruling.then is Decision.COMPENSATE
    assert not ruling.alert


def test_definite_failure_of_the_first_step_ends_the_run_with_nothing_to_undo() -> None:
    """Nothing before the step changed anything: no rollback follows, and none is claimed."""
    first = make_step(id="create_order", changes=["database"], compensation="Cancel it")
    shop = make_process(first, make_step(id="charge", changes=["payment"]), max_attempts=4)
    ruling = decide(first, Situation.DEFINITE_FAILURE, process=shop)
    assert (ruling.decision, ruling.then, ruling.alert) == (Decision.RETRY, Decision.NONE, False)
    assert "up to 4 attempts" in ruling.reason
    assert "the run fails with nothing to undo (create_order is the first step)" in ruling.reason
    assert "compensated" not in ruling.reason


def test_definite_failure_after_read_only_steps_only_has_nothing_to_undo() -> None:
    """A read-only step before the failed one leaves nothing for the rollback to visit."""
    read = make_step(id="look_up", changes=["none"], idempotent="yes")
    write = make_step(id="write", changes=["database"], compensation="Delete it")
    ruling = decide(write, Situation.DEFINITE_FAILURE, process=make_process(read, write))
    assert ruling.then is Decision.NONE
    assert "no step before write changed anything" in ruling.reason


def test_definite_failure_names_the_steps_the_rollback_undoes_and_keeps() -> None:
    """Earlier effects: compensate follows, naming what is undone (latest first) and kept."""
    order = make_step(id="order", changes=["database"], compensation="Cancel it")
    mail = make_step(id="mail", changes=["email"], compensation="none")
    hold = make_step(id="hold", changes=["reservation"], compensation="Release it")
    pay = make_step(id="pay", changes=["payment"], idempotent="yes")
    ruling = decide(pay, Situation.DEFINITE_FAILURE, process=make_process(order, mail, hold, pay))
    assert ruling.then is Decision.COMPENSATE
    assert "hold, order are compensated, latest first" in ruling.reason
    assert "mail cannot be undone and is kept" in ruling.reason


def test_definite_failure_after_an_irreversible_step_only_still_rolls_back() -> None:
    """The rollback visits a kept effect too (the run ends compensated), so compensate follows."""
    mail = make_step(id="mail", changes=["email"], compensation="none")
    pay = make_step(id="pay", changes=["payment"], idempotent="yes")
    ruling = decide(pay, Situation.DEFINITE_FAILURE, process=make_process(mail, pay))
    assert ruling.then is Decision.COMPENSATE
    assert "compensated" not in ruling.reason


@pytest.mark.parametrize("situation", [Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST])
@pytest.mark.parametrize(
    ("column", "decision", "then", "alert"),
    [
        ("read_only", Decision.RETRY, None, False),
        ("idempotent_yes", Decision.RETRY, Decision.MANUAL_REVIEW, True),
        ("no_with_verify", Decision.VERIFY, Decision.MANUAL_REVIEW, True),
        ("unknown_with_verify", Decision.VERIFY, Decision.MANUAL_REVIEW, True),
        ("no_without_verify", Decision.MANUAL_REVIEW, None, True),
        ("unknown_without_verify", Decision.MANUAL_REVIEW, None, True),
    ],
)
def test_unknown_outcome_rows(
    situation: Situation, column: str, decision: Decision, then: Decision | None, alert: bool
) -> None:
    """Rows `timeout` and `crash_before_persist`: only read-only or idempotent steps retry.

    Every path into manual review alerts, as the engine does when it sends a step there.
    """
    ruling = decide(COLUMNS[column], situation)
    assert (ruling.decision, ruling.then, ruling.alert) == (decision, then, alert)


@pytest.mark.parametrize("situation", [Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST])
def test_unknown_outcome_reason_says_which_situation(situation: Situation) -> None:
    """The reason tells a lost answer from a lost result, so the plan reads right."""
    reason = decide(UNKNOWN_BLIND, situation).reason
    expected = "no answer came" if situation is Situation.TIMEOUT else "never saved"
    assert expected in reason
    assert "idempotent: unknown" in reason


def test_idempotent_retry_reason_mentions_the_same_key() -> None:
    """A retry after a lost answer is safe only with the same idempotency key."""
    assert "same idempotency key" in decide(IDEMPOTENT, Situation.TIMEOUT).reason


@pytest.mark.parametrize(
    "column", ["idempotent_yes", "no_with_verify", "unknown_with_verify", "no_without_verify"]
)
def test_later_step_failed_compensates_every_compensatable_step(column: str) -> None:
    """Row `later_step_failed`: compensation does not depend on idempotency."""
    ruling = decide(COLUMNS[column], Situation.LATER_STEP_FAILED)
    assert ruling.decision is Decision.COMPENSATE
    assert not ruling.alert


def test_later_step_failed_leaves_a_read_only_step_alone() -> None:
    """A read-only step has nothing to undo."""
    assert decide(READ_ONLY, Situation.LATER_STEP_FAILED).decision is Decision.NONE


def test_later_step_failed_irreversible_step_gets_its_mitigation_not_an_undo() -> None:
    """`compensation: none`: nothing to run, the mitigation applies instead."""
    step = make_step(changes=["email"], compensation="none")
    ruling = decide(step, Situation.LATER_STEP_FAILED)
    assert ruling.decision is Decision.NONE
    assert "mitigation" in ruling.reason
    assert not ruling.alert


def test_later_step_failed_undeclared_compensation_is_kept_without_an_alert() -> None:
    """No compensation declared: kept like an irreversible step; the engine raises no alert."""
    step = make_step(changes=["queue"])
    ruling = decide(step, Situation.LATER_STEP_FAILED)
    assert ruling.decision is Decision.NONE
    assert not ruling.alert
    assert "no compensation is declared" in ruling.reason


@pytest.mark.parametrize("situation", [Situation.LATER_STEP_FAILED, Situation.COMPENSATION_FAILED])
def test_the_last_step_is_never_compensated(situation: Situation) -> None:
    """Nothing runs after the last step, so no later failure can ask to undo it."""
    first = make_step(id="write", changes=["database"], compensation="Delete it")
    last = make_step(id="book", changes=["external_api"], idempotent="yes", compensation="Cancel")
    shop = make_process(first, last)
    ruling = decide(last, situation, process=shop)
    assert (ruling.decision, ruling.then, ruling.alert) == (Decision.NONE, None, False)
    assert "no later step exists: book is the last step of shop" in ruling.reason
    assert decide(first, situation, process=shop).decision is not Decision.NONE


def test_process_context_leaves_unknown_outcomes_of_side_effecting_steps_unchanged() -> None:
    """The engine asks without the process; the plan asks with it: both must agree.

    The process only adds what follows (bounds, routes) after the engine's own reason.
    """
    for step in COLUMNS.values():
        if step.read_only:
            continue
        shop = make_process(make_step(id="first", compensation="undo"), step)
        for situation in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
            planned, engine = decide(step, situation, process=shop), decide(step, situation)
            assert (planned.decision, planned.then, planned.alert) == (
                engine.decision,
                engine.then,
                engine.alert,
            )
            assert planned.reason.startswith(engine.reason)


def test_with_the_process_an_unknown_outcome_says_what_follows_and_who_is_alerted() -> None:
    """Bounds and routes of the process: what verify's answers lead to, who is paged."""
    write = make_step(id="write", changes=["database"], idempotent="yes", compensation="undo")
    pay = make_step(
        id="pay", changes=["payment"], idempotent="unknown", verify="look", compensation="refund"
    )
    mail = make_step(id="mail", changes=["email"], compensation="none")
    shop = Process.model_validate(
        {
            **make_process(write, pay, mail).model_dump(by_alias=True),
            "alerts": {"default": "oncall", "payment": "finance"},
        }
    )
    assert decide(write, Situation.TIMEOUT, process=shop).reason.endswith(
        "still no answer after 3 attempts: needs_manual_review, alerting oncall"
    )
    verify = decide(pay, Situation.TIMEOUT, process=shop).reason
    assert "not found, it is called again within its 3 attempts" in verify
    assert verify.endswith("verify cannot tell, needs_manual_review, alerting finance")
    assert decide(mail, Situation.TIMEOUT, process=shop).reason.endswith(
        "a person decides, alerted through oncall"
    )
    failed_undo = decide(pay, Situation.COMPENSATION_FAILED, process=shop).reason
    assert "retried, up to 3 attempts" in failed_undo
    assert "the rollback halts at pay; write stays completed" in failed_undo
    assert failed_undo.endswith("a compensation_failed alert goes to finance")


def test_read_only_timeout_says_what_follows_when_no_answer_ever_comes() -> None:
    """A read-only step that never answers fails like a refused one: the rollback follows."""
    write = make_step(id="write", changes=["database"], compensation="Delete it")
    read = make_step(id="read", changes=["none"], idempotent="yes")
    ruling = decide(read, Situation.TIMEOUT, process=make_process(write, read))
    assert (ruling.decision, ruling.then) == (Decision.RETRY, Decision.COMPENSATE)
    assert "write is compensated" in ruling.reason


def test_duplicate_request_with_the_process_names_it() -> None:
    """The duplicate-request ruling speaks of the process's own requests."""
    ruling = decide(IDEMPOTENT, Situation.DUPLICATE_REQUEST, process=make_process(IDEMPOTENT))
    assert ruling.decision is Decision.NONE
    assert "a second shop request with the same operation_id" in ruling.reason


@pytest.mark.parametrize(
    "column", ["idempotent_yes", "no_with_verify", "unknown_with_verify", "no_without_verify"]
)
def test_compensation_failed_is_retried_bounded_then_manual_review_with_alert(
    column: str,
) -> None:
    """Row `compensation_failed`: bounded retry, then the run waits for a person with an alert."""
    ruling = decide(COLUMNS[column], Situation.COMPENSATION_FAILED)
    assert ruling.decision is Decision.RETRY
    assert ruling.then is Decision.MANUAL_REVIEW
    assert ruling.alert
    assert "not repeated" in ruling.reason  # an unknown compensation outcome is not retried


@pytest.mark.parametrize(
    "step",
    [READ_ONLY, make_step(changes=["email"], compensation="none"), make_step(changes=["queue"])],
    ids=["read_only", "irreversible", "undeclared"],
)
def test_compensation_failed_cannot_happen_to_a_step_never_compensated(step: Step) -> None:
    """Only compensatable steps are ever compensated."""
    ruling = decide(step, Situation.COMPENSATION_FAILED)
    assert ruling.decision is Decision.NONE
    assert not ruling.alert


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_duplicate_request_returns_the_existing_run(column: str) -> None:
    """Row `duplicate_request`: the same operation_id never starts a second run."""
    ruling = decide(COLUMNS[column], Situation.DUPLICATE_REQUEST)
    assert ruling.decision is Decision.NONE
    assert "existing run" in ruling.reason


def test_read_only_wins_over_a_no_idempotency_flag() -> None:
    """A step that changes nothing is safe to repeat whatever its idempotency says."""
    step = make_step(changes=["none"], idempotent="no")
    assert decide(step, Situation.TIMEOUT).decision is Decision.RETRY


@pytest.mark.parametrize("idempotent", ["no", "unknown"])
def test_payment_without_verify_is_never_retried_blind(idempotent: str) -> None:
    """Money with an unknown outcome goes to a person, not to automation."""
    step = make_step(changes=["payment"], idempotent=idempotent, compensation="refund")
    for situation in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
        assert decide(step, situation).decision is Decision.MANUAL_REVIEW


@pytest.mark.parametrize("situation", list(Situation))
@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_a_person_is_alerted_exactly_when_a_ruling_can_end_in_manual_review(
    column: str, situation: Situation
) -> None:
    """The engine alerts whenever it sends a run to review, and only then."""
    step = COLUMNS[column]
    shop = make_process(make_step(id="first", compensation="undo"), step, make_step(id="last"))
    for ruling in (decide(step, situation), decide(step, situation, process=shop)):
        ends_in_review = Decision.MANUAL_REVIEW in (ruling.decision, ruling.then)
        assert ruling.alert is ends_in_review
