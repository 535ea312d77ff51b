"""Runs as their owner's last write left them: a PostgreSQL record in one round trip.

A record reads the run's row under a lock (its state and its steps' statuses), folds the
transitions against it, then writes: two round trips. While a claim holds a run, though,
nothing but that claim's own writes changes what a fold reads: every other write to the
row moves its fencing token (a claim) or its ``last_seq`` (a notifier's event), and a
prune removes it. So an owner that knows the row as it last left it folds against that,
and sends the writes behind a check in one message: ``BEGIN``, ``held_as_known`` (which
locks the row and refuses it unless owner, token and ``last_seq`` are still the known
ones), the writes, ``COMMIT``. A refused check writes nothing, and the record is made the
long way, reading the row. The rules stay those of :func:`sagaguard.storage.journal.fold`;
only where its input comes from differs.

:class:`KnownRuns` holds that knowledge: learned from a load and from the store's own
writes, forgotten at a release, bounded in size.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sagaguard.storage import journal
from sagaguard.storage import postgres_statements as sql
from sagaguard.storage.base import Claim, RunSnapshot, StepStatus
from sagaguard.storage.postgres_transaction import ServerTime, resolved
from sagaguard.storage.rows import RunState, StepWrite

__all__ = ["REFUSED", "ClaimedReads", "KnownRun", "KnownRuns", "write_as_known"]

REFUSED = "SGK01"
"""The SQLSTATE ``held_as_known`` raises when the row is not as its owner knows it."""


@dataclass(frozen=True, slots=True)
class KnownRun:
    """A run's row and its steps' statuses as a write of this store last left them."""

    state: RunState
    steps: dict[str, StepStatus]

    def held_by(self, claim: Claim) -> bool:
        """Whether this knowledge is the claim's own: its owner and token."""
        state = self.state
        return state.owner == claim.owner and state.fencing_token == claim.fencing_token


class KnownRuns:
    """What this store knows of the runs it holds (thread-safe; at most ``limit`` runs).

    Knowledge that is wrong costs one refused check and a record made the long way, never
    a wrong write: the check compares with the row itself.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._runs: dict[str, KnownRun] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def of(self, claim: Claim) -> KnownRun | None:
        """What is known of the claim's run under that very claim, if anything."""
        known = self._runs.get(claim.operation_id)
        return known if known is not None and known.held_by(claim) else None

    def learn(self, snapshot: RunSnapshot, last_seq: int) -> None:
        """Know a run as just read (only a held one: nobody records under no claim)."""
        run = snapshot.run
        if run.owner is None or run.status.terminal:
            self.forget(run.operation_id)
            return
        steps = {step.step_id: step.status for step in snapshot.steps}
        self._put(run.operation_id, KnownRun(RunState.of(run, last_seq=last_seq), steps))

    def wrote(
        self, operation_id: str, before: RunState, after: RunState, steps: Iterable[StepWrite]
    ) -> None:
        """Follow this store's write of ``before`` into ``after``: kept only if what was
        known was ``before`` (else forgotten, to be learned again at the next load)."""
        known = self._runs.get(operation_id)
        if known is None:
            return
        if known.state.last_seq != before.last_seq or after.owner is None:
            self.forget(operation_id)
            return
        statuses = dict(known.steps)
        for write in steps:
            statuses[write.step_id] = write.change.status
        self._put(operation_id, KnownRun(after, statuses))

    def forget(self, operation_id: str) -> None:
        """Know nothing of the run any more (released, refused, or gone)."""
        with self._lock:
            self._runs.pop(operation_id, None)

    def _put(self, operation_id: str, known: KnownRun) -> None:
        with self._lock:
            self._runs.pop(operation_id, None)
            self._runs[operation_id] = known
            while len(self._runs) > self._limit:
                del self._runs[next(iter(self._runs))]  # the longest unwritten


class ClaimedReads:
    """Runs as this store's claim read them, in its commit, for the drive's first load.

    A worker's drive loads the run it was handed at once. The claim that took it holds the
    row's lock until its commit, and no other writer changes a run while someone holds its
    lease (a notifier's event only moves ``last_seq``, which the record's check sees), so a
    read in the claim's own commit is what that load would find: one round trip a run
    fewer. Each read is served once, and only within ``fresh_s`` of the claim.
    """

    def __init__(self, *, fresh_s: float = 2.0, limit: int = 10_000) -> None:
        self._reads: dict[str, tuple[float, RunSnapshot, int]] = {}
        self._fresh_s = fresh_s
        self._limit = limit
        self._lock = threading.Lock()

    def keep(self, snapshots: Iterable[tuple[RunSnapshot, int]]) -> None:
        """Keep what a claim read: each run with the seq of its latest event."""
        with self._lock:
            now = time.monotonic()
            until = now + self._fresh_s
            # Oldest first: reads no load took (a claim without a drive) do not pile up.
            while self._reads and next(iter(self._reads.values()))[0] < now:
                del self._reads[next(iter(self._reads))]
            for snapshot, last_seq in snapshots:
                self._reads.pop(snapshot.run.operation_id, None)
                self._reads[snapshot.run.operation_id] = (until, snapshot, last_seq)
            while len(self._reads) > self._limit:
                del self._reads[next(iter(self._reads))]  # the oldest claimed

    def take(self, operation_id: str) -> tuple[RunSnapshot, int] | None:
        """The claim's read of the run, once, if it is still fresh."""
        with self._lock:
            kept = self._reads.pop(operation_id, None)
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1], kept[2]

    def drop(self, operation_id: str) -> None:
        """Forget the read (the run was written since, or let go)."""
        with self._lock:
            self._reads.pop(operation_id, None)


def write_as_known(
    conn: sql.Conn,
    statements: sql.Statements,
    claim: Claim,
    known: KnownRun,
    prepared: journal.Prepared,
    *,
    now: float | None,
    lease_s: float,
    release: bool,
    token: str,
    notify: Callable[[sql.Conn], None] | None,
) -> tuple[Claim, journal.Folded] | None:
    """Record under ``claim`` against ``known``, in one message; ``None`` if the row is not
    as known (then nothing was written). ``now``: the caller's time, or ``None`` for the
    server's. ``notify`` adds the statement that wakes idle workers to the writes, when the
    release leaves the run work for anyone.

    Returns the renewed claim and what was written, its times the server's.
    """
    at: float = ServerTime(0.0) if now is None else now
    folded = journal.fold(
        claim, prepared, run=known.state, steps=known.steps, now=at, lease_s=lease_s,
        release=release,
    )  # fmt: skip
    op = claim.operation_id
    sql.write(conn, statements, op, folded, token=token)
    if notify is not None and journal.released_for_anyone(folded.run):
        notify(conn)
    check = (op, claim.owner, claim.fencing_token, known.state.last_seq, now)
    rows = conn.commit_checked(statements.held_as_known, check, refusal=REFUSED)
    if rows is None:
        return None
    received = float(rows[0][0])
    run = folded.run
    after = dataclasses.replace(
        run,
        lease_expires_at=resolved(run.lease_expires_at, received),
        updated_at=resolved(run.updated_at, received),
    )
    folded = dataclasses.replace(folded, run=after)
    return Claim(op, claim.owner, claim.fencing_token, received + lease_s), folded
