"""Layout of the flow diagram for the HTML page: boxes and arrows in SVG coordinates.

Three bands. The forward path runs left to right on top (start, the steps in order, the
end reached by completing them). Beneath it, each compensation or mitigation sits under
its own step, so the compensation path reads right to left, ending in the "rolled back"
end under the start. At the bottom, the manual-review state is a bar across the width,
so every "outcome unknown" and "compensation fails" arrow can drop straight into it.
The layout is computed here, in plain Python, so the page needs no script and no
external library; the template only draws what this module measured.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from sagaguard.model import StepClass
from sagaguard.planner.plan import Flow, FlowEdge, FlowEdgeKind, FlowNode, FlowNodeKind

__all__ = ["Arrow", "Box", "Diagram", "layout"]

_STEP_W = 160.0
_TERMINAL_W = 84.0
_TERMINAL_H = 34.0
_GAP_X = 40.0
_MARGIN = 16.0
_LINE_H = 15.0
_PAD_Y = 9.0
_ROW_GAP = 72.0
_CHAR_W = 6.3
_MONO_CHAR_EM = 0.62
_MAX_LINES = 5
_BANDS = 3
_INSET = 22.0

_BAND_OF: dict[FlowNodeKind, int] = {
    FlowNodeKind.START: 0,
    FlowNodeKind.STEP: 0,
    FlowNodeKind.COMPENSATION: 1,
    FlowNodeKind.MITIGATION: 1,
    FlowNodeKind.MANUAL_REVIEW: 2,
}

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
        """SVG text-anchor: the wide manual-review bar reads from its left end."""
        return "start" if self.kind is FlowNodeKind.MANUAL_REVIEW else "middle"

    @property
    def text_x(self) -> float:
        """Where the label lines are anchored."""
        return self.x + 14 if self.anchor == "start" else self.cx

    @property
    def header_size(self) -> float:
        """Font size of the header: 12px, smaller when a long step id would overflow the box."""
        if not self.header:
            return 12.0
        return round(min(12.0, (self.w - 10) / (len(self.header) * _MONO_CHAR_EM)), 1)

    @property
    def baselines(self) -> tuple[float, ...]:
        """Baseline of every text line (header first), centred in the box."""
        count = len(self.lines) + (1 if self.header else 0)
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


def layout(flow: Flow, step_order: tuple[str, ...]) -> Diagram:
    """Place every node of ``flow`` and route every edge (pure, deterministic).

    ``step_order`` is the plan's step ids in process order; it gives each step its column.
    """
    last_col = len(step_order) + 1
    slots = _slots(flow, {step_id: i + 1 for i, step_id in enumerate(step_order)}, last_col)
    widths = {node.id: _node_width(node) for node in flow.nodes}
    col_widths = [_TERMINAL_W] + [_STEP_W] * (last_col - 1) + [_TERMINAL_W]
    for node in flow.nodes:
        if node.kind is not FlowNodeKind.MANUAL_REVIEW:
            col = slots[node.id][1]
            col_widths[col] = max(col_widths[col], widths[node.id])
    lefts = [_MARGIN]
    for width in col_widths:
        lefts.append(lefts[-1] + width + _GAP_X)
    texts = {node.id: _text(node, widths[node.id]) for node in flow.nodes}
    heights = [
        max(
            (_text_height(texts[n.id]) for n in flow.nodes if slots[n.id][0] == band),
            default=0.0,
        )
        for band in range(_BANDS)
    ]
    tops = [_MARGIN]
    for band in range(1, _BANDS):
        tops.append(tops[-1] + heights[band - 1] + (_ROW_GAP if heights[band - 1] else 0.0))
    boxes = {
        node.id: _box(
            node, slots[node.id], texts[node.id], widths[node.id], col_widths, lefts, tops, heights
        )
        for node in flow.nodes
    }
    channels = [tops[b] + heights[b] + _ROW_GAP * 0.4 for b in range(_BANDS)]
    arrows = tuple(
        _route(edge, boxes[edge.source], boxes[edge.target], slots, channels)
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


def _slots(flow: Flow, column: dict[str, int], last_col: int) -> dict[str, tuple[int, int]]:
    """(band, column) of every node; an end goes where the edges that reach it come from."""
    incoming: dict[str, set[FlowEdgeKind]] = {}
    for edge in flow.edges:
        incoming.setdefault(edge.target, set()).add(edge.kind)
    taken: set[tuple[int, int]] = set()
    slots: dict[str, tuple[int, int]] = {}
    for node in flow.nodes:
        if node.kind is FlowNodeKind.END:
            kinds = incoming.get(node.id, set())
            if FlowEdgeKind.FORWARD in kinds:
                band, col = 0, last_col
            else:
                band, col = (1 if FlowEdgeKind.COMPENSATION in kinds else 2), 0
        elif node.kind is FlowNodeKind.START:
            band, col = 0, 0
        else:
            band = _BAND_OF[node.kind]
            col = column.get(node.step or "", 1)
        while (band, col) in taken and band < _BANDS - 1:
            band += 1
        taken.add((band, col))
        slots[node.id] = (band, col)
    return slots


def _node_width(node: FlowNode) -> float:
    if node.kind not in (FlowNodeKind.START, FlowNodeKind.END):
        return _STEP_W
    # An end is as wide as its longest word needs (a process name is one long word).
    longest = max((len(word) for word in node.label.split()), default=0)
    return min(_STEP_W, max(_TERMINAL_W, longest * _CHAR_W + 24))


def _text(node: FlowNode, width: float) -> tuple[str | None, tuple[str, ...]]:
    template = _HEADERS.get(node.kind)
    header = template.format(step=node.step) if template and node.step else None
    if node.kind is FlowNodeKind.MANUAL_REVIEW:
        width = 4 * _STEP_W
    chars = max(8, int((width - 14) / _CHAR_W))
    lines = textwrap.wrap(node.label, chars) or [""]
    if len(lines) > _MAX_LINES:
        lines = lines[:_MAX_LINES]
        lines[-1] = lines[-1][: chars - 1].rstrip() + "…"
    return header, tuple(lines)


def _text_height(text: tuple[str | None, tuple[str, ...]]) -> float:
    header, lines = text
    return (len(lines) + (1 if header else 0)) * _LINE_H + 2 * _PAD_Y


def _box(
    node: FlowNode,
    slot: tuple[int, int],
    text: tuple[str | None, tuple[str, ...]],
    w: float,
    col_widths: list[float],
    lefts: list[float],
    tops: list[float],
    heights: list[float],
) -> Box:
    band, col = slot
    header, lines = text
    terminal = node.kind in (FlowNodeKind.START, FlowNodeKind.END)
    if node.kind is FlowNodeKind.MANUAL_REVIEW:
        # A bar under every step column: each arrow into it can drop straight down.
        # It reaches past the last step's column so the last step's arrow lands on it too.
        last_col = len(col_widths) - 1
        x, w = lefts[1], lefts[last_col] - _GAP_X / 2 + _INSET - lefts[1]
    else:
        x = lefts[col] + (col_widths[col] - w) / 2
    h = max(_TERMINAL_H, _text_height(text)) if terminal else heights[band]
    y = tops[band] + (heights[band] - h) / 2
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
        if node.step_class is StepClass.IRREVERSIBLE:
            return "node step irreversible"
        if node.step_class is StepClass.READ_ONLY:
            return "node step read-only"
        return "node step"
    return f"node {node.kind.value.replace('_', '-')}"


def _route(
    edge: FlowEdge,
    source: Box,
    target: Box,
    slots: dict[str, tuple[int, int]],
    channels: list[float],
) -> Arrow:
    kind = edge.kind.value.replace("_", "-")
    s_band, t_band = slots[edge.source][0], slots[edge.target][0]
    if s_band == t_band:
        # Same band: a straight line between the facing sides.
        y = (max(source.y, target.y) + min(source.y + source.h, target.y + target.h)) / 2
        if target.cx >= source.cx:
            points = [(source.x + source.w, y), (target.x, y)]
        else:
            points = [(source.x, y), (target.x + target.w, y)]
    elif edge.kind is FlowEdgeKind.FAILURE or t_band < s_band:
        points = _failure_route(source, target, s_band, t_band, channels)
    elif target.kind is FlowNodeKind.MANUAL_REVIEW:
        # Into the manual-review bar: straight down, or via the gap right of the source.
        if t_band == s_band + 1:
            x = source.cx + _INSET / 2
            points = [(x, source.y + source.h), (x, target.y)]
        else:
            # Out of the right side, below the forward arrow, and down the gap.
            y = source.y + source.h - _PAD_Y
            gap_x = source.x + source.w + _GAP_X / 2
            points = [(source.x + source.w, y), (gap_x, y), (gap_x, target.y)]
    else:
        points = [(source.cx, source.y + source.h), (target.cx, target.y)]
    return Arrow(d=_path(points), kind=kind, label=edge.label or None)


def _failure_route(
    source: Box, target: Box, s_band: int, t_band: int, channels: list[float]
) -> list[tuple[float, float]]:
    x0 = source.x + _INSET
    y0 = source.y + source.h
    y = channels[s_band]
    if t_band == s_band + 1:
        x1 = target.x + target.w - _INSET if target.cx < source.cx else target.x + _INSET
        return [(x0, y0), (x0, y), (x1, y), (x1, target.y)]
    # Further down: through the gap beside the target, then into its side.
    if target.cx < source.cx:
        gap_x, side = target.x + target.w + _GAP_X / 2, target.x + target.w
    else:
        gap_x, side = target.x - _GAP_X / 2, target.x
    return [(x0, y0), (x0, y), (gap_x, y), (gap_x, target.cy), (side, target.cy)]


def _path(points: list[tuple[float, float]]) -> str:
    head, *rest = points
    return f"M{head[0]:.1f},{head[1]:.1f} " + " ".join(f"L{x:.1f},{y:.1f}" for x, y in rest)
