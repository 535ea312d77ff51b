"""The plan's flow diagram as a Mermaid flowchart (the Markdown renderer embeds it).

The forward path runs top to bottom with solid arrows; everything that runs on the way
back (failure, compensation, unknown outcome, failed compensation) is dashed. Top to
bottom keeps every box readable at the width of a rendered Markdown page. Node ids
are prefixed so that a step called ``end`` or ``graph`` cannot clash with Mermaid syntax.
"""

from __future__ import annotations

import re

from sagaguard.planner.plan import Flow, FlowEdgeKind, FlowNode, FlowNodeKind
from sagaguard.planner.render.labels import step_look

__all__ = ["render_mermaid"]

_SHAPES: dict[FlowNodeKind, tuple[str, str]] = {
    FlowNodeKind.START: ("([", "])"),
    FlowNodeKind.END: ("([", "])"),
    FlowNodeKind.STEP: ("[", "]"),
    FlowNodeKind.COMPENSATION: ("[", "]"),
    FlowNodeKind.MITIGATION: ("{{", "}}"),
    FlowNodeKind.MANUAL_REVIEW: ("[[", "]]"),
}

_ARROWS: dict[FlowEdgeKind, str] = {
    FlowEdgeKind.FORWARD: "-->",
    FlowEdgeKind.FAILURE: "-.->",
    FlowEdgeKind.FORWARD_RECOVERY: "-.->",
    FlowEdgeKind.SKIPPED: "-.->",
    FlowEdgeKind.COMPENSATION: "-.->",
    FlowEdgeKind.UNKNOWN_OUTCOME: "-.->",
    FlowEdgeKind.COMPENSATION_FAILED: "-.->",
}

# linkStyle replaces the dotted pattern of `-.->`, so each dashed kind restates its own.
_EDGE_STYLES: dict[FlowEdgeKind, str] = {
    FlowEdgeKind.FORWARD: "stroke:#1f6feb,stroke-width:2px",
    FlowEdgeKind.FAILURE: "stroke:#cf222e,stroke-width:1.5px,stroke-dasharray:6 4",
    FlowEdgeKind.FORWARD_RECOVERY: "stroke:#8250df,stroke-width:1.5px,stroke-dasharray:6 4",
    FlowEdgeKind.SKIPPED: "stroke:#8c959f,stroke-width:1.5px,stroke-dasharray:6 4",
    FlowEdgeKind.COMPENSATION: "stroke:#bc4c00,stroke-width:1.5px,stroke-dasharray:6 4",
    FlowEdgeKind.UNKNOWN_OUTCOME: "stroke:#8250df,stroke-width:1.5px,stroke-dasharray:2 3",
    FlowEdgeKind.COMPENSATION_FAILED: "stroke:#cf222e,stroke-width:1.5px,stroke-dasharray:2 3",
}

_HEADERS: dict[FlowNodeKind, str] = {
    FlowNodeKind.STEP: "{step}",
    FlowNodeKind.COMPENSATION: "undo {step}",
    FlowNodeKind.MITIGATION: "mitigate {step}",
}

_CLASS_DEFS = (
    "classDef terminal fill:#eaeef2,stroke:#57606a,color:#24292f",
    "classDef step fill:#ddf4ff,stroke:#0969da,color:#0a3069",
    "classDef irreversible fill:#fff8c5,stroke:#9a6700,color:#4d2d00",
    "classDef readonly fill:#f6f8fa,stroke:#8c959f,color:#24292f",
    "classDef pivot fill:#fff8c5,stroke:#9a6700,stroke-width:3px,color:#4d2d00",
    "classDef besteffort fill:#f6f8fa,stroke:#8c959f,stroke-dasharray:4 3,color:#24292f",
    "classDef compensation fill:#fff1e5,stroke:#bc4c00,color:#762c00",
    "classDef mitigation fill:#fbefff,stroke:#8250df,color:#3e1f79",
    "classDef manual fill:#ffebe9,stroke:#cf222e,color:#82071e",
)

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def render_mermaid(flow: Flow) -> list[str]:
    """The flowchart as lines of Mermaid source (without the surrounding code fence)."""
    lines = ["flowchart TB"]
    for node in flow.nodes:
        opening, closing = _SHAPES[node.kind]
        lines.append(f'  {_node_id(node.id)}{opening}"{_node_label(node)}"{closing}')
    for edge in flow.edges:
        arrow = _ARROWS[edge.kind]
        label = f'|"{_label(edge.label)}"|' if edge.label else ""
        lines.append(f"  {_node_id(edge.source)} {arrow}{label} {_node_id(edge.target)}")
    lines += [f"  {definition}" for definition in _CLASS_DEFS]
    groups: dict[str, list[str]] = {}
    for node in flow.nodes:
        groups.setdefault(_node_class(node), []).append(_node_id(node.id))
    lines += [f"  class {','.join(ids)} {name}" for name, ids in groups.items()]
    by_kind: dict[FlowEdgeKind, list[str]] = {}
    for index, edge in enumerate(flow.edges):
        by_kind.setdefault(edge.kind, []).append(str(index))
    for kind, indexes in by_kind.items():
        lines.append(f"  linkStyle {','.join(indexes)} {_EDGE_STYLES[kind]}")
    return lines


def _node_id(raw: str) -> str:
    return "n_" + _ID_UNSAFE.sub("_", raw)


def _node_label(node: FlowNode) -> str:
    template = _HEADERS.get(node.kind)
    if template is None or node.step is None:
        return _label(node.label)
    header = template.format(step=node.step)
    if node.pivot:
        header += " (pivot)"
    elif not node.required:
        header += " (best-effort)"
    return f"<b>{_label(header)}</b><br/>{_label(node.label)}"


def _label(text: str) -> str:
    # Mermaid reads entity codes inside quoted labels; quotes and angle brackets would
    # otherwise end the label or be taken for HTML.
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


def _node_class(node: FlowNode) -> str:
    if node.kind in (FlowNodeKind.START, FlowNodeKind.END):
        return "terminal"
    if node.kind is FlowNodeKind.STEP:
        return step_look(node).replace("-", "")  # its classDefs are named without hyphens
    if node.kind is FlowNodeKind.COMPENSATION:
        return "compensation"
    if node.kind is FlowNodeKind.MITIGATION:
        return "mitigation"
    return "manual"
