"""An in-memory journal store for unit tests, with exactly the SQLite store's semantics.

Everything lives in process memory behind one lock, so nothing survives the process. Payloads
are kept as the JSON text the SQLite store would write and decoded on every read: a caller can
neither alias nor mutate stored state, and a payload that SQLite would refuse is refused here
too. The contract suite (``tests/contract``) runs the same cases against both stores.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from sagaguard.exceptions import (
    OperationConflictError,
    RunBusyError,
    RunNotFoundError,
    StaleOwnerError,
    StoreError,
)
from sagaguard.storage.base import (
    NOTIFIER_ACTOR,
    Claim,
    CreateResult,
    Event,
    NewAlert,
    NewRun,
    OutboxAlert,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StepRecord,
    StepStatus,
    StoreInfo,
    Transition,
    alert_settled_event,
    dumps,
    idempotency_key,
    loads,
)

__all__ = ["InMemoryStore"]

_ACTIVE = (RunStatus.RUNNING, RunStatus.COMPENSATING)
_KEPT_UNLESS_GIVEN = (
    "attempts",
    "last_attempt_at",
    "external_id",
    "failure_reason",
    "compensation_attempts",
    "completed_seq",
    "first_attempt_at",
    "unknown_since",
    "verify_attempts",
    "compensation_first_at",
    "kept",
)
"""Step fields a ``StepChange`` overwrites only when it carries a value (``result`` aside)."""


@dataclass(slots=True)
class _Step:
    position: int
    status: StepStatus
    attempts: int = 0
    last_attempt_at: float | None = None
    external_id: str | None = None
    result: str | None = None
    failure_reason: str | None = None
    compensation_attempts: int = 0
    completed_seq: int | None = None
    external_id_field: str | None = None
    first_attempt_at: float | None = None
    unknown_since: float | None = None
    verify_attempts: int = 0
    compensation_first_at: float | None = None
    kept: bool = False


@dataclass(slots=True)
class _Alert:
    operation_id: str
    kind: str
    payload: str
    created_at: float
    next_attempt_at: float
    attempts: int = 0
    delivered_at: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class _Run:
    order: int
    process: str
    version: str
    input: str
    input_hash: str
    status: RunStatus
    owner: str | None
    lease_expires_at: float | None
    fencing_token: int
    created_at: float
    updated_at: float
    reason: str | None = None
    steps: dict[str, _Step] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


class InMemoryStore:
    """A :class:`~sagaguard.storage.base.JournalStore` held in memory (tests, demos)."""

    def __init__(self, *, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._alerts: dict[str, _Alert] = {}
        self._created = 0
        self._closed = False

    # -- reads -----------------------------------------------------------------------------

    def load(self, operation_id: str) -> RunSnapshot:
        """The run and its steps as of one consistent read; ``RunNotFoundError`` if absent."""
        with self._lock:
            return self._snapshot(operation_id, self._get(operation_id))

    def list_runs(self, *, status: RunStatus | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""
        with self._lock:
            self._check_open()
            runs = [
                (operation_id, run)
                for operation_id, run in self._runs.items()
                if status is None or run.status == status
            ]
            runs.sort(key=lambda item: (item[1].created_at, item[1].order), reverse=True)
            return [self._run_record(op, run) for op, run in runs[: max(limit, 0)]]

    def events(self, operation_id: str) -> list[Event]:
        """A run's audit trail in the order it was written; ``RunNotFoundError`` if absent."""
        with self._lock:
            run = self._get(operation_id)
            # Event data is decoded afresh: the stored copy is JSON text inside the event.
            return [_thaw_event(event) for event in run.events]

    def info(self) -> StoreInfo:
        """What this store is: nothing here is durable."""
        return StoreInfo(backend="memory", url=self.url, details={"durability": "none"})

    # -- writes ----------------------------------------------------------------------------

    def create_run(
        self,
        new: NewRun,
        *,
        owner: str,
        now: float,
        lease_s: float,
        transitions: Sequence[Transition] = (),
    ) -> CreateResult:
        """Create a run owned by ``owner`` (then apply ``transitions``), or return the existing."""
        encoded = _encoded(transitions)
        input_text = dumps(new.input)
        digest = new.input_hash
        if len(set(new.step_ids)) != len(new.step_ids):
            raise StoreError(f"run {new.operation_id!r} lists a step id twice: {new.step_ids}")
        with self._lock:
            self._check_open()
            existing = self._runs.get(new.operation_id)
            if existing is not None:
                if existing.process != new.process or existing.input_hash != digest:
                    raise OperationConflictError(
                        f"operation {new.operation_id!r} already exists for process "
                        f"{existing.process!r} with a different input or process"
                    )
                return CreateResult(
                    snapshot=self._snapshot(new.operation_id, existing), created=False, claim=None
                )
            self._created += 1
            lease = now + lease_s
            run = _Run(
                order=self._created,
                process=new.process,
                version=new.version,
                input=input_text,
                input_hash=digest,
                status=RunStatus.RUNNING,
                owner=owner,
                lease_expires_at=lease,
                fencing_token=1,
                created_at=now,
                updated_at=now,
                steps={
                    step_id: _Step(
                        position=position,
                        status=StepStatus.PENDING,
                        external_id_field=new.external_id_fields.get(step_id),
                    )
                    for position, step_id in enumerate(new.step_ids)
                },
            )
            self._append(
                new.operation_id,
                run,
                at=now,
                actor=owner,
                kind="run_created",
                to_status=RunStatus.RUNNING.value,
                data=dumps({"process": new.process, "version": new.version}),
            )
            claim = Claim(new.operation_id, owner, 1, lease)
            self._check_steps(claim, run, encoded)
            self._runs[new.operation_id] = run
            self._apply(claim, run, encoded, now=now, lease_s=lease_s, release=False)
            return CreateResult(
                snapshot=self._snapshot(new.operation_id, run), created=True, claim=claim
            )

    def claim(self, operation_id: str, *, owner: str, now: float, lease_s: float) -> Claim:
        """Take ownership of a run whose lease is free, expired, or already ours."""
        with self._lock:
            run = self._get(operation_id)
            if run.owner is not None and run.owner != owner and _live(run.lease_expires_at, now):
                raise RunBusyError(
                    f"run {operation_id!r} is held by {run.owner!r} until {run.lease_expires_at}"
                )
            return self._take(operation_id, run, owner=owner, now=now, lease_s=lease_s)

    def claim_expired(
        self, *, owner: str, now: float, lease_s: float, limit: int = 10
    ) -> list[Claim]:
        """Claim up to ``limit`` active runs whose owner is gone or whose lease expired."""
        with self._lock:
            self._check_open()
            candidates = sorted(
                (
                    (run.created_at, run.order, operation_id, run)
                    for operation_id, run in self._runs.items()
                    if run.status in _ACTIVE
                    and (run.owner is None or not _live(run.lease_expires_at, now))
                ),
                key=lambda item: (item[0], item[1]),
            )
            return [
                self._take(operation_id, run, owner=owner, now=now, lease_s=lease_s)
                for _, _, operation_id, run in candidates[: max(limit, 0)]
            ]

    def record(
        self,
        claim: Claim,
        transitions: Sequence[Transition],
        *,
        now: float,
        lease_s: float,
        release: bool = False,
    ) -> Claim:
        """Apply ``transitions`` under ``claim`` and renew (or release) it, all or nothing."""
        # Encode every payload before touching state, so a bad one changes nothing.
        encoded = _encoded(transitions)
        with self._lock:
            run = self._current(claim)
            self._check_steps(claim, run, encoded)
            self._apply(claim, run, encoded, now=now, lease_s=lease_s, release=release)
            return Claim(claim.operation_id, claim.owner, claim.fencing_token, now + lease_s)

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Extend the lease of a claim that is still current (``StaleOwnerError``)."""
        with self._lock:
            run = self._current(claim)
            run.lease_expires_at = now + lease_s
            return Claim(claim.operation_id, claim.owner, claim.fencing_token, now + lease_s)

    def release(self, claim: Claim, *, now: float) -> None:
        """Give up ownership if the claim is current (``StaleOwnerError`` otherwise)."""
        with self._lock:
            self._let_go(claim, self._current(claim), now)

    def claim_due_alerts(self, *, now: float, lease_s: float, limit: int = 10) -> list[OutboxAlert]:
        """Take up to ``limit`` undelivered alerts that are due, hiding them for ``lease_s``."""
        with self._lock:
            self._check_open()
            due = sorted(
                (
                    (alert.next_attempt_at, alert_id, alert)
                    for alert_id, alert in self._alerts.items()
                    if alert.delivered_at is None and alert.next_attempt_at <= now
                ),
                key=lambda item: item[:2],
            )[: max(limit, 0)]
            taken = []
            for _, alert_id, alert in due:
                alert.next_attempt_at = now + lease_s
                taken.append(
                    OutboxAlert(
                        alert_id=alert_id,
                        operation_id=alert.operation_id,
                        kind=alert.kind,
                        payload=loads(alert.payload),
                        created_at=alert.created_at,
                        attempts=alert.attempts,
                        last_error=alert.last_error,
                    )
                )
            return taken

    def settle_alert(
        self, alert_id: str, *, now: float, error: str | None = None, retry_at: float = 0.0
    ) -> None:
        """Mark an alert delivered, or count a failed attempt and set when to try again."""
        with self._lock:
            self._check_open()
            alert = self._alerts.get(alert_id)
            if alert is None or alert.delivered_at is not None:
                return
            event = alert_settled_event(
                alert.kind, alert_id, failed_before=alert.attempts, error=error
            )
            if error is None:
                alert.delivered_at = now
            else:
                alert.attempts += 1
                alert.last_error = error
                alert.next_attempt_at = retry_at
            run = self._runs.get(alert.operation_id)
            if event is not None and run is not None:
                kind, reason, data = event
                self._append(
                    alert.operation_id,
                    run,
                    at=now,
                    actor=NOTIFIER_ACTOR,
                    kind=kind,
                    reason=reason,
                    data=dumps(data),
                )

    def close(self) -> None:
        """Drop everything; the store is unusable afterwards."""
        with self._lock:
            self._closed = True
            self._runs.clear()
            self._alerts.clear()

    # -- internals (called with the lock held) ---------------------------------------------

    @staticmethod
    def _check_steps(claim: Claim, run: _Run, encoded: _Encoded) -> None:
        for transition, _, _ in encoded.transitions:
            if transition.step is not None and transition.step.step_id not in run.steps:
                raise StoreError(
                    f"run {claim.operation_id!r} has no step {transition.step.step_id!r}"
                )

    def _apply(
        self,
        claim: Claim,
        run: _Run,
        encoded: _Encoded,
        *,
        now: float,
        lease_s: float,
        release: bool,
    ) -> None:
        for transition, result_text, data_text in encoded.transitions:
            from_status: str | None = None
            to_status: str | None = None
            change = transition.step
            if change is not None:
                step = run.steps[change.step_id]
                from_status, to_status = step.status.value, change.status.value
                step.status = change.status
                for name in _KEPT_UNLESS_GIVEN:
                    value = getattr(change, name)
                    if value is not None:
                        setattr(step, name, value)
                if result_text is not None:
                    step.result = result_text
            if transition.run_status is not None:
                # The event shows the step's move when there is one, else the run's.
                if from_status == to_status:
                    from_status = run.status.value
                    to_status = transition.run_status.value
                run.status = transition.run_status
                run.reason = transition.run_reason
            elif transition.run_reason is not None:
                run.reason = transition.run_reason
            self._append(
                claim.operation_id,
                run,
                at=now,
                actor=claim.owner,
                kind=transition.kind,
                step_id=None if change is None else change.step_id,
                from_status=from_status,
                to_status=to_status,
                reason=transition.reason,
                data=data_text,
            )
        for alert, payload in encoded.alerts:
            self._alerts[alert.alert_id] = _Alert(
                operation_id=claim.operation_id,
                kind=alert.kind,
                payload=payload,
                created_at=now,
                next_attempt_at=alert.deliver_after,
            )
        if release:
            self._let_go(claim, run, now)
        else:
            run.lease_expires_at = now + lease_s
            if encoded.transitions:
                run.updated_at = now

    def _let_go(self, claim: Claim, run: _Run, now: float) -> None:
        run.owner = None
        run.lease_expires_at = None
        run.updated_at = now
        self._append(
            claim.operation_id,
            run,
            at=now,
            actor=claim.owner,
            kind="released",
            data=dumps({"fencing_token": claim.fencing_token}),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"journal store {self.url} is closed")

    def _get(self, operation_id: str) -> _Run:
        self._check_open()
        run = self._runs.get(operation_id)
        if run is None:
            raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
        return run

    def _current(self, claim: Claim) -> _Run:
        run = self._get(claim.operation_id)
        if run.fencing_token != claim.fencing_token or run.owner != claim.owner:
            raise StaleOwnerError(
                f"{claim.owner!r} no longer holds run {claim.operation_id!r} "
                f"(token {claim.fencing_token}, current {run.fencing_token})"
            )
        return run

    def _take(
        self, operation_id: str, run: _Run, *, owner: str, now: float, lease_s: float
    ) -> Claim:
        previous = run.owner
        run.owner = owner
        run.fencing_token += 1
        run.lease_expires_at = now + lease_s
        run.updated_at = now
        self._append(
            operation_id,
            run,
            at=now,
            actor=owner,
            kind="claimed",
            reason=_claim_reason(previous, owner),
            data=dumps({"fencing_token": run.fencing_token, "previous_owner": previous}),
        )
        return Claim(operation_id, owner, run.fencing_token, now + lease_s)

    @staticmethod
    def _append(
        operation_id: str,
        run: _Run,
        *,
        at: float,
        actor: str,
        kind: str,
        step_id: str | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        reason: str | None = None,
        data: str | None = None,
    ) -> None:
        # The event keeps its data as JSON text; _thaw_event decodes it on every read.
        run.events.append(
            Event(
                operation_id=operation_id,
                seq=len(run.events) + 1,
                at=at,
                actor=actor,
                kind=kind,
                step_id=step_id,
                from_status=from_status,
                to_status=to_status,
                reason=reason,
                data=data,
            )
        )

    @staticmethod
    def _run_record(operation_id: str, run: _Run) -> RunRecord:
        return RunRecord(
            operation_id=operation_id,
            process=run.process,
            version=run.version,
            input=loads(run.input),
            input_hash=run.input_hash,
            status=run.status,
            owner=run.owner,
            lease_expires_at=run.lease_expires_at,
            fencing_token=run.fencing_token,
            created_at=run.created_at,
            updated_at=run.updated_at,
            reason=run.reason,
        )

    def _snapshot(self, operation_id: str, run: _Run) -> RunSnapshot:
        steps = sorted(run.steps.items(), key=lambda item: item[1].position)
        return RunSnapshot(
            run=self._run_record(operation_id, run),
            steps=tuple(
                StepRecord(
                    operation_id=operation_id,
                    step_id=step_id,
                    position=step.position,
                    status=step.status,
                    attempts=step.attempts,
                    last_attempt_at=step.last_attempt_at,
                    idempotency_key=idempotency_key(operation_id, step_id),
                    external_id=step.external_id,
                    result=loads(step.result),
                    failure_reason=step.failure_reason,
                    compensation_attempts=step.compensation_attempts,
                    completed_seq=step.completed_seq,
                    external_id_field=step.external_id_field,
                    first_attempt_at=step.first_attempt_at,
                    unknown_since=step.unknown_since,
                    verify_attempts=step.verify_attempts,
                    compensation_first_at=step.compensation_first_at,
                    kept=step.kept,
                )
                for step_id, step in steps
            ),
        )


@dataclass(frozen=True, slots=True)
class _Encoded:
    """Transitions with their payloads already JSON text, and the alerts they raise."""

    transitions: tuple[tuple[Transition, str | None, str | None], ...]
    alerts: tuple[tuple[NewAlert, str], ...]


def _encoded(transitions: Sequence[Transition]) -> _Encoded:
    """Encode every payload up front, so a bad one changes nothing."""
    return _Encoded(
        transitions=tuple(
            (
                t,
                None if t.step is None else _encode(t.step.result),
                _encode(t.data),
            )
            for t in transitions
        ),
        alerts=tuple((t.alert, dumps(t.alert.payload)) for t in transitions if t.alert),
    )


def _live(lease_expires_at: float | None, now: float) -> bool:
    """A lease is live until the instant it expires; at ``now == lease_expires_at`` it is over."""
    return lease_expires_at is not None and lease_expires_at > now


def _claim_reason(previous: str | None, owner: str) -> str | None:
    """Why a claim took the run: only a takeover from another owner needs saying."""
    if previous is None or previous == owner:
        return None
    return f"lease of {previous} expired"


def _encode(value: object) -> str | None:
    """JSON text of a payload; ``None`` stays ``None``, as SQLite stores NULL."""
    return None if value is None else dumps(value)


def _thaw_event(event: Event) -> Event:
    return Event(
        operation_id=event.operation_id,
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        kind=event.kind,
        step_id=event.step_id,
        from_status=event.from_status,
        to_status=event.to_status,
        reason=event.reason,
        data=loads(event.data),
    )
