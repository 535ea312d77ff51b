"""The rulings of :mod:`sagaguard.rules` in words: why each decision is safe and what follows.

The rules hold no prose; this module is where a :class:`~sagaguard.rules.Ruling` becomes the
sentence the decision matrix, the rollback sequences and the step table show. Each sentence
names this process's steps, bounds and people, and names at most a few steps (``and N
more``), so the words of a plan grow linearly with the process.
"""

from __future__ import annotations

from sagaguard.model import Phase, Step
from sagaguard.planner.context import Planning
from sagaguard.planner.wording import (
    bound_text,
    compensation_instruction,
    few,
    fmt_seconds,
    mitigation_for,
    plural,
    verify_text,
)
from sagaguard.rules import Decision, Ruling, Situation, StepKind

__all__ = ["give_up_phrase", "reason", "unknown_end_phrase"]


def give_up_phrase(ctx: Planning, step: Step) -> str:
    """What happens once ``step`` failed for good, for this process."""
    decision = ctx.give_up(step)
    who = ctx.who(step)
    if decision is Decision.CONTINUE:
        return (
            f"{step.id} is best-effort: it ends failed, a best_effort_failed alert goes to "
            f"{who}, and the run goes on without it"
        )
    if decision is Decision.MANUAL_REVIEW:
        pivot = ctx.pivot.id if ctx.pivot is not None else "the pivot"
        return (
            f"nothing is rolled back ({pivot}, the point of no return, completed): "
            f"needs_manual_review, alert to {who}"
        )
    return rollback_phrase(ctx, ctx.index(step))


def rollback_phrase(ctx: Planning, index: int) -> str:
    """The rollback of a failure at step ``index``: what is undone and what is kept."""
    undo, kept = ctx.undo_count(index), ctx.keep_count(index)
    if not undo and not kept:
        if index == 0:
            why = f"{ctx.steps[0].id} is the first step"
        else:
            why = f"nothing before {ctx.steps[index].id} changed anything"
        return f"the run fails with nothing to undo ({why})"
    parts = []
    if undo:
        names = few([s.id for s in ctx.latest_undo(index, 4)], undo)
        order = "" if undo == 1 else ", latest first"
        parts.append(f"{names} {'is' if undo == 1 else 'are'} compensated{order}")
    if kept:
        kept_ids = [s.id for s in ctx.latest_keep(index, 4)]
        verb = "is" if kept == 1 else "are"
        parts.append(f"{few(kept_ids, kept)} cannot be undone and {verb} kept, with a mitigation")
    return "the run rolls back: " + "; ".join(parts)


def unknown_end_phrase(ctx: Planning, step: Step) -> str:
    """Where an outcome that stays unknown ends for ``step``."""
    if step.required:
        return f"needs_manual_review, alert to {ctx.who(step)}"
    return (
        f"it stays unknown (best-effort): a best_effort_failed alert goes to {ctx.who(step)} "
        "and the run goes on"
    )


def reason(ctx: Planning, step: Step, ruling: Ruling) -> str:
    """Why ``ruling`` is the safe decision for ``step``, and what follows it."""
    return _BY_SITUATION[ruling.situation](ctx, step, ruling)


def _definite_failure(ctx: Planning, step: Step, ruling: Ruling) -> str:
    bound = ruling.bound
    if bound is not None and (bound.attempts or 1) <= 1 and bound.window_s is None:
        retried = "max_attempts: 1 allows no second attempt"
    else:
        retried = f"so a repeat is safe, {bound_text(bound)} with backoff"
    return (
        f"the other side answered and nothing changed, {retried}; then {give_up_phrase(ctx, step)}"
    )


def _refused(ctx: Planning, step: Step, ruling: Ruling) -> str:
    return f"a repeat gets the same answer, so it is not retried: {give_up_phrase(ctx, step)}"


def _unknown(ctx: Planning, step: Step, ruling: Ruling) -> str:
    what = (
        "no answer came"
        if ruling.situation is Situation.TIMEOUT
        else "the call was made but its result was never saved"
    )
    kind = ruling.kind
    if kind is StepKind.READ_ONLY:
        return (
            f"{what}, but {step.id} changes nothing: a repeat is harmless, "
            f"{bound_text(ruling.bound)}; then {give_up_phrase(ctx, step)}"
        )
    if kind is StepKind.IDEMPOTENT:
        return (
            f"{what}; {step.id} is idempotent, so a retry with the same idempotency key "
            f"({{operation_id}}:{step.id}) cannot cause a second effect, "
            f"{bound_text(ruling.bound)}; still no answer: {unknown_end_phrase(ctx, step)}"
        )
    if kind is StepKind.VERIFIABLE:
        calls = plural(ruling.bound.attempts or 1, "call") if ruling.bound else "one call"
        return (
            f"{what} and a repeat could duplicate the effect (idempotent: "
            f"{step.idempotent.value}); verify asks first ({verify_text(step)}): found, "
            f"{step.id} is completed without a second call; not found, it is called again; "
            f"verify cannot tell after {calls}: "
            f"{unknown_end_phrase(ctx, step)}"
        )
    if kind is StepKind.VERIFY_UNBOUND:
        return (
            f"{what} and a repeat could duplicate the effect; verify is only described "
            f"({verify_text(step)}), no code is bound, so the engine cannot ask: "
            f"{unknown_end_phrase(ctx, step)}. Bind verify: module:function to have it asked"
        )
    return (
        f"{what}, a repeat could duplicate the effect (idempotent: {step.idempotent.value}) "
        f"and nothing can verify it: {unknown_end_phrase(ctx, step)}"
    )


