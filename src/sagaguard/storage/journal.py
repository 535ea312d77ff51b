"""The journal's rules, written once: what every store writes for each call, as plain data.

A store locks, reads the few rows a call needs, asks this module what to write, and writes
it. The rules live here and nowhere else:

- what a new run looks like (:func:`first_rows`, :func:`created_event`) and whether a
  request under an existing operation id is the same request (:func:`check_same_request`);
- which operation ids the journal accepts for a new run (:func:`check_operation_id`), and
  which it looks up (:func:`lookup_id`: any text it may already hold), from
  :mod:`sagaguard.storage.operation_ids`;
- who may take a run, and what a takeover writes (:func:`check_claimable`, :func:`take`),
  and which sagas' runs a worker's batch may hold (:func:`wanted_processes`);
- whether a claim is still current (:func:`check_current`), and what a heartbeat renews
  (:func:`renewed`: it never shortens a lease);
- how a call's transitions fold into step rows, the run's row, events and alerts
  (:func:`prepare`, then :func:`fold`): which from/to status each event shows, "a ``None``
  field of a :class:`~sagaguard.storage.base.StepChange` keeps the stored value"
  (:data:`KEPT_UNLESS_GIVEN`, :func:`merge`), how the run's reason is folded;
- what giving a run up writes (:func:`let_go`).

Pure: no I/O, no clock, no locks. Payloads are encoded once, by :func:`prepare`, before a
store takes any lock, so a payload that is not JSON changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagaguard.exceptions import (
    OperationConflictError,
    RunBusyError,
    RunNotFoundError,
    StaleOwnerError,
    StoreError,
)
from sagaguard.storage.base import (
    SUBMITTER_ACTOR,
    Claim,
    NewAlert,
    NewRun,
    RunRecord,
    RunSnapshot,
    StepChange,
    StepRecord,
    Transition,
    idempotency_key,
    replace_step,
)
from sagaguard.storage.operation_ids import (
    MAX_OPERATION_ID_LENGTH,
    check_operation_id,
    lookup_id,
    lookup_ids,
)
from sagaguard.storage.payloads import dumps, loads
from sagaguard.storage.rows import (
    KEPT_UNLESS_GIVEN,
    AlertRow,
    EventRow,
    RunState,
    StepWrite,
    encode,
)
from sagaguard.vocabulary import EventKind, RunStatus, StepStatus

__all__ = [
    "MAX_OPERATION_ID_LENGTH",
    "TERMINAL",
    "AlertRow",
    "EventRow",
    "Folded",
    "Prepared",
    "Processes",
    "RunState",
    "StepWrite",
    "after",
    "apply",
    "check_claimable",
    "check_current",
    "check_new_alerts",
    "check_operation_id",
    "check_same_request",
    "claimable_by_anyone",
    "created_event",
    "creator",
    "encode",
    "first_rows",
    "fold",
    "initial_state",
    "lease_live",
    "let_go",
    "lookup_id",
    "lookup_ids",
    "merge",
    "of_processes",
    "prepare",
    "prunable",
    "prunable_statuses",
    "released_event",
    "renewed",
    "take",
    "wanted_processes",
]

# -- creating a run ---------------------------------------------------------------------------


def first_rows(
    new: NewRun,
    *,
    owner: str | None,
    now: float,
    lease_s: float,
    input_hash: str | None = None,
) -> RunSnapshot:
    """The run exactly as ``create_run`` writes it, before any transition.

    Owned by ``owner`` with fencing token 1 and a lease until ``now + lease_s``; with
    ``owner=None`` (submitted, not started) unowned with token 0, so the first claim gets 1.
    """
    operation_id = check_operation_id(new.operation_id)
    if len(set(new.step_ids)) != len(new.step_ids):
        raise StoreError(f"run {operation_id!r} lists a step id twice: {new.step_ids}")
    run = RunRecord(
        operation_id=operation_id,
        process=new.process,
        version=new.version,
        input=new.input,
        input_hash=new.input_hash if input_hash is None else input_hash,
        status=RunStatus.RUNNING,
        owner=owner,
        lease_expires_at=None if owner is None else now + lease_s,
        fencing_token=0 if owner is None else 1,
        created_at=now,
        updated_at=now,
    )
    fields = new.external_id_fields
    steps = tuple(
        StepRecord(
            operation_id=operation_id,
            step_id=step_id,
            position=position,
            status=StepStatus.PENDING,
            attempts=0,
            last_attempt_at=None,
            idempotency_key=idempotency_key(operation_id, step_id),
            external_id=None,
            result=None,
            failure_reason=None,
            compensation_attempts=0,
            completed_seq=None,
            external_id_field=fields.get(step_id),
        )
        for position, step_id in enumerate(new.step_ids)
    )
    return RunSnapshot(run=run, steps=steps)


def created_event(new: NewRun, *, actor: str, now: float) -> EventRow:
    """The first line of every run's trail."""
    data = dumps({"process": new.process, "version": new.version})
    kind = EventKind.RUN_CREATED.value
    return EventRow(new.operation_id, 1, now, actor, kind, to_status="running", data=data)


