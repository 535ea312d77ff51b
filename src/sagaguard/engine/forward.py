"""Forward: call a step until its outcome is settled, making the moves the rulebook orders.

Each call's outcome is turned into a situation (a definite failure, a refusal, an unknown
outcome, a call still in flight, what verify answered) and the rulebook rules on it through
:func:`~sagaguard.engine.dispatch.act`. This module only says *how* each move is made:
what is journaled, in which order, and what the step is called with.
"""

from __future__ import annotations

from typing import Any

from sagaguard.engine.abandoned import CallKind
from sagaguard.engine.calls import Call, Outcome, OutcomeKind, PendingCall, WaitFor, describe
from sagaguard.engine.context import Applied, NotApplied
from sagaguard.engine.dispatch import End, MoveGenerator, Moves, Next, Order, act, order_for
from sagaguard.engine.staging import StagedRun
from sagaguard.exceptions import PayloadError
from sagaguard.model import Phase, Step
from sagaguard.rules import Situation, StepKind, step_kind
from sagaguard.storage.base import RunStatus, StepStatus
from sagaguard.storage.payloads import EncodedJSON
from sagaguard.vocabulary import AlertKind, EventKind, FaultPoint

__all__ = ["Forward"]

_UNKNOWN_SITUATIONS = (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST)
_DEFINITE = (
    Situation.DEFINITE_FAILURE,
    Situation.REFUSED,
    Situation.VERIFY_NOT_APPLIED,
)
"""Situations where the other side said nothing happened: a step given up here is failed."""


