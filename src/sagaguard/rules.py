"""The recovery rules: what to do with a step in a given situation.

This table is the contract of DESIGN.md section 2, written once. The planner renders it as
the decision matrix; the engine consults the very same function when a step fails, times
out, or is found half-done after a crash, so what the plan promises is what the engine does.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sagaguard.model import Step, StepClass

__all__ = ["Decision", "Ruling", "Situation", "decide"]


class Situation(StrEnum):
    """What happened to a step."""

    DEFINITE_FAILURE = "definite_failure"
    """The other side answered and nothing changed."""
    TIMEOUT = "timeout"
    """No answer: the effect may or may not have happened."""
    CRASH_BEFORE_PERSIST = "crash_before_persist"
    """The call was made but its result was never saved."""
    LATER_STEP_FAILED = "later_step_failed"
    """This step completed, then a later step failed for good."""
    COMPENSATION_FAILED = "compensation_failed"
    """Undoing this step failed."""
    DUPLICATE_REQUEST = "duplicate_request"
    """The same operation_id arrived again."""


class Decision(StrEnum):
    """What the engine (or the plan's reader) does next."""

    RETRY = "retry"
    VERIFY = "verify"
    COMPENSATE = "compensate"
    MANUAL_REVIEW = "manual_review"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Ruling:
    """A decision, why it is safe, and what follows when its bound is spent."""

    decision: Decision
    reason: str
    then: Decision | None = None
    """What happens once a bounded retry has used its attempts (None: nothing further)."""
    alert: bool = False
    """Whether a person is alerted when this ruling ends in manual review."""


def decide(step: Step, situation: Situation) -> Ruling:
    """The ruling for ``step`` in ``situation`` (DESIGN.md section 2)."""
    if situation is Situation.DUPLICATE_REQUEST:
        return Ruling(
            Decision.NONE,
            "return the existing run: one operation_id never starts a second run, "
            "and a different input under it is a conflict",
        )
    if situation is Situation.DEFINITE_FAILURE:
        return Ruling(
            Decision.RETRY,
            "the other side answered and nothing changed, so a repeat is safe; "
            "bounded with backoff, then the run fails and earlier steps are compensated",
            then=Decision.COMPENSATE,
        )
    if situation in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
        return _unknown_outcome(step, situation)
    if situation is Situation.LATER_STEP_FAILED:
        return _later_step_failed(step)
    return _compensation_failed(step)


def _unknown_outcome(step: Step, situation: Situation) -> Ruling:
    what = "no answer came" if situation is Situation.TIMEOUT else "the result was never saved"
    if step.read_only:
        return Ruling(Decision.RETRY, f"{what}, but the step changes nothing: a repeat is harmless")
    if step.idempotent.value == "yes":
        return Ruling(
            Decision.RETRY,
            f"{what}; the step is idempotent, so a retry with the same idempotency key "
            "cannot cause a second effect",
            then=Decision.MANUAL_REVIEW,
        )
    if step.has_verify:
        return Ruling(
            Decision.VERIFY,
            f"{what} and a repeat could duplicate the effect "
            f"(idempotent: {step.idempotent.value}); ask the other side first",
            then=Decision.MANUAL_REVIEW,
            alert=True,
        )
    return Ruling(
        Decision.MANUAL_REVIEW,
        f"{what}, a repeat could duplicate the effect (idempotent: {step.idempotent.value}) "
        "and there is no way to verify the real outcome: a person decides",
        alert=True,
    )


def _later_step_failed(step: Step) -> Ruling:
    if step.step_class is StepClass.READ_ONLY:
        return Ruling(Decision.NONE, "the step changed nothing, so there is nothing to undo")
    if step.step_class is StepClass.COMPENSATABLE:
        return Ruling(
            Decision.COMPENSATE,
            "its effect is confirmed and it has a reverse action; undo it after every later "
            "completed step has been undone",
        )
    if step.compensation_declared:
        return Ruling(
            Decision.NONE,
            "irreversible: it cannot be undone; apply the mitigation and skip to the step before",
        )
    return Ruling(
        Decision.NONE,
        "no compensation is declared, so nothing can undo it automatically; "
        "it is treated as irreversible until one is declared",
        alert=True,
    )


def _compensation_failed(step: Step) -> Ruling:
    if step.step_class is not StepClass.COMPENSATABLE:
        return Ruling(Decision.NONE, "the step is never compensated, so this cannot happen")
    return Ruling(
        Decision.RETRY,
        "a compensation that failed definitely (nothing changed) is retried within its bound; "
        "one whose outcome is unknown is not repeated. Then the rollback halts, the run waits "
        "in needs_manual_review and a compensation_failed alert fires",
        then=Decision.MANUAL_REVIEW,
        alert=True,
    )
