"""Planning is linear in the number of steps: a process of MAX_STEPS steps plans, and every
measure of the work and of the plan grows in proportion. Timing lives in bench/plan_size.py."""

from __future__ import annotations

from typing import Any

from sagaguard.model import MAX_STEPS, Process
from sagaguard.planner.build import plan_with
from sagaguard.planner.context import Planning
from sagaguard.planner.plan import Plan
from sagaguard.planner.render import render_json, render_markdown
from sagaguard.rules import Situation


def big(steps: int) -> Process:
    """Compensatable steps, a declared pivot two thirds in, forward and best-effort after."""
    pivot = steps * 2 // 3
    data: list[dict[str, Any]] = []
    for index in range(steps):
        step: dict[str, Any] = {
            "id": f"s{index}",
            "changes": ["payment" if index % 3 == 1 else "database"],
            "idempotent": "yes",
            "compensation": "Undo it",
            "external_id": f"s{index}_id",
        }
        if index == pivot:
            step.update(idempotent="no", compensation="none", verify="bank:find", pivot=True)
        elif index > pivot and index % 4 == 0:
            step.update(changes=["email"], compensation="none", required=False)
        data.append(step)
    return Process.model_validate(
        {
            "process": "big",
            "state_store": "database",
            "observability": ["alerts"],
            "alerts": {"default": "ops"},
            "steps": data,
        }
    )


def measure(steps: int) -> tuple[Planning, Plan]:
    ctx = Planning(big(steps))
    return ctx, plan_with(ctx)


def test_max_steps_plans_with_each_ruling_decided_once() -> None:
    """The rulebook is asked once per step and situation, however many parts use a ruling."""
    ctx, result = measure(MAX_STEPS)
    assert len(result.steps) == MAX_STEPS
    assert ctx.decide_calls == MAX_STEPS * len(Situation)


def test_the_plan_grows_linearly_with_the_steps() -> None:
    """Ten times the steps, about ten times the plan: no part lists every step per step."""
    _, small = measure(MAX_STEPS // 10)
    _, large = measure(MAX_STEPS)
    runs_small = sum(len(t.expected.steps) for t in small.tests)
    runs_large = sum(len(t.expected.steps) for t in large.tests)
    assert runs_large <= 12 * runs_small
    assert runs_large <= 6 * MAX_STEPS
    for render in (render_json, render_markdown):
        assert len(render(large)) <= 12 * len(render(small)), render.__name__
