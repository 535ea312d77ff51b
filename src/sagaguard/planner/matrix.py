"""Part 4 of the plan: the decision matrix, one entry per step and situation.

Every entry is :func:`sagaguard.rules.decide` for that step, as the process is bound (through
:class:`~.context.Planning`): the same ruling the engine obeys at run time, in words.
"""

from __future__ import annotations

from sagaguard.planner.context import Planning
from sagaguard.planner.plan import DecisionEntry
from sagaguard.planner.reasons import reason
from sagaguard.planner.rollback import bound_spec
from sagaguard.rules import Situation

__all__ = ["build_decision_matrix"]


def build_decision_matrix(ctx: Planning) -> tuple[DecisionEntry, ...]:
    """Step by step (process order), situation by situation (``Situation`` order)."""
    entries: list[DecisionEntry] = []
    for step in ctx.steps:
        for situation in Situation:
            ruling = ctx.ruling(step, situation)
            entries.append(
                DecisionEntry(
                    step=step.id,
                    situation=situation,
                    decision=ruling.decision,
                    then=ruling.then,
                    bound=bound_spec(ruling.bound),
                    alert=ruling.alert,
                    reason=reason(ctx, step, ruling),
                )
            )
    return tuple(entries)
