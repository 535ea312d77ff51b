"""Every example spec loads, plans and renders in every format; the rendered docs are current."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from sagaguard import load_spec
from sagaguard.model import Idempotency, Phase, StateStore, StepClass
from sagaguard.planner import Plan, plan
from sagaguard.planner.plan import RunStatus
from sagaguard.planner.render import Format, render
from sagaguard.rules import Decision
from sagaguard.targets import load_bound

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


VARIED = (
    "checkout",
    "user_signup",
    "subscription_renewal",
    "stock_transfer",
    "travel_booking",
    "b2b_payout",
)


def test_examples_cover_the_variety_the_planner_handles() -> None:
    """Five processes with every state store, distinct observability, and the tricky cases."""
    processes = [load_spec(ROOT / "examples" / f"{name}.yaml") for name in VARIED]
    assert {p.state_store for p in processes} == set(StateStore)
    steps = [s for p in processes for s in p.steps]
    assert any(s.idempotent is Idempotency.NO and not s.has_verify for s in steps)
    assert any(s.step_class is StepClass.READ_ONLY for s in steps)
    assert any(not s.compensation_declared and not s.read_only for s in steps)
    assert len({tuple(p.observability) for p in processes}) >= 5
    assert any(s.pivot for s in steps)
    assert any(not s.required for s in steps)


def test_signup_example_shows_the_pivot_ordering_problem() -> None:
    """The welcome email became the point of no return before the CRM profile: SG001 says
    to make it best-effort and move it after create_profile, or to declare it."""
    process_plan = plan(load_spec(ROOT / "examples" / "user_signup.yaml"))
    [flagged] = [
        f for f in process_plan.findings if f.code == "SG001" and f.step == "send_welcome_email"
    ]
    assert "move it after create_profile" in flagged.message
    assert "declare pivot: true on it" in flagged.message


def all_plans(monkeypatch: pytest.MonkeyPatch) -> dict[str, Plan]:
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    plans = {path.stem: plan(load_spec(path)) for path in EXAMPLES}
    script = render_script()
    for module in script.CODED:
        process, verify_bound = load_bound(f"{module}:saga")
        plans[module] = plan(process, verify_bound=verify_bound)
    return plans


def test_no_failure_after_the_pivot_compensates_anything_in_any_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For every example, in the plan: a failure after the pivot (or of a best-effort step)
    rolls nothing back, in the rollback sequences and in every test's expectations."""
    for name, process_plan in all_plans(monkeypatch).items():
        ids = [s.id for s in process_plan.steps]
        entries = {s.id: s for s in process_plan.steps}
        for seq in process_plan.rollback_sequences:
            step = entries[seq.failed_step]
            if step.phase is Phase.AFTER_PIVOT or not step.required:
                assert seq.rollback_from is None, (name, seq.failed_step)
                assert seq.compensate_count == 0
        for test in process_plan.tests:
            per_step = test.expected.per_step(ids)
            for injection in test.injection:
                step = entries[injection.step]
                if injection.point.value != "before_call":
                    continue
                if step.phase is Phase.AFTER_PIVOT or not step.required:
                    before = ids[: ids.index(step.id)]
                    assert all(per_step[i].compensations.at_least == 0 for i in before), (
                        name,
                        test.id,
                    )


def test_checkout_marks_its_email_best_effort_so_a_bounce_never_refunds() -> None:
    """Read on call: no rollback undoes money because a notification failed."""
    for name in ("checkout", "checkout_runnable"):
        process_plan = plan(load_spec(ROOT / "examples" / f"{name}.yaml"))
        email = process_plan.step("send_confirmation_email")
        assert not email.required
        [seq] = [
            s for s in process_plan.rollback_sequences if s.failed_step == "send_confirmation_email"
        ]
        assert (seq.recovery, seq.compensate_count) == (Decision.CONTINUE, 0)
        assert seq.final_status is RunStatus.COMPLETED
        assert not [f for f in process_plan.findings if f.code == "SG014"]


def test_the_payout_example_has_its_pivot_in_the_middle() -> None:
    """Debit, FX, the bank transfer (declared pivot), the ledger pushed forward, the advice
    best-effort: a ledger failure never reverses the trade or credits the buyer back."""
    process_plan = plan(load_spec(ROOT / "examples" / "b2b_payout.yaml"))
    assert process_plan.pivot is not None
    assert (process_plan.pivot.step, process_plan.pivot.declared) == ("send_bank_transfer", True)
    sequences = {s.failed_step: s for s in process_plan.rollback_sequences}
    ledger = sequences["post_ledger"]
    assert ledger.recovery is Decision.MANUAL_REVIEW
    assert ledger.summary == "forward: retry within 2h, then manual review (payments-oncall)"
    assert sequences["send_bank_transfer"].compensate_count == 2
    assert sequences["send_remittance_advice"].recovery is Decision.CONTINUE
    assert process_plan.example_states.step == "post_ledger"
    assert process_plan.process.resubmission_window_s == 72 * 3600.0


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
    assert not process.step("send_confirmation_email").required


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
    assert "| none |" in index
    assert " 3 warning," not in index
    assert " 4 warning |" not in index
