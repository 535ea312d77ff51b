"""The one rulebook: structured rulings for every situation, the pivot and best-effort steps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagaguard.model import Phase, Process
from sagaguard.rules import Bound, Decision, Situation, StepKind, decide, give_up, step_kind
from sagaguard.vocabulary import AlertKind


def step(step_id: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": step_id, "changes": ["database"], "idempotent": "yes"}
    data.update(fields)
    return data


def process(*steps: dict[str, Any], **fields: Any) -> Process:
    data: dict[str, Any] = {
        "process": "p",
        "state_store": "database",
        "observability": [],
        "alerts": {"default": "ops"},
        "steps": list(steps),
    }
    data.update(fields)
    return Process.model_validate(data)


PAYOUT = process(
    step("debit", changes=["payment"], compensation="Reverse the debit"),
    step("transfer", changes=["payment"], idempotent="no", compensation="none"),
    step("post_ledger", compensation="Reverse the posting", retry_for="10m"),
    step("notify", changes=["email"], idempotent="no", compensation="none", required=False),
)


def ruling(process_: Process, step_id: str, situation: Situation, **kw: Any) -> Any:
    return decide(process_.step(step_id), situation, process=process_, **kw)


def test_every_situation_has_a_ruling_for_every_step() -> None:
    """decide answers every situation the engine can meet, for every step of a process."""
    for situation in Situation:
        for s in PAYOUT.steps:
            assert ruling(PAYOUT, s.id, situation).situation is situation


def test_after_the_pivot_a_failure_is_pushed_forward_then_sent_to_a_person() -> None:
    """A ledger posting that fails after the bank transfer is retried in its window, then
    reviewed: nothing before it is rolled back."""
    r = ruling(PAYOUT, "post_ledger", Situation.DEFINITE_FAILURE)
    assert r.phase is Phase.AFTER_PIVOT
    assert (r.decision, r.then, r.alert) == (
        Decision.RETRY,
        Decision.MANUAL_REVIEW,
        AlertKind.NEEDS_MANUAL_REVIEW,
    )
    assert r.bound == Bound(attempts=3, window_s=600.0)


def test_a_refusal_after_the_pivot_goes_to_a_person_at_once() -> None:
    """A repeat cannot change a refusal, so no retry window is spent on it."""
    r = ruling(PAYOUT, "post_ledger", Situation.REFUSED)
    assert (r.decision, r.then, r.bound, r.alert) == (
        Decision.MANUAL_REVIEW,
        None,
        None,
        AlertKind.NEEDS_MANUAL_REVIEW,
    )


def test_the_pivot_failing_for_good_rolls_back_what_came_before() -> None:
    """The pivot itself is the go/no-go step: its refusal is a no-go."""
    r = ruling(PAYOUT, "transfer", Situation.REFUSED)
    assert (r.phase, r.decision, r.alert) == (Phase.PIVOT, Decision.ROLLBACK, None)
    before = ruling(PAYOUT, "debit", Situation.DEFINITE_FAILURE)
    assert (before.decision, before.then, before.bound) == (
        Decision.RETRY,
        Decision.ROLLBACK,
        Bound(attempts=3),
    )


def test_nothing_at_or_before_a_completed_pivot_is_ever_compensated() -> None:
    """Invariant 10: a rollback never reaches the pivot or what precedes it once it is done."""
    assert ruling(PAYOUT, "debit", Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
    for step_id in ("transfer", "post_ledger", "notify"):
        assert ruling(PAYOUT, step_id, Situation.LATER_STEP_FAILED).decision is Decision.NONE
        assert ruling(PAYOUT, step_id, Situation.COMPENSATION_FAILED).decision is Decision.NONE


def test_a_best_effort_step_never_rolls_the_run_back() -> None:
    """A bounced notification ends failed with an alert; the run goes on and completes."""
    refused = ruling(PAYOUT, "notify", Situation.REFUSED)
    assert (refused.decision, refused.alert) == (Decision.CONTINUE, AlertKind.BEST_EFFORT_FAILED)
    assert not refused.required
    unknown = ruling(PAYOUT, "notify", Situation.TIMEOUT)
    # No verify: never retried blind; it stays unknown, an alert fires, the run completes.
    assert (unknown.kind, unknown.decision, unknown.alert) == (
        StepKind.UNVERIFIABLE,
        Decision.CONTINUE,
        AlertKind.BEST_EFFORT_FAILED,
    )
    failing = ruling(PAYOUT, "notify", Situation.DEFINITE_FAILURE)
    assert (failing.decision, failing.then, failing.bound) == (
        Decision.RETRY,
        Decision.CONTINUE,
        Bound(attempts=3),
    )


def test_a_best_effort_step_with_verify_is_verified_not_retried_blind() -> None:
    """Its unknown outcome is asked about; if verify cannot tell, the run goes on with an alert."""
    p = process(
        step("a", compensation="undo"),
        step("sms", changes=["external_api"], idempotent="no", verify="m:f", required=False),
    )
    r = ruling(p, "sms", Situation.TIMEOUT)
    assert (r.decision, r.then, r.alert) == (
        Decision.VERIFY,
        Decision.CONTINUE,
        AlertKind.BEST_EFFORT_FAILED,
    )


def test_a_verify_described_but_not_bound_cannot_be_relied_on() -> None:
    """A spec whose verify is prose goes to a person: nothing can ask the other side."""
    p = process(
        step("charge", changes=["payment"], idempotent="unknown", verify="Look it up"),
        step("ship", compensation="cancel"),
    )
    charge = p.step("charge")
    assert step_kind(charge) is StepKind.VERIFY_UNBOUND
    r = decide(charge, Situation.TIMEOUT, process=p)
    assert (r.decision, r.alert) == (Decision.MANUAL_REVIEW, AlertKind.NEEDS_MANUAL_REVIEW)
    bound = decide(charge, Situation.TIMEOUT, process=p, verify_bound=True)
    assert (bound.kind, bound.decision, bound.then) == (
        StepKind.VERIFIABLE,
        Decision.VERIFY,
        Decision.MANUAL_REVIEW,
    )


@pytest.mark.parametrize("situation", [Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST])
def test_unknown_outcomes_are_never_retried_blind(situation: Situation) -> None:
    """Only a read-only or idempotent step is called again without asking first."""
    p = process(
        step("read", changes=["none"]),
        step("idem", compensation="undo"),
        step("pay", changes=["payment"], idempotent="no", verify="m:f", compensation="r"),
        step("mail", changes=["email"], idempotent="no", compensation="none"),
    )
    decisions = {s.id: decide(s, situation, process=p).decision for s in p.steps}
    assert decisions == {
        "read": Decision.RETRY,
        "idem": Decision.RETRY,
        "pay": Decision.VERIFY,
        "mail": Decision.MANUAL_REVIEW,
    }
    # An idempotent step whose retries never answer may have acted: a person, never a rollback.
    assert decide(p.step("idem"), situation, process=p).then is Decision.MANUAL_REVIEW


def test_a_call_still_running_at_its_timeout_is_waited_for() -> None:
    """Nothing verifies or repeats a call that may still act; one that never returns: review."""
    r = ruling(PAYOUT, "debit", Situation.CALL_IN_FLIGHT)
    assert (r.decision, r.then, r.bound) == (
        Decision.WAIT,
        Decision.MANUAL_REVIEW,
        Bound(window_s=PAYOUT.timeout_for(PAYOUT.step("debit"))),
    )


def test_a_not_found_before_the_settle_delay_waits_then_asks_again() -> None:
    """verify_after: a provider's lookup lags its writes, so an early 'not found' waits."""
    p = process(
        step("pay", changes=["payment"], idempotent="no", verify="m:f", verify_after="5s"),
    )
    early = ruling(p, "pay", Situation.VERIFY_TOO_SOON)
    assert (early.decision, early.then, early.bound) == (
        Decision.WAIT,
        Decision.VERIFY,
        Bound(window_s=5.0),
    )
    late = ruling(p, "pay", Situation.VERIFY_NOT_APPLIED)
    assert (late.decision, late.then) == (Decision.RETRY, Decision.ROLLBACK)


