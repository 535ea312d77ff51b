"""When a step's compensation must not run, said for that step.

The spec's own ``rollback_condition`` comes first. Then what the kind of operation implies
(a refund waits for an open chargeback; a reservation that became a shipment is not
released), what the step's ruling implies (an unknown outcome is settled first), and where
the step stands relative to the point of no return.
"""

from __future__ import annotations

from sagaguard.model import Phase, Step, StepClass
from sagaguard.planner.context import Planning
from sagaguard.planner.profiles import Profile, profile_of
from sagaguard.planner.wording import external_id_phrase
from sagaguard.rules import Decision, Situation

__all__ = ["rollback_conditions"]

_BY_PROFILE = {
    Profile.PAYMENT: (
        "not while a chargeback or dispute is open on {ident}: the dispute decides the refund, "
        "and a refund on top of it pays the money back twice"
    ),
    Profile.BANK_TRANSFER: (
        "not once the transfer settled (ACSC): money that reached the beneficiary comes back "
        "only by a recall the beneficiary's bank agrees to"
    ),
    Profile.FX_TRADE: (
        "not after the trade's value date: the currency was delivered; sell it back in a new "
        "trade instead, and book the rate difference"
    ),
    Profile.RESERVATION: (
        "not once the reservation became a shipment, a check-in or a pick (it was consumed): "
        "cancel or return that instead"
    ),
    Profile.EMAIL: "a sent message cannot be unsent: the compensation can only send a correction",
    Profile.SMS: "a sent message cannot be unsent: the compensation can only send a correction",
    Profile.NOTIFICATION: (
        "people may already have read and acted on it: the compensation posts a correction"
    ),
    Profile.QUEUE: (
        "not once consumers acted on the message: publish a cancelling message, never delete "
        "the original"
    ),
    Profile.DNS_CHANGE: (
        "not once clients depend on the new record: restore the previous record set with its "
        "old TTL, and expect caches to hold the new one until that TTL ends"
    ),
    Profile.EXTERNAL_API: (
        "not once what it created moved on at the other side (dispatched, fulfilled, "
        "invoiced): undoing it then needs its owner"
    ),
    Profile.DATABASE: (
        "not once other records build on what it wrote (an invoice, a shipment, an export "
        "refers to {ident}): void those first or leave it to a person"
    ),
}

_SETTLE = {
    Decision.RETRY: "it is retried with the same idempotency key first",
    Decision.VERIFY: "verify settles it first",
    Decision.MANUAL_REVIEW: "a person settles it first",
    Decision.CONTINUE: "it stays unknown and is never undone blind",
}


def rollback_conditions(ctx: Planning, step: Step) -> tuple[str, ...]:
    """The conditions under which ``step``'s compensation must NOT run, most specific first."""
    if step.step_class is StepClass.READ_ONLY:
        return (f"always: {step.id} changes nothing, so there is nothing to undo",)
    conditions: list[str] = []
    if step.rollback_condition:
        conditions.append(" ".join(step.rollback_condition.split()))
    if step.step_class is StepClass.IRREVERSIBLE:
        if step.compensation_declared:
            conditions.append(f"always: {step.id} cannot be undone; apply its mitigation instead")
        else:
            conditions.append(
                f"always: {step.id} declares no compensation, so nothing can undo it; declare "
                "one, or `compensation: none` with a mitigation"
            )
        return tuple(conditions)
    kind = _BY_PROFILE.get(profile_of(step))
    if kind is not None:
        conditions.append(kind.replace("{ident}", external_id_phrase(step)))
    phase = ctx.phase(step)
    runs = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
    if runs:
        unknown = ctx.ruling(step, Situation.TIMEOUT)
        settle = _SETTLE.get(unknown.decision, _SETTLE[Decision.MANUAL_REVIEW])
        conditions.append(f"while {step.id}'s outcome is unknown: {settle}")
        if ctx.pivot is not None:
            conditions.append(
                f"once {ctx.pivot.id}, the point of no return, completed: the engine then "
                f"undoes nothing at or before it"
            )
    elif phase is Phase.BEFORE_PIVOT:
        conditions.append(
            f"always, for the engine: {step.id} is the last step, so no later step can fail "
            "and its compensation never runs"
        )
    else:
        pivot = ctx.pivot.id if ctx.pivot is not None else "the pivot"
        where = "is the pivot" if phase is Phase.PIVOT else f"comes after {pivot}"
        conditions.append(
            f"always, for the engine: {step.id} {where}, so a failure is pushed forward; the "
            "compensation is for a person to run by hand"
        )
    return tuple(conditions)
