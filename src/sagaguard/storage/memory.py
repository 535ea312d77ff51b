"""An in-memory journal store for unit tests, with exactly the SQLite store's semantics.

Everything lives in process memory behind one lock, so nothing survives the process. The
rules are :mod:`sagaguard.storage.journal`'s; this store only locks, reads and writes.
Payloads are kept as the JSON text the SQLite store would write and decoded on every read:
a caller can neither alias nor mutate stored state, and a payload that SQLite would refuse
is refused here too. The contract suite (``tests/contract``) runs the same cases against
every store.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sagaguard.exceptions import RunNotFoundError, StoreError
from sagaguard.storage import journal
from sagaguard.storage.base import (
    NOTIFIER_ACTOR,
    AlertBacklog,
    Claim,
    CreateResult,
    Event,
    NewRun,
    OutboxAlert,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StepRecord,
    StoreInfo,
    Transition,
    alert_settled_event,
    replace_step,
)
from sagaguard.storage.payloads import dumps, loads
from sagaguard.storage.rows import AlertRow, EventRow, RunState
from sagaguard.storage.wakeup import WorkSignal

__all__ = ["InMemoryStore"]


@dataclass(slots=True)
class _Alert:
    row: AlertRow
    next_attempt_at: float
    attempts: int = 0
    delivered_at: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class _Run:
    order: int
    identity: RunRecord
    """Process, version, input (as JSON text), digest and creation time: never change."""
    state: RunState
    steps: dict[str, StepRecord]
    """Results kept as JSON text."""
    events: list[EventRow] = field(default_factory=list)


class InMemoryStore:
    """A :class:`~sagaguard.storage.base.JournalStore` held in memory (tests, demos)."""

    def __init__(self, *, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._alerts: dict[str, _Alert] = {}
        self._created = 0
        self._closed = False
        self._work = WorkSignal()

    # -- reads -----------------------------------------------------------------------------

    def load(self, operation_id: str) -> RunSnapshot:
        """The run and its steps as of one consistent read; ``RunNotFoundError`` if absent."""
        with self._lock:
            return _snapshot(self._get(operation_id))

    def list_runs(self, *, status: RunStatus | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""
        with self._lock:
            self._check_open()
            runs = [r for r in self._runs.values() if status is None or r.state.status == status]
            runs.sort(key=lambda r: (r.identity.created_at, r.order), reverse=True)
            return [_run_record(run) for run in runs[: max(limit, 0)]]

    def load_many(self, operation_ids: Sequence[str]) -> list[RunSnapshot]:
        """The runs named that exist, with their steps, in the order named, in one read."""
        wanted = journal.lookup_ids(operation_ids)
        with self._lock:
            self._check_open()
            return [_snapshot(self._runs[op]) for op in wanted if op in self._runs]

    def count_runs(self) -> dict[RunStatus, int]:
        """How many runs there are in each status (a status with none is left out)."""
        with self._lock:
            self._check_open()
            return dict(Counter(run.state.status for run in self._runs.values()))

    def oldest_run(self, *, status: RunStatus) -> RunRecord | None:
        """The run with ``status`` whose last change is the oldest (ties: created first)."""
        with self._lock:
            self._check_open()
            runs = [run for run in self._runs.values() if run.state.status == status]
            if not runs:
                return None
            oldest = min(runs, key=lambda r: (r.state.updated_at, r.identity.created_at, r.order))
            return _run_record(oldest)

    def alert_backlog(self) -> AlertBacklog:
        """The outbox's alerts not delivered yet: how many, how many failing, the oldest."""
        with self._lock:
            self._check_open()
            waiting = [alert for alert in self._alerts.values() if alert.delivered_at is None]
            return AlertBacklog(
                undelivered=len(waiting),
                failing=sum(1 for alert in waiting if alert.attempts),
                oldest_created_at=min((a.row.created_at for a in waiting), default=None),
            )

    def events(self, operation_id: str) -> list[Event]:
        """A run's audit trail in the order it was written; ``RunNotFoundError`` if absent."""
        with self._lock:
            run = self._get(operation_id)
            return [Event(*row[:9], loads(row.data)) for row in run.events]

    def info(self) -> StoreInfo:
        """What this store is: nothing here is durable."""
        return StoreInfo(backend="memory", url=self.url, details={"durability": "none"})

    # -- writes ----------------------------------------------------------------------------

    def create_run(
        self,
        new: NewRun,
        *,
        owner: str | None,
        now: float,
        lease_s: float,
        transitions: Sequence[Transition] = (),
    ) -> CreateResult:
        """Create a run owned by ``owner`` (then apply ``transitions``), or return the existing."""
        actor = journal.creator(new, owner, transitions)
        digest = new.input_hash
        snapshot = journal.first_rows(new, owner=owner, now=now, lease_s=lease_s, input_hash=digest)
        input_text = dumps(new.input, what="input")
        prepared = journal.prepare(transitions)
        with self._lock:
            self._check_open()
            existing = self._runs.get(new.operation_id)
            if existing is not None:
                journal.check_same_request(new, existing.identity, input_hash=digest)
                return CreateResult(snapshot=_snapshot(existing), created=False, claim=None)
            state = journal.initial_state(snapshot)
            steps = {s.step_id: s for s in snapshot.steps}
            claim = None if owner is None else Claim(new.operation_id, owner, 1, now + lease_s)
            folded = None
            if claim is not None:
                folded = journal.fold(
                    claim,
                    prepared,
                    run=state,
                    steps={sid: s.status for sid, s in steps.items()},
                    now=now,
                    lease_s=lease_s,
                )
                journal.check_new_alerts(prepared, self._alerts)
            self._created += 1
            run = _Run(
                order=self._created,
                identity=dataclasses.replace(snapshot.run, input=input_text),
                state=state,
                steps=steps,
                events=[journal.created_event(new, actor=actor, now=now)],
            )
            self._runs[new.operation_id] = run
            if folded is not None:
                self._write(run, folded)
            created = _snapshot(run)
        if claim is None:
            self._work.notify()
        return CreateResult(snapshot=created, created=True, claim=claim)

    def claim(self, operation_id: str, *, owner: str, now: float, lease_s: float) -> Claim:
        """Take ownership of a run whose lease is free, expired, or already ours."""
        with self._lock:
            run = self._get(operation_id)
            journal.check_claimable(operation_id, run.state, owner=owner, now=now)
            return self._take(run, owner=owner, now=now, lease_s=lease_s)

    def claim_expired(
        self,
        *,
        owner: str,
        now: float,
        lease_s: float,
        limit: int = 10,
        processes: Collection[tuple[str, str]] | None = None,
    ) -> list[Claim]:
        """Claim up to ``limit`` active runs whose owner is gone or whose lease expired."""
        wanted = journal.wanted_processes(processes)
        with self._lock:
            self._check_open()
            due = [
                r
                for r in self._runs.values()
                if journal.claimable_by_anyone(r.state, now)
                and journal.of_processes(r.identity.process, r.identity.version, wanted)
            ]
            due.sort(key=lambda r: (r.identity.created_at, r.order))
            return [
                self._take(run, owner=owner, now=now, lease_s=lease_s)
                for run in due[: max(limit, 0)]
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
        if not transitions and not release:
            return self.heartbeat(claim, now=now, lease_s=lease_s)
        prepared = journal.prepare(transitions)
        with self._lock:
            run = self._current(claim)
            folded = journal.fold(
                claim,
                prepared,
                run=run.state,
                steps={sid: run.steps[sid].status for sid in prepared.step_ids if sid in run.steps},
                now=now,
                lease_s=lease_s,
                release=release,
            )
            journal.check_new_alerts(prepared, self._alerts)
            self._write(run, folded)
        if release and journal.released_for_anyone(folded.run):
            self._work.notify()
        return Claim(claim.operation_id, claim.owner, claim.fencing_token, now + lease_s)

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Extend the lease of a current claim, never shortening it (``StaleOwnerError``)."""
        with self._lock:
            run = self._current(claim)
            run.state, renewed = journal.renewed(claim, run.state, now=now, lease_s=lease_s)
            return renewed

    def release(self, claim: Claim, *, now: float) -> None:
        """Give up ownership if the claim is current (``StaleOwnerError`` otherwise)."""
        with self._lock:
            run = self._current(claim)
            run.state, event = journal.let_go(claim, run.state, now=now)
            run.events.append(event)
            wakes = journal.released_for_anyone(run.state)
        if wakes:
            self._work.notify()

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a run is submitted or released here, or ``timeout_s`` passes."""
        return self._work.wait(timeout_s)

    def prune(self, *, older_than: float, statuses: Collection[RunStatus] = ()) -> int:
        """Remove finished runs last changed before ``older_than`` (never active or in review)."""
        chosen = journal.prunable_statuses(statuses)
        with self._lock:
            self._check_open()
            pending = {a.row.operation_id for a in self._alerts.values() if a.delivered_at is None}
            gone = [
                op
                for op, run in self._runs.items()
                if op not in pending
                and journal.prunable(run.state, older_than=older_than, statuses=chosen)
            ]
            for op in gone:
                del self._runs[op]
            for alert_id in [
                a for a, alert in self._alerts.items() if alert.row.operation_id in gone
            ]:
                del self._alerts[alert_id]
            return len(gone)

    def claim_due_alerts(self, *, now: float, lease_s: float, limit: int = 10) -> list[OutboxAlert]:
        """Take up to ``limit`` undelivered alerts that are due, hiding them for ``lease_s``."""
        with self._lock:
            self._check_open()
            due = sorted(
                (
                    alert
                    for alert in self._alerts.values()
                    if alert.delivered_at is None and alert.next_attempt_at <= now
                ),
                key=lambda alert: (alert.next_attempt_at, alert.row.alert_id),
            )[: max(limit, 0)]
            taken = []
            for alert in due:
                alert.next_attempt_at = now + lease_s
                row = alert.row
                taken.append(
                    OutboxAlert(
                        alert_id=row.alert_id,
                        operation_id=row.operation_id,
                        kind=row.kind,
                        payload=loads(row.payload),
                        created_at=row.created_at,
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
                alert.row.kind, alert_id, failed_before=alert.attempts, error=error
            )
            if error is None:
                alert.delivered_at = now
            else:
                alert.attempts += 1
                alert.last_error = error
                alert.next_attempt_at = retry_at
            op = alert.row.operation_id
            run = self._runs.get(op)
            if event is not None and run is not None:
                kind, reason, data = event
                seq = run.state.last_seq + 1
                run.state = dataclasses.replace(run.state, last_seq=seq)
                row = EventRow(op, seq, now, NOTIFIER_ACTOR, kind, reason=reason, data=dumps(data))
                run.events.append(row)

    def close(self) -> None:
        """Drop everything; the store is unusable afterwards."""
        with self._lock:
            self._closed = True
            self._runs.clear()
            self._alerts.clear()

    # -- internals (called with the lock held) ---------------------------------------------

    def _write(self, run: _Run, folded: journal.Folded) -> None:
        for write in folded.steps:
            run.steps[write.step_id] = journal.apply(run.steps[write.step_id], write)
        run.state = folded.run
        run.events.extend(folded.events)
        for row in folded.alerts:
            self._alerts[row.alert_id] = _Alert(row=row, next_attempt_at=row.next_attempt_at)

    def _take(self, run: _Run, *, owner: str, now: float, lease_s: float) -> Claim:
        op = run.identity.operation_id
        run.state, event, claim = journal.take(op, run.state, owner=owner, now=now, lease_s=lease_s)
        run.events.append(event)
        return claim

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"journal store {self.url} is closed")

    def _get(self, operation_id: str) -> _Run:
        self._check_open()
        run = self._runs.get(journal.lookup_id(operation_id))
        if run is None:
            raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
        return run

    def _current(self, claim: Claim) -> _Run:
        self._check_open()
        run = self._runs.get(claim.operation_id)
        journal.check_current(claim, None if run is None else run.state)
        assert run is not None
        return run


def _run_record(run: _Run) -> RunRecord:
    return run.state.onto(dataclasses.replace(run.identity, input=loads(run.identity.input)))


def _snapshot(run: _Run) -> RunSnapshot:
    steps = sorted(run.steps.values(), key=lambda step: step.position)
    return RunSnapshot(
        run=_run_record(run),
        steps=tuple(replace_step(step, {"result": loads(step.result)}) for step in steps),
    )
