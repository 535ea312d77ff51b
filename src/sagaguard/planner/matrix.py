"""Part 4 of the plan: the decision matrix, one entry per step and situation.

Every entry comes from :func:`sagaguard._legacy_rules.decide`, the function the engine consults at
run time, so the plan can never promise what the engine does not do.
"""

from __future__ import annotations

from sagaguard._legacy_rules import Situation, decide
from sagaguard.model import Process
from sagaguard.planner.plan import DecisionEntry

__all__ = ["build_decision_matrix"]


def build_decision_matrix(process: Process) -> tuple[DecisionEntry, ...]:
    """Step by step (process order), situation by situation (``Situation`` order)."""
    entries: list[DecisionEntry] = []
    for step in process.steps:
        for situation in Situation:
            ruling = decide(step, situation, process=process)
            entries.append(
                DecisionEntry(
                    step=step.id,
                    situation=situation,
                    decision=ruling.decision,
                    reason=ruling.reason,
                    then=ruling.then,
                    alert=ruling.alert,
                )
            )
    return tuple(entries)