def creator(new: NewRun, owner: str | None, transitions: Sequence[Transition]) -> str:
    """Who the ``run_created`` event names: the owner, or the submitter of an unowned run."""
    if owner is not None:
        return owner
    if transitions:
        raise StoreError(
            f"run {new.operation_id!r} is submitted without an owner: it cannot take transitions"
        )
    return SUBMITTER_ACTOR


def check_same_request(new: NewRun, existing: RunRecord, *, input_hash: str) -> None:
    """``OperationConflictError`` unless the journaled run is the run ``new`` asks for.

    Same process, same input (by digest) and same version: anything else under one operation
    id is another request, and must never be answered with this run.
    """
    if (existing.process, existing.input_hash) != (new.process, input_hash):
        raise OperationConflictError(
            f"operation {new.operation_id!r} already exists for process {existing.process!r} "
            "with a different input or process"
        )
    if existing.version != new.version:
        raise OperationConflictError(
            f"operation_id {new.operation_id!r} is a run of {existing.process} "
            f"v{existing.version}, not v{new.version}"
        )


def initial_state(snapshot: RunSnapshot) -> RunState:
    """The :class:`RunState` of a run just created (its ``run_created`` event is seq 1)."""
    return RunState.of(snapshot.run, last_seq=1)


# -- ownership -------------------------------------------------------------------------------


def lease_live(lease_expires_at: float | None, now: float) -> bool:
    """A lease is live until the instant it expires; at ``now == lease_expires_at`` it is over."""
    return lease_expires_at is not None and lease_expires_at > now


def claimable_by_anyone(run: RunState, now: float) -> bool:
    """An active run that nobody holds, or whose holder's lease ran out: the queue's work."""
    return run.status.active and (run.owner is None or not lease_live(run.lease_expires_at, now))


def released_for_anyone(run: RunState) -> bool:
    """Whether a run its owner has just released is work for any worker: one still active.

    A release that leaves the run finished, or waiting for a person, gives no worker anything
    to claim, so it wakes none (on PostgreSQL each NOTIFY wakes every listening worker).
    """
    return run.status.active


Processes = tuple[tuple[str, str], ...]
"""The ``(process, version)`` pairs a claim is limited to, sorted, each once."""


def wanted_processes(processes: Collection[tuple[str, str]] | None) -> Processes | None:
    """The pairs ``claim_expired(processes=...)`` takes runs of; ``None``: runs of any saga.

    A worker names the sagas it has, so it never claims (and, each pass, claims again) a
    run that only a worker with another saga or version can drive.
    """
    if processes is None:
        return None
    pairs = set()
    for pair in processes:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise StoreError(f"processes: {pair!r} is not a (process, version) pair of strings")
        pairs.add(pair)
    return tuple(sorted(pairs))


def of_processes(process: str, version: str, wanted: Processes | None) -> bool:
    """True when a run of ``process`` v``version`` is among ``wanted`` (``None``: any)."""
    return wanted is None or (process, version) in wanted


