"""The JSON rendering is exactly the plan's JSON dump, stable and round-trippable."""

from __future__ import annotations

import json
from pathlib import Path

from sagaguard import load_spec
from sagaguard.planner import Plan, plan
from sagaguard.planner.render import render_json

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "checkout.yaml"


def checkout() -> Plan:
    return plan(load_spec(EXAMPLE))


def test_json_is_the_model_dump() -> None:
    """Parsing the document gives back ``plan.model_dump(mode="json")``, nothing more or less."""
    process_plan = checkout()
    assert json.loads(render_json(process_plan)) == process_plan.model_dump(mode="json")


def test_json_keys_follow_the_model_field_order() -> None:
    """Keys come in the models' declared order (aliases included), not sorted or shuffled."""
    process_plan = checkout()
    document = json.loads(render_json(process_plan))
    assert list(document) == list(process_plan.model_dump(mode="json"))
    assert list(document)[:5] == ["format", "ready", "process", "pivot", "steps"]
    assert "class" in document["steps"][0]


def test_json_is_indented_by_two_and_ends_with_one_newline() -> None:
    """Two-space indentation, non-ASCII kept as text, a single trailing newline."""
    text = render_json(checkout())
    assert text.startswith('{\n  "format": ')
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")


def test_json_round_trips_through_the_plan_model() -> None:
    """A stored plan validates back into an equal :class:`Plan`."""
    process_plan = checkout()
    assert Plan.model_validate(json.loads(render_json(process_plan))) == process_plan


def test_json_is_the_same_on_every_render() -> None:
    """Rendering twice (and planning twice) gives identical bytes."""
    assert render_json(checkout()) == render_json(checkout())
