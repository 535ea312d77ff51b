"""Groupings of plan data that both the Markdown and the HTML renderer show.

They only regroup, reorder or count what the plan holds (findings by severity, checklist
items by area, the decision matrix in three tables, the flow diagram's key), so that the
two documents say the same thing in the same order. Long lists are cut at
:data:`~.labels.LIST_LIMIT` ids, so a rendered plan grows linearly with the process.
Rollbacks are in :mod:`.rollbacks`, what a test expects in :mod:`.expectations`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.planner.plan import (
    Area,
    ChecklistItem,
    DecisionEntry,
    Finding,
    FlowEdge,
    FlowEdgeKind,
    FlowNodeKind,
    Plan,
    Severity,
    StepEntry,
)
from sagaguard.planner.render.labels import (
    LIST_LIMIT,
    MATRIX_GROUPS,
    SEVERITY_ORDER,
)
from sagaguard.planner.render.rollbacks import steps_by_id
from sagaguard.planner.wording import join
from sagaguard.rules import Decision, Situation, StepKind

__all__ = [
    "MatrixTable",
    "ReasonGroup",
    "arises",
    "checklist_by_area",
    "duplicate_entry",
    "findings_by_severity",
    "flow_legend",
    "legend_example",
    "matrix_tables",
    "reason_groups",
    "severity_counts",
]


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    """One ruling of the decision matrix and every step it applies to."""

    steps: tuple[str, ...]
    entry: DecisionEntry
    everyone: bool
    """True when it applies to every step of the process."""


@dataclass(frozen=True, slots=True)
class MatrixTable:
    """One of the decision matrix's tables: its situations and a row per step."""

    title: str
    situations: tuple[Situation, ...]
    rows: tuple[tuple[str, tuple[DecisionEntry | None, ...]], ...]


_VERIFY_SITUATIONS = (
    Situation.VERIFY_NOT_APPLIED,
    Situation.VERIFY_TOO_SOON,
    Situation.VERIFY_FAILED,
)
_COMPENSATION_SITUATIONS = (
    Situation.COMPENSATION_FAILED,
    Situation.COMPENSATION_REFUSED,
    Situation.COMPENSATION_UNKNOWN,
)


def arises(step: StepEntry, situation: Situation) -> bool:
    """False when ``situation`` can never happen to ``step`` as it is bound.

    Verify answers only reach a step with verify code bound (a "not found too soon" only one
    with a settle delay); a compensation only fails for a step the engine compensates.
    """
    if situation in _VERIFY_SITUATIONS:
        if step.kind is not StepKind.VERIFIABLE:
            return False
        return situation is not Situation.VERIFY_TOO_SOON or step.verify_after_s > 0
    if situation in _COMPENSATION_SITUATIONS:
        return step.compensation_runs
    return True


def matrix_tables(plan: Plan) -> list[MatrixTable]:
    """The matrix as three tables: the step's own call, verify, a rollback reaching it.

    A cell is None (shown as a dash) where the situation cannot arise for the step.
    """
    cells = {(e.step, e.situation): e for e in plan.decision_matrix}
    return [
        MatrixTable(
            title=title,
            situations=group,
            rows=tuple(
                (
                    s.id,
                    tuple(cells.get((s.id, sit)) if arises(s, sit) else None for sit in group),
                )
                for s in plan.steps
            ),
        )
        for title, group in MATRIX_GROUPS
    ]


def duplicate_entry(plan: Plan) -> DecisionEntry | None:
    """The ruling for a repeated operation_id (the same for every step)."""
    return next(
        (e for e in plan.decision_matrix if e.situation is Situation.DUPLICATE_REQUEST), None
    )