def check_claimable(operation_id: str, run: RunState, *, owner: str, now: float) -> None:
    """``RunBusyError`` while another owner's lease is live (one's own lease may be retaken)."""
    if run.owner is not None and run.owner != owner and lease_live(run.lease_expires_at, now):
        raise RunBusyError(
            f"run {operation_id!r} is held by {run.owner!r} until {run.lease_expires_at}"
        )


def take(
    operation_id: str, run: RunState, *, owner: str, now: float, lease_s: float
) -> tuple[RunState, EventRow, Claim]:
    """What a claim writes: the next fencing token, a new lease and a ``claimed`` event.

    The token increment makes every earlier claim stale. The event says whose lease was
    taken over, when it was someone else's.
    """
    token, seq, lease = run.fencing_token + 1, run.last_seq + 1, now + lease_s
    previous = run.owner
    reason = None if previous is None or previous == owner else f"lease of {previous} expired"
    data = dumps({"fencing_token": token, "previous_owner": previous})
    event = EventRow(
        operation_id, seq, now, owner, EventKind.CLAIMED.value, reason=reason, data=data
    )
    after = dataclasses.replace(
        run,
        owner=owner,
        fencing_token=token,
        lease_expires_at=lease,
        updated_at=now,
        last_seq=seq,
    )
    return after, event, Claim(operation_id, owner, token, lease)


def check_current(claim: Claim, run: RunState | None) -> RunState:
    """The run's state if ``claim`` still holds it (``RunNotFoundError``, ``StaleOwnerError``)."""
    if run is None:
        raise RunNotFoundError(f"no run has operation_id {claim.operation_id!r}")
    if run.fencing_token != claim.fencing_token or run.owner != claim.owner:
        raise StaleOwnerError(
            f"{claim.owner!r} no longer holds run {claim.operation_id!r} "
            f"(token {claim.fencing_token}, current {run.fencing_token})"
        )
    return run


def renewed(
    claim: Claim, run: RunState | None, *, now: float, lease_s: float
) -> tuple[RunState, Claim]:
    """What a heartbeat writes: the lease of a current claim runs to ``now + lease_s`` at least.

    A heartbeat never shortens a lease: the commit before a call or a sleep leased the run
    for that wait, and a heartbeat landing after it must not undo that. No event and no
    update time either: nothing about the run changed. A stale claim changes nothing
    (``StaleOwnerError``, from :func:`check_current`).
    """
    current = check_current(claim, run)
    stored = current.lease_expires_at
    lease = now + lease_s if stored is None else max(stored, now + lease_s)
    after = dataclasses.replace(current, lease_expires_at=lease)
    return after, Claim(claim.operation_id, claim.owner, claim.fencing_token, lease)


def released_event(claim: Claim, seq: int, now: float) -> EventRow:
    """The ``released`` line an owner's release appends."""
    data = dumps({"fencing_token": claim.fencing_token})
    return EventRow(claim.operation_id, seq, now, claim.owner, EventKind.RELEASED.value, data=data)


def let_go(claim: Claim, run: RunState, *, now: float) -> tuple[RunState, EventRow]:
    """What a release writes: owner and lease cleared, a ``released`` event."""
    seq = run.last_seq + 1
    after = RunState(run.status, run.reason, None, None, run.fencing_token, now, seq)
    return after, released_event(claim, seq, now)


# -- retention -------------------------------------------------------------------------------

TERMINAL = (RunStatus.COMPLETED, RunStatus.COMPENSATED, RunStatus.FAILED)


def prunable_statuses(statuses: Collection[RunStatus]) -> tuple[RunStatus, ...]:
    """The statuses a prune may remove (terminal ones only; all of them when none given)."""
    chosen = tuple(dict.fromkeys(RunStatus(status) for status in statuses)) or TERMINAL
    kept = [status.value for status in chosen if not status.terminal]
    if kept:
        raise StoreError(
            f"runs that are {', '.join(kept)} are never pruned: only finished runs "
            f"({', '.join(s.value for s in TERMINAL)}) can be"
        )
    return chosen


