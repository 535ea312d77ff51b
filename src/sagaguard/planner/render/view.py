"""Groupings of plan data that both the Markdown and the HTML renderer show.

They only regroup or reorder what the plan holds (findings by severity, checklist items by
area, identical decision-matrix reasons under one line), so that the two documents say
the same thing in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard._legacy_rules import Decision, Situation
from sagaguard.planner.plan import (
    Area,
    ChecklistItem,
    DecisionEntry,
    Finding,
    FlowEdge,
    FlowEdgeKind,
    FlowNodeKind,
    Plan,
    RunStatus,
    Severity,
    StepEntry,
)
from sagaguard.planner.render.labels import SEVERITY_ORDER

__all__ = [
    "ReasonGroup",
    "checklist_by_area",
    "decision_grid",
    "findings_by_severity",
    "flow_legend",
    "legend_example",
    "policy_intro",
    "reason_groups",
    "reason_scope",
    "rollback_intro",
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


# --- introductions: each says what its part means for this process, with its own ids ------


def _join(ids: list[str] | tuple[str, ...], last: str = "and") -> str:
    items = list(ids)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def rollback_intro(plan: Plan) -> str:
    """How this process's rollback runs, shown on its longest sequence."""
    name = plan.process.name
    sequences = plan.rollback_sequences
    longest = max(reversed(sequences), key=lambda s: len(s.compensate) + len(s.irreversible))
    if not longest.compensate and not longest.irreversible:
        return f"No step of {name} changes anything, so a failed run has nothing to undo."
    kept = [i.step for i in longest.irreversible]
    keeps = f"keeps {_join(kept)} (it cannot be undone) with a mitigation" if kept else ""
    if len(kept) > 1:
        keeps = keeps.replace("(it cannot", "(they cannot")
    if longest.compensate:
        first, *rest = longest.compensate
        then = f", then {_join(rest)}" if rest else ""
        text = (
            f"Recovery runs backward from the step that failed: when {longest.failed_step} "
            f"fails, the rollback undoes {first} first{then}" + (f", and {keeps}" if kept else "")
        )
    else:
        text = (
            f"No step of {name} can be undone: when {longest.failed_step} fails, the rollback "
            + keeps
        )
    nothing = [s.failed_step for s in sequences if s.final_status is RunStatus.FAILED]
    if nothing:
        text += f". When {_join(nothing, 'or')} fails, nothing is undone: the run ends failed"
    return text + "."


def policy_intro(plan: Plan) -> str:
    """What a failed compensation does to this process's rollback, and who hears of it."""
    policies = plan.rollback_failure_policy
    if not policies:
        return (
            f"No step of {plan.process.name} before the last has a compensation, so no "
            "rollback can fail."
        )
    by_route: dict[str, list[str]] = {}
    for policy in policies:
        by_route.setdefault(policy.alert_to, []).append(policy.step)
    main = max(by_route, key=lambda route: len(by_route[route]))
    others = [f"{route} for {_join(steps)}" for route, steps in by_route.items() if route != main]
    routes = main + (f" ({'; '.join(others)})" if others else "")
    return (
        f"If undoing {_join([p.step for p in policies], 'or')} fails, the rollback stops at "
        "that step: it is marked compensation_failed, the compensatable steps before it stay "
        "completed, and the run waits in needs_manual_review with a compensation_failed "
        f"alert to {routes}."
    )


def legend_example(plan: Plan) -> tuple[DecisionEntry, StepEntry] | None:
    """A bounded retry of the matrix to explain its notation with, alerting ones first."""
    retries = [
        e
        for e in plan.decision_matrix
        if e.decision is Decision.RETRY
        and e.then is not None
        and e.situation in (Situation.TIMEOUT, Situation.DEFINITE_FAILURE)
    ]
    retries.sort(key=lambda e: not e.alert)
    if not retries:
        return None
    return retries[0], plan.step(retries[0].step)


def reason_scope(plan: Plan, group: ReasonGroup) -> str | None:
    """``None`` when the group names its steps, else how to say "all of them" for this process."""
    if len(group.steps) == len(plan.steps) > 1:
        return f"any step of {plan.process.name}"
    return None


def flow_legend(plan: Plan) -> list[tuple[FlowEdgeKind, str]]:
    """What each kind of arrow of this process's diagram shows, for the kinds it has."""
    flow = plan.flow
    nodes = {n.id: n for n in flow.nodes}
    edges = {kind: [e for e in flow.edges if e.kind is kind] for kind in FlowEdgeKind}
    steps = [s.id for s in plan.steps]
    path = f"{steps[0]} to {steps[-1]}" if len(steps) > 1 else f"through {steps[0]}"
    legend = [(FlowEdgeKind.FORWARD, f"the forward path, {path}")]

    def back_node(node_id: str) -> str:
        # Read as the diagram's box headers: "undo x" or "mitigate x".
        node = nodes[node_id]
        verb = "mitigate" if node.kind is FlowNodeKind.MITIGATION else "undo"
        return f"{verb} {node.step}"

    def source(edge: FlowEdge) -> str:
        node = nodes[edge.source]
        return node.step or node.label

    failures = edges[FlowEdgeKind.FAILURE]
    into = [e for e in failures if nodes[e.target].step is not None]
    ended = [source(e) for e in failures if nodes[e.target].step is None]
    parts = []
    if into:
        last = into[-1]
        parts.append(f"{source(last)} failing starts the rollback at {back_node(last.target)}")
    if ended:
        parts.append(f"{_join(ended, 'or')} failing ends the run with nothing to undo")
    if parts:
        legend.append((FlowEdgeKind.FAILURE, "; ".join(parts)))
    back = edges[FlowEdgeKind.COMPENSATION]
    if back:
        chain = ", ".join(back_node(e.source) for e in back)
        legend.append((FlowEdgeKind.COMPENSATION, f"the rollback, latest first: {chain}"))
    unknown = [source(e) for e in edges[FlowEdgeKind.UNKNOWN_OUTCOME]]
    if unknown:
        legend.append(
            (
                FlowEdgeKind.UNKNOWN_OUTCOME,
                f"an outcome of {_join(unknown, 'or')} that stays unknown goes to "
                "needs_manual_review",
            )
        )
    undo = [source(e) for e in edges[FlowEdgeKind.COMPENSATION_FAILED]]
    if undo:
        legend.append(
            (
                FlowEdgeKind.COMPENSATION_FAILED,
                f"a failed undo of {_join(undo, 'or')} goes to needs_manual_review",
            )
        )
    return legend
