"""The SVG flow diagram: top to bottom so it fits the page, no overlap, no text cut."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from sagaguard import load_spec
from sagaguard.model import Process
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


def test_forward_path_runs_top_to_bottom_with_undo_boxes_beside(example: Plan) -> None:
    """Steps sit in process order in one column; each compensation beside its own step."""
    boxes = {b.id: b for b in drawn(example).boxes}
    nodes = {n.id: n for n in example.flow.nodes}
    steps = [boxes[n.id] for n in example.flow.nodes if n.kind is FlowNodeKind.STEP]
    assert [b.y for b in steps] == sorted(b.y for b in steps)
    assert len({b.x for b in steps}) == 1
    for node_id, box in boxes.items():
        node = nodes[node_id]
        if node.kind in (FlowNodeKind.COMPENSATION, FlowNodeKind.MITIGATION):
            beside = next(b for b in steps if nodes[b.id].step == node.step)
            assert box.cy == beside.cy
            assert box.x > beside.x + beside.w


def test_the_diagram_fits_the_page_whatever_the_number_of_steps() -> None:
    """Twenty steps are as wide as five: the page (1180px) holds the drawing."""
    steps = [
        {"id": f"step_{i}", "changes": ["database"], "idempotent": "yes", "compensation": "x"}
        for i in range(20)
    ]
    many = plan(
        Process.model_validate(
            {"process": "p", "state_store": "database", "observability": [], "steps": steps}
        )
    )
    few = plan(load_spec(EXAMPLES[0].parent / "checkout.yaml"))
    assert drawn(many).width == drawn(few).width
    assert drawn(many).width <= 1180 - 2 * 28


def test_node_text_is_never_cut() -> None:
    """A long compensation wraps onto as many lines as it needs; every word is drawn."""
    text = " ".join(f"word{i}" for i in range(60))
    long = plan(
        Process.model_validate(
            {
                "process": "p",
                "state_store": "database",
                "observability": [],
                "steps": [
                    {"id": "a", "changes": ["database"], "idempotent": "yes", "compensation": text},
                    {"id": "b", "changes": ["database"], "idempotent": "yes"},
                ],
            }
        )
    )
    [undo] = [b for b in drawn(long).boxes if b.id == "undo_a"]
    assert " ".join(undo.lines).split() == text.split()
    assert "…" not in " ".join(undo.lines)
    assert undo.baselines[-1] < undo.y + undo.h


def test_arrows_are_paths_between_the_boxes(example: Plan) -> None:
    """Every arrow is a plain move/line path whose ends stay on the canvas."""
    diagram = drawn(example)
    for arrow in diagram.arrows:
        assert re.fullmatch(r"M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+", arrow.d), arrow.d
        numbers = [float(n) for n in re.findall(r"[\d.]+", arrow.d)]
        assert all(0 <= n <= max(diagram.width, diagram.height) for n in numbers)


def test_long_step_ids_shrink_the_header_to_fit() -> None:
    """A long step id is drawn smaller rather than spilling out of its box; a role such as
    "(best-effort)" goes on a line of its own, so it never shrinks the id."""
    long_id = "send_the_order_confirmation_email_to_the_customer"
    process_plan = plan(
        Process.model_validate(
            {
                "process": "p",
                "state_store": "database",
                "observability": [],
                "steps": [
                    {"id": "write", "changes": ["database"], "idempotent": "yes"},
                    {
                        "id": long_id,
                        "changes": ["email"],
                        "idempotent": "no",
                        "compensation": "none",
                        "required": False,
                    },
                ],
            }
        )
    )
    boxes = {b.id: b for b in drawn(process_plan).boxes}
    email = boxes[f"step_{long_id}"]
    assert email.header == long_id
    assert email.header_size < 12
    assert len(email.header) * email.header_size * 0.62 <= email.w
    assert email.lines[0] == "(best-effort)"
    assert boxes["step_write"].header_size == 12