def prunable(run: RunState, *, older_than: float, statuses: Collection[RunStatus]) -> bool:
    """A finished run of one of ``statuses`` whose last change came before ``older_than``."""
    return run.status in statuses and run.updated_at < older_than


# -- recording transitions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A call's transitions with every payload encoded once, before any lock is taken."""

    transitions: tuple[Transition, ...]
    results: tuple[str | None, ...]
    """Per transition, the JSON text of its step's result (``None``: none given)."""
    data: tuple[str | None, ...]
    """Per transition, the JSON text of its event's data."""
    alerts: tuple[tuple[NewAlert, str], ...]
    """The alerts the transitions raise, each with its payload as JSON text."""
    step_ids: tuple[str, ...]
    """The steps the transitions change, each once: the only step rows a store must read."""


def prepare(transitions: Sequence[Transition]) -> Prepared:
    """Encode every payload up front: a bad one fails before any write begins.

    A NUL character in a reason or an external id (PostgreSQL cannot store one in text) is
    written as U+FFFD by every store alike; payloads escape it as JSON does.
    """
    cleaned: list[Transition] = []
    results: list[str | None] = []
    data: list[str | None] = []
    alerts: list[tuple[NewAlert, str]] = []
    step_ids: dict[str, None] = {}
    for transition in transitions:
        change = transition.step
        if _holds_nul(transition):
            transition = _without_nul(transition)
            change = transition.step
        cleaned.append(transition)
        if change is None:
            results.append(None)
        else:
            step_ids[change.step_id] = None
            result = change.result
            what = f"result of step {change.step_id}"
            results.append(None if result is None else encode(result, what=what))
        data.append(None if transition.data is None else encode(transition.data, what="event data"))
        alert = transition.alert
        if alert is not None:
            alerts.append((alert, dumps(alert.payload, what=f"payload of alert {alert.alert_id}")))
    ids = [alert.alert_id for alert, _ in alerts]
    if len(set(ids)) != len(ids):
        raise StoreError(f"an alert id is given twice in one write: {ids}")
    return Prepared(tuple(cleaned), tuple(results), tuple(data), tuple(alerts), tuple(step_ids))


_NUL, _REPLACEMENT = "\x00", "\ufffd"


def _holds_nul(transition: Transition) -> bool:
    change = transition.step
    return bool(
        (transition.reason and _NUL in transition.reason)
        or (transition.run_reason and _NUL in transition.run_reason)
        or (
            change is not None
            and (
                (change.failure_reason and _NUL in change.failure_reason)
                or (change.external_id and _NUL in change.external_id)
            )
        )
    )


def _without_nul(transition: Transition) -> Transition:
    change = transition.step

    def clean(text: str | None) -> str | None:
        return None if text is None else text.replace(_NUL, _REPLACEMENT)

    if change is not None:
        change = dataclasses.replace(
            change,
            failure_reason=clean(change.failure_reason),
            external_id=clean(change.external_id),
        )
    return dataclasses.replace(
        transition,
        step=change,
        reason=clean(transition.reason),
        run_reason=clean(transition.run_reason),
    )


def check_new_alerts(prepared: Prepared, taken: Container[str]) -> None:
    """``StoreError`` if an alert id is in the outbox already: an alert is raised once."""
    for alert, _ in prepared.alerts:
        if alert.alert_id in taken:
            raise StoreError(f"alert {alert.alert_id!r} is in the outbox already")


def merge(earlier: StepChange, later: StepChange) -> StepChange:
    """Two changes of one step as one: the later's status, and each field the later gives."""
    given = {
        name: value
        for name in (*KEPT_UNLESS_GIVEN, "result")
        if (value := getattr(later, name)) is not None
    }
    return dataclasses.replace(earlier, status=later.status, **given)