def test_verify_that_cannot_tell_is_asked_again_within_a_bound_then_a_person() -> None:
    """Verify calls are attempts too: bounded, then review."""
    p = process(step("pay", changes=["payment"], idempotent="no", verify="m:f", max_attempts=4))
    r = ruling(p, "pay", Situation.VERIFY_FAILED)
    assert (r.decision, r.then, r.bound) == (
        Decision.VERIFY,
        Decision.MANUAL_REVIEW,
        Bound(attempts=4),
    )


def test_compensations_are_retried_within_a_time_window_then_a_person() -> None:
    """A PSP blip is outlasted; a refused or unknown undo goes to a person at once."""
    p = process(
        step("charge", changes=["payment"], compensation="refund"),
        step("ship", compensation="cancel"),
        defaults={"compensation_retry_for": "10m", "compensation_attempts": 5},
    )
    failed = ruling(p, "charge", Situation.COMPENSATION_FAILED)
    assert (failed.decision, failed.then, failed.alert) == (
        Decision.RETRY,
        Decision.MANUAL_REVIEW,
        AlertKind.COMPENSATION_FAILED,
    )
    assert failed.bound == Bound(attempts=5, window_s=600.0)
    for situation in (Situation.COMPENSATION_REFUSED, Situation.COMPENSATION_UNKNOWN):
        r = ruling(p, "charge", situation)
        assert (r.decision, r.alert) == (Decision.MANUAL_REVIEW, AlertKind.COMPENSATION_FAILED)
    # The last step is never compensated: no later step can fail.
    assert ruling(p, "ship", Situation.LATER_STEP_FAILED).decision is Decision.NONE


