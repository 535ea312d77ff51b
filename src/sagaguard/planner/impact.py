"""How much damage a step's failure can do: which failures the plan tests and shows first.

Two scales. :func:`risk_score` ranks a step by what a blind retry or a lost answer can do
(money first, then no safe repeat, then no way to ask). :func:`impact_rank` ranks a failure
by what it leaves in the world: money moved, an effect that cannot be undone, data lost;
an outcome nobody knows comes after those (the guide: money goes to a person first).
"""

from __future__ import annotations

from enum import IntEnum

from sagaguard.model import ChangeKind, Idempotency, Step, StepClass
from sagaguard.planner.context import Planning
from sagaguard.rules import StepKind

__all__ = ["Impact", "impact_of", "risk_score", "riskiest"]

_RISK_BY_KIND = {
    ChangeKind.PAYMENT: 8,
    ChangeKind.EXTERNAL_API: 2,
    ChangeKind.EMAIL: 2,
    ChangeKind.RESERVATION: 2,
    ChangeKind.QUEUE: 1,
    ChangeKind.DATABASE: 0,
    ChangeKind.NONE: 0,
}


class Impact(IntEnum):
    """What a failure leaves behind, worst first (lower is worse)."""

    MONEY_MOVED = 0
    IRREVERSIBLE = 1
    DATA_LOST = 2
    UNKNOWN_OUTCOME = 3
    UNDONE = 4

    @property
    def words(self) -> str:
        """The impact as the plan says it."""
        return _WORDS[self]


_WORDS = {
    Impact.MONEY_MOVED: "money moved and not settled",
    Impact.IRREVERSIBLE: "an effect that cannot be undone",
    Impact.DATA_LOST: "a change left half undone",
    Impact.UNKNOWN_OUTCOME: "an outcome nobody knows",
    Impact.UNDONE: "a clean rollback",
}


def moves_money(step: Step) -> bool:
    """True when ``step`` moves money."""
    return ChangeKind.PAYMENT in step.changes


def impact_of(step: Step) -> Impact:
    """What leaving ``step``'s effect in place (not undone, not settled) means."""
    if moves_money(step):
        return Impact.MONEY_MOVED
    if step.step_class is StepClass.IRREVERSIBLE and not step.read_only:
        return Impact.IRREVERSIBLE
    return Impact.DATA_LOST if not step.read_only else Impact.UNDONE


def risk_score(ctx: Planning, step: Step) -> int:
    """How much damage a blind retry or a lost answer of ``step`` can do (higher = worse)."""
    if step.read_only:
        return 0
    score = max(_RISK_BY_KIND[k] for k in step.changes)
    if step.idempotent is not Idempotency.YES:
        score += 4
        if ctx.kind(step) is not StepKind.VERIFIABLE:
            score += 2
    if step.step_class is StepClass.IRREVERSIBLE:
        score += 1
    return score


def riskiest(ctx: Planning, steps: tuple[Step, ...] | list[Step]) -> Step | None:
    """The riskiest of ``steps`` (the earliest on a tie), or None when there are none."""
    best: Step | None = None
    best_score = -1
    for step in steps:
        score = risk_score(ctx, step)
        if score > best_score:
            best, best_score = step, score
    return best
