"""The SVG layout of the flow diagram: forward path on top, compensations beneath, no overlap."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from sagaguard import load_spec
from sagaguard.planner import Plan, plan
from sagaguard.planner.plan import FlowNodeKind
from sagaguard.planner.render.diagram import Box, Diagram, layout

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def drawn(process_plan: Plan) -> Diagram:
    return layout(process_plan.flow, tuple(s.id for s in process_plan.steps))


def overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


@pytest.fixture(params=EXAMPLES, ids=lambda p: p.stem)
def example(request: pytest.FixtureRequest) -> Plan:
    path: Path = request.param
    return plan(load_spec(path))


def test_every_node_and_edge_is_drawn_once(example: Plan) -> None:
    """One box per flow node, one arrow per flow edge, all inside the canvas."""
    diagram = drawn(example)
    assert [b.id for b in diagram.boxes] == [n.id for n in example.flow.nodes]
    assert len(diagram.arrows) == len(example.flow.edges)
    for box in diagram.boxes:
        assert box.x >= 0
        assert box.y >= 0
        assert box.x + box.w <= diagram.width
        assert box.y + box.h <= diagram.height


def test_no_two_boxes_overlap(example: Plan) -> None:
    """Boxes never cover each other, whatever the mix of steps."""
    for a, b in itertools.combinations(drawn(example).boxes, 2):
        assert not overlap(a, b), (a.id, b.id)


def test_forward_path_runs_left_to_right_with_undo_boxes_beneath(example: Plan) -> None:
    """Steps sit in process order on one row; each compensation sits under its own step."""
    boxes = {b.id: b for b in drawn(example).boxes}
    nodes = {n.id: n for n in example.flow.nodes}
    steps = [boxes[n.id] for n in example.flow.nodes if n.kind is FlowNodeKind.STEP]
    assert [b.x for b in steps] == sorted(b.x for b in steps)
    assert len({b.y for b in steps}) == 1
    for node_id, box in boxes.items():
        node = nodes[node_id]
        if node.kind in (FlowNodeKind.COMPENSATION, FlowNodeKind.MITIGATION):
            above = next(b for b in steps if nodes[b.id].step == node.step)
            assert box.cx == above.cx
            assert box.y > above.y + above.h


def test_arrows_are_paths_between_the_boxes(example: Plan) -> None:
    """Every arrow is a plain move/line path whose ends stay on the canvas."""
    diagram = drawn(example)
    for arrow in diagram.arrows:
        assert re.fullmatch(r"M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+", arrow.d), arrow.d
        numbers = [float(n) for n in re.findall(r"[\d.]+", arrow.d)]
        assert all(0 <= n <= max(diagram.width, diagram.height) for n in numbers)


def test_long_step_ids_shrink_the_header_to_fit() -> None:
    """A long step id is drawn smaller rather than spilling out of its box."""
    process_plan = plan(load_spec(EXAMPLES[0].parent / "checkout.yaml"))
    email = next(b for b in drawn(process_plan).boxes if b.header == "send_confirmation_email")
    assert email.header_size < 12
    assert len(email.header or "") * email.header_size * 0.62 <= email.w
