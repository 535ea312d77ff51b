"""Parts 2 and 3 of the plan: what a failure for good leads to, and a failed compensation.

Before the point of no return (or at it), recovery runs backward: the latest completed
compensatable step is undone first and an irreversible step met on the way is kept with
its mitigation. After the pivot, recovery runs forward: the failed step is retried within
its window, then a person takes over; nothing is undone. A best-effort step's failure
rolls nothing back: the run goes on without it.
"""

from __future__ import annotations

from sagaguard.model import Step
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import (
    AlertKind,
    Backoff,
    BoundSpec,
    ChainLink,
    RollbackFailurePolicy,
    RollbackSequence,
    RunStatus,
    StepAction,
)
from sagaguard.planner.reasons import reason, rollback_phrase
from sagaguard.planner.wording import (
    bound_text,
    compensation_instruction,
    few,
    fmt_seconds,
    mitigation_for,
)
from sagaguard.rules import Bound, Decision, Situation

__all__ = [
    "bound_spec",
    "build_rollback_chain",
    "build_rollback_failure_policy",
    "build_rollback_sequences",
]


def bound_spec(bound: Bound | None) -> BoundSpec | None:
    """A ruling's bound as plan data."""
    if bound is None:
        return None
    return BoundSpec(attempts=bound.attempts, window_s=bound.window_s)


def build_rollback_sequences(ctx: Planning) -> tuple[RollbackSequence, ...]:
    """One sequence per step (every step can fail), in process order."""
    return tuple(_sequence(ctx, index, step) for index, step in enumerate(ctx.steps))


def final_status(ctx: Planning, step: Step) -> RunStatus:
    """How the run ends once ``step`` failed for good and recovery did all it can."""
    decision = ctx.give_up(step)
    if decision is Decision.CONTINUE:
        return RunStatus.COMPLETED
    if decision is Decision.MANUAL_REVIEW:
        return RunStatus.NEEDS_MANUAL_REVIEW
    return RunStatus.COMPENSATED if ctx.changed_before(ctx.index(step)) else RunStatus.FAILED


def summary(ctx: Planning, step: Step) -> str:
    """The recovery after ``step`` failed for good, in one line."""
    decision = ctx.give_up(step)
    who = ctx.who(step)
    if decision is Decision.MANUAL_REVIEW:
        window = fmt_seconds(ctx.process.retry_for(step))
        return f"forward: retry within {window}, then manual review ({who})"
    if decision is Decision.CONTINUE:
        return f"best effort: it ends failed, best_effort_failed alert to {who}; the run goes on"
    return rollback_phrase(ctx, ctx.index(step))


def _action(ctx: Planning, step: Step, situation: Situation) -> StepAction:
    ruling = ctx.ruling(step, situation)
    return StepAction(
        decision=ruling.decision, then=ruling.then, instruction=reason(ctx, step, ruling)
    )


def build_rollback_chain(ctx: Planning) -> tuple[ChainLink, ...]:
    """Every step a rollback can reach, latest first, with what the rollback does there."""
    links = []
    for step in ctx.rollback_chain():
        undo = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
        links.append(
            ChainLink(
                step=step.id,
                decision=Decision.COMPENSATE if undo else Decision.KEEP,
                instruction=compensation_instruction(step) if undo else mitigation_for(step),
            )
        )
    return tuple(links)


def _sequence(ctx: Planning, index: int, failed: Step) -> RollbackSequence:
    recovery = ctx.give_up(failed)
    rolls_back = recovery is Decision.ROLLBACK
    first = ctx.latest_in_chain(index) if rolls_back else None
    return RollbackSequence(
        failed_step=failed.id,
        recovery=recovery,
        summary=summary(ctx, failed),
        definite_failure=_action(ctx, failed, Situation.DEFINITE_FAILURE),
        refused=_action(ctx, failed, Situation.REFUSED),
        unknown_outcome=_action(ctx, failed, Situation.TIMEOUT),
        rollback_from=first.id if first is not None else None,
        compensate_count=ctx.undo_count(index) if rolls_back else 0,
        keep_count=ctx.keep_count(index) if rolls_back else 0,
        final_status=final_status(ctx, failed),
    )


def build_rollback_failure_policy(ctx: Planning) -> tuple[RollbackFailurePolicy, ...]:
    """One policy per step the engine can compensate, in process order.

    Those are the compensatable steps before the pivot (all of them when there is none),
    except the last step: a rollback only undoes steps before the one that failed.
    """
    policies = []
    defaults = ctx.process.defaults
    base, top = fmt_seconds(defaults.backoff_base), fmt_seconds(defaults.backoff_max)
    for step in ctx.compensatable_before_pivot():
        index = ctx.index(step)
        ruling = ctx.ruling(step, Situation.COMPENSATION_FAILED)
        halted = ctx.undo_count(index)
        comp = compensation_instruction(step)
        review = (
            f"once that is spent, or at once when the compensation is refused or its outcome "
            f"is unknown: {step.id} is marked compensation_failed, the rollback stops and the "
            "run waits in needs_manual_review"
        )
        if halted:
            names = few([s.id for s in ctx.latest_undo(index, 4)], halted)
            verb, them = ("stays", "it") if halted == 1 else ("stay", "them")
            review += f"; {names} {verb} completed, since undoing {step.id} may still need {them}"
        policies.append(
            RollbackFailurePolicy(
                step=step.id,
                compensation=comp,
                bound=bound_spec(ruling.bound) or BoundSpec(attempts=1, window_s=None),
                backoff=Backoff(base_s=defaults.backoff_base, max_s=defaults.backoff_max),
                retry_when=(
                    f"the compensation of {step.id} fails definitely (answered, nothing "
                    f"changed): retried {bound_text(ruling.bound)}, waiting {base} doubling to "
                    f"at most {top}, with jitter; attempts survive a crash"
                ),
                manual_review_when=review,
                halted_count=halted,
                alert_kind=ruling.alert or AlertKind.COMPENSATION_FAILED,
                alert_route=ctx.route(step),
                alert_to=ctx.who(step),
            )
        )
    return tuple(policies)
