"""sagaguard: plan, run and prove multi-step processes that are safe to fail."""

from __future__ import annotations

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
from sagaguard.model import ChangeKind, Idempotency, Process, Step, StepClass
from sagaguard.planner import Plan, plan
from sagaguard.planner.render import render, render_html, render_json, render_markdown
from sagaguard.rules import Decision, Situation, decide
from sagaguard.spec import load_spec, parse_spec

__version__ = "0.1.0"

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
    "decide",
    "load_spec",
    "parse_spec",
    "plan",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
]
