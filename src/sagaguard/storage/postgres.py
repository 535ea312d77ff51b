"""The PostgreSQL journal store: many workers on many machines, one journal.

``postgresql://user@host/db?schema=sagaguard`` (psycopg 3 and psycopg_pool, the extra
``sagaguard[postgres]``). The tables live in a schema of their own, created and migrated
under an advisory lock on first use, so the journal can share an application's database.

**Whose clock.** Leases are judged by the database server's clock, never the caller's: with
the default ``clock="server"`` every method ignores the ``now`` it is given and reads
``clock_timestamp()`` inside its transaction, so workers whose clocks disagree by minutes
can still never take over a live lease early. Every time the store writes (lease expiry,
event times, ``updated_at``) is then server time too. ``clock="caller"`` (URL option
``clock=caller``) uses the ``now`` passed in instead, through the very same SQL (the time
is a parameter that, when absent, is read from the server): that is how the contract suite
drives this store with a fake clock, exactly like the other stores.

**Claims and fencing.** ``claim_expired`` takes a batch with ``FOR UPDATE SKIP LOCKED``
(concurrent workers skip each other's rows instead of queueing on them); every write first
locks the run's row and checks the claim's fencing token and owner. The alert outbox is
claimed the same way. A claim's commit alone does not wait for the disk (a crash can lose
it at no cost: ``_CLAIMS_FLUSHED_LATER``).

**One message per record.** An owner that knows the run's row as its own last write left
it (it loaded or created the run) folds against that and sends check, writes and commit
together; a check that finds the row moved on refuses it, and the record is made again
reading the row (:mod:`sagaguard.storage.postgres_known`).

**Faults.** Driver errors become :class:`~sagaguard.exceptions.StoreError`. A call that
fails on a lost connection before its commit was sent is retried on a fresh connection with
capped exponential backoff (a killed backend, a restarting server), up to
``reconnect_s``. A connection lost *during* the commit leaves the outcome unknown: a
create or a record then runs again and, by a token it wrote with its rows, knows an
earlier attempt's landed commit as its own, so nothing is written twice. A claim, a
heartbeat and a release run again too (each safe to repeat, or knowing its own landed
release); an alert's settlement reports the unknown outcome, never retried blind.
LISTEN/NOTIFY wakes idle workers; its connection is re-established after a loss
(:mod:`sagaguard.storage.postgres_listen`), and polling stays the fallback. At start the
store refuses a transaction-mode pooler.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sagaguard.exceptions import RunNotFoundError
from sagaguard.storage import journal
from sagaguard.storage import postgres_reruns as reruns
from sagaguard.storage import postgres_statements as sql
from sagaguard.storage.base import (
    AlertBacklog,
    Claim,
    CreateResult,
    Event,
    NewRun,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StoreInfo,
    Transition,
)
from sagaguard.storage.payloads import dumps
from sagaguard.storage.postgres_creating import create_at_once
from sagaguard.storage.postgres_known import write_as_known
from sagaguard.storage.postgres_outbox import PostgresOutbox
from sagaguard.storage.postgres_url import parse_url
from sagaguard.storage.rows import (
    RUN_STATUS,
    STEP_STATUS,
    event_record,
    run_record,
    run_row,
    run_state,
)

__all__ = ["PostgresStore"]

_CLAIMS_FLUSHED_LATER = True
"""A claim's commit does not wait for the disk. Lost in a server crash, it took nothing:
nothing is called under a claim before the step's ``started`` is committed, and that commit,
durable, flushes the claim's WAL with its own (the log is written in order). A claim lost
before then leaves its owner with a fencing token the journal never saw, so that owner's
next write is refused as stale, and the run is claimed again like any unowned run."""


class PostgresStore(PostgresOutbox):
    """A :class:`~sagaguard.storage.base.JournalStore` in a PostgreSQL schema."""

    @classmethod
    def from_url(cls, url: str, *, read_only: bool = False) -> PostgresStore:
        """Open the store named by ``postgresql://...`` (also ``postgres://``): sagaguard's
        options ``schema``, ``clock``, ``pool_size`` and ``reconnect_s``, and libpq's
        (:mod:`sagaguard.storage.postgres_url`)."""
        return cls(**dataclasses.asdict(parse_url(url)), read_only=read_only, url=url)

    # -- reads -----------------------------------------------------------------------------

    def load(self, operation_id: str) -> RunSnapshot:
        """The run and its steps as of one consistent read; ``RunNotFoundError`` if absent.

        The first load after this store claimed the run is the claim's own read, made in
        its commit (:class:`~sagaguard.storage.postgres_known.ClaimedReads`).
        """
        journal.lookup_id(operation_id)
        kept = self._claimed.take(operation_id)
        snapshot, last_seq = kept or self._run(
            lambda conn: sql.snapshot_and_seq(conn, self._sql, operation_id, last=True),
            snapshot=True,
        )
        self._known.learn(snapshot, last_seq)
        return snapshot

    def list_runs(self, *, status: RunStatus | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""

        def read(conn: sql.Conn) -> list[RunRecord]:
            if status is None:
                rows = conn.execute(self._sql.list_all, (max(limit, 0),))
            else:
                rows = conn.execute(self._sql.list_status, (status.value, max(limit, 0)))
            return [run_record(row) for row in rows.fetchall()]

        return self._run(read)

    def load_many(self, operation_ids: Sequence[str]) -> list[RunSnapshot]:
        """The runs named that exist, with their steps, in the order named, in one read."""
        wanted = journal.lookup_ids(operation_ids)
        if not wanted:
            return []
        return self._run(
            lambda conn: sql.snapshots(conn, self._sql, wanted, last=True), snapshot=True
        )

    def count_runs(self) -> dict[RunStatus, int]:
        """How many runs there are in each status (a status with none is left out)."""
        rows = self._run(lambda conn: conn.execute(self._sql.count_runs).fetchall())
        return {RUN_STATUS[status]: int(count) for status, count in rows}

    def oldest_run(self, *, status: RunStatus) -> RunRecord | None:
        """The run with ``status`` whose last change is the oldest (ties: created first)."""
        row = self._run(lambda conn: conn.execute(self._sql.oldest_run, (status.value,)).fetchone())
        return None if row is None else run_record(row)

    def alert_backlog(self) -> AlertBacklog:
        """The outbox's alerts not delivered yet: how many, how many failing, the oldest."""
        row = self._run(lambda conn: conn.execute(self._sql.alert_backlog).fetchone())
        assert row is not None
        oldest = None if row[2] is None else float(row[2])
        return AlertBacklog(int(row[0]), int(row[1]), oldest)

    def events(self, operation_id: str) -> list[Event]:
        """A run's audit trail in the order it was written; ``RunNotFoundError`` if absent."""
        journal.lookup_id(operation_id)
        rows = self._run(
            lambda conn: conn.execute(self._sql.select_events, (operation_id,)).fetchall()
        )
        if not rows:
            raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
        return [event_record(row) for row in rows]

    def info(self) -> StoreInfo:
        """The server, the schema and the settings in effect."""

        def read(conn: sql.Conn) -> tuple[Any, ...]:
            row = conn.execute(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
                " current_database()"
            ).fetchone()
            assert row is not None
            return tuple(row)

        version, commit, database = self._run(read)
        return StoreInfo(
            backend="postgresql",
            url=self._shown(),
            details={
                "database": str(database),
                "schema": self.schema,
                "schema_version": str(self.schema_version),
                "server_version": str(version),
                "synchronous_commit": str(commit),
                "clock": self.clock,
                "listen_reconnects": str(self._listener.reconnects),
            },
        )

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
        journal.first_rows(new, owner=owner, now=now, lease_s=lease_s, input_hash=digest)
        input_text = dumps(new.input, what="input")
        prepared = journal.prepare(transitions)
        op = new.operation_id
        # Written with the run: a rerun after a commit whose outcome was lost finds the run
        # and, by this token, knows it as its own creation rather than someone else's.
        token = uuid.uuid4().hex

        def create(conn: sql.Conn) -> CreateResult:
            row = conn.execute(self._sql.now_and_run, (self._now(now), op)).fetchone()
            assert row is not None
            at = float(row[0])
            if row[1] is None:
                first = journal.first_rows(
                    new, owner=owner, now=at, lease_s=lease_s, input_hash=digest
                )
                inserted = conn.execute(
                    self._sql.create_run, (*run_row(first.run, input_text), token)
                ).fetchone()
                if inserted is not None:
                    return self._created(conn, new, first, actor, prepared, at, lease_s)
            existing = sql.snapshot(conn, self._sql, op)
            if row[-1] == token:
                return reruns.own_creation(existing, owner)
            journal.check_same_request(new, existing.run, input_hash=digest)
            return CreateResult(snapshot=existing, created=False, claim=None)

        created: CreateResult | None = None
        if not transitions:
            attempts = 0

            def at_once(conn: sql.Conn) -> CreateResult | None:
                nonlocal attempts
                attempts += 1
                if attempts > 1:
                    return create(conn)  # after an unknown commit: the long way knows its token
                return create_at_once(
                    conn, self._sql, new, owner=owner, actor=actor, now=self._now(now),
                    lease_s=lease_s, input_text=input_text, token=token,
                    notify=self._notify if owner is None else None,
                )  # fmt: skip

            created = self._run(at_once, write=True, rerun_unknown=True)
            if created is not None and created.claim is not None:
                self._known.learn(created.snapshot, 1)
        if created is None:
            created = self._run(create, write=True, rerun_unknown=True)
        if created.created and created.claim is None:
            self._work.notify()
        return created

    def _created(
        self,
        conn: sql.Conn,
        new: NewRun,
        first: RunSnapshot,
        actor: str,
        prepared: journal.Prepared,
        now: float,
        lease_s: float,
    ) -> CreateResult:
        sql.insert_steps(conn, self._sql, first)
        sql.append(conn, self._sql, [journal.created_event(new, actor=actor, now=now)])
        if first.run.owner is None:
            self._notify(conn)
            return CreateResult(snapshot=first, created=True, claim=None)
        claim = Claim(new.operation_id, first.run.owner, 1, now + lease_s)
        folded = journal.fold(
            claim,
            prepared,
            run=journal.initial_state(first),
            steps={s.step_id: s.status for s in first.steps},
            now=now,
            lease_s=lease_s,
        )
        if prepared.transitions:
            sql.write(conn, self._sql, new.operation_id, folded)
        after = journal.after(first, folded)
        self._known.learn(after, folded.run.last_seq)
        return CreateResult(snapshot=after, created=True, claim=claim)

    def claim(self, operation_id: str, *, owner: str, now: float, lease_s: float) -> Claim:
        """Take ownership of a run whose lease is free, expired, or already ours."""
        journal.lookup_id(operation_id)
        self._claimed.drop(operation_id)

        def take(conn: sql.Conn) -> Claim:
            row = conn.execute(self._sql.lock_state, (self._now(now), operation_id)).fetchone()
            if row is None:
                raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
            before, at = run_state(row[:7]), float(row[7])
            journal.check_claimable(operation_id, before, owner=owner, now=at)
            return sql.take(
                conn, self._sql, operation_id, before, owner=owner, now=at, lease_s=lease_s
            )[0]

        # A rerun after an unknown commit finds the run ours if it landed, and takes it again.
        return self._run(take, write=True, rerun_unknown=True, flushed_later=_CLAIMS_FLUSHED_LATER)

    def claim_expired(
        self,
        *,
        owner: str,
        now: float,
        lease_s: float,
        limit: int = 10,
        processes: Collection[tuple[str, str]] | None = None,
    ) -> list[Claim]:
        """Claim up to ``limit`` active runs left unowned, skipping rows others are claiming."""

        wanted = journal.wanted_processes(processes)
        if wanted == ():
            return []

        def take(conn: sql.Conn) -> tuple[list[Claim], list[tuple[RunSnapshot, int]]]:
            rows = sql.lock_expired(conn, self._sql, self._now(now), max(limit, 0), wanted)
            taken = [
                sql.take(
                    conn, self._sql, row[0], run_state(row[1:8]), owner=owner,
                    now=float(row[8]), lease_s=lease_s,
                )
                for row in rows
            ]  # fmt: skip
            if not taken:
                return [], []
            # Read in the claim's commit, after its writes and under its locks: what the
            # drive's first load would find.
            claims = [claim for claim, _ in taken]
            read = sql.snapshots(conn, self._sql, [c.operation_id for c in claims], last=True)
            seqs = {claim.operation_id: after.last_seq for claim, after in taken}
            return claims, [(snapshot, seqs[snapshot.run.operation_id]) for snapshot in read]

        # A rerun after an unknown commit takes other runs: any the lost commit took stay
        # claimed under this owner until their lease runs out, then are taken up again.
        claims, read = self._run(
            take, write=True, rerun_unknown=True, flushed_later=_CLAIMS_FLUSHED_LATER
        )
        self._claimed.keep(read)
        return claims

    def record(
        self,
        claim: Claim,
        transitions: Sequence[Transition],
        *,
        now: float,
        lease_s: float,
        release: bool = False,
    ) -> Claim:
        """Apply ``transitions`` under ``claim`` and renew (or release) it, in one transaction."""
        if not transitions and not release:
            return self.heartbeat(claim, now=now, lease_s=lease_s)
        prepared = journal.prepare(transitions)
        op = claim.operation_id
        self._claimed.drop(op)  # a load from now on must see this record
        # Written with the transitions: a rerun after a commit whose outcome was lost finds
        # it on the row if that commit landed, and then writes nothing again.
        token = uuid.uuid4().hex
        renewed: Claim | None = None
        wakes = False
        known = self._known.of(claim)
        if known is not None:
            # One message when the row is as known; a rerun after an unknown commit finds
            # it moved on if that commit landed, and the long way below then knows the token.
            sent = self._run(
                lambda conn: write_as_known(
                    conn, self._sql, claim, known, prepared, now=self._now(now),
                    lease_s=lease_s, release=release, token=token,
                    notify=self._notify if release else None,
                ),
                write=True,
                rerun_unknown=True,
            )  # fmt: skip
            if sent is not None:
                renewed, folded = sent
                self._known.wrote(op, known.state, folded.run, folded.steps)
                wakes = release and journal.released_for_anyone(folded.run)
        if renewed is None:
            self._known.forget(op)
            renewed, wakes = self._record_reading_row(
                claim, prepared, now=now, lease_s=lease_s, release=release, token=token
            )
        if wakes:
            self._work.notify()
        return renewed

    def _record_reading_row(
        self,
        claim: Claim,
        prepared: journal.Prepared,
        *,
        now: float,
        lease_s: float,
        release: bool,
        token: str,
    ) -> tuple[Claim, bool]:
        """A record the long way: lock and read the run's row and steps, fold, write. Also
        whether it released the run as work for anyone."""
        op = claim.operation_id

        def write(conn: sql.Conn) -> tuple[Claim, bool]:
            row = conn.execute(
                self._sql.lock_state_and_steps, (self._now(now), list(prepared.step_ids), op)
            ).fetchone()
            if row is not None and row[9] == token:
                expires = float(row[7]) + lease_s
                landed = run_state(row[:7])
                wakes = release and journal.released_for_anyone(landed)
                return reruns.own_record(claim, landed, expires, release), wakes
            before = journal.check_current(claim, None if row is None else run_state(row[:7]))
            assert row is not None
            at, pairs = float(row[7]), row[8] or []
            folded = journal.fold(
                claim,
                prepared,
                run=before,
                steps={step_id: STEP_STATUS[status] for step_id, status in pairs},
                now=at,
                lease_s=lease_s,
                release=release,
            )
            sql.write(conn, self._sql, op, folded, token=token)
            wakes = release and journal.released_for_anyone(folded.run)
            if wakes:
                self._notify(conn)
            return Claim(op, claim.owner, claim.fencing_token, at + lease_s), wakes

        return self._run(write, write=True, rerun_unknown=True)

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Extend the lease of a current claim, never shortening it (``StaleOwnerError``)."""
        op = claim.operation_id
        self._claimed.drop(op)

        def renew(conn: sql.Conn) -> Claim:
            row = conn.execute(self._sql.lock_state, (self._now(now), op)).fetchone()
            state = None if row is None else run_state(row[:7])
            at = now if row is None else float(row[7])
            _, renewed = journal.renewed(claim, state, now=at, lease_s=lease_s)
            conn.defer(
                self._sql.renew, (renewed.lease_expires_at, op, claim.fencing_token, claim.owner)
            )
            return renewed

        # Rerunning is safe: a renewal never shortens a lease, so a second one changes nothing.
        return self._run(renew, write=True, rerun_unknown=True)

    def release(self, claim: Claim, *, now: float) -> None:
        """Give up ownership if the claim is current (``StaleOwnerError`` otherwise)."""

        attempts = 0
        wakes = False

        def let_go(conn: sql.Conn) -> None:
            nonlocal attempts, wakes
            attempts += 1
            row = conn.execute(
                self._sql.lock_state, (self._now(now), claim.operation_id)
            ).fetchone()
            state = None if row is None else run_state(row[:7])
            if attempts > 1 and reruns.released_by(claim, state):
                assert state is not None
                wakes = journal.released_for_anyone(state)
                return  # the earlier attempt's commit landed: this claim let the run go
            before = journal.check_current(claim, state)
            assert row is not None
            after, event = journal.let_go(claim, before, now=float(row[7]))
            sql.write_state(conn, self._sql, claim.operation_id, after)
            sql.append(conn, self._sql, [event])
            wakes = journal.released_for_anyone(after)
            if wakes:
                self._notify(conn)

        self._known.forget(claim.operation_id)
        self._claimed.drop(claim.operation_id)
        self._run(let_go, write=True, rerun_unknown=True)
        if wakes:
            self._work.notify()

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a NOTIFY says work may exist (any process), or ``timeout_s`` passes."""
        self._listener.start()
        return self._work.wait(timeout_s)

    def prune(self, *, older_than: float, statuses: Collection[RunStatus] = ()) -> int:
        """Remove finished runs last changed before ``older_than``, 500 per transaction."""
        chosen = [status.value for status in journal.prunable_statuses(statuses)]

        def batch(conn: sql.Conn) -> int:
            rows = conn.execute(self._sql.prune, (chosen, older_than, 500)).fetchall()
            gone = [row[0] for row in rows]
            for statement in self._sql.prune_rows:
                conn.defer(statement, (gone,))
            return len(gone)

        removed = 0
        while (count := self._run(batch, write=True)) == 500:
            removed += count
        return removed + count