def test_an_irreversible_step_met_by_a_rollback_is_kept() -> None:
    """A best-effort email before a failing step cannot be unsent: kept, with its mitigation."""
    p = process(
        step("email", changes=["email"], idempotent="no", compensation="none", required=False),
        step("charge", changes=["payment"], compensation="refund"),
    )
    assert ruling(p, "email", Situation.LATER_STEP_FAILED).decision is Decision.KEEP


def test_a_duplicate_request_gets_the_existing_run() -> None:
    """The same operation_id never starts a second run."""
    assert ruling(PAYOUT, "debit", Situation.DUPLICATE_REQUEST).decision is (
        Decision.RETURN_EXISTING
    )


@pytest.mark.parametrize(
    ("attempts", "elapsed", "spent"),
    [(2, 0.0, False), (3, 0.0, False), (3, 599.0, False), (3, 600.0, True), (9, 0.0, False)],
)
def test_a_bound_is_at_least_its_attempts_and_its_window(
    attempts: int, elapsed: float, spent: bool
) -> None:
    """Both limits must be used up before a bounded decision is given up."""
    assert Bound(attempts=3, window_s=600.0).spent(attempts=attempts, elapsed_s=elapsed) is spent


def test_a_bound_without_a_window_counts_attempts_only() -> None:
    assert not Bound(attempts=3).spent(attempts=2, elapsed_s=1e9)
    assert Bound(attempts=3).spent(attempts=3, elapsed_s=0.0)
    assert Bound(window_s=5.0).spent(attempts=0, elapsed_s=5.0)


_KINDS = st.sampled_from(
    [
        {"changes": ["none"]},
        {"idempotent": "yes", "compensation": "undo"},
        {"idempotent": "no", "compensation": "none"},
        {"idempotent": "no"},
        {"idempotent": "unknown", "verify": "m:f", "compensation": "undo"},
        {"idempotent": "no", "verify": "Look it up", "compensation": "undo"},
    ]
)


@given(
    kinds=st.lists(_KINDS, min_size=1, max_size=6),
    best_effort=st.sets(st.integers(0, 5)),
    declared=st.one_of(st.none(), st.integers(0, 5)),
)
def test_no_ruling_ever_undoes_the_point_of_no_return(
    kinds: list[dict[str, Any]], best_effort: set[int], declared: int | None
) -> None:
    """For any process: after the pivot nothing rolls back; at or before it nothing is undone
    once it completed; a best-effort step never rolls back."""
    steps = []
    for i, kind in enumerate(kinds):
        data = {"id": f"s{i}", "changes": ["database"], "idempotent": "yes"} | kind
        if i in best_effort and declared != i:
            data["required"] = False
        if declared == i:
            data["pivot"] = True
        steps.append(data)
    p = process(*steps)
    for s in p.steps:
        phase = p.phase(s)
        for situation in Situation:
            r = decide(s, situation, process=p)
            if phase is Phase.AFTER_PIVOT or not s.required:
                assert Decision.ROLLBACK not in (r.decision, r.then), (s.id, situation)
            if phase is not Phase.BEFORE_PIVOT:
                assert r.decision is not Decision.COMPENSATE, (s.id, situation)
        assert give_up(s, p) in (Decision.ROLLBACK, Decision.MANUAL_REVIEW, Decision.CONTINUE)