def apply(record: StepRecord, write: StepWrite) -> StepRecord:
    """A step record after ``write`` (its result stays in the form the store keeps it)."""
    change = write.change
    given: dict[str, Any] = {
        name: value for name in KEPT_UNLESS_GIVEN if (value := getattr(change, name)) is not None
    }
    if write.result is not None:
        given["result"] = write.result
    given["status"] = change.status
    return replace_step(record, given)


@dataclass(frozen=True, slots=True)
class Folded:
    """Everything one ``record`` (or the transitions of a ``create_run``) writes."""

    run: RunState
    """The run's row afterwards."""
    run_changed: bool
    """Whether status or reason moved (a store may skip writing them otherwise)."""
    steps: tuple[StepWrite, ...]
    """One write per changed step, its changes merged in order."""
    events: tuple[EventRow, ...]
    alerts: tuple[AlertRow, ...]


def fold(
    claim: Claim,
    prepared: Prepared,
    *,
    run: RunState,
    steps: Mapping[str, StepStatus],
    now: float,
    lease_s: float,
    release: bool = False,
) -> Folded:
    """Fold a call's transitions into the rows it writes, under a claim already checked.

    ``run`` is the run's row as read under the store's lock; ``steps`` maps the status of
    each step the call changes (``prepared.step_ids``; a step missing from it does not exist
    and the whole call is refused with ``StoreError``). Each event shows the step's move when
    its transition changes a step; else the run's move when it changes the run's status.
    A transition that sets the run's status also sets its reason (``None`` clears it); one
    that gives only a reason sets the reason. The lease is renewed to ``now + lease_s``, or
    with ``release`` the run is let go and a ``released`` event closes the call.
    """
    op, owner = claim.operation_id, claim.owner
    statuses = dict(steps)
    writes: dict[str, StepWrite] = {}
    events: list[EventRow] = []
    status, reason, seq = run.status, run.reason, run.last_seq
    for transition, result, data in zip(
        prepared.transitions, prepared.results, prepared.data, strict=True
    ):
        from_status: str | None = None
        to_status: str | None = None
        change = transition.step
        if change is not None:
            before = statuses.get(change.step_id)
            if before is None:
                raise StoreError(f"run {op!r} has no step {change.step_id!r}")
            # Statuses are StrEnums: each is the very string the journal stores.
            from_status, to_status = before, change.status
            statuses[change.step_id] = change.status
            earlier = writes.get(change.step_id)
            writes[change.step_id] = (
                StepWrite(change.step_id, change, result)
                if earlier is None
                else StepWrite(
                    change.step_id,
                    merge(earlier.change, change),
                    earlier.result if result is None else result,
                )
            )
        if transition.run_status is not None:
            if from_status == to_status:
                from_status, to_status = status, transition.run_status
            status, reason = transition.run_status, transition.run_reason
        elif transition.run_reason is not None:
            reason = transition.run_reason
        seq += 1
        step_id = None if change is None else change.step_id
        kind = transition.kind
        events.append(
            EventRow(
                op, seq, now, owner, kind, step_id, from_status, to_status, transition.reason, data
            )
        )
    updated_at = now if events else run.updated_at
    after = RunState(status, reason, run.owner, now + lease_s, run.fencing_token, updated_at, seq)
    if release:
        after, released = let_go(claim, after, now=now)
        events.append(released)
    alerts = tuple(
        AlertRow(alert.alert_id, op, alert.kind, payload, now, alert.deliver_after)
        for alert, payload in prepared.alerts
    )
    return Folded(
        run=after,
        run_changed=(status, reason) != (run.status, run.reason),
        steps=tuple(writes.values()),
        events=tuple(events),
        alerts=alerts,
    )


def after(snapshot: RunSnapshot, folded: Folded) -> RunSnapshot:
    """A snapshot with ``folded`` applied: what a store would read back, without reading."""
    writes = {write.step_id: write for write in folded.steps}
    steps = tuple(
        record
        if (write := writes.get(record.step_id)) is None
        else replace_step(
            apply(record, write),
            {"result": record.result if write.result is None else loads(write.result)},
        )
        for record in snapshot.steps
    )
    return RunSnapshot(run=folded.run.onto(snapshot.run), steps=steps)
