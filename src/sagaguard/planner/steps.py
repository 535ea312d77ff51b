"""Part 1 of the plan: the step table (forward and reverse action, signals, data to persist)."""

from __future__ import annotations

from sagaguard.model import Phase, Step, StepClass
from sagaguard.planner.conditions import rollback_conditions
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import Pivot, StepEntry
from sagaguard.planner.signals import step_signals
from sagaguard.planner.wording import compensation_instruction, mitigation_for
from sagaguard.rules import Decision, Situation

__all__ = ["build_pivot", "build_steps", "persist_fields"]


def build_steps(ctx: Planning) -> tuple[StepEntry, ...]:
    """One step-table row per step, in process order."""
    return tuple(_entry(ctx, index, step) for index, step in enumerate(ctx.steps))


def build_pivot(ctx: Planning) -> Pivot | None:
    """The point of no return, and whether the spec declared it or the plan derived it."""
    pivot = ctx.pivot
    if pivot is None:
        return None
    if ctx.process.pivot_declared:
        reason = f"{pivot.id} declares pivot: true"
    elif pivot.compensation_declared:
        reason = (
            f"derived: {pivot.id} is the first required step that cannot be undone "
            "(compensation: none)"
        )
    else:
        reason = (
            f"derived: {pivot.id} is the first required step that cannot be undone (it "
            "declares no compensation)"
        )
    return Pivot(step=pivot.id, declared=ctx.process.pivot_declared, reason=reason)


def _entry(ctx: Planning, index: int, step: Step) -> StepEntry:
    process = ctx.process
    cls = step.step_class
    phase = ctx.phase(step)
    runs = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
    forward = step.required and phase is Phase.AFTER_PIVOT
    return StepEntry(
        id=step.id,
        position=index + 1,
        action=" ".join(step.action_text.split()),
        changes=step.changes,
        idempotent=step.idempotent,
        step_class=cls,
        kind=ctx.kind(step),
        phase=phase,
        pivot=phase is Phase.PIVOT,
        required=step.required,
        compensation=compensation_instruction(step) if cls is StepClass.COMPENSATABLE else None,
        compensation_runs=runs,
        mitigation=mitigation_for(step) if cls is StepClass.IRREVERSIBLE else None,
        rollback_conditions=rollback_conditions(ctx, step),
        persist=persist_fields(step, compensated=runs),
        signals=step_signals(ctx, step),
        verify=step.verify,
        verify_bound=ctx.verify_is_bound(step),
        external_id=step.external_id,
        timeout_s=process.timeout_for(step),
        max_attempts=process.max_attempts_for(step),
        retry_for_s=process.retry_for(step) if forward else None,
        verify_after_s=process.verify_after_for(step),
        alert_route=ctx.route(step),
        alert_to=ctx.who(step),
    )


def persist_fields(step: Step, *, compensated: bool) -> tuple[str, ...]:
    """Journal fields that must be saved for the step before the run moves on.

    ``compensated``: a rollback of the engine can compensate the step, so its compensation
    attempts are counted too.
    """
    fields = ["operation_id", "step_id"]
    if step.external_id:
        fields.append(step.external_id)
    if not step.read_only:
        fields.append("idempotency_key")
    fields += ["status", "attempts", "last_attempt_at", "reason"]
    if compensated:
        fields.append("compensation_attempts")
    return tuple(fields)
