"""The SQLite journal store: the embedded default, durable on one machine.

WAL mode with ``synchronous=FULL`` by default, so a committed transition survives a power cut.
Every method is one transaction; every write starts with ``BEGIN IMMEDIATE``, which takes the
file's write lock up front, so concurrent writers (threads or processes) queue on the busy
timeout instead of failing half-way, and ``claim_expired`` cannot hand one run to two callers.
Each thread gets its own connection; writers of one process also share a lock so that they
queue in Python rather than in SQLite's sleeping busy handler. The schema is versioned
(:mod:`sagaguard.storage.migrations`). Payloads are JSON text, never pickle.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sagaguard.exceptions import (
    RunNotFoundError,
    StoreError,
)
from sagaguard.storage import journal
from sagaguard.storage import sqlite_files as files
from sagaguard.storage import sqlite_statements as sql
from sagaguard.storage.base import (
    NOTIFIER_ACTOR,
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
    dumps,
)
from sagaguard.storage.migrations import current_version, migrate
from sagaguard.storage.rows import (
    RUN_COLUMNS,
    EventRow,
    event_record,
    outbox_alert,
    run_record,
    run_state,
)
from sagaguard.storage.wakeup import WorkSignal

__all__ = ["SQLiteStore"]

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_URL_HELP = "use sqlite:///relative/path.db or sqlite:////absolute/path.db[?synchronous=NORMAL]"


class _ThreadConnection:
    """One thread's connection, closed when the thread ends (its thread-locals are dropped).

    Left to the garbage collector, a connection's file descriptors can outlive it; a worker
    that runs each saga on a fresh thread would leak them.
    """

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()

    def close(self) -> None:
        """Close the connection, unless it was inherited by a forked child (it is the parent's)."""
        if self.pid == os.getpid():
            with suppress(sqlite3.Error):
                self.conn.close()

    def __del__(self) -> None:
        self.close()


class SQLiteStore:
    """A :class:`~sagaguard.storage.base.JournalStore` in one SQLite file (WAL mode)."""

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        synchronous: str = "FULL",
        busy_timeout_s: float = 30.0,
        read_only: bool = False,
    ) -> None:
        given = os.fspath(path)
        if given in ("", ":memory:"):
            raise StoreError("a SQLite journal needs a file path; use memory:// for tests")
        self.synchronous = synchronous.upper()
        if self.synchronous not in _SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        self.path = os.path.abspath(given)
        self.busy_timeout_s = busy_timeout_s
        suffix = "" if self.synchronous == "FULL" else f"?synchronous={self.synchronous}"
        self.url = f"sqlite:///{given}{suffix}"
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._registry_lock = threading.Lock()
        self._connections: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._closed = False
        self.read_only = read_only
        self._immutable = False
        self._identity: tuple[int, int] | None = None
        self._guard: files.FileGuard | None = None
        self._work = WorkSignal()
        try:
            if read_only:
                self.schema_version = self._open_read_only()
            else:
                conn = self._connect(create=True)
                files.check_not_foreign(conn, self.path)
                self._use_wal(conn)
                self.schema_version = migrate(conn, path=self.path)
            if read_only:
                self._identity = files.identity(self.path)
            else:
                self._guard = files.FileGuard(self.path)
                self._identity = self._guard.identity
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot open journal {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _open_read_only(self) -> int:
        """Open an existing journal without writing to it: no create, migrate or mode change.

        A WAL journal needs its shared-memory file; where it cannot be made (a read-only
        directory, another user's file) the file is read as it stands (``immutable``): what
        a live writer still holds in its WAL file is not seen then.
        """
        if not os.path.isfile(self.path):
            raise StoreError(f"no journal at {self.path}")
        try:
            conn = self._connect(create=False)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except (sqlite3.OperationalError, StoreError):
            self._immutable = True
            conn = self._connect(create=False)
        return files.check_journal(conn, self.path)

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode (it stays so), waiting out openers that hold it."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
                break
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL needs it to itself, and SQLite does not wait
                # for that on its own: another opener creating the schema makes it busy.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        if mode != "wal":
            raise StoreError(f"journal {self.path} cannot use WAL mode (got {mode!r})")

    @classmethod
    def from_url(cls, url: str, *, read_only: bool = False) -> SQLiteStore:
        """Open the store named by ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``.

        Query options: ``synchronous`` (OFF, NORMAL, FULL, EXTRA) and ``busy_timeout_s``.
        ``read_only`` opens an existing journal for reading only (see ``open_store``).
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "sqlite" or parts.netloc or len(parts.path) < 2:
            raise StoreError(f"bad SQLite journal URL {url!r}: {_URL_HELP}")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"synchronous", "busy_timeout_s"})
        if unknown:
            raise StoreError(f"unknown option {unknown[0]!r} in journal URL {url!r}: {_URL_HELP}")
        try:
            timeout = float(options.get("busy_timeout_s", ["30"])[-1])
        except ValueError as exc:
            raise StoreError(f"busy_timeout_s in {url!r} is not a number") from exc
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
        journal.check_operation_id(operation_id)
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

    def events(self, operation_id: str) -> list[Event]:
        """A run's audit trail in the order it was written; ``RunNotFoundError`` if absent."""
        journal.check_operation_id(operation_id)
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
                "synchronous": _SYNCHRONOUS[level],
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
        journal.check_operation_id(operation_id)
        with self._writing() as conn:
            before = sql.run_state(conn, operation_id)
            if before is None:
                raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
            journal.check_claimable(operation_id, before, owner=owner, now=now)
            return sql.take(conn, operation_id, before, owner=owner, now=now, lease_s=lease_s)

    def claim_expired(
        self, *, owner: str, now: float, lease_s: float, limit: int = 10
    ) -> list[Claim]:
        """Claim up to ``limit`` active runs whose owner is gone or whose lease expired."""
        with self._writing() as conn:
            rows = conn.execute(sql.EXPIRED, (now, max(limit, 0))).fetchall()
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
        if release:
            self._work.notify()
        return Claim(op, claim.owner, claim.fencing_token, now + lease_s)

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Extend the lease of a claim that is still current (``StaleOwnerError``)."""
        lease = now + lease_s
        with self._writing() as conn:
            cursor = conn.execute(
                sql.RENEW, (lease, claim.operation_id, claim.fencing_token, claim.owner)
            )
            if cursor.rowcount == 0:
                sql.raise_unowned(conn, claim)
        return Claim(claim.operation_id, claim.owner, claim.fencing_token, lease)

    def release(self, claim: Claim, *, now: float) -> None:
        """Give up ownership if the claim is current (``StaleOwnerError`` otherwise)."""
        with self._writing() as conn:
            before = journal.check_current(claim, sql.run_state(conn, claim.operation_id))
            after, event = journal.let_go(claim, before, now=now)
            sql.write_state(conn, claim.operation_id, after)
            sql.append(conn, [event])
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

    def close(self) -> None:
        """Close every connection this process opened; the store is unusable afterwards."""
        self._closed = True
        with self._registry_lock:
            held = list(self._connections)
            self._connections.clear()
        for connection in held:
            connection.close()
        if self._guard is not None:
            self._guard.close()

    # -- connections and transactions ------------------------------------------------------

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        """A new connection; only the first one may create the file (the others find it)."""
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreError(
                f"cannot open journal {self.path}: directory {directory} does not exist "
                "(moved or renamed?)"
            )
        mode = "rwc" if create else "ro" if self.read_only else "rw"
        if self._immutable:
            mode += "&immutable=1"
        try:
            conn = sqlite3.connect(
                f"file:{quote(self.path)}?mode={mode}",
                uri=True,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=64,
            )
        except sqlite3.Error as exc:
            what = "cannot open" if create else "lost the journal file"
            raise StoreError(f"{what} {self.path}: {exc} (moved or deleted?)") from exc
        held = _ThreadConnection(conn)
        self._local.held = held
        with self._registry_lock:
            self._connections.add(held)
        try:
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open journal {self.path}: {exc}") from exc
        if self._identity is not None:
            files.check_same_file(self.path, self._identity)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"journal store {self.url} is closed")
        held = getattr(self._local, "held", None)
        # A forked child must not reuse its parent's connection (SQLite forbids it).
        if held is None or held.pid != os.getpid():
            return self._connect(create=False)
        conn: sqlite3.Connection = held.conn
        return conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        if self.read_only:
            raise StoreError(f"journal {self.path} is open read-only: nothing can be written")
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"journal {self.path}: cannot begin a write: {exc}") from exc
            try:
                # A write to a journal deleted or replaced meanwhile would be lost: refuse it.
                assert self._guard is not None
                self._guard.check()
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"journal {self.path}: {exc}") from exc
                raise

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot of the file (WAL readers never block)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"journal {self.path}: {exc}") from exc
