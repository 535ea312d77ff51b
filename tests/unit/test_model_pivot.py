"""The point of no return, best-effort steps, recovery windows and the bounds on numbers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sagaguard.model import MAX_STEPS, Phase, Process, parse_attempts, parse_duration


def step(step_id: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": step_id, "changes": ["database"], "idempotent": "yes"}
    data.update(fields)
    return data


def process(*steps: dict[str, Any], **fields: Any) -> Process:
    data: dict[str, Any] = {
        "process": "p",
        "state_store": "database",
        "observability": [],
        "steps": list(steps),
    }
    data.update(fields)
    return Process.model_validate(data)


PAYOUT = (
    step("debit", compensation="Reverse the debit"),
    step("transfer", changes=["payment"], compensation="none"),
    step("post_ledger", compensation="Reverse the posting"),
)


def test_the_pivot_is_derived_from_the_first_required_irreversible_step() -> None:
    """Without a declaration, the first step that cannot be undone is the point of no return."""
    payout = process(*PAYOUT)
    assert payout.pivot is not None
    assert payout.pivot.id == "transfer"
    assert not payout.pivot_declared
    assert [payout.phase(s) for s in payout.steps] == [
        Phase.BEFORE_PIVOT,
        Phase.PIVOT,
        Phase.AFTER_PIVOT,
    ]


def test_a_step_without_a_declared_compensation_counts_as_irreversible() -> None:
    """Nothing undoes an undeclared compensation, so such a step is a point of no return."""
    p = process(step("a", compensation="undo a"), step("b"), step("c", compensation="undo c"))
    assert p.pivot is not None
    assert p.pivot.id == "b"


def test_a_best_effort_irreversible_step_is_never_the_derived_pivot() -> None:
    """A notification marked best-effort does not make everything before it irreversible."""
    p = process(
        step("charge", changes=["payment"], compensation="refund"),
        step("email", changes=["email"], compensation="none", required=False),
    )
    assert p.pivot is None
    assert {p.phase(s) for s in p.steps} == {Phase.BEFORE_PIVOT}


def test_a_declared_pivot_wins_over_the_derived_one() -> None:
    """`pivot: true` marks the point of no return, even on a step that could be undone."""
    p = process(
        step("authorize", changes=["payment"], compensation="void"),
        step("capture", changes=["payment"], compensation="refund", pivot=True),
        step("email", changes=["email"], compensation="none"),
    )
    assert p.pivot is not None
    assert p.pivot.id == "capture"
    assert p.pivot_declared
    assert p.phase(p.steps[2]) is Phase.AFTER_PIVOT


def test_every_step_is_before_the_pivot_when_all_can_be_undone() -> None:
    """No irreversible step and no declaration: there is no point of no return."""
    p = process(step("a", compensation="undo a"), step("b", changes=["none"]))
    assert p.pivot is None
    assert not p.pivot_declared


def test_at_most_one_step_declares_the_pivot() -> None:
    """Two points of no return are a contradiction, refused with the second step's position."""
    with pytest.raises(ValidationError, match=r"steps\[0\] already does"):
        process(step("a", pivot=True), step("b", pivot=True))


def test_a_best_effort_step_cannot_be_the_pivot() -> None:
    """The point of no return must be a step the run cannot do without."""
    with pytest.raises(ValidationError, match="best-effort"):
        process(step("a", pivot=True, required=False))


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_pivot_and_required_take_only_booleans(value: object) -> None:
    """A flag that is not true/false is a typo, not a guess."""
    with pytest.raises(ValidationError, match="true or false"):
        process(step("a", required=value))


def test_recovery_windows_come_from_the_step_then_the_defaults() -> None:
    """retry_for and verify_after: the step's own value first, else the process default."""
    p = process(
        step("a", retry_for="2m", verify_after="5s"),
        step("b"),
        defaults={"retry_for": "1h", "compensation_retry_for": "20m"},
    )
    a, b = p.steps
    assert (p.retry_for(a), p.retry_for(b)) == (120.0, 3600.0)
    assert (p.verify_after_for(a), p.verify_after_for(b)) == (5.0, 0.0)
    assert p.defaults.compensation_retry_for == 1200.0


def test_defaults_outlast_a_provider_outage() -> None:
    """Compensations are retried for minutes, not three tries within a second."""
    p = process(step("a"))
    assert p.defaults.compensation_retry_for >= 5 * 60
    assert p.defaults.retry_for >= 5 * 60
    assert p.resubmission_window == 24 * 3600


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("inf"), "finite"),
        (float("nan"), "not a duration"),
        ("99999999999999999999h", "90 days"),
        (10**400, "finite"),
        (91 * 24 * 3600, "90 days"),
        (0, "longer than zero"),
        (True, "not a duration"),
    ],
)
def test_durations_are_finite_positive_and_bounded(value: object, message: str) -> None:
    """An infinite timeout would make every call unknown; an infinite lease pins a run."""
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(10**12, "1000 attempts"), (True, "whole number"), ("3", "whole number"), (0, "at least 1")],
)
def test_attempts_are_whole_numbers_within_bounds(value: object, message: str) -> None:
    """`max_attempts: "3"` or `true` is refused, not coerced."""
    with pytest.raises(ValueError, match=message):
        parse_attempts(value)


def test_backoff_base_may_not_exceed_backoff_max() -> None:
    """A first pause longer than the cap is a contradiction, refused."""
    with pytest.raises(ValidationError, match="backoff_base"):
        process(step("a"), defaults={"backoff_base": "5s", "backoff_max": "1s"})


def test_the_number_of_steps_has_a_hard_cap() -> None:
    """Beyond the documented cap a spec is refused rather than planned for minutes."""
    with pytest.raises(ValidationError, match=str(MAX_STEPS)):
        process(*(step(f"s{i}") for i in range(MAX_STEPS + 1)))


def test_signals_accept_only_the_known_answers() -> None:
    """signals name what each answer looks like; an unknown key is a typo."""
    p = process(step("a", signals={"success": "201 with the id", "refused": "402"}))
    assert p.steps[0].signals is not None
    assert p.steps[0].signals.refused == "402"
    with pytest.raises(ValidationError, match="extra"):
        process(step("a", signals={"sucess": "x"}))