def _in_flight(ctx: Planning, step: Step, ruling: Ruling) -> str:
    wait = fmt_seconds(ruling.bound.window_s or 0.0) if ruling.bound else "its timeout"
    return (
        f"the call outlived its timeout and still runs: nothing verifies or repeats it while "
        f"it may still act; the engine waits up to {wait} more for it to return; it never "
        f"does: {unknown_end_phrase(ctx, step)}"
    )


def _verify_not_applied(ctx: Planning, step: Step, ruling: Ruling) -> str:
    return (
        f"verify found no effect and the settle delay has passed: it never happened, so "
        f"{step.id} is called again with the same key, {bound_text(ruling.bound)} in all; "
        f"then {give_up_phrase(ctx, step)}"
    )


def _verify_too_soon(ctx: Planning, step: Step, ruling: Ruling) -> str:
    delay = ruling.bound.window_s if ruling.bound else 0.0
    if not delay:
        return (
            f"{step.id} sets no settle delay (verify_after), so a 'not found' counts at once; "
            "set verify_after when the provider's lookup lags its writes"
        )
    return (
        f"a 'not found' within {fmt_seconds(delay)} (verify_after) may be the provider's "
        f"lookup lagging its writes: neither retried nor sent to a person; verify asks again "
        f"once {fmt_seconds(delay)} have passed"
    )


def _verify_failed(ctx: Planning, step: Step, ruling: Ruling) -> str:
    return (
        "verify could not tell (it raised, timed out or answered something else): asked "
        f"again, {bound_text(ruling.bound, 'verify call')}; then {unknown_end_phrase(ctx, step)}"
    )


def _later_step_failed(ctx: Planning, step: Step, ruling: Ruling) -> str:
    if ruling.decision is Decision.COMPENSATE:
        return (
            "its effect is confirmed and it has a reverse action: "
            f"{compensation_instruction(step)}, once every later completed step is undone"
        )
    if ruling.decision is Decision.KEEP:
        return (
            f"it cannot be undone: kept, and its mitigation applies ({mitigation_for(step)}); "
            "the rollback goes on with the step before"
        )
    return _never_undone(ctx, step)


def _never_undone(ctx: Planning, step: Step) -> str:
    if step.read_only:
        return f"{step.id} changes nothing, so there is nothing to undo"
    phase = ctx.phase(step)
    if phase is Phase.PIVOT:
        return (
            f"{step.id} is the pivot: once it completed nothing is rolled back, and a failure "
            "after it is pushed forward"
        )
    if phase is Phase.AFTER_PIVOT:
        pivot = ctx.pivot.id if ctx.pivot is not None else "the pivot"
        return (
            f"{step.id} comes after {pivot}, the point of no return: it is pushed forward, "
            "never rolled back by the engine"
        )
    return f"{step.id} is the last step: no later step can fail, so no rollback reaches it"


def _compensation_failed(ctx: Planning, step: Step, ruling: Ruling) -> str:
    if ruling.decision is Decision.NONE:
        return f"the engine never runs this compensation: {_never_undone(ctx, step)}"
    who = ctx.who(step)
    halt = (
        f"the rollback stops at {step.id}, it is compensation_failed, the run waits in "
        f"needs_manual_review and a compensation_failed alert goes to {who}"
    )
    if ruling.situation is Situation.COMPENSATION_REFUSED:
        return f"a refused undo does not change on a repeat: {halt}"
    if ruling.situation is Situation.COMPENSATION_UNKNOWN:
        return (
            "nobody knows whether it was undone (a timeout, a crash), and an undo is never "
            f"repeated blind: {halt}"
        )
    backoff = ctx.process.defaults
    return (
        f"undoing it failed definitely (answered, nothing changed): retried "
        f"{bound_text(ruling.bound)}, waiting {fmt_seconds(backoff.backoff_base)} doubling to at "
        f"most {fmt_seconds(backoff.backoff_max)}; then {halt}"
    )


def _duplicate_request(ctx: Planning, step: Step, ruling: Ruling) -> str:
    return (
        "the same operation_id gets the existing run back, whatever step it has reached (one "
        "operation_id never starts a second run); with a different input it is refused as a "
        "conflict"
    )


_BY_SITUATION = {
    Situation.DEFINITE_FAILURE: _definite_failure,
    Situation.REFUSED: _refused,
    Situation.TIMEOUT: _unknown,
    Situation.CRASH_BEFORE_PERSIST: _unknown,
    Situation.CALL_IN_FLIGHT: _in_flight,
    Situation.VERIFY_NOT_APPLIED: _verify_not_applied,
    Situation.VERIFY_TOO_SOON: _verify_too_soon,
    Situation.VERIFY_FAILED: _verify_failed,
    Situation.LATER_STEP_FAILED: _later_step_failed,
    Situation.COMPENSATION_FAILED: _compensation_failed,
    Situation.COMPENSATION_REFUSED: _compensation_failed,
    Situation.COMPENSATION_UNKNOWN: _compensation_failed,
    Situation.DUPLICATE_REQUEST: _duplicate_request,
}
