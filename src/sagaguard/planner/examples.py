"""Example states: the most dangerous failure of the process, as journal rows before and after.

The most dangerous failure is chosen by what it leaves in the world (:class:`~.impact.Impact`):
money moved and not settled first, then an effect that cannot be undone, then a change left
half undone; an outcome nobody knows comes after those. The candidates are a failure after
the point of no return (the pivot's effect stays, a person finishes the run), a failed
compensation (the rollback stops half way) and a lost answer of the riskiest step. The rows
after recovery are the expected state of that run (:mod:`.simulate`), so they say what the
engine will do.
"""

from __future__ import annotations

from collections.abc import Callable

from sagaguard.model import Step
from sagaguard.planner.context import Planning
from sagaguard.planner.impact import Impact, impact_of
from sagaguard.planner.plan import ExampleStates, JournalRow, RunStatus, StepStatus
from sagaguard.planner.reasons import give_up_phrase
from sagaguard.planner.scenarios import (
    compensation_failure_injection,
    compensation_failure_target,
    rollback_trigger,
    unknown_outcome_target,
)
from sagaguard.planner.simulate import expect
from sagaguard.planner.testplan import ExpectedState, FaultKind, Injection
from sagaguard.planner.wording import (
    compensation_text,
    fmt_seconds,
    plural,
    sample_external_id,
    sample_operation_id,
    verify_text,
)
from sagaguard.rules import Decision, Situation
from sagaguard.vocabulary import FaultPoint

__all__ = ["build_example_states"]

_HAS_ID = (
    StepStatus.COMPLETED,
    StepStatus.COMPENSATING,
    StepStatus.COMPENSATED,
    StepStatus.COMPENSATION_FAILED,
)


def build_example_states(ctx: Planning) -> ExampleStates:
    """Journal rows of the most dangerous failure, before and after recovery."""
    candidates: list[tuple[Impact, int, Callable[[], ExampleStates]]] = []
    forward = next(
        (s for s in ctx.steps if s.required and ctx.give_up(s) is Decision.MANUAL_REVIEW), None
    )
    if forward is not None and ctx.pivot is not None:
        done = ctx.steps[: ctx.index(forward)]
        impact = min((impact_of(s) for s in done), default=Impact.IRREVERSIBLE)
        candidates.append((impact, 0, lambda: _forward(ctx, forward, impact)))
    victim = compensation_failure_target(ctx)
    if victim is not None:
        impact = impact_of(victim)
        candidates.append((impact, 1, lambda: _failed_compensation(ctx, victim, impact)))
    target = unknown_outcome_target(ctx)
    if ctx.ruling(target, Situation.TIMEOUT).decision is not Decision.RETRY:
        candidates.append((Impact.UNKNOWN_OUTCOME, 2, lambda: _lost_answer(ctx, target)))
    if not candidates:
        return _last_step_fails(ctx)
    return min(candidates, key=lambda c: (c[0], c[1]))[2]()


class _Rows:
    """Journal rows of one example run."""

    def __init__(self, ctx: Planning) -> None:
        self.ctx = ctx
        self.operation_id = sample_operation_id(ctx.process.name)

    def row(
        self,
        step: Step,
        status: StepStatus,
        *,
        attempts: int = 1,
        reason: str | None = None,
    ) -> JournalRow:
        return JournalRow(
            operation_id=self.operation_id,
            step_id=step.id,
            status=status,
            external_id=(
                sample_external_id(self.ctx.process.name, step) if status in _HAS_ID else None
            ),
            attempts=0 if status is StepStatus.PENDING else attempts,
            reason=reason,
        )

    def before(
        self, failed: Step, status: StepStatus, reason: str, attempts: int = 1
    ) -> tuple[JournalRow, ...]:
        """Every step before ``failed`` completed, ``failed`` in ``status``, the rest pending."""
        index = self.ctx.index(failed)
        return (
            *(self.row(s, StepStatus.COMPLETED) for s in self.ctx.steps[:index]),
            self.row(failed, status, attempts=attempts, reason=reason),
            *(self.row(s, StepStatus.PENDING) for s in self.ctx.steps[index + 1 :]),
        )

    def after(self, expected: ExpectedState, reasons: dict[str, str]) -> tuple[JournalRow, ...]:
        """The rows of an expected final state (attempts: the calls it promises at least)."""
        per_step = expected.per_step([s.id for s in self.ctx.steps])
        return tuple(
            self.row(
                step,
                per_step[step.id].status,
                attempts=per_step[step.id].calls.at_least,
                reason=reasons.get(step.id),
            )
            for step in self.ctx.steps
        )


def _fail(step: Step) -> Injection:
    return Injection(step=step.id, point=FaultPoint.BEFORE_CALL, fault=FaultKind.FAIL, attempt=None)