class Forward(Moves):
    """The forward moves of one run: call, retry, verify, wait, give up."""

    def __init__(self, run: StagedRun) -> None:
        self.run = run
        self._in_flight: dict[str, PendingCall] = {}
        self._waited: set[tuple[str, Situation]] = set()
        """(step, situation) pairs whose wait's whole window was waited out."""

    def advance(self, step: Step) -> MoveGenerator:
        """Drive ``step`` until it is settled (``DONE``), fails for good, or waits for a person."""
        self.run.current = step.id
        situation: Next | None = self._on_entry(step)
        while True:
            if situation is None or situation is End.AGAIN:
                self.run.calling()
                situation = yield from self._attempt(step)
            if isinstance(situation, End):
                return situation
            record = self.run.steps[step.id]
            order = order_for(
                step,
                situation,
                process=self.run.process,
                verify_bound=self.run.verify_bound(step),
                record=record,
                now=self.run.now(),
                waited=(step.id, situation) in self._waited,
            )
            situation = yield from act(self, step, situation, order)

    def calls_in_flight(self) -> list[PendingCall]:
        """Calls of this run that outlived their timeout and were not settled yet."""
        return list(self._in_flight.values())

    def _on_entry(self, step: Step) -> Next | None:
        """Where a step stands when the driver reaches it (after a crash, a person, a stop)."""
        record = self.run.steps[step.id]
        if record.kept or record.status is StepStatus.COMPLETED:
            return End.DONE  # done, or a best-effort step the run went on without
        if record.status in (StepStatus.STARTED, StepStatus.UNKNOWN):
            # A call whose driver was interrupted has returned since: its answer settles it.
            if (outcome := self.run.take_returned(step, CallKind.STEP)) is not None:
                return self._settle(step, outcome)
            if (outcome := self.run.take_returned(step, CallKind.VERIFY)) is not None:
                return self._verified(step, outcome)
        if record.status is StepStatus.NEEDS_MANUAL_REVIEW:
            self.run.stage(EventKind.AWAITING_REVIEW, run_status=RunStatus.NEEDS_MANUAL_REVIEW)
            return End.STOP
        if record.status is StepStatus.STARTED:
            self.run.stage_step(
                EventKind.OUTCOME_UNKNOWN,
                step.id,
                StepStatus.UNKNOWN,
                unknown_since=self.run.now(),
                failure_reason="found started after a crash: the call may have happened, "
                "its result was never saved",
            )
            return Situation.CRASH_BEFORE_PERSIST
        if record.status is StepStatus.UNKNOWN:
            return Situation.TIMEOUT
        if record.status is StepStatus.FAILED:
            # Failed, and not given up: a definite failure, verify or a person said that
            # nothing happened, so a repeat is safe within the step's bound.
            return Situation.DEFINITE_FAILURE
        return None

    # -- calls ------------------------------------------------------------------------------

    def _attempt(self, step: Step) -> MoveGenerator:
        """One call of the step: ``started`` committed first, then the call, then its outcome."""
        run = self.run
        record = run.steps[step.id]
        attempt, now = record.attempts + 1, run.now()
        self._waited = {w for w in self._waited if w[0] != step.id}
        run.stage_step(
            EventKind.STEP_STARTED,
            step.id,
            StepStatus.STARTED,
            attempts=attempt,
            last_attempt_at=now,
            first_attempt_at=now if record.first_attempt_at is None else None,
            verify_attempts=0,
        )
        timeout = run.process.timeout_for(step)
        run.flush(extra_lease_s=timeout)
        run.fault(FaultPoint.BEFORE_CALL, step.id, attempt)
        outcome = yield Call(run.saga.handlers(step.id).call, run.context(step, attempt), timeout)
        assert outcome is not None
        run.fault(FaultPoint.AFTER_CALL, step.id, attempt)
        return self._settle(step, outcome)

    def _settle(self, step: Step, outcome: Outcome) -> Next:
        """Journal what a call of the step told, and name the situation it leaves."""
        run = self.run
        if outcome.kind is OutcomeKind.OK:
            return self._complete(step, outcome.value, kind=EventKind.STEP_COMPLETED)
        if outcome.kind is OutcomeKind.FAILED:
            run.stage_step(
                EventKind.STEP_FAILED, step.id, StepStatus.FAILED, failure_reason=outcome.reason
            )
            return Situation.DEFINITE_FAILURE if outcome.retryable else Situation.REFUSED
        if outcome.pending is not None:
            self._in_flight[step.id] = outcome.pending
            run.stage_step(
                EventKind.CALL_IN_FLIGHT,
                step.id,
                StepStatus.UNKNOWN,
                failure_reason=outcome.reason,
                unknown_since=run.now(),
            )
            return Situation.CALL_IN_FLIGHT
        run.stage_step(
            EventKind.OUTCOME_UNKNOWN,
            step.id,
            StepStatus.UNKNOWN,
            failure_reason=outcome.reason,
            unknown_since=run.now(),
        )
        return Situation.TIMEOUT

    def _complete(
        self, step: Step, value: Any, *, kind: EventKind, failure_reason: str | None = None
    ) -> Next:
        run = self.run
        try:
            # Round-tripped, so later steps see the result exactly as a resumed run would
            # (tuples become lists, int keys strings) whichever process drives them; the
            # store writes the text it was encoded to, so it is encoded once.
            encoded = EncodedJSON.of(value, what="result")
        except PayloadError as exc:
            # The effect happened but its result cannot be journaled: a person must look.
            return self._stop_for_review(step, f"{describe(exc)}; effect applied")
        value = encoded.value
        external_id = None
        if step.external_id and isinstance(value, dict) and value.get(step.external_id) is not None:
            external_id = str(value[step.external_id])
        run.stage_step(
            kind,
            step.id,
            StepStatus.COMPLETED,
            result=encoded,
            external_id=external_id,
            completed_seq=run.next_seq(),
            failure_reason=failure_reason,
        )
        attempt = run.steps[step.id].attempts
        run.after_flush(lambda: run.fault(FaultPoint.AFTER_COMMIT, step.id, attempt))
        return End.DONE

    # -- the moves --------------------------------------------------------------------------

    def retry(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Back off, then call again with the same key (pushed forward after the pivot)."""
        run = self.run
        record = run.steps[step.id]
        if order.ruling.phase is Phase.AFTER_PIVOT and order.ruling.required:
            window = order.ruling.bound.window_s if order.ruling.bound else None
            within = f" within {window:g}s" if window else ""
            run.stage(
                EventKind.FORWARD_RECOVERY,
                step_id=step.id,
                reason=f"after the point of no return: retried{within}, never rolled back",
            )
        yield from run.backoff(record.attempts, since=record.last_attempt_at)
        return End.AGAIN

    def verify(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Ask verify code what happened: ``verify_called`` (counted) is committed first."""
        run = self.run
        verify = run.saga.handlers(step.id).verify
        assert verify is not None, "the rulebook verifies only steps with verify code bound"
        record = run.steps[step.id]
        if situation is Situation.VERIFY_FAILED:
            yield from run.backoff(record.verify_attempts)
        number = record.verify_attempts + 1
        run.stage_step(
            EventKind.VERIFY_CALLED,
            step.id,
            record.status,
            verify_attempts=number,
        )
        timeout = run.process.timeout_for(step)
        run.flush(extra_lease_s=timeout)
        run.fault(FaultPoint.BEFORE_VERIFY, step.id, number)
        outcome = yield Call(verify, run.context(step, record.attempts), timeout)
        assert outcome is not None
        run.fault(FaultPoint.AFTER_VERIFY, step.id, number)
        return self._verified(step, outcome)

    def _verified(self, step: Step, outcome: Outcome) -> Next:
        run = self.run
        record = run.steps[step.id]
        answer = outcome.value if outcome.kind is OutcomeKind.OK else None
        if isinstance(answer, Applied):
            cause = record.failure_reason or "outcome unknown"
            return self._complete(
                step,
                answer.result,
                kind=EventKind.VERIFIED_APPLIED,
                failure_reason=f"{cause}; verify found it applied",
            )
        if isinstance(answer, NotApplied):
            why = f"verify: not applied ({describe(answer.reason)})"
            settle = run.process.verify_after_for(step)
            since = record.unknown_since if record.unknown_since is not None else run.now()
            if run.now() - since < settle:
                run.stage(
                    EventKind.VERIFY_DEFERRED,
                    step_id=step.id,
                    reason=f"{why}, {run.now() - since:g}s after the outcome became unknown: "
                    f"too soon to count (verify_after {settle:g}s)",
                )
                return Situation.VERIFY_TOO_SOON
            run.stage_step(
                EventKind.VERIFIED_NOT_APPLIED, step.id, StepStatus.FAILED, failure_reason=why
            )
            return Situation.VERIFY_NOT_APPLIED
        why = outcome.reason or f"verify returned {type(answer).__name__}, not Applied/NotApplied"
        run.stage_step(
            EventKind.VERIFY_FAILED,
            step.id,
            StepStatus.UNKNOWN,
            failure_reason=f"verify could not tell the outcome: {why}",
        )
        return Situation.VERIFY_FAILED

    def wait(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Wait out the window: for a call in flight to return, or for a settle delay."""
        run = self.run
        self._waited.add((step.id, situation))
        pending = self._in_flight.get(step.id)
        if situation is Situation.CALL_IN_FLIGHT and pending is not None:
            run.flush(extra_lease_s=order.wait_s)
            outcome = yield WaitFor(pending, order.wait_s)
            if outcome is None:
                return situation
            del self._in_flight[step.id]
            return self._settle(step, outcome)
        yield from run.sleep(order.wait_s)
        return situation

    def rollback(self, step: Step, situation: Situation, order: Order) -> Next:
        """The step failed for good before or at the pivot: the run rolls back."""
        run = self.run
        reason = self._why_given_up(step, situation)
        run.stage_step(EventKind.STEP_GAVE_UP, step.id, StepStatus.FAILED, failure_reason=reason)
        run.stage(
            EventKind.ROLLBACK_STARTED,
            run_status=RunStatus.COMPENSATING,
            reason=f"step {step.id} failed: {reason}",
        )
        return End.ROLLBACK

    def review(self, step: Step, situation: Situation, order: Order) -> Next:
        """A person decides: the step waits for review, the run too, and an alert goes out."""
        return self._stop_for_review(step, self._why_given_up(step, situation), order)

    def go_on(self, step: Step, situation: Situation, order: Order) -> Next:
        """A best-effort step failed for good or stays unknown: alert, and go on without it."""
        run = self.run
        reason = self._why_given_up(step, situation)
        status = StepStatus.FAILED if situation in _DEFINITE else StepStatus.UNKNOWN
        alert = None
        if order.alert is not None:
            alert = run.alert(order.alert, step, reason, run_status=RunStatus.RUNNING)
        run.stage_step(
            EventKind.BEST_EFFORT_FAILED,
            step.id,
            status,
            alert=alert,
            failure_reason=reason,
            kept=True,
        )
        return End.DONE

    def _stop_for_review(self, step: Step, reason: str, order: Order | None = None) -> Next:
        # Without an order the engine itself cannot go on (a result it cannot journal).
        self.run.stage_review(
            step,
            kind=EventKind.NEEDS_MANUAL_REVIEW,
            status=StepStatus.NEEDS_MANUAL_REVIEW,
            alert=order.alert if order is not None else AlertKind.NEEDS_MANUAL_REVIEW,
            reason=reason,
            run_reason=f"{step.id}: {reason}",
        )
        return End.STOP

    def _why_given_up(self, step: Step, situation: Situation) -> str:
        """Why the step stopped being tried, in the words a person reviewing it needs."""
        record = self.run.steps[step.id]
        cause = record.failure_reason or "no reason given"
        attempts = record.attempts
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if situation is Situation.REFUSED:
            return f"refused for good on attempt {attempts}: {cause}"
        if situation is Situation.CALL_IN_FLIGHT:
            return f"{cause}, and still running after another wait as long: a person checks it"
        if situation is Situation.VERIFY_FAILED:
            return f"{cause} (after {record.verify_attempts} verify calls)"
        if situation in _UNKNOWN_SITUATIONS:
            kind = step_kind(step, verify_bound=self.run.verify_bound(step))
            if kind is StepKind.VERIFY_UNBOUND:
                return f"{cause}: verify is described but no verify code is bound"
            if kind is StepKind.UNVERIFIABLE:
                return f"{cause}: a repeat could duplicate the effect and nothing can verify it"
            if kind is StepKind.VERIFIABLE:
                return f"{cause} (after {record.verify_attempts} verify calls)"
            return f"outcome still unknown after {tries} ({cause})"
        return f"gave up after {tries}: {cause}"
