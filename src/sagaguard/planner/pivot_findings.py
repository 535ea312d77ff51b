"""Findings about the point of no return: SG001 (pivot ordering) and SG014 (a notification
that would undo a payment).

A saga is compensatable steps, then the pivot, then steps pushed forward. SG001 flags a
process that breaks this order and suggests only fixes that can be done: declare the pivot,
mark a notification best-effort (and move it, since a message to people belongs last),
authorize a payment early and capture it at the pivot, or move a step where the move makes
sense (a hold before the point of no return). It never asks to move a bank transfer after a
remittance email, and when several notifications must move it names them in one finding,
in their order.
"""

from __future__ import annotations

from sagaguard.model import ChangeKind, Phase, Step, StepClass
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import Finding, Severity
from sagaguard.planner.profiles import is_notification
from sagaguard.planner.wording import compensation_text, join
from sagaguard.rules import Decision, Situation

__all__ = ["pivot_findings"]

# Kinds whose call can be refused for good even when a repeat is safe (a declined card,
# stock that ran out): such a step can still fail after everything before it succeeded.
_REFUSABLE_KINDS = frozenset({ChangeKind.PAYMENT, ChangeKind.RESERVATION})


def can_still_fail(step: Step) -> bool:
    """True when ``step`` can fail for good although everything before it succeeded.

    A step that is safe to repeat eventually succeeds by retrying; one that is not (or one
    the other side may refuse outright, like a card decline) can fail for good.
    """
    if step.read_only:
        return False
    return not step.safe_to_repeat or any(k in _REFUSABLE_KINDS for k in step.changes)


def pivot_findings(ctx: Planning) -> list[tuple[int, Finding]]:
    """SG001 and SG014 findings, each with the index of the step it is about."""
    found: list[tuple[int, Finding]] = []
    last_failing = _last_failing_rollback(ctx)
    moves: list[Step] = []
    payment: Step | None = None
    for index, step in enumerate(ctx.steps):
        undoes_payment = payment is not None and ctx.give_up(step) is Decision.ROLLBACK
        if payment is not None and undoes_payment and step.required and is_notification(step):
            found.append((index, _notification_undoes_payment(ctx, step, payment)))
        visit = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision
        if visit is Decision.COMPENSATE and ChangeKind.PAYMENT in step.changes:
            payment = step
        if visit is not Decision.KEEP or step.read_only:
            continue
        if last_failing is None or last_failing <= index:
            continue
        failing = ctx.steps[last_failing]
        if is_notification(step):
            moves.append(step)
        else:
            found.append((index, _kept_effect(ctx, step, failing)))
    if moves:
        failing = ctx.steps[last_failing or 0]
        found.append((ctx.index(moves[0]), _move_notifications(ctx, moves, failing)))
    found += _around_the_pivot(ctx)
    return found


def _last_failing_rollback(ctx: Planning) -> int | None:
    """The index of the latest step that can still fail and whose failure rolls back."""
    for index in range(len(ctx.steps) - 1, -1, -1):
        step = ctx.steps[index]
        if ctx.give_up(step) is Decision.ROLLBACK and can_still_fail(step):
            return index
    return None


def _finding(step: Step, message: str, code: str = "SG001") -> Finding:
    severity = Severity.ERROR if code == "SG014" else Severity.WARNING
    return Finding(severity=severity, step=step.id, code=code, message=message)


def _kept_effect(ctx: Planning, step: Step, failing: Step) -> Finding:
    why = (
        "compensation: none"
        if step.compensation_declared
        else "it declares no compensation, so nothing undoes it"
    )
    problem = (
        f"{step.id} cannot be undone ({why}), but {failing.id} can still fail after it and "
        f"its failure rolls the run back: the rollback then keeps {step.id}'s effect for an "
        "operation that was undone."
    )
    if ChangeKind.PAYMENT in step.changes:
        at = ctx.pivot.id if ctx.pivot is not None else f"a step after {failing.id}"
        fix = (
            f" Authorize the payment early instead (a hold in {step.id} that can be voided) "
            f"and capture it at {at}, the point of no return"
        )
    elif ctx.pivot is not None and ctx.process.pivot_declared:
        fix = (
            f" The pivot is declared on {ctx.pivot.id}. If {step.id} is the real point of no "
            f"return, move pivot: true to it ({failing.id} is then pushed forward, never rolled "
            f"back past it); otherwise give {step.id} a compensation"
        )
    else:
        fix = (
            f" If {step.id} is the point of no return, declare pivot: true on it: "
            f"{failing.id} is then pushed forward (retried, then a person), never rolled back "
            f"past it; otherwise give {step.id} a compensation"
        )
        if not step.compensation_declared:
            fix += " (SG002)"
    return _finding(step, problem + fix)


