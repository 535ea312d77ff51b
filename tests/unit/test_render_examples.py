"""Every example spec loads, plans and renders in every format; the rendered docs are current."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from sagaguard import load_spec
from sagaguard.model import Idempotency, StateStore, StepClass
from sagaguard.planner import plan
from sagaguard.planner.render import Format, render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def render_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_examples", ROOT / "scripts" / "render_examples.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt", list(Format), ids=lambda f: f.value)
def test_example_renders(path: Path, fmt: Format) -> None:
    """The spec passes load_spec and its plan renders to a non-trivial document."""
    process_plan = plan(load_spec(path))
    text = render(process_plan, fmt)
    assert text.endswith("\n")
    assert process_plan.process.name in text
    for step in process_plan.steps:
        assert step.id in text


VARIED = ("checkout", "user_signup", "subscription_renewal", "stock_transfer", "travel_booking")


def test_examples_cover_the_variety_the_planner_handles() -> None:
    """Five processes with every state store, distinct observability, and the tricky cases."""
    processes = [load_spec(ROOT / "examples" / f"{name}.yaml") for name in VARIED]
    assert {p.state_store for p in processes} == set(StateStore)
    steps = [s for p in processes for s in p.steps]
    assert any(s.idempotent is Idempotency.NO and not s.has_verify for s in steps)
    assert any(s.step_class is StepClass.READ_ONLY for s in steps)
    assert any(not s.compensation_declared and not s.read_only for s in steps)
    assert len({tuple(p.observability) for p in processes}) == len(processes)


def test_signup_example_shows_the_pivot_ordering_problem() -> None:
    """The welcome email precedes a step that can fail; the plan reports it on that email."""
    process_plan = plan(load_spec(ROOT / "examples" / "user_signup.yaml"))
    flagged = [f for f in process_plan.findings if f.step == "send_welcome_email"]
    assert any("create_profile" in f.message for f in flagged)


def test_checkout_example_is_the_guides_process() -> None:
    """Checkout has the guide's five steps, alert routes and observability."""
    process = load_spec(ROOT / "examples" / "checkout.yaml")
    assert [s.id for s in process.steps] == [
        "create_order",
        "reserve_stock",
        "charge_payment",
        "book_delivery",
        "send_confirmation_email",
    ]
    assert process.alerts == {"default": "shop-oncall", "payment": "finance"}
    charge = process.step("charge_payment")
    assert charge.idempotent is Idempotency.UNKNOWN
    assert charge.has_verify
    assert charge.external_id == "payment_id"
    assert process.step("send_confirmation_email").step_class is StepClass.IRREVERSIBLE


def test_render_rejects_an_unknown_format() -> None:
    """render() names the formats it knows instead of guessing."""
    process_plan = plan(load_spec(ROOT / "examples" / "checkout.yaml"))
    with pytest.raises(ValueError, match="markdown, json, html"):
        render(process_plan, "pdf")


def test_render_dispatches_by_name() -> None:
    """The string names select the same renderers as the enum members."""
    process_plan = plan(load_spec(ROOT / "examples" / "checkout.yaml"))
    assert json.loads(render(process_plan, "json"))["process"]["name"] == "checkout"
    assert render(process_plan, "markdown").startswith("# Recovery plan: checkout\n")
    assert render(process_plan, "html").startswith("<!DOCTYPE html>")


def test_rendered_examples_in_docs_are_current() -> None:
    """docs/examples and the golden files equal what scripts/render_examples.py writes."""
    stale = [
        str(path.relative_to(ROOT))
        for path, text in render_script().outputs().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], (
        f"stale rendered examples {stale}: run `.venv/bin/python scripts/render_examples.py` "
        "and commit the result"
    )


def test_the_examples_index_counts_findings_in_plain_english() -> None:
    """ "3 warnings", "1 warning", "1 info": never "3 warning"."""
    index = render_script().outputs()[ROOT / "docs" / "examples" / "README.md"]
    assert "| 3 warnings, 1 info |" in index
    assert "| 1 warning, 1 info |" in index
    assert " 3 warning," not in index
    assert " 4 warning |" not in index
