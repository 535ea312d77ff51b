"""One owned run as its driver sees it, and the write-ahead plumbing under it.

A transition is *staged* (the in-memory view of the run moves at once) and staged transitions
are *flushed*: one atomic ``record`` call, fenced by the claim, before any external call, any
sleep and any stop. So ``started`` is durable before its call, and a step's result is durable
before the next step's call; the result of step k and the ``started`` of step k+1 share one
commit. A run not journaled yet is created by its first flush.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from random import Random
from typing import Any

from sagaguard.engine.abandoned import CallKind, Returned
from sagaguard.engine.alerts import Alert, Notifier
from sagaguard.engine.calls import Outcome, Request, Sleep, describe
from sagaguard.engine.context import StepContext
from sagaguard.engine.faults import FaultInjector
from sagaguard.engine.outbox import deliver_now
from sagaguard.engine.retry import backoff_delay, still_owed
from sagaguard.engine.saga import Saga
from sagaguard.model import Process, Step
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
    replace_step,
)
from sagaguard.storage.payloads import EncodedJSON, JSONValue
from sagaguard.vocabulary import AlertKind, EventKind, FaultPoint

__all__ = ["Environment", "RunExists", "StagedRun", "StopBeforeCall"]

Requests = Generator[Request, Outcome | None, None]


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


class StopBeforeCall(Exception):  # noqa: N818 - it names the fact, like RunExists
    """A driver handing its run back reached a move that would call user code or wait."""


@dataclass
class StagedRun:
    """The run's state as journaled plus what is staged, and the commit that writes it."""

    env: Environment
    saga: Saga
    claim: Claim
    snapshot: RunSnapshot
    new_run: NewRun | None = None
    """Set for a run not journaled yet: its first flush creates it (``RunExists`` if it
    exists), so the run and the ``started`` of its first step share one commit."""
    on_created: Callable[[], None] | None = None
    """Called once the first flush created the run."""
    current: str | None = None
    """The step in hand (an error the engine did not expect is pinned on it)."""
    returned: dict[str, Returned] = field(default_factory=dict)
    """By step: the outcome of a call an interrupted driver of this run made, not journaled
    yet (:mod:`~sagaguard.engine.abandoned`); taken by the move that journals it."""
    handing_back: bool = False
    """Set for a driver that hands the run back: it journals what is known and makes every
    move that calls nothing, then stops before the first call or wait (:meth:`calling`)."""
    steps: dict[str, StepRecord] = field(init=False)
    status: RunStatus = field(init=False)
    _pending: list[Transition] = field(init=False, default_factory=list)
    _after_flush: list[Callable[[], None]] = field(init=False, default_factory=list)
    _alerts: list[Alert] = field(init=False, default_factory=list)
    _result_texts: dict[str, str] = field(init=False, default_factory=dict)
    """By step: the JSON text of its result as journaled, decoded for each copy of it."""
    _input_text: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.steps = {record.step_id: record for record in self.snapshot.steps}
        self.status = self.snapshot.run.status

    @property
    def operation_id(self) -> str:
        """The run's operation id."""
        return self.claim.operation_id

    @property
    def process(self) -> Process:
        """The process the run follows."""
        return self.saga.process

    def now(self) -> float:
        """The engine's clock."""
        return self.env.clock()

    def take_returned(self, step: Step, kind: CallKind) -> Outcome | None:
        """The returned outcome of an abandoned ``kind`` call of ``step``, if it still fits."""
        returned = self.returned.get(step.id)
        if returned is None or returned.kind is not kind:
            return None
        del self.returned[step.id]
        return returned.outcome if returned.fits(self.steps[step.id], kind) else None

    def calling(self) -> None:
        """The next move calls user code or waits: a driver handing the run back stops here.

        Nothing of that move is staged yet (no ``started``, no counted verify, no backoff),
        so the next owner finds the journal as the rulebook left it, and makes the move.
        """
        if self.handing_back:
            raise StopBeforeCall(self.operation_id)

    def verify_bound(self, step: Step) -> bool:
        """True when verify code is bound to ``step`` (the rulebook asks)."""
        return self.saga.handlers(step.id).verify is not None

    def backoff(self, attempts: int, *, since: float | None = None) -> Requests:
        """Wait before the next try, after ``attempts`` tries (jittered, capped).

        ``since``: when the last try started, as journaled; the wait counts from it.
        """
        defaults = self.process.defaults
        delay = backoff_delay(
            attempts, base_s=defaults.backoff_base, max_s=defaults.backoff_max, rng=self.env.rng
        )
        yield from self.sleep(still_owed(delay, since=since, now=self.env.clock()))

    def sleep(self, seconds: float) -> Requests:
        """Commit what is staged, then wait ``seconds`` (the lease covers the wait).

        No wait owes no commit: what is staged goes with the next one, which comes before
        any call and any stop. A run recovered after a crash, whose backoff the time without
        an owner has already waited, retries its step with one commit instead of two.
        """
        if seconds > 0:
            self.flush(extra_lease_s=seconds)
            yield Sleep(seconds)

    def next_seq(self) -> int:
        """The completion number the next completed step gets."""
        return 1 + max((r.completed_seq or 0) for r in self.steps.values())

    # -- staging ----------------------------------------------------------------------------

    def stage(
        self,
        kind: EventKind,
        *,
        step_id: str | None = None,
        run_status: RunStatus | None = None,
        reason: str | None = None,
    ) -> None:
        """Stage a change of the run (an event, optionally a new run status)."""
        step = StepChange(step_id, self.steps[step_id].status) if step_id else None
        self._pending.append(
            Transition(
                kind=kind, step=step, run_status=run_status, reason=reason, run_reason=reason
            )
        )
        if run_status is not None:
            self.status = run_status

    def stage_step(
        self,
        kind: EventKind,
        step_id: str,
        status: StepStatus,
        *,
        alert: NewAlert | None = None,
        **values: Any,
    ) -> None:
        """Stage a change of one step's row (``values`` are :class:`StepChange` fields)."""
        change = StepChange(step_id, status, **values)
        if "result" in values:
            result = values["result"]
            if isinstance(result, EncodedJSON):
                # The store writes its text; the run's view and later steps' copies use it too.
                self._result_texts[step_id] = result.text
                values["result"] = result.value
            else:
                self._result_texts.pop(step_id, None)
        # An alerting event names its route and alert id, so the trail shows who was told.
        data = (
            None if alert is None else {"route": alert.payload["route"], "alert_id": alert.alert_id}
        )
        self._pending.append(
            Transition(
                kind=kind, step=change, reason=values.get("failure_reason"), alert=alert, data=data
            )
        )
        updates = {k: v for k, v in values.items() if v is not None} | {"status": status}
        self.steps[step_id] = replace_step(self.steps[step_id], updates)

    def stage_review(
        self,
        step: Step,
        *,
        kind: EventKind,
        status: StepStatus,
        alert: AlertKind | None,
        reason: str,
        run_reason: str,
    ) -> None:
        """Stage a stop for a person: the step's event (with its alert), then the run's."""
        new_alert = None
        if alert is not None:
            new_alert = self.alert(alert, step, reason, run_status=RunStatus.NEEDS_MANUAL_REVIEW)
        self.stage_step(kind, step.id, status, alert=new_alert, failure_reason=reason)
        self.stage(
            EventKind.AWAITING_REVIEW, run_status=RunStatus.NEEDS_MANUAL_REVIEW, reason=run_reason
        )

    def halt(self, error: Exception) -> None:
        """Stop for a person on an error the engine did not expect, pinned on the step in hand.

        The step waits for review (or, mid-rollback, counts as a failed compensation), so
        ``review resolve`` can settle it; the run is never left running with nobody on it.
        """
        reason = (
            f"the engine stopped on an error it did not expect "
            f"({describe(error, prefix=type(error).__name__)}); a person checks this step"
        )
        step = self.process.step(self._step_in_hand())
        if self.status is RunStatus.COMPENSATING:
            kind, status = EventKind.COMPENSATION_FAILED, StepStatus.COMPENSATION_FAILED
        else:
            kind, status = EventKind.NEEDS_MANUAL_REVIEW, StepStatus.NEEDS_MANUAL_REVIEW
        self.stage_review(
            step,
            kind=kind,
            status=status,
            alert=AlertKind.NEEDS_MANUAL_REVIEW,
            reason=reason,
            run_reason=f"{step.id}: {reason}",
        )

    def _step_in_hand(self) -> str:
        """The step an unexpected error is pinned on: the current one, unless it is settled."""
        if self.current is not None and self.steps[self.current].status is not StepStatus.COMPLETED:
            return self.current
        if self.status is RunStatus.RUNNING:
            for step in self.process.steps:
                record = self.steps[step.id]
                if record.status is not StepStatus.COMPLETED and not record.kept:
                    return step.id
        return self.current or self.process.steps[0].id

    def after_flush(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` right after the next flush (a fault point after a commit)."""
        self._after_flush.append(callback)

    def alert(self, kind: AlertKind, step: Step, reason: str, *, run_status: RunStatus) -> NewAlert:
        """Prepare an alert: it enters the outbox with its transition, then is delivered."""
        now = self.now()
        alert = Alert(
            kind=kind,
            operation_id=self.operation_id,
            process=self.process.name,
            step_id=step.id,
            route=self.process.alert_route(step),
            reason=reason,
            run_status=run_status.value,
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

    # -- what steps receive -----------------------------------------------------------------

    def context(
        self, step: Step, attempt: int, *, result: Any = None, external_id: str | None = None
    ) -> StepContext:
        """What a call of ``step`` receives: the run's input and the results so far.

        Copies, so a step that changes them changes nothing the journal holds: not the
        input later steps see, not the caller's own object, not the result a refund reads.
        """
        done = [r for r in self.steps.values() if r.completed_seq is not None]
        if self._input_text is None:
            self._input_text = _json_text(self.snapshot.run.input)
        return StepContext(
            operation_id=self.operation_id,
            step_id=step.id,
            attempt=attempt,
            idempotency_key=self.steps[step.id].idempotency_key,
            fencing_token=self.claim.fencing_token,
            input=json.loads(self._input_text),
            results={r.step_id: self._result_copy(r) for r in done},
            external_ids={r.step_id: r.external_id for r in done},
            result=_copy(result),
            external_id=external_id,
        )

    def _result_copy(self, record: StepRecord) -> JSONValue:
        """A copy of a step's result, decoded from its JSON text (encoded once per run)."""
        text = self._result_texts.get(record.step_id)
        if text is None:
            text = self._result_texts[record.step_id] = _json_text(record.result)
        return json.loads(text)

    def fault(self, point: FaultPoint, step_id: str, attempt: int) -> None:
        """Offer a fault point to the injector."""
        self.env.faults.check(
            point, operation_id=self.operation_id, step_id=step_id, attempt=attempt
        )

    # -- committing -------------------------------------------------------------------------

    def flush(self, *, extra_lease_s: float = 0.0, release: bool = False) -> None:
        """Commit what is staged in one atomic write, renewing (or releasing) the lease."""
        lease_s = self.env.lease_s + extra_lease_s
        if self.new_run is not None:
            self._create(lease_s)
        if self._pending or release:
            self.claim = self.env.store.record(
                self.claim, self._pending, now=self.now(), lease_s=lease_s, release=release
            )
            self._pending = []
        alerts, self._alerts = self._alerts, []
        for alert in alerts:
            deliver_now(self.env.store, self.env.notifier, alert, now=self.now())
        callbacks, self._after_flush = self._after_flush, []
        for callback in callbacks:
            callback()

    def _create(self, lease_s: float) -> None:
        assert self.new_run is not None
        created = self.env.store.create_run(
            self.new_run,
            owner=self.claim.owner,
            now=self.now(),
            lease_s=lease_s,
            transitions=self._pending,
        )
        if not created.created:
            raise RunExists(self.new_run, created.snapshot)
        assert created.claim is not None
        self.new_run, self.claim, self._pending = None, created.claim, []
        if self.on_created is not None:
            self.on_created()


def _copy(value: JSONValue) -> JSONValue:
    """A copy of a JSON value as a resumed run would read it (the journal checked it is JSON)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(_json_text(value))


def _json_text(value: JSONValue) -> str:
    return json.dumps(value, ensure_ascii=False)
