"""Parts 2 and 3 of the plan: rollback sequences and the policy for a failed compensation.

Recovery runs backward: the latest completed compensatable step is undone first, an
irreversible step met on the way gets its mitigation, and a step whose outcome is unknown is
verified (or handed to a person) before anything is compensated.
"""

from __future__ import annotations

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Process, Step, StepClass
from sagaguard.planner.plan import (
    AlertKind,
    Backoff,
    FailedStepHandling,
    IrreversibleOnTheWay,
    RollbackFailurePolicy,
    RollbackSequence,
    RunStatus,
    StepAction,
)
from sagaguard.planner.wording import (
    alert_to,
    compensation_instruction,
    external_id_phrase,
    fmt_seconds,
    mitigation_for,
    rollback_status,
    side_effecting,
    verify_text,
)

__all__ = ["build_rollback_failure_policy", "build_rollback_sequences", "compensation_order"]


def compensation_order(process: Process, failed_index: int) -> tuple[Step, ...]:
    """Compensatable steps before ``failed_index``, latest first: the order they are undone."""
    before = process.steps[:failed_index]
    return tuple(s for s in reversed(before) if s.step_class is StepClass.COMPENSATABLE)


def build_rollback_sequences(process: Process) -> tuple[RollbackSequence, ...]:
    """One sequence per step (every step can fail), in process order."""
    return tuple(_sequence(process, i, step) for i, step in enumerate(process.steps))


def _sequence(process: Process, index: int, failed: Step) -> RollbackSequence:
    undo = compensation_order(process, index)
    passed = tuple(
        IrreversibleOnTheWay(step=s.id, mitigation=mitigation_for(s))
        for s in reversed(process.steps[:index])
        if s.step_class is StepClass.IRREVERSIBLE
    )
    return RollbackSequence(
        failed_step=failed.id,
        failed_step_handling=FailedStepHandling(
            definite_failure=_definite(process, failed, has_rollback=bool(undo or passed)),
            unknown_outcome=_unknown(process, failed, has_rollback=bool(undo or passed)),
        ),
        compensate=tuple(s.id for s in undo),
        irreversible=passed,
        procedure=_procedure(process, index, failed),
        final_status=rollback_status(process, index),
    )


def _definite(process: Process, failed: Step, *, has_rollback: bool) -> StepAction:
    attempts = process.max_attempts_for(failed)
    if failed.read_only:
        what = f"nothing to undo: {failed.id} changes nothing"
    else:
        what = f"nothing to undo: {failed.id} was answered and changed nothing"
    then = "the run fails and rolls back the steps before it" if has_rollback else "the run fails"
    return StepAction(
        decision=Decision.NONE,
        instruction=f"{what}; once its {attempts} attempts are spent {then}",
    )


def _unknown(process: Process, failed: Step, *, has_rollback: bool) -> StepAction:
    ruling = decide(failed, Situation.TIMEOUT)
    attempts = process.max_attempts_for(failed)
    route = alert_to(process, failed)
    waits = "; the rollback below waits until it is settled" if has_rollback else ""
    if ruling.decision is Decision.RETRY and failed.read_only:
        text = (
            f"retry {failed.id} (a repeat is harmless), up to {attempts} attempts; "
            "if it never answers there is still nothing to undo for it"
        )
    elif ruling.decision is Decision.RETRY:
        text = (
            f"retry {failed.id} with the same idempotency key {{operation_id}}:{failed.id}, "
            f"up to {attempts} attempts; still unknown after that: needs_manual_review, "
            f"alert to {route}{waits}"
        )
    elif ruling.decision is Decision.VERIFY:
        ident = external_id_phrase(failed)
        text = (
            f"verify {failed.id} before anything else ({verify_text(failed)}). Found: save "
            f"{ident}, mark {failed.id} completed and continue the run instead of rolling "
            f"back. Not found: it never happened, so {failed.id} is called again with the same "
            f"key while its {attempts} attempts last, then rolled back as below. Verify cannot "
            "tell: needs_manual_review, "
            f"alert to {route}"
        )
    else:
        text = (
            f"stop: {failed.id}'s outcome is unknown and nothing can verify it; mark it "
            f"needs_manual_review and alert {route}; a person checks whether it took effect "
            f"before anything is compensated or retried{waits}"
        )
    return StepAction(decision=ruling.decision, instruction=text)


def _procedure(process: Process, index: int, failed: Step) -> tuple[str, ...]:
    lines = [
        f"{failed.id} failed for good: mark the run compensating (one owner, holding the lease)"
    ]
    attempts = process.defaults.compensation_attempts
    for step in reversed(process.steps[:index]):
        if step.step_class is StepClass.COMPENSATABLE:
            lines.append(
                f"compensate {step.id}: {compensation_instruction(step)}; up to {attempts} "
                f"attempts, then needs_manual_review with an alert to {alert_to(process, step)}"
            )
        elif step.irreversible:
            lines.append(f"{step.id} cannot be undone: {mitigation_for(step)}")
        elif step.step_class is StepClass.IRREVERSIBLE:
            lines.append(
                f"{step.id} declares no compensation, so its effect stays: {mitigation_for(step)}"
            )
    undo = compensation_order(process, index)
    if undo:
        lines.append(f"mark the run compensated once {undo[-1].id} is undone")
    elif rollback_status(process, index) is RunStatus.COMPENSATED:
        kept = [s.id for s in process.steps[:index] if side_effecting(s)]
        lines.append(f"mark the run compensated: {', '.join(kept)} kept with a mitigation")
    else:
        lines[0] = f"{failed.id} failed for good"
        lines.append(f"nothing before {failed.id} changed anything: mark the run failed")
    return tuple(lines)


def build_rollback_failure_policy(process: Process) -> tuple[RollbackFailurePolicy, ...]:
    """One policy per step that a rollback can undo, in process order.

    That is every compensatable step but the last: a rollback only undoes steps before the
    one that failed, so the last step's compensation never runs and cannot fail.
    """
    policies = []
    defaults = process.defaults
    base, top = fmt_seconds(defaults.backoff_base), fmt_seconds(defaults.backoff_max)
    for index, step in enumerate(process.steps[:-1]):
        if step.step_class is not StepClass.COMPENSATABLE:
            continue
        attempts = defaults.compensation_attempts
        halted = compensation_order(process, index)
        comp = compensation_instruction(step)
        review = (
            f"after {attempts} failed attempts, or at once when the outcome of the "
            f"compensation is unknown: {step.id} is marked compensation_failed, the rollback "
            "stops and the run waits in needs_manual_review"
        )
        if halted:
            names = ", ".join(s.id for s in halted)
            verb, them = ("stays", "it") if len(halted) == 1 else ("stay", "them")
            review += f"; {names} {verb} completed, since undoing {step.id} may still need {them}"
        policies.append(
            RollbackFailurePolicy(
                step=step.id,
                compensation=comp,
                attempts=attempts,
                backoff=Backoff(base_s=defaults.backoff_base, max_s=defaults.backoff_max),
                retry_when=(
                    f"the compensation of {step.id} ({comp}) fails definitely (answered, "
                    f"nothing changed): retried up to "
                    f"{attempts} attempts, waiting {base} doubling to at most {top}, with "
                    "jitter; a compensation whose outcome is unknown is not repeated"
                ),
                manual_review_when=review,
                halted_steps=tuple(s.id for s in halted),
                alert_kind=AlertKind.COMPENSATION_FAILED,
                alert_route=process.alert_route(step),
                alert_to=alert_to(process, step),
            )
        )
    return tuple(policies)