def _forward(ctx: Planning, failed: Step, impact: Impact) -> ExampleStates:
    rows = _Rows(ctx)
    pivot = ctx.pivot
    assert pivot is not None
    window = fmt_seconds(ctx.process.retry_for(failed))
    expected = expect(ctx, (_fail(failed),))
    first = "definite failure on attempt 1"
    return ExampleStates(
        scenario=(
            f"{failed.id} ({failed.action_text}) fails after {pivot.id}, the point of no "
            f"return, completed: {pivot.id}'s effect cannot be taken back, so the run cannot "
            "roll back"
        ),
        impact=impact.words,
        step=failed.id,
        before=rows.before(failed, StepStatus.FAILED, first),
        recovery=(
            f"forward recovery: {failed.id} is retried with the same key for {window}; it keeps "
            f"failing, so {give_up_phrase(ctx, failed)}. Nothing before it is compensated"
        ),
        after=rows.after(
            expected, {failed.id: f"still failing after {window}; waiting for {ctx.who(failed)}"}
        ),
        run_status_before=RunStatus.RUNNING,
        run_status_after=expected.run_status,
    )


def _failed_compensation(ctx: Planning, victim: Step, impact: Impact) -> ExampleStates:
    rows = _Rows(ctx)
    trigger = rollback_trigger(ctx)
    assert trigger is not None
    tries = ctx.process.max_attempts_for(trigger)
    refused = f"definite failure on all {plural(tries, 'attempt')}"
    ruling = ctx.ruling(victim, Situation.COMPENSATION_FAILED)
    window = fmt_seconds(ruling.bound.window_s) if ruling.bound and ruling.bound.window_s else ""
    expected = expect(ctx, compensation_failure_injection(trigger, victim))
    per_step = expected.per_step([s.id for s in ctx.steps])
    undone = [s.id for s in reversed(ctx.steps) if per_step[s.id].status is StepStatus.COMPENSATED]
    verb = "is" if len(undone) == 1 else "are"
    first = f"{', '.join(undone)} {verb} compensated, then " if undone else ""
    return ExampleStates(
        scenario=(
            f"{trigger.id} fails for good, and while rolling back, the compensation of "
            f"{victim.id} ({compensation_text(victim)}) keeps failing: the run is half undone"
        ),
        impact=impact.words,
        step=victim.id,
        before=rows.before(trigger, StepStatus.FAILED, refused, tries),
        recovery=(
            f"{first}the compensation of {victim.id} is retried for {window or 'its attempts'} "
            f"and keeps failing: the rollback halts, {victim.id} is compensation_failed and a "
            f"compensation_failed alert goes to {ctx.who(victim)}"
        ),
        after=rows.after(
            expected,
            {
                trigger.id: refused,
                victim.id: f"compensation failed for {window or 'every attempt'}; rollback halted",
            },
        ),
        run_status_before=RunStatus.COMPENSATING,
        run_status_after=expected.run_status,
    )


def _lost_answer(ctx: Planning, target: Step) -> ExampleStates:
    rows = _Rows(ctx)
    timeout = fmt_seconds(ctx.process.timeout_for(target))
    lost = f"no answer within {timeout}: outcome unknown"
    injection = Injection(
        step=target.id, point=FaultPoint.AFTER_CALL, fault=FaultKind.TIMEOUT, attempt=1
    )
    expected = expect(ctx, (injection,))
    ruling = ctx.ruling(target, Situation.TIMEOUT)
    who = ctx.who(target)
    if ruling.decision is Decision.VERIFY:
        recovery = (
            f"verify {target.id} ({verify_text(target)}): it finds the effect of attempt 1, so "
            f"{target.id} is marked completed with {target.external_id or 'its result'} from "
            "the verify answer, without a second call, and the run continues"
        )
        reason = "verified: took effect on attempt 1"
    elif ruling.decision is Decision.CONTINUE:
        recovery = (
            f"nothing can settle {target.id} and it is best-effort: it stays unknown, a "
            f"best_effort_failed alert goes to {who}, and the run goes on"
        )
        reason = f"{lost}; best-effort, left to {who}"
    else:
        recovery = (
            f"nothing can verify {target.id} and a repeat could duplicate it: {target.id} goes "
            f"to needs_manual_review and a needs_manual_review alert goes to {who}; nothing is "
            "compensated or retried until a person resolves it"
        )
        reason = f"{lost}; waiting for {who}"
    return ExampleStates(
        scenario=(
            f"{target.id} ({target.action_text}) gets no answer within {timeout} on its first "
            "attempt: the effect may already have happened, and a blind retry could make it "
            f"happen twice (idempotent: {target.idempotent.value})"
        ),
        impact=Impact.UNKNOWN_OUTCOME.words,
        step=target.id,
        before=rows.before(target, StepStatus.UNKNOWN, lost),
        recovery=recovery,
        after=rows.after(expected, {target.id: reason}),
        run_status_before=RunStatus.RUNNING,
        run_status_after=expected.run_status,
    )


def _last_step_fails(ctx: Planning) -> ExampleStates:
    rows = _Rows(ctx)
    last = ctx.steps[-1]
    tries = ctx.process.max_attempts_for(last)
    refused = f"definite failure on all {plural(tries, 'attempt')}"
    expected = expect(ctx, (_fail(last),))
    return ExampleStates(
        scenario=f"{last.id}, the last step, fails definitely after every earlier step succeeded",
        impact=Impact.UNDONE.words,
        step=last.id,
        before=rows.before(last, StepStatus.FAILED, refused, tries),
        recovery=give_up_phrase(ctx, last),
        after=rows.after(expected, {last.id: refused}),
        run_status_before=RunStatus.RUNNING,
        run_status_after=expected.run_status,
    )
