"""The journal store: what every backend promises, and the records it speaks in.

The engine talks to storage only through :class:`JournalStore`. Its methods speak of runs,
steps, claims and leases, never of SQL. Each method's docstring states what it does
atomically: a backend either applies the whole call or none of it. The same contract test
suite (``tests/contract``) runs against every implementation.

Time is passed in (``now``, seconds since the epoch) so that stores never read a clock and
tests can drive leases with a fake one.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

from sagaguard.storage.payloads import EncodedJSON, JSONValue, dumps, input_hash, loads
from sagaguard.vocabulary import EventKind, RunStatus, StepStatus


def idempotency_key(operation_id: str, step_id: str) -> str:
    """The key a step's call carries: stable across retries, crashes and owners."""
    return f"{operation_id}:{step_id}"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as the journal holds it."""

    operation_id: str
    process: str
    version: str
    input: JSONValue
    input_hash: str
    status: RunStatus
    owner: str | None
    lease_expires_at: float | None
    fencing_token: int
    created_at: float
    updated_at: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of one run as the journal holds it."""

    operation_id: str
    step_id: str
    position: int
    status: StepStatus
    attempts: int
    last_attempt_at: float | None
    idempotency_key: str
    external_id: str | None
    result: JSONValue
    failure_reason: str | None
    compensation_attempts: int
    completed_seq: int | None
    """Order in which the step completed (1, 2, ...): rollback runs in reverse of this."""
    external_id_field: str | None = None
    """The field of the step's result that holds its external id (``payment_id``, ...)."""
    first_attempt_at: float | None = None
    """When the first attempt started: the step's retry window (``retry_for``) counts from it."""
    unknown_since: float | None = None
    """When the outcome last became unknown: the settle delay (``verify_after``) counts from it."""
    verify_attempts: int = 0
    """Verify calls made for the step (bounded; they survive crashes like attempts do)."""
    compensation_first_at: float | None = None
    """When the first compensation attempt started: ``compensation_retry_for`` counts from it."""
    kept: bool = False
    """The rollback met this irreversible step and kept it, with its mitigation."""


_STEP_FIELDS = tuple(f.name for f in fields(StepRecord))
_STEP_INDEX = {name: index for index, name in enumerate(_STEP_FIELDS)}
_step_values = operator.attrgetter(*_STEP_FIELDS)


def replace_step(record: StepRecord, changes: Mapping[str, Any]) -> StepRecord:
    """``record`` with ``changes`` (field name to value): ``dataclasses.replace``'s result.

    A run stages every step change on a new record, so this is on every step's path; it
    takes the fields in one C call where ``dataclasses.replace`` loops over them in Python,
    at about a third of the cost.
    """
    values = list(_step_values(record))
    for name, value in changes.items():
        index = _STEP_INDEX.get(name)
        if index is None:
            raise TypeError(f"StepRecord has no field {name!r}")
        values[index] = value
    return StepRecord(*values)


@dataclass(frozen=True, slots=True)
class Event:
    """One appended line of a run's audit trail: who did what, when, and why."""

    operation_id: str
    seq: int
    at: float
    actor: str
    kind: str
    step_id: str | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    data: JSONValue = None


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run with its steps in process order, read in one consistent view."""

    run: RunRecord
    steps: tuple[StepRecord, ...]

    def step(self, step_id: str) -> StepRecord:
        """The record of one step (KeyError when the run has no such step)."""
        for record in self.steps:
            if record.step_id == step_id:
                return record
        raise KeyError(step_id)


@dataclass(frozen=True, slots=True)
class Claim:
    """Proof of ownership: every write carries it, and a write with a stale token is rejected."""

    operation_id: str
    owner: str
    fencing_token: int
    lease_expires_at: float


@dataclass(frozen=True, slots=True)
class NewRun:
    """What is needed to start a run."""

    operation_id: str
    process: str
    version: str
    input: JSONValue
    step_ids: tuple[str, ...]
    external_id_fields: Mapping[str, str] = field(default_factory=dict)
    """Per step id, the result field that holds its external id (steps that declare one)."""

    @property
    def input_hash(self) -> str:
        """Digest of the input (see :func:`input_hash`)."""
        return input_hash(self.input)

    def snapshot(self, *, owner: str | None, now: float, lease_s: float) -> RunSnapshot:
        """The run exactly as :meth:`JournalStore.create_run` writes it, before any transition.

        Lets an owner plan the run's first transitions before the commit that creates it.
        """
        from sagaguard.storage.journal import first_rows  # journal builds on these records

        return first_rows(self, owner=owner, now=now, lease_s=lease_s)


@dataclass(frozen=True, slots=True)
class StepChange:
    """New values for one step's row; a field left ``None`` keeps its stored value."""

    step_id: str
    status: StepStatus
    attempts: int | None = None
    last_attempt_at: float | None = None
    external_id: str | None = None
    result: JSONValue = None
    failure_reason: str | None = None
    compensation_attempts: int | None = None
    completed_seq: int | None = None
    first_attempt_at: float | None = None
    unknown_since: float | None = None
    verify_attempts: int | None = None
    compensation_first_at: float | None = None
    kept: bool | None = None


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert raised by a transition: written to the outbox in the same transaction."""

    alert_id: str
    kind: str
    payload: JSONValue
    deliver_after: float
    """When a worker may deliver it if the engine that raised it has not (it tries first)."""


@dataclass(frozen=True, slots=True)
class OutboxAlert:
    """An alert in the journal's outbox, not yet delivered."""

    alert_id: str
    operation_id: str
    kind: str
    payload: JSONValue
    created_at: float
    attempts: int
    """Delivery attempts that failed so far."""
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AlertBacklog:
    """The alerts in the journal's outbox that no notifier has delivered yet."""

    undelivered: int
    failing: int
    """Of those, how many failed at least one delivery attempt."""
    oldest_created_at: float | None
    """When the oldest of them was raised (``None`` when there is none)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of a run, and the event that records it."""

    kind: EventKind | str
    """Event kind, e.g. ``step_started``, ``step_completed``, ``compensation_failed``."""
    step: StepChange | None = None
    run_status: RunStatus | None = None
    reason: str | None = None
    data: JSONValue = None
    run_reason: str | None = field(default=None)
    """Short reason stored on the run row (why it stopped, why it needs review)."""
    alert: NewAlert | None = None
    """An alert this transition raises, kept in the outbox until it is delivered."""


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What :meth:`JournalStore.create_run` found or made."""

    snapshot: RunSnapshot
    created: bool
    claim: Claim | None
    """The caller's claim on a newly created run; ``None`` for an existing run."""


