"""A SQLite journal file's connections and transactions: one connection per thread, WAL.

WAL mode with ``synchronous=FULL`` by default, so a committed transition survives a power cut.
Every write starts with ``BEGIN IMMEDIATE``, which takes the file's write lock up front, so
concurrent writers (threads or processes) queue on the busy timeout instead of failing
half-way. Each thread gets its own connection; writers of one process also share a lock so
that they queue in Python rather than in SQLite's sleeping busy handler. The schema is
versioned (:mod:`sagaguard.storage.migrations`) and migrated when the file is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import quote

from sagaguard.exceptions import StoreError
from sagaguard.storage import sqlite_files as files
from sagaguard.storage.migrations import migrate
from sagaguard.storage.options import BUSY_TIMEOUT_S
from sagaguard.storage.wakeup import WorkSignal

__all__ = ["SYNCHRONOUS", "SQLiteConnections"]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


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


class SQLiteConnections:
    """An open journal file: its per-thread connections, its write lock and its transactions.

    :class:`~sagaguard.storage.sqlite.SQLiteStore` builds the journal's methods on it.
    """

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
        if self.synchronous not in SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = os.path.abspath(given)
        self.busy_timeout_s = BUSY_TIMEOUT_S.check(busy_timeout_s)
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
