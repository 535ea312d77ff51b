"""The run logic: drives one owned run forward or backward until it stops.

Written as a generator that yields :class:`~sagaguard.engine.calls.Call` and
:class:`~sagaguard.engine.calls.Sleep` requests, so the sync and the async engine share every
decision and differ only in how they perform a call. The rules of DESIGN.md section 2 come
from :func:`sagaguard._legacy_rules.decide`, the same function the planner renders.

Write-ahead discipline: a transition is *staged*, and staged transitions are *flushed* (one
atomic ``record`` call) before any external call, any sleep and any stop. So ``started`` is
durable before its call, and a step's result is durable before the next step's call; the
result of step k and the ``started`` of step k+1 share one commit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import Enum, auto
from random import Random
from typing import Any

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.engine.alerts import Alert, Notifier
from sagaguard.engine.calls import Call, Outcome, OutcomeKind, Sleep
from sagaguard.engine.context import Applied, NotApplied, StepContext
from sagaguard.engine.faults import FaultInjector
from sagaguard.engine.outbox import deliver_now
from sagaguard.engine.retry import backoff_delay
from sagaguard.engine.saga import Saga
from sagaguard.model import Step, StepClass
from sagaguard.storage.base import (
    Claim,
    JournalStore,
    NewAlert,
    NewRun,
    RunSnapshot,
    RunStatus,
    StepChange,
    StepRecord,
    StepStatus,
    Transition,
)
from sagaguard.vocabulary import AlertKind, FaultPoint

Request = Call | Sleep
RunGenerator = Generator[Request, Outcome | None, None]


@dataclass(frozen=True, slots=True)
class Environment:
    """What a run needs from its engine: all injected, nothing global."""

    store: JournalStore
    clock: Callable[[], float]
    faults: FaultInjector
    notifier: Notifier
    lease_s: float
    rng: Random


class RunExists(Exception):  # noqa: N818 - it names the fact, like StopIteration
    """A driver meant to create its run found it journaled already; nothing was called."""

    def __init__(self, new_run: NewRun, snapshot: RunSnapshot) -> None:
        super().__init__(new_run.operation_id)
        self.new_run = new_run
        self.snapshot = snapshot


class _End(Enum):
    COMPLETED = auto()
    FAILED = auto()
    REVIEW = auto()
    RETRY_SAFE = auto()
    NOT_APPLIED = auto()


@dataclass
class RunDriver:
    """Owns one run for one stretch of work, from a claim to a stop."""

    env: Environment
    saga: Saga
    claim: Claim
    snapshot: RunSnapshot
    new_run: NewRun | None = None
    """Set for a run not journaled yet: its first flush creates it (``RunExists`` if it
    exists), so the run and the ``started`` of its first step share one commit."""
    on_created: Callable[[], None] | None = None
    """Called once the first flush created the run."""
    steps: dict[str, StepRecord] = field(init=False)
    status: RunStatus = field(init=False)
    _pending: list[Transition] = field(init=False, default_factory=list)
    _after_flush: list[Callable[[], None]] = field(init=False, default_factory=list)
    _alerts: list[Alert] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.steps = {record.step_id: record for record in self.snapshot.steps}
        self.status = self.snapshot.run.status
        self.process = self.saga.process

    @property
    def operation_id(self) -> str:
        """The run's operation id."""
        return self.claim.operation_id

    # -- the loop -------------------------------------------------------------------------

    def drive(self) -> RunGenerator:
        """Move the run until it is terminal or waits for a person, then release it."""
        while self.status.active:
            if self.status is RunStatus.RUNNING:
                yield from self._forward()
            else:
                yield from self._backward()
        # The run's last transitions and the owner's release share one commit.
        self._flush(release=True)

    def _forward(self) -> RunGenerator:
        for step in self.process.steps:
            if self.steps[step.id].status is StepStatus.COMPLETED:
                continue
            end = yield from self._advance(step)
            if end is _End.FAILED:
                reason = f"step {step.id} failed: {self.steps[step.id].failure_reason}"
                self._stage("rollback_started", run_status=RunStatus.COMPENSATING, reason=reason)
                return
            if end is _End.REVIEW:
                return
        self._stage("run_completed", run_status=RunStatus.COMPLETED)

    def _backward(self) -> RunGenerator:
        done = [r for r in self.steps.values() if r.completed_seq is not None]
        done.sort(key=lambda r: r.completed_seq or 0, reverse=True)
        for record in done:
            step = self.process.step(record.step_id)
            if record.status is StepStatus.COMPENSATED or step.read_only:
                continue
            if step.step_class is StepClass.IRREVERSIBLE:
                self._keep_irreversible(step)
                continue
            if record.status is StepStatus.COMPENSATION_FAILED:
                self._stage("awaiting_review", run_status=RunStatus.NEEDS_MANUAL_REVIEW)
                return
            end = yield from self._compensate(step)
            if end is _End.FAILED:
                return
        effects = [r for r in done if not self.process.step(r.step_id).read_only]
        final = RunStatus.COMPENSATED if effects else RunStatus.FAILED
        self._stage(f"run_{final.value}", run_status=final, reason=self._final_reason(effects))

    # -- forward --------------------------------------------------------------------------

    def _advance(self, step: Step) -> Generator[Request, Outcome | None, _End]:
        record = self.steps[step.id]
        last_unknown = False
        if record.status is StepStatus.NEEDS_MANUAL_REVIEW:
            self._stage("awaiting_review", run_status=RunStatus.NEEDS_MANUAL_REVIEW)
            return _End.REVIEW
        if record.status in (StepStatus.STARTED, StepStatus.UNKNOWN):
            situation = Situation.TIMEOUT
            if record.status is StepStatus.STARTED:
                situation = Situation.CRASH_BEFORE_PERSIST
                self._stage_step(
                    "outcome_unknown",
                    step.id,
                    StepStatus.UNKNOWN,
                    failure_reason="found started after a crash: the call may have happened, "
                    "its result was never saved",
                )
            end = yield from self._settle_unknown(step, situation)
            if end in (_End.COMPLETED, _End.REVIEW):
                return end
            last_unknown = end is _End.RETRY_SAFE
        max_attempts = self.process.max_attempts_for(step)
        while True:
            record = self.steps[step.id]
            if record.attempts >= max_attempts:
                return self._give_up(step, max_attempts, last_unknown)
            if record.attempts > 0:
                yield from self._backoff(record.attempts)
            attempt = record.attempts + 1
            timeout = self.process.timeout_for(step)
            self._stage_step(
                "step_started",
                step.id,
                StepStatus.STARTED,
                attempts=attempt,
                last_attempt_at=self.env.clock(),
            )
            self._flush(extra_lease_s=timeout)
            self._fault(FaultPoint.BEFORE_CALL, step.id, attempt)
            outcome = yield Call(
                self.saga.handlers(step.id).call, self._context(step, attempt), timeout
            )
            assert outcome is not None
            self._fault(FaultPoint.AFTER_CALL, step.id, attempt)
            if outcome.kind is OutcomeKind.OK:
                return self._complete(step, outcome.value, kind="step_completed")
            if outcome.kind is OutcomeKind.FAILED:
                self._stage_step(
                    "step_failed", step.id, StepStatus.FAILED, failure_reason=outcome.reason
                )
                if not outcome.retryable:
                    self._stage_step(
                        "step_gave_up",
                        step.id,
                        StepStatus.FAILED,
                        failure_reason=f"refused for good on attempt {attempt}: {outcome.reason}",
                    )
                    return _End.FAILED
                last_unknown = False
                continue
            self._stage_step(
                "outcome_unknown", step.id, StepStatus.UNKNOWN, failure_reason=outcome.reason
            )
            end = yield from self._settle_unknown(
                step, Situation.TIMEOUT, in_flight=outcome.in_flight
            )
            if end in (_End.COMPLETED, _End.REVIEW):
                return end
            last_unknown = end is _End.RETRY_SAFE

    def _settle_unknown(
        self, step: Step, situation: Situation, *, in_flight: bool = False
    ) -> Generator[Request, Outcome | None, _End]:
        ruling = decide(step, situation)
        if ruling.decision is Decision.RETRY:
            return _End.RETRY_SAFE
        if ruling.decision is Decision.MANUAL_REVIEW:
            cause = self.steps[step.id].failure_reason
            return self._to_review(step, f"{cause}: {ruling.reason}" if cause else ruling.reason)
        if in_flight:
            # Verify would race the abandoned call: "not applied" now proves nothing.
            return self._to_review(
                step,
                f"{self.steps[step.id].failure_reason}: the abandoned call may still apply its "
                "effect, so verify cannot settle it now; a person checks once it has ended",
            )
        verify = self.saga.handlers(step.id).verify
        if verify is None:
            return self._to_review(step, "verify is described but no verify code is bound")
        timeout = self.process.timeout_for(step)
        self._stage("verify_called", step_id=step.id, reason=ruling.reason)
        self._flush(extra_lease_s=timeout)
        attempt = self.steps[step.id].attempts
        outcome = yield Call(verify, self._context(step, attempt), timeout)
        assert outcome is not None
        if outcome.kind is OutcomeKind.OK and isinstance(outcome.value, Applied):
            cause = self.steps[step.id].failure_reason or "outcome unknown"
            return self._complete(
                step,
                outcome.value.result,
                kind="verified_applied",
                failure_reason=f"{cause}; verify found it applied",
            )
        if outcome.kind is OutcomeKind.OK and isinstance(outcome.value, NotApplied):
            self._stage_step(
                "verified_not_applied",
                step.id,
                StepStatus.FAILED,
                failure_reason=f"verify: not applied ({outcome.value.reason})",
            )
            return _End.NOT_APPLIED
        why = (
            outcome.reason
            or f"verify returned {type(outcome.value).__name__}, not Applied/NotApplied"
        )
        return self._to_review(step, f"verify could not tell the outcome: {why}")

    def _complete(
        self, step: Step, value: Any, *, kind: str, failure_reason: str | None = None
    ) -> _End:
        try:
            # Round-tripped, so later steps see the result exactly as a resumed run would
            # (tuples become lists, int keys strings) whichever process drives them.
            value = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            # The effect happened but its result cannot be journaled: a person must look.
            return self._to_review(step, f"result is not JSON-serializable ({exc}); effect applied")
        external_id = None
        if step.external_id and isinstance(value, dict) and value.get(step.external_id) is not None:
            external_id = str(value[step.external_id])
        seq = 1 + max((r.completed_seq or 0) for r in self.steps.values())
        self._stage_step(
            kind,
            step.id,
            StepStatus.COMPLETED,
            result=value,
            external_id=external_id,
            completed_seq=seq,
            failure_reason=failure_reason,
        )
        attempt = self.steps[step.id].attempts
        self._after_flush.append(lambda: self._fault(FaultPoint.AFTER_COMMIT, step.id, attempt))
        return _End.COMPLETED

    def _give_up(self, step: Step, max_attempts: int, last_unknown: bool) -> _End:
        reason = self.steps[step.id].failure_reason or "no reason given"
        if last_unknown and not step.read_only:
            # Retries with the same key never got an answer: the effect may exist.
            return self._to_review(
                step, f"outcome still unknown after {max_attempts} attempts ({reason})"
            )
        self._stage_step(
            "step_gave_up",
            step.id,
            StepStatus.FAILED,
            failure_reason=f"gave up after {max_attempts} attempts: {reason}",
        )
        return _End.FAILED

    def _to_review(self, step: Step, reason: str) -> _End:
        self._stage_step(
            "needs_manual_review",
            step.id,
            StepStatus.NEEDS_MANUAL_REVIEW,
            alert=self._alert(AlertKind.NEEDS_MANUAL_REVIEW, step, reason),
            failure_reason=reason,
        )
        self._stage(
            "awaiting_review",
            run_status=RunStatus.NEEDS_MANUAL_REVIEW,
            reason=f"{step.id}: {reason}",
        )
        return _End.REVIEW

    # -- backward -------------------------------------------------------------------------

    def _compensate(self, step: Step) -> Generator[Request, Outcome | None, _End]:
        bound = self.process.defaults.compensation_attempts
        if self.steps[step.id].status is StepStatus.COMPENSATING:
            attempt = self.steps[step.id].compensation_attempts
            return self._compensation_failed(
                step,
                f"crashed during compensation attempt {attempt}: its outcome is unknown "
                "and a compensation is never repeated blind",
            )
        compensate = self.saga.handlers(step.id).compensate
        assert compensate is not None  # Saga.check_runnable guarantees it
        while True:
            record = self.steps[step.id]
            if record.compensation_attempts >= bound:
                return self._compensation_failed(
                    step, f"compensation failed {bound} times: {record.failure_reason}"
                )
            if record.compensation_attempts > 0:
                yield from self._backoff(record.compensation_attempts)
            attempt = record.compensation_attempts + 1
            timeout = self.process.timeout_for(step)
            self._stage_step(
                "compensation_started",
                step.id,
                StepStatus.COMPENSATING,
                compensation_attempts=attempt,
            )
            self._flush(extra_lease_s=timeout)
            self._fault(FaultPoint.BEFORE_COMPENSATION, step.id, attempt)
            ctx = self._context(step, attempt, result=record.result, external_id=record.external_id)
            outcome = yield Call(compensate, ctx, timeout)
            assert outcome is not None
            self._fault(FaultPoint.AFTER_COMPENSATION, step.id, attempt)
            if outcome.kind is OutcomeKind.OK:
                self._stage_step("step_compensated", step.id, StepStatus.COMPENSATED)
                return _End.COMPLETED
            if outcome.kind is OutcomeKind.UNKNOWN:
                return self._compensation_failed(
                    step, f"compensation outcome unknown: {outcome.reason}"
                )
            if not outcome.retryable:
                return self._compensation_failed(
                    step, f"compensation refused for good on attempt {attempt}: {outcome.reason}"
                )
            self._stage_step(
                "compensation_attempt_failed",
                step.id,
                StepStatus.COMPLETED,
                failure_reason=f"compensation attempt {attempt} failed: {outcome.reason}",
            )

    def _compensation_failed(self, step: Step, reason: str) -> _End:
        self._stage_step(
            "compensation_failed",
            step.id,
            StepStatus.COMPENSATION_FAILED,
            alert=self._alert(AlertKind.COMPENSATION_FAILED, step, reason),
            failure_reason=reason,
        )
        self._stage(
            "awaiting_review",
            run_status=RunStatus.NEEDS_MANUAL_REVIEW,
            reason=f"rollback halted at {step.id}: {reason}",
        )
        return _End.FAILED

    def _keep_irreversible(self, step: Step) -> None:
        record = self.steps[step.id]
        if record.failure_reason and record.failure_reason.startswith("kept:"):
            return
        mitigation = step.mitigation or "no mitigation declared"
        self._stage_step(
            "irreversible_kept",
            step.id,
            StepStatus.COMPLETED,
            failure_reason=f"kept: irreversible, cannot be undone; mitigation: {mitigation}",
        )

    def _final_reason(self, effects: list[StepRecord]) -> str | None:
        kept = [
            r.step_id
            for r in effects
            if self.process.step(r.step_id).step_class is StepClass.IRREVERSIBLE
        ]
        return f"irreversible steps kept: {', '.join(kept)}" if kept else None

    # -- plumbing -------------------------------------------------------------------------

    def _context(
        self, step: Step, attempt: int, *, result: Any = None, external_id: str | None = None
    ) -> StepContext:
        done = [r for r in self.steps.values() if r.completed_seq is not None]
        return StepContext(
            operation_id=self.operation_id,
            step_id=step.id,
            attempt=attempt,
            idempotency_key=self.steps[step.id].idempotency_key,
            fencing_token=self.claim.fencing_token,
            input=self.snapshot.run.input,
            results={r.step_id: r.result for r in done},
            external_ids={r.step_id: r.external_id for r in done},
            result=result,
            external_id=external_id,
        )

    def _backoff(self, attempts: int) -> RunGenerator:
        defaults = self.process.defaults
        delay = backoff_delay(
            attempts, base_s=defaults.backoff_base, max_s=defaults.backoff_max, rng=self.env.rng
        )
        self._flush(extra_lease_s=delay)
        if delay > 0:
            yield Sleep(delay)

    def _fault(self, point: FaultPoint, step_id: str, attempt: int) -> None:
        self.env.faults.check(
            point, operation_id=self.operation_id, step_id=step_id, attempt=attempt
        )

    def _alert(self, kind: AlertKind, step: Step, reason: str) -> NewAlert:
        """Prepare an alert: it enters the outbox with its transition, then is delivered."""
        now = self.env.clock()
        alert = Alert(
            kind=kind,
            operation_id=self.operation_id,
            process=self.process.name,
            step_id=step.id,
            route=self.process.alert_route(step),
            reason=reason,
            run_status=RunStatus.NEEDS_MANUAL_REVIEW.value,
            at=now,
        )
        self._alerts.append(alert)
        # A worker takes it over only once this owner had a lease's time to deliver it.
        return NewAlert(
            alert_id=alert.alert_id,
            kind=kind.value,
            payload=alert.to_json(),
            deliver_after=now + self.env.lease_s,
        )

    def _stage(
        self,
        kind: str,
        *,
        step_id: str | None = None,
        run_status: RunStatus | None = None,
        reason: str | None = None,
    ) -> None:
        step = StepChange(step_id, self.steps[step_id].status) if step_id else None
        self._pending.append(
            Transition(
                kind=kind, step=step, run_status=run_status, reason=reason, run_reason=reason
            )
        )
        if run_status is not None:
            self.status = run_status

    def _stage_step(
        self,
        kind: str,
        step_id: str,
        status: StepStatus,
        *,
        alert: NewAlert | None = None,
        **values: Any,
    ) -> None:
        change = StepChange(step_id, status, **values)
        # An alerting event names its route and alert id, so the trail shows who was told.
        data = (
            None if alert is None else {"route": alert.payload["route"], "alert_id": alert.alert_id}
        )
        self._pending.append(
            Transition(
                kind=kind,
                step=change,
                reason=values.get("failure_reason"),
                alert=alert,
                data=data,
            )
        )
        updates = {k: v for k, v in values.items() if v is not None} | {"status": status}
        self.steps[step_id] = dataclasses.replace(self.steps[step_id], **updates)

    def _create(self, lease_s: float) -> None:
        assert self.new_run is not None
        created = self.env.store.create_run(
            self.new_run,
            owner=self.claim.owner,
            now=self.env.clock(),
            lease_s=lease_s,
            transitions=self._pending,
        )
        if not created.created:
            raise RunExists(self.new_run, created.snapshot)
        assert created.claim is not None
        self.new_run, self.claim, self._pending = None, created.claim, []
        if self.on_created is not None:
            self.on_created()

    def _flush(self, *, extra_lease_s: float = 0.0, release: bool = False) -> None:
        lease_s = self.env.lease_s + extra_lease_s
        if self.new_run is not None:
            self._create(lease_s)
        if self._pending or release:
            self.claim = self.env.store.record(
                self.claim,
                self._pending,
                now=self.env.clock(),
                lease_s=lease_s,
                release=release,
            )
            self._pending = []
        alerts, self._alerts = self._alerts, []
        for alert in alerts:
            deliver_now(self.env.store, self.env.notifier, alert, now=self.env.clock())
        callbacks, self._after_flush = self._after_flush, []
        for callback in callbacks:
            callback()
