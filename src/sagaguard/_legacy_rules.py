"""The recovery rules as the planner and the run driver read them before the one rulebook.

Being replaced by :mod:`sagaguard.rules` (structured rulings, no prose); kept only while
the planner and the run driver move onto it, then deleted.

The recovery rules: what to do with a step in a given situation.

This table is the contract of DESIGN.md section 2, written once. The planner renders it as
the decision matrix; the engine consults the very same function when a step fails, times
out, or is found half-done after a crash, so what the plan promises is what the engine does.
Pure: no I/O, no clock.

A ruling depends on the step alone unless the step's process is passed too: then it can say
what surrounds the step (whether a failed run leaves anything to roll back, and that the last
step is never compensated because no step after it can fail). The planner always passes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sagaguard.model import Process, Step, StepClass

__all__ = ["Decision", "Ruling", "Situation", "after_failure", "decide"]


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


def decide(step: Step, situation: Situation, *, process: Process | None = None) -> Ruling:
    """The ruling for ``step`` in ``situation`` (DESIGN.md section 2).

    ``process``, the process ``step`` belongs to, makes the ruling exact about the steps
    around it; without it the ruling depends on the step alone, which is all the engine
    needs to settle an unknown outcome.
    """
    if situation is Situation.DUPLICATE_REQUEST:
        return _duplicate_request(process)
    if situation is Situation.DEFINITE_FAILURE:
        return _definite_failure(step, process)
    if situation in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
        return _unknown_outcome(step, situation, process)
    if process is not None and _is_last(step, process):
        # Only steps before the one that failed are undone, and nothing runs after the last.
        consequence = (
            "no later failure ever asks to undo it"
            if situation is Situation.LATER_STEP_FAILED
            else "it is never compensated and its compensation cannot fail"
        )
        return Ruling(
            Decision.NONE,
            f"no later step exists: {step.id} is the last step of {process.name}, so "
            + consequence,
        )
    if situation is Situation.LATER_STEP_FAILED:
        return _later_step_failed(step)
    return _compensation_failed(step, process)


def _is_last(step: Step, process: Process) -> bool:
    return process.steps[-1].id == step.id


def _duplicate_request(process: Process | None) -> Ruling:
    if process is None:
        return Ruling(
            Decision.NONE,
            "return the existing run: one operation_id never starts a second run, "
            "and a different input under it is a conflict",
        )
    return Ruling(
        Decision.NONE,
        f"a second {process.name} request with the same operation_id gets the existing run "
        "back, whatever step it has reached; the same operation_id with a different input is "
        "refused as a conflict",
    )


def after_failure(step: Step, process: Process) -> tuple[Decision, str]:
    """What follows once ``step`` has failed for good: the rollback of the steps before it.

    The rollback visits every earlier step that changed something: a compensatable one is
    undone, an irreversible one is kept with its mitigation. With none, the run just fails.
    Returns ``compensate`` or ``none``, and the clause that says so for this process.
    """
    before = process.steps[: process.index(step.id)]
    undo = [s.id for s in reversed(before) if s.step_class is StepClass.COMPENSATABLE]
    kept = [s.id for s in reversed(before) if s.step_class is StepClass.IRREVERSIBLE]
    if not undo and not kept:
        if not before:
            why = f"{step.id} is the first step"
        else:
            why = f"no step before {step.id} changed anything"
        return Decision.NONE, f"the run fails with nothing to undo ({why})"
    parts = []
    if undo:
        order = "" if len(undo) == 1 else ", latest first"
        parts.append(f"{_join(undo)} {'is' if len(undo) == 1 else 'are'} compensated{order}")
    if kept:
        verb = "is" if len(kept) == 1 else "are"
        parts.append(f"{_join(kept)} cannot be undone and {verb} kept, with a mitigation")
    return Decision.COMPENSATE, "the run fails and rolls back: " + "; ".join(parts)


def _join(ids: list[str]) -> str:
    return ", ".join(ids)


def _definite_failure(step: Step, process: Process | None) -> Ruling:
    if process is None:
        return Ruling(
            Decision.RETRY,
            "the other side answered and nothing changed, so a repeat is safe; bounded with "
            "backoff, then the run fails and rolls back whatever the steps before it changed",
            then=Decision.COMPENSATE,
        )
    then, follows = after_failure(step, process)
    attempts = process.max_attempts_for(step)
    return Ruling(
        Decision.RETRY,
        "the other side answered and nothing changed, so a repeat is safe; up to "
        f"{attempts} attempts with backoff, then {follows}",
        then=then,
    )


def _unknown_outcome(step: Step, situation: Situation, process: Process | None) -> Ruling:
    what = "no answer came" if situation is Situation.TIMEOUT else "the result was never saved"
    if step.read_only:
        reason = f"{what}, but the step changes nothing: a repeat is harmless"
        if process is None:
            return Ruling(Decision.RETRY, reason)
        # A read-only step that never answers fails like a refused one: the run rolls back.
        then, follows = after_failure(step, process)
        attempts = process.max_attempts_for(step)
        return Ruling(
            Decision.RETRY, f"{reason}; after {attempts} attempts without one, {follows}", then=then
        )
    # The process only adds what follows, naming bounds and routes; the decision and its
    # opening words stay those the engine reads without it.
    if step.idempotent.value == "yes":
        # Retries that never get an answer leave the effect possible: the engine sends the
        # step to a person and alerts, as it does for every step it sends to review.
        reason = (
            f"{what}; the step is idempotent, so a retry with the same idempotency key "
            "cannot cause a second effect"
        )
        if process is not None:
            reason += (
                f"; still no answer after {process.max_attempts_for(step)} attempts: "
                f"needs_manual_review, alerting {_route(step, process)}"
            )
        return Ruling(Decision.RETRY, reason, then=Decision.MANUAL_REVIEW, alert=True)
    if step.has_verify:
        reason = (
            f"{what} and a repeat could duplicate the effect "
            f"(idempotent: {step.idempotent.value}); ask the other side first"
        )
        if process is not None:
            reason += (
                f": found, the step is completed without a second call; not found, it is "
                f"called again within its {process.max_attempts_for(step)} attempts; verify "
                f"cannot tell, needs_manual_review, alerting {_route(step, process)}"
            )
        return Ruling(Decision.VERIFY, reason, then=Decision.MANUAL_REVIEW, alert=True)
    reason = (
        f"{what}, a repeat could duplicate the effect (idempotent: {step.idempotent.value}) "
        "and there is no way to verify the real outcome: a person decides"
    )
    if process is not None:
        reason += f", alerted through {_route(step, process)}"
    return Ruling(Decision.MANUAL_REVIEW, reason, alert=True)


def _route(step: Step, process: Process) -> str:
    return process.alert_route(step) or "no route yet (add alerts.default)"


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
    # The engine keeps such a step and rolls on without an alert; the plan's findings
    # already ask for a compensation, so the ruling does not promise a page.
    return Ruling(
        Decision.NONE,
        "no compensation is declared, so nothing undoes it: the rollback keeps its effect "
        "and moves on to the step before; declare a compensation, or `compensation: none` "
        "with a mitigation",
    )


def _compensation_failed(step: Step, process: Process | None) -> Ruling:
    if step.step_class is not StepClass.COMPENSATABLE:
        return Ruling(Decision.NONE, "the step is never compensated, so this cannot happen")
    if process is None:
        return Ruling(
            Decision.RETRY,
            "a compensation that failed definitely (nothing changed) is retried within its "
            "bound; one whose outcome is unknown is not repeated. Then the rollback halts, the "
            "run waits in needs_manual_review and a compensation_failed alert fires",
            then=Decision.MANUAL_REVIEW,
            alert=True,
        )
    before = process.steps[: process.index(step.id)]
    halted = [s.id for s in reversed(before) if s.step_class is StepClass.COMPENSATABLE]
    kept = (
        f"; {_join(halted)} {'stays' if len(halted) == 1 else 'stay'} completed" if halted else ""
    )
    return Ruling(
        Decision.RETRY,
        "a compensation that failed definitely (nothing changed) is retried, up to "
        f"{process.defaults.compensation_attempts} attempts; one whose outcome is unknown is "
        f"not repeated. Then the rollback halts at {step.id}{kept}, the run waits in "
        f"needs_manual_review and a compensation_failed alert goes to {_route(step, process)}",
        then=Decision.MANUAL_REVIEW,
        alert=True,
    )
