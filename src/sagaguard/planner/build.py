"""``plan(process)``: assemble every part of the recovery plan from one process (pure)."""

from __future__ import annotations

from sagaguard.model import Process
from sagaguard.planner.checklist import build_checklist
from sagaguard.planner.context import Planning
from sagaguard.planner.examples import build_example_states
from sagaguard.planner.findings import build_findings
from sagaguard.planner.flow import build_flow
from sagaguard.planner.matrix import build_decision_matrix
from sagaguard.planner.plan import PLAN_FORMAT, Plan, ProcessSummary, Severity
from sagaguard.planner.rollback import (
    build_rollback_chain,
    build_rollback_failure_policy,
    build_rollback_sequences,
)
from sagaguard.planner.scenarios import build_tests
from sagaguard.planner.steps import build_pivot, build_steps

__all__ = ["plan", "plan_with"]


def plan(process: Process, *, verify_bound: frozenset[str] | None = None) -> Plan:
    """The complete recovery plan of ``process``; same process in, same plan out.

    ``verify_bound``: the ids of the steps that have verify code bound. ``None`` takes the
    spec's word (``verify: module:function`` is code, a description is not); a coded saga
    passes the steps that have ``@step.verify``. The plan describes what the engine does
    with the process as it is bound.
    """
    return plan_with(Planning(process, verify_bound=verify_bound))


def plan_with(ctx: Planning) -> Plan:
    """The plan of ``ctx.process`` as ``ctx`` reads it (every ruling decided once)."""
    process = ctx.process
    findings = build_findings(ctx)
    return Plan(
        format=PLAN_FORMAT,
        ready=not any(f.severity is Severity.ERROR for f in findings),
        process=ProcessSummary(
            name=process.name,
            version=process.version,
            description=process.description,
            state_store=process.state_store,
            observability=process.observability,
            alerts=dict(process.alerts),
            resubmission_window_s=process.resubmission_window,
        ),
        pivot=build_pivot(ctx),
        steps=build_steps(ctx),
        rollback_chain=build_rollback_chain(ctx),
        rollback_sequences=build_rollback_sequences(ctx),
        rollback_failure_policy=build_rollback_failure_policy(ctx),
        decision_matrix=build_decision_matrix(ctx),
        tests=build_tests(ctx),
        checklist=build_checklist(ctx, findings),
        findings=findings,
        example_states=build_example_states(ctx),
        flow=build_flow(ctx),
    )
