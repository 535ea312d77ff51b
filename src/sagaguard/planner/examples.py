"""Example states: the most dangerous failure of the process, as journal rows before and after.

The most dangerous failure is, in order of preference: a lost answer of the riskiest step
that cannot simply be retried (the guide's incident: the payment may already be taken), a
failed compensation (the riskiest state after rollback starts), or a definite failure of the
last step.
"""

from __future__ import annotations

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Process, Step, StepClass
from sagaguard.planner.plan import ExampleStates, JournalRow, RunStatus, StepStatus
from sagaguard.planner.scenarios import compensation_failure_target, unknown_outcome_target
from sagaguard.planner.wording import (
    alert_to,
    compensation_text,
    fmt_seconds,
    rollback_status,
    sample_external_id,
    sample_operation_id,
    verify_text,
)

__all__ = ["build_example_states"]


def build_example_states(process: Process) -> ExampleStates:
    """Journal rows of the most dangerous failure, before and after recovery."""
    target = unknown_outcome_target(process)
    if decide(target, Situation.TIMEOUT).decision is not Decision.RETRY:
        return _lost_answer(process, target)
    victim = compensation_failure_target(process)
    if victim is not None:
        return _failed_compensation(process, victim)
    return _last_step_fails(process)


class _Rows:
    """Builds journal rows of one example run."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.operation_id = sample_operation_id(process)

    def row(
        self,
        step: Step,
        status: StepStatus,
        *,
        attempts: int = 1,
        reason: str | None = None,
        with_id: bool = True,
    ) -> JournalRow:
        has_effect = with_id and status not in (StepStatus.PENDING, StepStatus.FAILED)
        return JournalRow(
            operation_id=self.operation_id,
            step_id=step.id,
            status=status,
            external_id=sample_external_id(self.process, step) if has_effect else None,
            attempts=0 if status is StepStatus.PENDING else attempts,
            reason=reason,
        )


def _lost_answer(process: Process, target: Step) -> ExampleStates:
    rows = _Rows(process)
    index = process.index(target.id)
    timeout = fmt_seconds(process.timeout_for(target))
    earlier = [rows.row(s, StepStatus.COMPLETED) for s in process.steps[:index]]
    lost = f"no answer within {timeout}: outcome unknown"
    before = (
        *earlier,
        rows.row(target, StepStatus.UNKNOWN, reason=lost, with_id=False),
        *(rows.row(s, StepStatus.PENDING) for s in process.steps[index + 1 :]),
    )
    scenario = (
        f"{target.id} ({target.action_text}) gets no answer within {timeout} on its first "
        f"attempt: the effect may already have happened, and a blind retry could make it "
        f"happen twice (idempotent: {target.idempotent.value})"
    )
    route = alert_to(process, target)
    if decide(target, Situation.TIMEOUT).decision is Decision.VERIFY:
        ident = target.external_id or "its result"
        recovery = (
            f"verify {target.id} ({verify_text(target)}): it finds the effect of attempt 1, so "
            f"{target.id} is marked completed with {ident} from the verify answer, without a "
            "second call, and the run continues"
        )
        after = (
            *earlier,
            rows.row(target, StepStatus.COMPLETED, reason="verified: took effect on attempt 1"),
            *(rows.row(s, StepStatus.COMPLETED) for s in process.steps[index + 1 :]),
        )
        status_after = RunStatus.COMPLETED
    else:
        recovery = (
            f"nothing can verify {target.id} and a repeat could duplicate it: {target.id} goes "
            f"to needs_manual_review and a needs_manual_review alert goes to {route}; nothing is "
            "compensated or retried until a person resolves it"
        )
        after = (
            *earlier,
            rows.row(
                target,
                StepStatus.NEEDS_MANUAL_REVIEW,
                reason=f"{lost}; waiting for {route}",
                with_id=False,
            ),
            *(rows.row(s, StepStatus.PENDING) for s in process.steps[index + 1 :]),
        )
        status_after = RunStatus.NEEDS_MANUAL_REVIEW
    return ExampleStates(
        scenario=scenario,
        step=target.id,
        before=before,
        recovery=recovery,
        after=after,
        run_status_before=RunStatus.RUNNING,
        run_status_after=status_after,
    )


def _failed_compensation(process: Process, victim: Step) -> ExampleStates:
    rows = _Rows(process)
    index = process.index(victim.id)
    last = process.steps[-1]
    tries = process.max_attempts_for(last)
    refused = f"definite failure on all {tries} attempts"
    before = (
        *(rows.row(s, StepStatus.COMPLETED) for s in process.steps[:-1]),
        rows.row(last, StepStatus.FAILED, attempts=tries, reason=refused),
    )
    attempts = process.defaults.compensation_attempts
    after_rows = [rows.row(s, StepStatus.COMPLETED) for s in process.steps[:index]]
    after_rows.append(
        rows.row(
            victim,
            StepStatus.COMPENSATION_FAILED,
            reason=f"compensation failed {attempts} times; rollback halted",
        )
    )
    undone = []
    for step in process.steps[index + 1 : -1]:
        if step.step_class is StepClass.COMPENSATABLE:
            after_rows.append(rows.row(step, StepStatus.COMPENSATED))
            undone.append(step.id)
        else:
            after_rows.append(rows.row(step, StepStatus.COMPLETED))
    after_rows.append(rows.row(last, StepStatus.FAILED, attempts=tries, reason=refused))
    first = (
        f"{', '.join(reversed(undone))} {'is' if len(undone) == 1 else 'are'} compensated, then "
    )
    return ExampleStates(
        scenario=(
            f"{last.id} fails for good, and while rolling back, the compensation of {victim.id} "
            f"({compensation_text(victim)}) fails: the run is half undone"
        ),
        step=victim.id,
        before=before,
        recovery=(
            f"{first if undone else ''}the compensation of {victim.id} fails {attempts} times: "
            f"the rollback halts, {victim.id} is compensation_failed and a compensation_failed "
            f"alert goes to {alert_to(process, victim)}"
        ),
        after=tuple(after_rows),
        run_status_before=RunStatus.RUNNING,
        run_status_after=RunStatus.NEEDS_MANUAL_REVIEW,
    )


def _last_step_fails(process: Process) -> ExampleStates:
    rows = _Rows(process)
    last = process.steps[-1]
    tries = process.max_attempts_for(last)
    refused = f"definite failure on all {tries} attempts"
    before = (
        *(rows.row(s, StepStatus.COMPLETED) for s in process.steps[:-1]),
        rows.row(last, StepStatus.FAILED, attempts=tries, reason=refused),
    )
    undo = [s for s in process.steps[:-1] if s.step_class is StepClass.COMPENSATABLE]
    after = (
        *(
            rows.row(
                s,
                StepStatus.COMPENSATED
                if s.step_class is StepClass.COMPENSATABLE
                else StepStatus.COMPLETED,
            )
            for s in process.steps[:-1]
        ),
        rows.row(last, StepStatus.FAILED, attempts=tries, reason=refused),
    )
    recovery = (
        "compensate " + ", ".join(s.id for s in reversed(undo)) + ", latest first"
        if undo
        else "nothing before it can be undone: the run fails"
    )
    return ExampleStates(
        scenario=f"{last.id}, the last step, fails definitely after every earlier step succeeded",
        step=last.id,
        before=before,
        recovery=recovery,
        after=after,
        run_status_before=RunStatus.RUNNING,
        run_status_after=rollback_status(process, len(process.steps) - 1),
    )
