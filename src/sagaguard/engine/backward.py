"""Backward: roll the run back, latest completed step first, making the rulebook's moves.

For each confirmed effect, newest first, the rulebook says what a rollback does with it
(compensate, keep, nothing); a compensation that does not succeed is a situation of its own
(failed, refused, unknown) that the rulebook rules on too. This module says *how*: what is
journaled, in which order, and what the compensation is called with.
"""

from __future__ import annotations

from sagaguard.engine.abandoned import CallKind
from sagaguard.engine.calls import Call, Outcome, OutcomeKind
from sagaguard.engine.dispatch import End, MoveGenerator, Moves, Next, Order, act, order_for
from sagaguard.engine.staging import Requests, StagedRun
from sagaguard.model import Step
from sagaguard.rules import Situation
from sagaguard.storage.base import RunStatus, StepRecord, StepStatus
from sagaguard.vocabulary import EventKind, FaultPoint

__all__ = ["Backward"]


class Backward(Moves):
    """The backward moves of one run: compensate, retry a compensation, keep, stop."""

    def __init__(self, run: StagedRun) -> None:
        self.run = run
        self._why: dict[str, str] = {}
        """Why a compensation did not succeed, for the review it may end in."""

    def rollback_all(self) -> Requests:
        """Visit every confirmed effect, newest first, until the run is rolled back or stops."""
        run = self.run
        done = [r for r in run.steps.values() if r.completed_seq is not None]
        done.sort(key=lambda r: r.completed_seq or 0, reverse=True)
        for record in done:
            step = run.process.step(record.step_id)
            run.current = step.id
            end = yield from self._visit(step, run.steps[step.id])
            if end is End.STOP:
                return
        effects = [r for r in done if not run.process.step(r.step_id).read_only]
        final = RunStatus.COMPENSATED if effects else RunStatus.FAILED
        kind = EventKind.RUN_COMPENSATED if effects else EventKind.RUN_FAILED
        kept = [r.step_id for r in effects if run.steps[r.step_id].kept]
        reason = f"irreversible steps kept: {', '.join(kept)}" if kept else None
        run.stage(kind, run_status=final, reason=reason)

    def _visit(self, step: Step, record: StepRecord) -> MoveGenerator:
        if record.status is StepStatus.COMPENSATED or record.kept:
            return End.DONE
        if record.status is StepStatus.COMPENSATION_FAILED:
            self.run.stage(EventKind.AWAITING_REVIEW, run_status=RunStatus.NEEDS_MANUAL_REVIEW)
            return End.STOP
        if record.status is StepStatus.COMPENSATING:
            outcome = self.run.take_returned(step, CallKind.COMPENSATE)
            if outcome is not None:
                # Its driver was interrupted, and the compensation has returned since.
                situation = self._compensated(step, record.compensation_attempts, outcome)
                return (yield from self._compensating(step, situation))
            # Crashed during a compensation: nobody knows whether it was undone.
            self._why[step.id] = (
                f"crashed during compensation attempt {record.compensation_attempts}: "
                "its outcome is unknown and a compensation is never repeated blind"
            )
            return (yield from self._compensating(step, Situation.COMPENSATION_UNKNOWN))
        order = self._order(step, Situation.LATER_STEP_FAILED)
        return (yield from act(self, step, Situation.LATER_STEP_FAILED, order))

    def _order(self, step: Step, situation: Situation) -> Order:
        run = self.run
        return order_for(
            step,
            situation,
            process=run.process,
            verify_bound=run.verify_bound(step),
            record=run.steps[step.id],
            now=run.now(),
        )

    def _compensating(self, step: Step, situation: Next | None) -> MoveGenerator:
        """Compensate ``step`` until it is undone or a person must look (``STOP``)."""
        while True:
            if situation is None or situation is End.AGAIN:
                situation = yield from self._attempt(step)
            if isinstance(situation, End):
                return situation
            situation = yield from act(self, step, situation, self._order(step, situation))

    def _attempt(self, step: Step) -> MoveGenerator:
        """One compensation call: ``compensating`` committed first, then the call."""
        run = self.run
        record = run.steps[step.id]
        attempt, now = record.compensation_attempts + 1, run.now()
        run.stage_step(
            EventKind.COMPENSATION_STARTED,
            step.id,
            StepStatus.COMPENSATING,
            compensation_attempts=attempt,
            compensation_first_at=now if record.compensation_first_at is None else None,
        )
        timeout = run.process.timeout_for(step)
        run.flush(extra_lease_s=timeout)
        run.fault(FaultPoint.BEFORE_COMPENSATION, step.id, attempt)
        compensate = run.saga.handlers(step.id).compensate
        assert compensate is not None  # Saga.check_runnable guarantees it
        ctx = run.context(step, attempt, result=record.result, external_id=record.external_id)
        outcome = yield Call(compensate, ctx, timeout)
        assert outcome is not None
        run.fault(FaultPoint.AFTER_COMPENSATION, step.id, attempt)
        return self._compensated(step, attempt, outcome)

    def _compensated(self, step: Step, attempt: int, outcome: Outcome) -> Next:
        """Journal what compensation attempt ``attempt`` told, and name what follows."""
        run = self.run
        if outcome.kind is OutcomeKind.OK:
            run.stage_step(EventKind.STEP_COMPENSATED, step.id, StepStatus.COMPENSATED)
            return End.DONE
        if outcome.kind is OutcomeKind.UNKNOWN:
            self._why[step.id] = f"compensation outcome unknown: {outcome.reason}"
            return Situation.COMPENSATION_UNKNOWN
        if not outcome.retryable:
            self._why[step.id] = (
                f"compensation refused for good on attempt {attempt}: {outcome.reason}"
            )
            return Situation.COMPENSATION_REFUSED
        run.stage_step(
            EventKind.COMPENSATION_ATTEMPT_FAILED,
            step.id,
            StepStatus.COMPLETED,
            failure_reason=f"compensation attempt {attempt} failed: {outcome.reason}",
        )
        return Situation.COMPENSATION_FAILED

    # -- the moves --------------------------------------------------------------------------

    def compensate(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Undo the step: call its compensation until it is undone or a person must look."""
        return (yield from self._compensating(step, None))

    def keep(self, step: Step, situation: Situation, order: Order) -> Next:
        """Keep an effect that cannot be undone, with its mitigation, and roll on."""
        mitigation = step.mitigation or "no mitigation declared"
        self.run.stage_step(
            EventKind.IRREVERSIBLE_KEPT,
            step.id,
            StepStatus.COMPLETED,
            failure_reason=f"irreversible, cannot be undone; mitigation: {mitigation}",
            kept=True,
        )
        return End.DONE

    def retry(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Back off, then call the compensation again."""
        yield from self.run.backoff(self.run.steps[step.id].compensation_attempts)
        return End.AGAIN

    def review(self, step: Step, situation: Situation, order: Order) -> Next:
        """The rollback halts here: a compensation_failed event and alert, a person decides."""
        run = self.run
        record = run.steps[step.id]
        reason = self._why.pop(step.id, None) or record.failure_reason or "compensation failed"
        if situation is Situation.COMPENSATION_FAILED:
            tries = record.compensation_attempts
            reason = f"compensation failed {tries} time{'s' if tries != 1 else ''}: {reason}"
        run.stage_review(
            step,
            kind=EventKind.COMPENSATION_FAILED,
            status=StepStatus.COMPENSATION_FAILED,
            alert=order.alert,
            reason=reason,
            run_reason=f"rollback halted at {step.id}: {reason}",
        )
        return End.STOP
