"""Groupings of plan data that both the Markdown and the HTML renderer show.

They only regroup or reorder what the plan holds (findings by severity, checklist items by
area, identical decision-matrix reasons under one line), so that the two documents say
the same thing in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.planner.plan import Area, ChecklistItem, DecisionEntry, Finding, Plan, Severity
from sagaguard.planner.render.labels import SEVERITY_ORDER
from sagaguard.rules import Situation

__all__ = [
    "ReasonGroup",
    "checklist_by_area",
    "decision_grid",
    "findings_by_severity",
    "reason_groups",
    "severity_counts",
    "situations",
]


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    """One ruling of the decision matrix and every step it applies to."""

    steps: tuple[str, ...]
    entry: DecisionEntry


def situations(plan: Plan) -> list[Situation]:
    """The situations of the decision matrix, in the plan's order."""
    return list(dict.fromkeys(e.situation for e in plan.decision_matrix))


def decision_grid(plan: Plan) -> list[tuple[str, list[DecisionEntry | None]]]:
    """One row per step (process order), one cell per situation (None when absent)."""
    cells = {(e.step, e.situation): e for e in plan.decision_matrix}
    columns = situations(plan)
    return [(s.id, [cells.get((s.id, sit)) for sit in columns]) for s in plan.steps]


def reason_groups(plan: Plan) -> list[ReasonGroup]:
    """Decision-matrix entries with the same ruling merged, by situation then first step."""
    order = {sit: i for i, sit in enumerate(situations(plan))}
    groups: dict[tuple[object, ...], list[DecisionEntry]] = {}
    for entry in plan.decision_matrix:
        key = (entry.situation, entry.decision, entry.then, entry.alert, entry.reason)
        groups.setdefault(key, []).append(entry)
    merged = [
        ReasonGroup(steps=tuple(e.step for e in entries), entry=entries[0])
        for entries in groups.values()
    ]
    return sorted(merged, key=lambda g: order[g.entry.situation])


def findings_by_severity(plan: Plan) -> list[Finding]:
    """Findings, errors first (stable within a severity)."""
    return sorted(plan.findings, key=lambda f: SEVERITY_ORDER[f.severity])


def severity_counts(plan: Plan) -> list[tuple[Severity, int]]:
    """How many findings of each severity, errors first; severities with none are left out."""
    counts: dict[Severity, int] = {}
    for finding in findings_by_severity(plan):
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return list(counts.items())


def checklist_by_area(plan: Plan) -> list[tuple[Area, list[ChecklistItem]]]:
    """Checklist items under their area (engineering first), areas without items left out."""
    grouped = [(area, [c for c in plan.checklist if c.area is area]) for area in Area]
    return [(area, items) for area, items in grouped if items]
