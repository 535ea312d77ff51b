"""The flow diagram of a plan: forward path, rollback path, and where a person takes over.

Node ids are prefixed (``step_``, ``undo_``, ``mitigate_``, ``end_``) so they never collide
with each other whatever the step ids are. Renderers draw Mermaid or SVG from this directly.

    start -> step_a -> step_b -> ... -> end_completed               (forward)
    step_k -fails-> latest step before k a rollback visits (undo or mitigate), or end_failed
    undo_j -> undo_i / mitigate_i -> ... -> end_rolled_back          (compensation, backward)
    step_k -fails-> manual_review      after the pivot: forward recovery, then a person
    step_k -fails-> step_k+1           best-effort: skipped, the run goes on
    step_k -outcome unknown-> manual_review
    undo_j -compensation fails-> manual_review
"""

from __future__ import annotations

import itertools

from sagaguard.model import Phase, Step, StepClass
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import Flow, FlowEdge, FlowEdgeKind, FlowNode, FlowNodeKind
from sagaguard.planner.wording import (
    compensation_instruction,
    fmt_seconds,
    mitigation_for,
    plural,
)
from sagaguard.rules import Decision, Situation, StepKind

__all__ = ["build_flow", "reverse_node_id", "step_node_id"]

START = "start"
END_COMPLETED = "end_completed"
END_ROLLED_BACK = "end_rolled_back"
END_FAILED = "end_failed"
MANUAL_REVIEW = "manual_review"

_UNKNOWN_LABELS = {
    StepKind.VERIFIABLE: "outcome unknown, verify cannot tell",
    StepKind.VERIFY_UNBOUND: "outcome unknown, verify not bound to code",
    StepKind.UNVERIFIABLE: "outcome unknown",
}


def step_node_id(step: Step) -> str:
    """Node id of a step on the forward path."""
    return f"step_{step.id}"


def reverse_node_id(step: Step) -> str:
    """Node id of a step on the compensation path (undo or mitigation)."""
    prefix = "undo" if step.step_class is StepClass.COMPENSATABLE else "mitigate"
    return f"{prefix}_{step.id}"


def _end(node_id: str, label: str) -> FlowNode:
    return FlowNode(id=node_id, label=label, kind=FlowNodeKind.END, step=None, step_class=None)


def build_flow(ctx: Planning) -> Flow:
    """Nodes and edges of the forward and compensation paths."""
    nodes = [
        FlowNode(
            id=START, label=ctx.process.name, kind=FlowNodeKind.START, step=None, step_class=None
        )
    ]
    edges: list[FlowEdge] = []
    previous = START
    for step in ctx.steps:
        node = step_node_id(step)
        nodes.append(
            FlowNode(
                id=node,
                label=" ".join(step.action_text.split()),
                kind=FlowNodeKind.STEP,
                step=step.id,
                step_class=step.step_class,
                pivot=ctx.phase(step) is Phase.PIVOT,
                required=step.required,
            )
        )
        edges.append(FlowEdge(source=previous, target=node, kind=FlowEdgeKind.FORWARD, label=None))
        previous = node
    nodes.append(_end(END_COMPLETED, "completed"))
    edges.append(
        FlowEdge(source=previous, target=END_COMPLETED, kind=FlowEdgeKind.FORWARD, label=None)
    )

    chain = ctx.rollback_chain()
    for step in chain:
        undo = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
        nodes.append(
            FlowNode(
                id=reverse_node_id(step),
                label=compensation_instruction(step) if undo else mitigation_for(step),
                kind=FlowNodeKind.COMPENSATION if undo else FlowNodeKind.MITIGATION,
                step=step.id,
                step_class=step.step_class,
            )
        )
    for upper, lower in itertools.pairwise(chain):
        edges.append(
            FlowEdge(
                source=reverse_node_id(upper),
                target=reverse_node_id(lower),
                kind=FlowEdgeKind.COMPENSATION,
                label=None,
            )
        )
    if chain:
        nodes.append(_end(END_ROLLED_BACK, "rolled back"))
        edges.append(
            FlowEdge(
                source=reverse_node_id(chain[-1]),
                target=END_ROLLED_BACK,
                kind=FlowEdgeKind.COMPENSATION,
                label=None,
            )
        )

    review: list[FlowEdge] = []
    needs_failed_end = False
    for index, step in enumerate(ctx.steps):
        edge, failed_end = _failure_edge(ctx, index, step, review)
        needs_failed_end |= failed_end
        if edge is not None:
            edges.append(edge)
    if needs_failed_end:
        nodes.append(_end(END_FAILED, "failed, nothing to undo"))

    for step in ctx.steps:
        ruling = ctx.ruling(step, Situation.TIMEOUT)
        if ruling.ends is not Decision.MANUAL_REVIEW:
            continue
        kind = ctx.kind(step)
        attempts = ruling.bound.attempts or 1 if ruling.bound else 1
        label = _UNKNOWN_LABELS.get(kind) or f"still unknown after {plural(attempts, 'attempt')}"
        review.append(
            FlowEdge(
                source=step_node_id(step),
                target=MANUAL_REVIEW,
                kind=FlowEdgeKind.UNKNOWN_OUTCOME,
                label=label,
            )
        )
    for step in chain:
        if ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE:
            review.append(
                FlowEdge(
                    source=reverse_node_id(step),
                    target=MANUAL_REVIEW,
                    kind=FlowEdgeKind.COMPENSATION_FAILED,
                    label="compensation fails",
                )
            )
    if review:
        nodes.append(
            FlowNode(
                id=MANUAL_REVIEW,
                label="needs_manual_review (alert)",
                kind=FlowNodeKind.MANUAL_REVIEW,
                step=None,
                step_class=None,
            )
        )
        edges += review
    return Flow(nodes=tuple(nodes), edges=tuple(edges))


def _failure_edge(
    ctx: Planning, index: int, step: Step, review: list[FlowEdge]
) -> tuple[FlowEdge | None, bool]:
    """The edge a failure for good of ``step`` takes; True when it ends at ``end_failed``."""
    source = step_node_id(step)
    decision = ctx.give_up(step)
    if decision is Decision.MANUAL_REVIEW:
        window = fmt_seconds(ctx.process.retry_for(step))
        review.append(
            FlowEdge(
                source=source,
                target=MANUAL_REVIEW,
                kind=FlowEdgeKind.FORWARD_RECOVERY,
                label=f"fails: retried for {window}, then a person",
            )
        )
        return None, False
    if decision is Decision.CONTINUE:
        following = ctx.steps[index + 1] if index + 1 < len(ctx.steps) else None
        target = step_node_id(following) if following is not None else END_COMPLETED
        edge = FlowEdge(
            source=source, target=target, kind=FlowEdgeKind.SKIPPED, label="fails: skipped"
        )
        return edge, False
    first = ctx.latest_in_chain(index)
    if first is not None:
        target = reverse_node_id(first)
        return FlowEdge(
            source=source, target=target, kind=FlowEdgeKind.FAILURE, label="fails"
        ), False
    edge = FlowEdge(source=source, target=END_FAILED, kind=FlowEdgeKind.FAILURE, label="fails")
    return edge, True