def reason_groups(plan: Plan) -> list[ReasonGroup]:
    """Matrix entries with the same ruling and reason merged, by situation then first step."""
    order = {sit: i for i, sit in enumerate(Situation)}
    groups: dict[tuple[object, ...], list[DecisionEntry]] = {}
    by_id = steps_by_id(plan)
    for entry in plan.decision_matrix:
        if entry.situation is Situation.DUPLICATE_REQUEST:
            continue
        if not arises(by_id[entry.step], entry.situation):
            continue
        key = (entry.situation, entry.decision, entry.then, entry.alert, entry.reason)
        groups.setdefault(key, []).append(entry)
    total = len(plan.steps)
    merged = [
        ReasonGroup(
            steps=tuple(e.step for e in entries),
            entry=entries[0],
            everyone=len(entries) == total > 1,
        )
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


# --- decision matrix legend ------------------------------------------------------------------


def legend_example(plan: Plan) -> tuple[DecisionEntry, StepEntry] | None:
    """A bounded retry of the matrix to explain its notation with, alerting ones first."""
    retries = [
        e
        for e in plan.decision_matrix
        if e.decision is Decision.RETRY
        and e.then is not None
        and e.situation in (Situation.TIMEOUT, Situation.DEFINITE_FAILURE)
    ]
    retries.sort(key=lambda e: e.alert is None)
    if not retries:
        return None
    return retries[0], plan.step(retries[0].step)


# --- flow legend ---------------------------------------------------------------------------


_SAID_OF_SOURCES = {
    FlowEdgeKind.FORWARD_RECOVERY: "after the pivot, {} failing is retried, then goes to a "
    "person: nothing is rolled back",
    FlowEdgeKind.SKIPPED: "{} failing (best-effort) is skipped: the run goes on",
    FlowEdgeKind.UNKNOWN_OUTCOME: "an outcome of {} that stays unknown goes to needs_manual_review",
    FlowEdgeKind.COMPENSATION_FAILED: "a failed undo of {} goes to needs_manual_review",
}
"""The legend of the kinds of arrow that need only the steps they leave from."""


def flow_legend(plan: Plan) -> list[tuple[FlowEdgeKind, str]]:
    """What each kind of arrow of this process's diagram shows, for the kinds it has."""
    flow = plan.flow
    nodes = {n.id: n for n in flow.nodes}
    edges: dict[FlowEdgeKind, list[FlowEdge]] = {kind: [] for kind in FlowEdgeKind}
    for edge in flow.edges:
        edges[edge.kind].append(edge)
    steps = [s.id for s in plan.steps]
    path = f"{steps[0]} to {steps[-1]}" if len(steps) > 1 else f"through {steps[0]}"
    said = {FlowEdgeKind.FORWARD: f"the forward path, {path}"}

    def back_node(node_id: str) -> str:
        node = nodes[node_id]
        verb = "mitigate" if node.kind is FlowNodeKind.MITIGATION else "undo"
        return f"{verb} {node.step}"

    def source(edge: FlowEdge) -> str:
        node = nodes[edge.source]
        return node.step or node.label

    failures = edges[FlowEdgeKind.FAILURE]
    into = [e for e in failures if nodes[e.target].step is not None]
    ended = [source(e) for e in failures if nodes[e.target].step is None][:LIST_LIMIT]
    parts = []
    if into:
        last = into[-1]
        parts.append(f"{source(last)} failing starts the rollback at {back_node(last.target)}")
    if ended:
        parts.append(f"{join(ended, 'or')} failing ends the run with nothing to undo")
    if parts:
        said[FlowEdgeKind.FAILURE] = "; ".join(parts)
    for kind, sentence in _SAID_OF_SOURCES.items():
        sources = [source(e) for e in edges[kind]][:LIST_LIMIT]
        if sources:
            said[kind] = sentence.format(join(sources, "or"))
    back = edges[FlowEdgeKind.COMPENSATION]
    if back:
        chain = [back_node(e.source) for e in back][:LIST_LIMIT]
        more = f" and {len(back) - len(chain)} more" if len(back) > len(chain) else ""
        said[FlowEdgeKind.COMPENSATION] = f"the rollback, latest first: {', '.join(chain)}{more}"
    return [(kind, said[kind]) for kind in FlowEdgeKind if kind in said]
