"""The SQLite journal store: the embedded default, durable on one machine.

Every method is one transaction (:mod:`sagaguard.storage.sqlite_connections` holds the
connections, WAL mode and ``BEGIN IMMEDIATE``), so ``claim_expired`` cannot hand one run to
two callers. Payloads are JSON text, never pickle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from sagaguard.exceptions import (
    RunNotFoundError,
    StoreError,
)
from sagaguard.storage import journal
from sagaguard.storage import sqlite_statements as sql
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
    StoreInfo,
    Transition,
    alert_settled_event,
)
from sagaguard.storage.migrations import current_version
from sagaguard.storage.options import BUSY_TIMEOUT_S
from sagaguard.storage.payloads import dumps
from sagaguard.storage.rows import (
    RUN_COLUMNS,
    RUN_STATUS,
    EventRow,
    event_record,
    outbox_alert,
    run_record,
    run_state,
)
from sagaguard.storage.sqlite_connections import SYNCHRONOUS, SQLiteConnections

__all__ = ["SQLiteStore"]

_URL_HELP = "use sqlite:///relative/path.db or sqlite:////absolute/path.db[?synchronous=NORMAL]"


class SQLiteStore(SQLiteConnections):
    """A :class:`~sagaguard.storage.base.JournalStore` in one SQLite file (WAL mode)."""

    @classmethod
    def from_url(cls, url: str, *, read_only: bool = False) -> SQLiteStore:
        """Open the store named by ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``.

        Query options: ``synchronous`` (OFF, NORMAL, FULL, EXTRA) and ``busy_timeout_s``
        (0 to 86400 seconds, default 30; see :mod:`sagaguard.storage.options`).
        ``read_only`` opens an existing journal for reading only (see ``open_store``).
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "sqlite" or parts.netloc or len(parts.path) < 2:
            raise StoreError(f"bad SQLite journal URL {url!r}: {_URL_HELP}")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"synchronous", "busy_timeout_s"})
        if unknown:
            raise StoreError(f"unknown option {unknown[0]!r} in journal URL {url!r}: {_URL_HELP}")
        timeout = BUSY_TIMEOUT_S.parse(options.get("busy_timeout_s", ["30"])[-1])
        store = cls(
            path=unquote(parts.path[1:]),
            synchronous=options.get("synchronous", ["FULL"])[-1],
            busy_timeout_s=timeout,
            read_only=read_only,
        )
        store.url = url
        return store

    # -- reads -----------------------------------------------------------------------------

    def load(self, operation_id: str) -> RunSnapshot:
        """The run and its steps as of one consistent read; ``RunNotFoundError`` if absent."""
        journal.lookup_id(operation_id)
        with self._reading() as conn:
            return sql.snapshot(conn, operation_id)

    def list_runs(self, *, status: RunStatus | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""
        order = "ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._reading() as conn:
            if status is None:
                rows = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs {order}", (max(limit, 0),))
            else:
                rows = conn.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE status = ? {order}",
                    (status.value, max(limit, 0)),
                )
            return [run_record(row) for row in rows.fetchall()]

    def load_many(self, operation_ids: Sequence[str]) -> list[RunSnapshot]:
        """The runs named that exist, with their steps, in the order named, in one read."""
        wanted = journal.lookup_ids(operation_ids)
        with self._reading() as conn:
            return sql.snapshots(conn, wanted)

    def count_runs(self) -> dict[RunStatus, int]:
        """How many runs there are in each status (a status with none is left out)."""
        with self._reading() as conn:
            return {RUN_STATUS[status]: count for status, count in conn.execute(sql.COUNT_RUNS)}

    def oldest_run(self, *, status: RunStatus) -> RunRecord | None:
        """The run with ``status`` whose last change is the oldest (ties: created first)."""
        with self._reading() as conn:
            row = conn.execute(sql.OLDEST_RUN, (status.value,)).fetchone()
        return None if row is None else run_record(row)

    def alert_backlog(self) -> AlertBacklog:
        """The outbox's alerts not delivered yet: how many, how many failing, the oldest."""
        with self._reading() as conn:
            undelivered, failing, oldest = conn.execute(sql.ALERT_BACKLOG).fetchone()
        return AlertBacklog(undelivered, failing, oldest)

    def events(self, operation_id: str) -> list[Event]:
        """A run's audit trail in the order it was written; ``RunNotFoundError`` if absent."""
        journal.lookup_id(operation_id)
        with self._reading() as conn:
            rows = conn.execute(sql.SELECT_EVENTS, (operation_id,)).fetchall()
            # Every run has its run_created event, so no events means no run.
            if not rows:
                raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
            return [event_record(row) for row in rows]

    def info(self) -> StoreInfo:
        """The file, and the journal mode and durability setting actually in effect."""
        with self._reading() as conn:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            version = current_version(conn)
        return StoreInfo(
            backend="sqlite",
            url=self.url,
            details={
                "path": self.path,
                "journal_mode": mode.upper(),
                "synchronous": SYNCHRONOUS[level],
                "busy_timeout_s": f"{self.busy_timeout_s:g}",
                "schema_version": str(version),
                "sqlite_version": sqlite3.sqlite_version,
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
        first = journal.first_rows(new, owner=owner, now=now, lease_s=lease_s, input_hash=digest)
        input_text = dumps(new.input, what="input")
        prepared = journal.prepare(transitions)
        op = new.operation_id
        with self._writing() as conn:
            row = conn.execute(sql.SELECT_RUN, (op,)).fetchone()
            if row is not None:
                journal.check_same_request(new, run_record(row), input_hash=digest)
                return CreateResult(snapshot=sql.snapshot(conn, op), created=False, claim=None)
            sql.insert_run(conn, first, input_text)
            sql.append(conn, [journal.created_event(new, actor=actor, now=now)])
            if owner is None:
                created = CreateResult(snapshot=first, created=True, claim=None)
            else:
                claim = Claim(op, owner, 1, now + lease_s)
                folded = journal.fold(
                    claim,
                    prepared,
                    run=journal.initial_state(first),
                    steps={s.step_id: s.status for s in first.steps},
                    now=now,
                    lease_s=lease_s,
                )
                if transitions:
                    sql.write(conn, op, folded)
                return CreateResult(
                    snapshot=journal.after(first, folded), created=True, claim=claim
                )
        self._work.notify()
        return created

    def claim(self, operation_id: str, *, owner: str, now: float, lease_s: float) -> Claim:
        """Take ownership of a run whose lease is free, expired, or already ours."""
        journal.lookup_id(operation_id)
        with self._writing() as conn:
            before = sql.run_state(conn, operation_id)
            if before is None:
                raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
            journal.check_claimable(operation_id, before, owner=owner, now=now)
            return sql.take(conn, operation_id, before, owner=owner, now=now, lease_s=lease_s)

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
        if wanted == ():
            return []
        with self._writing() as conn:
            rows = conn.execute(*sql.expired(now, max(limit, 0), wanted)).fetchall()
            return [
                sql.take(conn, row[0], run_state(row[1:]), owner=owner, now=now, lease_s=lease_s)
                for row in rows
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
        """Apply ``transitions`` under ``claim`` and renew (or release) it, in one transaction.

        Reads the run's row and the rows of the steps the transitions change, nothing else.
        """
        if not transitions and not release:
            return self.heartbeat(claim, now=now, lease_s=lease_s)
        # Encode payloads before taking the write lock: a bad one fails with nothing begun.
        prepared = journal.prepare(transitions)
        op = claim.operation_id
        with self._writing() as conn:
            state, steps = sql.state_and_steps(conn, op, prepared.step_ids)
            before = journal.check_current(claim, state)
            folded = journal.fold(
                claim,
                prepared,
                run=before,
                steps=steps,
                now=now,
                lease_s=lease_s,
                release=release,
            )
            sql.write(conn, op, folded)
        if release and journal.released_for_anyone(folded.run):
            self._work.notify()
        return Claim(op, claim.owner, claim.fencing_token, now + lease_s)

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Extend the lease of a current claim, never shortening it (``StaleOwnerError``)."""
        op = claim.operation_id
        with self._writing() as conn:
            _, renewed = journal.renewed(claim, sql.run_state(conn, op), now=now, lease_s=lease_s)
            conn.execute(
                sql.RENEW, (renewed.lease_expires_at, op, claim.fencing_token, claim.owner)
            )
        return renewed

    def release(self, claim: Claim, *, now: float) -> None:
        """Give up ownership if the claim is current (``StaleOwnerError`` otherwise)."""
        with self._writing() as conn:
            before = journal.check_current(claim, sql.run_state(conn, claim.operation_id))
            after, event = journal.let_go(claim, before, now=now)
            sql.write_state(conn, claim.operation_id, after)
            sql.append(conn, [event])
        if journal.released_for_anyone(after):
            self._work.notify()

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a run is submitted or released, or the file changes, or time is up.

        Other processes' commits are seen by polling ``PRAGMA data_version`` (a counter in
        shared memory: no read of the file) every 50 ms.
        """
        conn = self._conn()
        seen = conn.execute("PRAGMA data_version").fetchone()[0]

        def changed() -> bool:
            return bool(conn.execute("PRAGMA data_version").fetchone()[0] != seen)

        try:
            return self._work.wait(timeout_s, changed=changed)
        except sqlite3.Error as exc:
            raise StoreError(f"journal {self.path}: {exc}") from exc

    def prune(self, *, older_than: float, statuses: Collection[RunStatus] = ()) -> int:
        """Remove finished runs last changed before ``older_than``, a batch per transaction."""
        chosen = journal.prunable_statuses(statuses)
        removed = 0
        while True:
            with self._writing() as conn:
                batch = sql.prune_batch(conn, older_than, chosen, limit=500)
            removed += batch
            if batch < 500:
                return removed

    def claim_due_alerts(self, *, now: float, lease_s: float, limit: int = 10) -> list[OutboxAlert]:
        """Take up to ``limit`` undelivered alerts that are due, hiding them for ``lease_s``."""
        with self._writing() as conn:
            rows = conn.execute(sql.DUE_ALERTS, (now, max(limit, 0))).fetchall()
            conn.executemany(
                "UPDATE alerts SET next_attempt_at = ? WHERE alert_id = ?",
                [(now + lease_s, row[0]) for row in rows],
            )
        return [outbox_alert(row) for row in rows]

    def settle_alert(
        self, alert_id: str, *, now: float, error: str | None = None, retry_at: float = 0.0
    ) -> None:
        """Mark an alert delivered, or count a failed attempt and set when to try again."""
        with self._writing() as conn:
            row = conn.execute(
                "SELECT operation_id, kind, attempts FROM alerts "
                "WHERE alert_id = ? AND delivered_at IS NULL",
                (alert_id,),
            ).fetchone()
            if row is None:
                return
            op, kind, failed = row
            if error is None:
                conn.execute(
                    "UPDATE alerts SET delivered_at = ? WHERE alert_id = ?", (now, alert_id)
                )
            else:
                conn.execute(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = ?, "
                    "next_attempt_at = ? WHERE alert_id = ?",
                    (error, retry_at, alert_id),
                )
            event = alert_settled_event(kind, alert_id, failed_before=failed, error=error)
            if event is not None:
                (seq,) = conn.execute(sql.APPEND_SEQ, (op,)).fetchone()
                kind_of_event, reason, data = event
                row = EventRow(
                    op,
                    seq,
                    now,
                    NOTIFIER_ACTOR,
                    kind_of_event,
                    None,
                    None,
                    None,
                    reason,
                    dumps(data),
                )
                sql.append(conn, [row])
