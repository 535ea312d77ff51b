"""``plan(process)``: assemble every part of the recovery plan from one process (pure)."""

from __future__ import annotations

from sagaguard.model import Process
from sagaguard.planner.checklist import build_checklist
from sagaguard.planner.examples import build_example_states
from sagaguard.planner.findings import build_findings
from sagaguard.planner.flow import build_flow
from sagaguard.planner.matrix import build_decision_matrix
from sagaguard.planner.plan import PLAN_FORMAT, Plan, ProcessSummary
from sagaguard.planner.rollback import build_rollback_failure_policy, build_rollback_sequences
from sagaguard.planner.scenarios import build_tests
from sagaguard.planner.steps import build_steps

__all__ = ["plan"]


def plan(process: Process) -> Plan:
    """The complete recovery plan of ``process``; same process in, same plan out."""
    return Plan(
        format=PLAN_FORMAT,
        process=ProcessSummary(
            name=process.name,
            version=process.version,
            description=process.description,
            state_store=process.state_store,
            observability=process.observability,
            alerts=dict(process.alerts),
        ),
        steps=build_steps(process),
        rollback_sequences=build_rollback_sequences(process),
        rollback_failure_policy=build_rollback_failure_policy(process),
        decision_matrix=build_decision_matrix(process),
        tests=build_tests(process),
        checklist=build_checklist(process),
        findings=build_findings(process),
        example_states=build_example_states(process),
        flow=build_flow(process),
    )
