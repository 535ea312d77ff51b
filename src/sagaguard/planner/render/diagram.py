"""Layout of the flow diagram for the HTML page: boxes and arrows in SVG coordinates.

The diagram runs top to bottom, so it fits the width of a page whatever the number of
steps. Three columns:

- the forward path on the left: the process, each step in order, "completed";
- beside each step, its compensation (or mitigation) when a rollback can reach it, so the
  rollback path reads bottom to top and ends in "rolled back" beside the start;
- on the right, the manual-review state as a tall bar every "outcome unknown", "failed after
  the pivot" and "compensation fails" arrow can reach with a horizontal line.

Every label is wrapped to its box and never cut: a box grows as tall as its text needs. The
layout is computed here, in plain Python, so the page needs no script and no external
library; the template only draws what this module measured.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from sagaguard.planner.plan import Flow, FlowEdge, FlowEdgeKind, FlowNode, FlowNodeKind
from sagaguard.planner.render.labels import step_look

__all__ = ["Arrow", "Box", "Diagram", "layout"]

_MARGIN = 28.0
_COL_W = (210.0, 210.0, 150.0)
_GAP_X = 64.0
_ROW_GAP = 30.0
_LINE_H = 15.0
_PAD_Y = 9.0
_TERMINAL_H = 34.0
_CHAR_W = 6.3
_MONO_CHAR_EM = 0.62
_SKIP_X = 16.0

_HEADERS: dict[FlowNodeKind, str] = {
    FlowNodeKind.STEP: "{step}",
    FlowNodeKind.COMPENSATION: "undo {step}",
    FlowNodeKind.MITIGATION: "mitigate {step}",
}


@dataclass(frozen=True, slots=True)
class Box:
    """One node, placed: top-left corner, size, optional bold header, wrapped label lines."""

    id: str
    kind: FlowNodeKind
    x: float
    y: float
    w: float
    h: float
    header: str | None
    lines: tuple[str, ...]
    title: str
    css: str
    rx: float

    @property
    def cx(self) -> float:
        """Horizontal centre."""
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        """Vertical centre."""
        return self.y + self.h / 2

    @property
    def anchor(self) -> str:
        """SVG text-anchor: every label is centred."""
        return "middle"

    @property
    def text_x(self) -> float:
        """Where the label lines are anchored."""
        return self.cx

    @property
    def header_size(self) -> float:
        """Font size of the header: 12px, smaller when a long step id would overflow the box."""
        if not self.header:
            return 12.0
        return round(min(12.0, (self.w - 10) / (len(self.header) * _MONO_CHAR_EM)), 1)

    @property
    def baselines(self) -> tuple[float, ...]:
        """Baseline of every text line (header first), centred in the box (or at its top)."""
        count = len(self.lines) + (1 if self.header else 0)
        if self.kind is FlowNodeKind.MANUAL_REVIEW:
            first = self.y + _PAD_Y + 11
        else:
            first = self.cy - (count - 1) * _LINE_H / 2 + 4
        return tuple(first + i * _LINE_H for i in range(count))


@dataclass(frozen=True, slots=True)
class Arrow:
    """One edge, routed: an SVG path, its kind (CSS class and marker) and its label."""

    d: str
    kind: str
    label: str | None


@dataclass(frozen=True, slots=True)
class Diagram:
    """The whole drawing: canvas size, boxes and arrows."""

    width: float
    height: float
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]


@dataclass(frozen=True, slots=True)
class _Grid:
    lefts: tuple[float, float, float]
    tops: list[float]
    heights: list[float]

    def gap(self, col: int) -> float:
        """The x of the vertical channel right of column ``col``."""
        return self.lefts[col] + _COL_W[col] + _GAP_X / 2

    def channel(self, row: int) -> float:
        """The y of the horizontal channel just above row ``row``."""
        return self.tops[row] - _ROW_GAP / 2


def layout(flow: Flow, step_order: tuple[str, ...]) -> Diagram:
    """Place every node of ``flow`` and route every edge (pure, deterministic).

    ``step_order`` is the plan's step ids in process order; it gives each step its row.
    """
    rows = {step_id: i + 1 for i, step_id in enumerate(step_order)}
    slots = _slots(flow, rows, len(step_order) + 1)
    texts = {n.id: _text(n, _COL_W[slots[n.id][1]]) for n in flow.nodes}
    heights = [0.0] * (len(step_order) + 2)
    for node in flow.nodes:
        if node.kind is FlowNodeKind.MANUAL_REVIEW:
            continue
        row = slots[node.id][0]
        heights[row] = max(heights[row], _height(node, texts[node.id]))
    tops = [_MARGIN]
    for row in range(1, len(heights)):
        tops.append(tops[-1] + heights[row - 1] + _ROW_GAP)
    lefts = (
        _MARGIN + _SKIP_X,
        _MARGIN + _SKIP_X + _COL_W[0] + _GAP_X,
        _MARGIN + _SKIP_X + _COL_W[0] + _COL_W[1] + 2 * _GAP_X,
    )
    grid = _Grid(lefts=lefts, tops=tops, heights=heights)
    boxes = {n.id: _box(n, slots[n.id], texts[n.id], grid) for n in flow.nodes}
    arrows = tuple(
        _route(edge, boxes[edge.source], boxes[edge.target], slots, grid)
        for edge in flow.edges
        if edge.source in boxes and edge.target in boxes
    )
    right = max((b.x + b.w for b in boxes.values()), default=_MARGIN)
    bottom = max((b.y + b.h for b in boxes.values()), default=_MARGIN)
    return Diagram(
        width=round(right + _MARGIN, 1),
        height=round(bottom + _MARGIN, 1),
        boxes=tuple(boxes.values()),
        arrows=arrows,
    )


def _slots(flow: Flow, rows: dict[str, int], last_row: int) -> dict[str, tuple[int, int]]:
    """(row, column) of every node; the ends go where the edges that reach them come from."""
    incoming: dict[str, set[FlowEdgeKind]] = {}
    for edge in flow.edges:
        incoming.setdefault(edge.target, set()).add(edge.kind)
    rolled_back = any(n.id == "end_rolled_back" for n in flow.nodes)
    slots: dict[str, tuple[int, int]] = {}
    for node in flow.nodes:
        if node.kind is FlowNodeKind.START:
            slots[node.id] = (0, 0)
        elif node.kind is FlowNodeKind.STEP:
            slots[node.id] = (rows.get(node.step or "", 1), 0)
        elif node.kind in (FlowNodeKind.COMPENSATION, FlowNodeKind.MITIGATION):
            slots[node.id] = (rows.get(node.step or "", 1), 1)
        elif node.kind is FlowNodeKind.MANUAL_REVIEW:
            slots[node.id] = (1, 2)
        elif FlowEdgeKind.FORWARD in incoming.get(node.id, set()) or (
            FlowEdgeKind.SKIPPED in incoming.get(node.id, set())
        ):
            slots[node.id] = (last_row, 0)
        elif FlowEdgeKind.COMPENSATION in incoming.get(node.id, set()) or not rolled_back:
            slots[node.id] = (0, 1)
        else:
            slots[node.id] = (0, 2)
    return slots


def _text(node: FlowNode, width: float) -> tuple[str | None, tuple[str, ...]]:
    template = _HEADERS.get(node.kind)
    header = template.format(step=node.step) if template and node.step else None
    chars = max(8, int((width - 16) / _CHAR_W))
    lines = textwrap.wrap(node.label, chars, break_long_words=True) or [""]
    # The role reads on a line of its own, so a long step id keeps its full size.
    if header and node.pivot:
        lines.insert(0, "(pivot: the point of no return)")
    elif header and not node.required:
        lines.insert(0, "(best-effort)")
    return header, tuple(lines)


def _height(node: FlowNode, text: tuple[str | None, tuple[str, ...]]) -> float:
    header, lines = text
    measured = (len(lines) + (1 if header else 0)) * _LINE_H + 2 * _PAD_Y
    if node.kind in (FlowNodeKind.START, FlowNodeKind.END):
        return max(_TERMINAL_H, measured)
    return measured


def _box(
    node: FlowNode,
    slot: tuple[int, int],
    text: tuple[str | None, tuple[str, ...]],
    grid: _Grid,
) -> Box:
    row, col = slot
    header, lines = text
    terminal = node.kind in (FlowNodeKind.START, FlowNodeKind.END)
    x, w = grid.lefts[col], _COL_W[col]
    if node.kind is FlowNodeKind.MANUAL_REVIEW:
        # A bar beside every step row, so each arrow into it is a horizontal line.
        y = grid.tops[1]
        h = max(_height(node, text), grid.tops[-1] - _ROW_GAP - y)
    elif terminal:
        h = _height(node, text)
        y = grid.tops[row] + (grid.heights[row] - h) / 2
    else:
        h = grid.heights[row]
        y = grid.tops[row]
    return Box(
        id=node.id,
        kind=node.kind,
        x=round(x, 1),
        y=round(y, 1),
        w=round(w, 1),
        h=round(h, 1),
        header=header,
        lines=lines,
        title=node.label,
        css=_box_css(node),
        rx=17.0 if terminal else 6.0,
    )


def _box_css(node: FlowNode) -> str:
    if node.kind is FlowNodeKind.STEP:
        look = step_look(node)
        return "node step" if look == "step" else f"node step {look}"
    return f"node {node.kind.value.replace('_', '-')}"


def _route(
    edge: FlowEdge,
    source: Box,
    target: Box,
    slots: dict[str, tuple[int, int]],
    grid: _Grid,
) -> Arrow:
    kind = edge.kind.value.replace("_", "-")
    s_row, s_col = slots[edge.source]
    t_col = slots[edge.target][1]
    points: list[tuple[float, float]]
    if edge.kind is FlowEdgeKind.FORWARD:
        points = [(source.cx, source.y + source.h), (target.cx, target.y)]
    elif edge.kind is FlowEdgeKind.SKIPPED:
        # Around the left of the step it passes, into the next one.
        x = source.x - _SKIP_X
        points = [(source.x, source.cy), (x, source.cy), (x, target.cy), (target.x, target.cy)]
    elif edge.kind is FlowEdgeKind.COMPENSATION:
        points = [(source.cx, source.y), (target.cx, target.y + target.h)]
    elif target.kind is FlowNodeKind.MANUAL_REVIEW and s_col == 1:
        points = [(source.x + source.w, source.cy), (target.x, source.cy)]
    elif edge.kind is FlowEdgeKind.FORWARD_RECOVERY:
        # After the pivot nothing sits beside the step: straight across to the bar.
        points = [(source.x + source.w, source.cy), (target.x, source.cy)]
    elif edge.kind is FlowEdgeKind.UNKNOWN_OUTCOME:
        # Down into the channel below the step, then across to the bar.
        x = source.x + source.w - 24
        y = grid.channel(s_row + 1) if s_row + 1 < len(grid.tops) else source.y + source.h + 10
        y = min(y, target.y + target.h - 8)
        points = [(x, source.y + source.h), (x, y), (target.x, y)]
    else:
        points = _failure_route(source, target, s_row, t_col, grid)
    return Arrow(d=_path(points), kind=kind, label=edge.label or None)


def _failure_route(
    source: Box, target: Box, s_row: int, t_col: int, grid: _Grid
) -> list[tuple[float, float]]:
    """From a step's right side up the channel beside it, into the target's left side.

    Neighbouring steps climb the channel a few pixels apart, so their arrows stay apart.
    """
    x0, y0 = source.x + source.w, source.cy - 6
    gap = grid.gap(0) + (s_row % 3 - 1) * 8
    if t_col == 1:
        return [(x0, y0), (gap, y0), (gap, target.cy), (target.x, target.cy)]
    # An end in the right column: over the row of the first undo, then down into it.
    y = grid.channel(1)
    gap2 = grid.gap(1)
    return [(x0, y0), (gap, y0), (gap, y), (gap2, y), (gap2, target.cy), (target.x, target.cy)]


def _path(points: list[tuple[float, float]]) -> str:
    head, *rest = points
    return f"M{head[0]:.1f},{head[1]:.1f} " + " ".join(f"L{x:.1f},{y:.1f}" for x, y in rest)