@runtime_checkable
class JournalStore(Protocol):
    """The durable journal of runs, steps and events, shared by every backend."""

    url: str

    def create_run(
        self,
        new: NewRun,
        *,
        owner: str | None,
        now: float,
        lease_s: float,
        transitions: Sequence[Transition] = (),
    ) -> CreateResult:
        """Atomically create a run owned by ``owner``, or return the run that already exists.

        A new run is inserted with status ``running``, every step ``pending``, fencing token 1,
        a lease until ``now + lease_s`` and a ``run_created`` event; then ``transitions`` are
        applied under the new claim exactly as :meth:`record` would; all in one transaction,
        so a run and the ``started`` of its first step cost one commit. The snapshot shows the
        run after them. If ``operation_id`` exists with the same process, version and input
        hash, the existing run is returned unchanged (``created=False``, no claim,
        ``transitions`` not applied). If it exists with a different process, version or input,
        :class:`~sagaguard.exceptions.OperationConflictError` is raised.

        ``owner=None`` submits the run without running it: it is created unowned (no lease,
        fencing token 0, actor ``submitter``), so any worker's :meth:`claim_expired` takes it
        at once, with token 1; ``transitions`` must then be empty. Same dedupe and conflicts.
        """
        ...

    def load(self, operation_id: str) -> RunSnapshot:
        """The run and its steps as of one consistent read; ``RunNotFoundError`` if absent."""
        ...

    def claim(self, operation_id: str, *, owner: str, now: float, lease_s: float) -> Claim:
        """Atomically take ownership of a run whose lease is free, expired, or already ours.

        Increments the fencing token (so every earlier claim becomes stale), sets the lease to
        ``now + lease_s`` and appends a ``claimed`` event. Raises ``RunBusyError`` while another
        owner's lease is live and ``RunNotFoundError`` for an unknown run.
        """
        ...

    def claim_expired(
        self,
        *,
        owner: str,
        now: float,
        lease_s: float,
        limit: int = 10,
        processes: Collection[tuple[str, str]] | None = None,
    ) -> list[Claim]:
        """Atomically claim up to ``limit`` active runs (running or compensating) left unowned.

        A run qualifies when it has no owner or its lease expired before ``now``. Each claimed
        run gets a new fencing token and a ``claimed`` event, as in :meth:`claim`. Concurrent
        callers never receive the same run. With ``processes``, only runs whose
        ``(process, version)`` is listed qualify (none listed: nothing is claimed), so a
        worker leaves alone the runs of sagas it does not have and never re-claims them.
        """
        ...

    def record(
        self,
        claim: Claim,
        transitions: Sequence[Transition],
        *,
        now: float,
        lease_s: float,
        release: bool = False,
    ) -> Claim:
        """Atomically apply transitions under ``claim`` and renew its lease (or release it).

        In one transaction: check that the run's fencing token and owner still match the claim
        (else raise ``StaleOwnerError`` and change nothing), apply each step change and run
        status, append one event per transition (actor = the claim's owner), insert each
        transition's alert into the outbox, and extend the lease to ``now + lease_s``. With
        ``release`` the run is instead let go as by :meth:`release`, in the same transaction:
        an owner's last word and its release cost one commit. No transitions and no
        ``release``: a :meth:`heartbeat`. Returns the renewed claim.
        """
        ...

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Atomically extend a current claim's lease to ``now + lease_s``, never shortening it.

        The lease becomes the later of the stored expiry and ``now + lease_s``: a heartbeat
        during a wait the last commit leased for must not cut that wait short. No event, no
        update time. A stale claim raises ``StaleOwnerError`` and changes nothing.
        """
        ...

    def release(self, claim: Claim, *, now: float) -> None:
        """Atomically give up ownership (owner and lease cleared) if the claim is current.

        A stale claim raises ``StaleOwnerError`` and leaves the run as the new owner has it.
        """
        ...

    def list_runs(self, *, status: RunStatus | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""
        ...

    def load_many(self, operation_ids: Sequence[str]) -> list[RunSnapshot]:
        """The runs named that exist, with their steps, in the order named, in one read.

        An id of no run is left out, never an error; an id named twice is returned once.
        What a page of runs needs beyond :meth:`list_runs`, without one read per run.
        """
        ...

    def count_runs(self) -> dict[RunStatus, int]:
        """How many runs the journal holds in each status, in one read (none: left out)."""
        ...

    def oldest_run(self, *, status: RunStatus) -> RunRecord | None:
        """The run with ``status`` whose last change is the oldest (ties: created first).

        In ``needs_manual_review`` that is the run waiting longest for a person. One read
        over the runs with that status only; ``None`` when there is none.
        """
        ...

    def alert_backlog(self) -> AlertBacklog:
        """The outbox's alerts not delivered yet, counted in one read (see AlertBacklog)."""
        ...

    def claim_due_alerts(self, *, now: float, lease_s: float, limit: int = 10) -> list[OutboxAlert]:
        """Atomically take up to ``limit`` undelivered alerts whose next attempt is due.

        Each one's next attempt moves to ``now + lease_s``, so concurrent callers never take
        the same alert while one of them is delivering it. Earliest due first.
        """
        ...

    def settle_alert(
        self, alert_id: str, *, now: float, error: str | None = None, retry_at: float = 0.0
    ) -> None:
        """Atomically record how one delivery attempt of an alert went.

        ``error=None``: delivered; it is marked so (never due again) and an ``alert_delivered``
        event is appended to its run. Otherwise the failed attempt is counted, ``error`` kept
        and the next attempt is due at ``retry_at``; the first failure appends an
        ``alert_failed`` event. An alert already delivered is left as it is; an unknown id is
        ignored.
        """
        ...

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until claimable work may have appeared, or ``timeout_s`` passed.

        True when woken early: a run was submitted or released, or (for stores shared by
        processes) the journal changed. False on timeout. Waking is a hint, never a claim:
        a lease that simply runs out wakes nobody, so a worker still polls
        :meth:`claim_expired` at least once per lease.
        """
        ...

    def prune(self, *, older_than: float, statuses: Collection[RunStatus] = ()) -> int:
        """Remove finished runs last changed before ``older_than``; returns how many.

        Each run goes with its steps, events and alerts, atomically. Only terminal statuses
        may be named (``completed``, ``compensated``, ``failed``; all three when none are
        given; anything else raises ``StoreError``): a run that is active or waits for review
        is never removed, nor one with an alert not delivered yet. The audit trail of every
        run that stays is untouched.
        """
        ...

    def events(self, operation_id: str) -> list[Event]:
        """A run's audit trail in the order it was written; ``RunNotFoundError`` if absent."""
        ...

    def info(self) -> StoreInfo:
        """Facts about the store (backend, URL, durability settings in effect), for display."""
        ...

    def close(self) -> None:
        """Release connections and files; the store is unusable afterwards."""
        ...


