"""sagaguard: plan, run and prove multi-step processes that are safe to fail.

The names below are imported on first use (PEP 562), so ``import sagaguard`` and
``sagaguard --version`` do not pay for pydantic, the planner or the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagaguard.exceptions import (
    OperationConflictError,
    ResolutionError,
    RunBusyError,
    RunNotFoundError,
    SagaDefinitionError,
    SagaGuardError,
    SpecError,
    StaleOwnerError,
    StepFailed,
    StoreError,
)
from sagaguard.lazy import lazy_exports

if TYPE_CHECKING:
    from sagaguard.engine.worker import Worker
    from sagaguard.model import ChangeKind, Idempotency, Process, Step, StepClass
    from sagaguard.planner import Plan, plan
    from sagaguard.planner.render import render, render_html, render_json, render_markdown
    from sagaguard.rules import Decision, Situation, decide
    from sagaguard.spec import load_spec, parse_spec

__version__ = "0.1.0"

_LAZY = {
    "ChangeKind": "sagaguard.model",
    "Idempotency": "sagaguard.model",
    "Process": "sagaguard.model",
    "Step": "sagaguard.model",
    "StepClass": "sagaguard.model",
    "Plan": "sagaguard.planner",
    "plan": "sagaguard.planner",
    "render": "sagaguard.planner.render",
    "render_html": "sagaguard.planner.render",
    "render_json": "sagaguard.planner.render",
    "render_markdown": "sagaguard.planner.render",
    "Decision": "sagaguard.rules",
    "Situation": "sagaguard.rules",
    "decide": "sagaguard.rules",
    "load_spec": "sagaguard.spec",
    "parse_spec": "sagaguard.spec",
    "Worker": "sagaguard.engine.worker",
}

__all__ = [
    "ChangeKind",
    "Decision",
    "Idempotency",
    "OperationConflictError",
    "Plan",
    "Process",
    "ResolutionError",
    "RunBusyError",
    "RunNotFoundError",
    "SagaDefinitionError",
    "SagaGuardError",
    "Situation",
    "SpecError",
    "StaleOwnerError",
    "Step",
    "StepClass",
    "StepFailed",
    "StoreError",
    "Worker",
    "decide",
    "load_spec",
    "parse_spec",
    "plan",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