def _move_notifications(ctx: Planning, moves: list[Step], failing: Step) -> Finding:
    many = len(moves) > 1
    them = "them, in this order," if many else "it"
    required = [s.id for s in moves if s.required]
    move = f"move {them} after {failing.id}, the last step whose failure rolls back"
    if required:
        fix = f"Mark {join(required)} required: false (a message never needs a rollback) and {move}"
    else:
        fix = move[0].upper() + move[1:]
    what = "are notifications" if many else "is a notification"
    return _finding(
        moves[0],
        f"{join([s.id for s in moves])} {what} sent before {failing.id}, which can still fail "
        f"and roll the run back: people are then told about an operation that was undone. " + fix,
    )


def _around_the_pivot(ctx: Planning) -> list[tuple[int, Finding]]:
    pivot = ctx.pivot
    if pivot is None:
        return []
    found: list[tuple[int, Finding]] = []
    at = ctx.index(pivot)
    later = [s for s in ctx.steps[at + 1 :] if s.required and can_still_fail(s)]
    if later and not ctx.process.pivot_declared and is_notification(pivot):
        last = later[-1]
        found.append(
            (
                at,
                _finding(
                    pivot,
                    f"{pivot.id}, a notification, is the derived pivot (the first required step "
                    f"that cannot be undone): once it is sent, {join([s.id for s in later])} "
                    f"{'is' if len(later) == 1 else 'are'} pushed forward (retried, then a "
                    f"person) instead of rolled back. A notification is rarely the point of no "
                    f"return: mark {pivot.id} required: false and move it after {last.id}; or, "
                    f"if sending it really commits the process, declare pivot: true on it",
                ),
            )
        )
    if not ctx.process.pivot_declared and not pivot.compensation_declared:
        # The pivot only stands because a compensation is missing: SG002 asks for it, and
        # once it is declared the point of no return moves; what follows is moot until then.
        return found
    for step in ctx.steps[at + 1 :]:
        if not step.required or not any(k in _REFUSABLE_KINDS for k in step.changes):
            continue
        found.append((ctx.index(step), _refusable_after_pivot(ctx, pivot, step)))
    return found


def _refusable_after_pivot(ctx: Planning, pivot: Step, step: Step) -> Finding:
    problem = (
        f"{step.id} comes after {pivot.id}, the point of no return, and can be refused "
        f"({'a decline' if ChangeKind.PAYMENT in step.changes else 'nothing left to hold'}): "
        f"a refusal there cannot roll back and goes straight to {ctx.who(step)}."
    )
    if ChangeKind.PAYMENT in step.changes:
        fix = (
            f" Authorize the payment before {pivot.id} (a hold that can be voided, so a "
            f"decline stops the run while it can still roll back) and capture it in {step.id}"
        )
    elif step.step_class is StepClass.COMPENSATABLE:
        fix = (
            f" Move {step.id} before {pivot.id}: it can be undone "
            f"({compensation_text(step)}), so a refusal then rolls back cleanly"
        )
    else:
        fix = (
            f" Hold what {step.id} needs before {pivot.id}, so a refusal comes while the run "
            "can still roll back"
        )
    return _finding(step, problem + fix)


def _notification_undoes_payment(ctx: Planning, step: Step, payment: Step) -> Finding:
    where = " (the pivot)" if ctx.phase(step) is Phase.PIVOT else ""
    return _finding(
        step,
        f"{step.id} is a notification{where}, but it is required: when it fails for good (a "
        f"bounce is a refusal) the run rolls back and {payment.id} is compensated "
        f"({compensation_text(payment)}): money is given back because a message failed. Mark "
        f"{step.id} required: false: it then ends failed, a best_effort_failed alert goes to "
        f"{ctx.who(step)}, and the run completes",
        code="SG014",
    )