NOTIFIER_ACTOR = "notifier"
"""The actor of the events that alert delivery appends to a run's trail."""

SUBMITTER_ACTOR = "submitter"
"""The actor of the ``run_created`` event of a run submitted without an owner."""


def alert_settled_event(
    kind: str, alert_id: str, *, failed_before: int, error: str | None
) -> tuple[str, str, JSONValue] | None:
    """The event (kind, reason, data) that settling an alert appends to its run, if any.

    Delivery is always recorded; of the failures only the first, so that a dead alert
    channel retried for hours cannot flood the audit trail.
    """
    if error is None:
        data = {"alert_id": alert_id, "failed_attempts": failed_before}
        return "alert_delivered", f"{kind} alert delivered", data
    if failed_before:
        return None
    return "alert_failed", f"{kind} alert not delivered: {error}", {"alert_id": alert_id}


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """Facts about a store worth printing next to a benchmark or in ``runs`` output."""

    backend: str
    url: str
    details: dict[str, str] = field(default_factory=dict)


__all__ = [
    "NOTIFIER_ACTOR",
    "SUBMITTER_ACTOR",
    "AlertBacklog",
    "Claim",
    "CreateResult",
    "EncodedJSON",
    "Event",
    "EventKind",
    "JSONValue",
    "JournalStore",
    "NewAlert",
    "NewRun",
    "OutboxAlert",
    "RunRecord",
    "RunSnapshot",
    "RunStatus",
    "StepChange",
    "StepRecord",
    "StepStatus",
    "StoreInfo",
    "Transition",
    "alert_settled_event",
    "dumps",
    "idempotency_key",
    "input_hash",
    "loads",
    "replace_step",
]
