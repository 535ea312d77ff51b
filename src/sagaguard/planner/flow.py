"""The flow diagram of a plan: forward path, compensation path, and where a person takes over.

Node ids are prefixed (``step_``, ``undo_``, ``mitigate_``, ``end_``) so they never collide
with each other whatever the step ids are. Renderers draw Mermaid or SVG from this directly.

    start -> step_a -> step_b -> ... -> end_completed               (forward)
    step_k -fails-> latest side-effecting step before k, undone or mitigated
    undo_j -> undo_i / mitigate_i -> ... -> end_rolled_back          (compensation, backward)
    step_k -outcome unknown-> manual_review   (no safe retry, verify cannot tell, or the
                                              retries of an idempotent step never answer)
    undo_j -compensation fails-> manual_review
"""

from __future__ import annotations

import itertools

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Process, Step, StepClass
from sagaguard.planner.plan import Flow, FlowEdge, FlowEdgeKind, FlowNode, FlowNodeKind
from sagaguard.planner.wording import compensation_instruction, mitigation_for, side_effecting

__all__ = ["build_flow", "reverse_node_id", "step_node_id"]

START = "start"
END_COMPLETED = "end_completed"
END_ROLLED_BACK = "end_rolled_back"
END_FAILED = "end_failed"
MANUAL_REVIEW = "manual_review"


def step_node_id(step: Step) -> str:
    """Node id of a step on the forward path."""
    return f"step_{step.id}"


def reverse_node_id(step: Step) -> str:
    """Node id of a step on the compensation path (undo or mitigation)."""
    prefix = "undo" if step.step_class is StepClass.COMPENSATABLE else "mitigate"
    return f"{prefix}_{step.id}"


def build_flow(process: Process) -> Flow:
    """Nodes and edges of the forward and compensation paths."""
    nodes = [
        FlowNode(id=START, label=process.name, kind=FlowNodeKind.START, step=None, step_class=None)
    ]
    edges: list[FlowEdge] = []
    previous = START
    for step in process.steps:
        node = step_node_id(step)
        nodes.append(
            FlowNode(
                id=node,
                label=step.action_text,
                kind=FlowNodeKind.STEP,
                step=step.id,
                step_class=step.step_class,
            )
        )
        edges.append(FlowEdge(source=previous, target=node, kind=FlowEdgeKind.FORWARD, label=None))
        previous = node
    nodes.append(
        FlowNode(
            id=END_COMPLETED, label="completed", kind=FlowNodeKind.END, step=None, step_class=None
        )
    )
    edges.append(
        FlowEdge(source=previous, target=END_COMPLETED, kind=FlowEdgeKind.FORWARD, label=None)
    )

    # The last step is never undone: nothing after it can fail.
    chain = [s for s in reversed(process.steps[:-1]) if side_effecting(s)]
    for step in chain:
        compensatable = step.step_class is StepClass.COMPENSATABLE
        nodes.append(
            FlowNode(
                id=reverse_node_id(step),
                label=compensation_instruction(step) if compensatable else mitigation_for(step),
                kind=FlowNodeKind.COMPENSATION if compensatable else FlowNodeKind.MITIGATION,
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
        nodes.append(
            FlowNode(
                id=END_ROLLED_BACK,
                label="rolled back",
                kind=FlowNodeKind.END,
                step=None,
                step_class=None,
            )
        )
        edges.append(
            FlowEdge(
                source=reverse_node_id(chain[-1]),
                target=END_ROLLED_BACK,
                kind=FlowEdgeKind.COMPENSATION,
                label=None,
            )
        )

    needs_failed_end = False
    for index, step in enumerate(process.steps):
        before = [s for s in reversed(process.steps[:index]) if side_effecting(s)]
        if before:
            target = reverse_node_id(before[0])
        else:
            target, needs_failed_end = END_FAILED, True
        edges.append(
            FlowEdge(
                source=step_node_id(step), target=target, kind=FlowEdgeKind.FAILURE, label="fails"
            )
        )
    if needs_failed_end:
        nodes.append(
            FlowNode(
                id=END_FAILED,
                label="failed, nothing to undo",
                kind=FlowNodeKind.END,
                step=None,
                step_class=None,
            )
        )

    review: list[FlowEdge] = []
    for step in process.steps:
        ruling = decide(step, Situation.TIMEOUT)
        if ruling.decision is Decision.VERIFY:
            label = "outcome unknown, verify cannot tell"
        elif ruling.decision is Decision.MANUAL_REVIEW:
            label = "outcome unknown"
        elif ruling.then is Decision.MANUAL_REVIEW:
            # Idempotent: retried with the same key, and a person decides if none answers.
            label = f"still unknown after {process.max_attempts_for(step)} attempts"
        else:
            continue
        review.append(
            FlowEdge(
                source=step_node_id(step),
                target=MANUAL_REVIEW,
                kind=FlowEdgeKind.UNKNOWN_OUTCOME,
                label=label,
            )
        )
    for step in chain:
        if step.step_class is StepClass.COMPENSATABLE:
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
