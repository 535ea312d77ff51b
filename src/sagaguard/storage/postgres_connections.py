"""A PostgreSQL journal's connections: the pool, the transaction, the retry after a loss.

A call that fails on a lost connection before its commit was sent is retried on a fresh
connection with capped exponential backoff (a killed backend, a restarting server), up to
``reconnect_s``. A commit counts only once the server's answer to it is read; a connection
lost after the COMMIT was sent leaves the outcome unknown, and the call is never retried
blind: it is reported, or rerun by a caller that can recognise its own landed write (see
``rerun_unknown``). Driver errors become :class:`~sagaguard.exceptions.StoreError`.
The schema is migrated (under an advisory lock) when the store opens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from sagaguard.exceptions import StoreError
from sagaguard.storage import postgres_schema as schema
from sagaguard.storage import postgres_statements as sql
from sagaguard.storage.options import POOL_SIZE, RECONNECT_S
from sagaguard.storage.postgres_known import ClaimedReads, KnownRuns
from sagaguard.storage.postgres_listen import Listener
from sagaguard.storage.postgres_transaction import Connection, Transaction
from sagaguard.storage.wakeup import WorkSignal

__all__ = ["CommitUnknown", "PostgresConnections", "first_line"]

T = TypeVar("T")


class CommitUnknown(Exception):  # noqa: N818 - a fact about the commit, like StopIteration
    """A COMMIT was sent but its answer never arrived: it may or may not have landed."""


class PostgresConnections:
    """An open PostgreSQL journal: its pool, its LISTEN connection and its transactions.

    :class:`~sagaguard.storage.postgres.PostgresStore` builds the journal's methods on it.
    """

    def __init__(
        self,
        *,
        conninfo: str,
        schema_name: str = "sagaguard",
        clock: str = "server",
        pool_size: int = 8,
        reconnect_s: float = 30.0,
        read_only: bool = False,
        url: str | None = None,
    ) -> None:
        if clock not in ("server", "caller"):
            raise StoreError(f"clock must be server or caller, not {clock!r}")
        pool_size = int(POOL_SIZE.check(pool_size))
        reconnect_s = RECONNECT_S.check(reconnect_s)
        self.schema = schema_name
        self._quoted = schema.quoted_schema(schema_name)
        self.clock = clock
        self.read_only = read_only
        self.reconnect_s = reconnect_s
        self.url = url or f"postgresql://?schema={schema_name}"
        self._conninfo = conninfo
        self._sql = sql.Statements(self._quoted)
        self._channel = f"sagaguard_work_{schema_name}"
        self._work = WorkSignal()
        self._known = KnownRuns()
        """The held runs as this store's own writes left them (a record in one message)."""
        self._claimed = ClaimedReads()
        """Runs as this store's claims read them, for each one's first load."""
        self._closed = False
        try:
            with psycopg.connect(conninfo, connect_timeout=10) as conn:
                schema.check_session_state(conn)
                if read_only:
                    self.schema_version = schema.check_readable(conn, schema_name)
                else:
                    self.schema_version = schema.migrate(conn, schema_name)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open journal {self._shown()}: {first_line(exc)}") from exc
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = (
            psycopg_pool.ConnectionPool(
                conninfo,
                min_size=1,
                max_size=pool_size,
                open=True,
                # No check on every getconn (a round trip each time): a connection found
                # dead by its first statement is retried, and the pool checked, by _run.
                kwargs={"autocommit": True},
                configure=self._configure,
                timeout=reconnect_s,
                name=f"sagaguard-{schema_name}",
            )
        )
        self._listener = Listener(
            connect=lambda: psycopg.connect(conninfo, autocommit=True, connect_timeout=10),
            channel=self._channel,
            signal=self._work,
        )

    def close(self) -> None:
        """Stop listening and close the pool; the store is unusable afterwards."""
        self._closed = True
        self._listener.stop()
        self._pool.close()

    # -- connections and transactions ------------------------------------------------------

    def _now(self, now: float) -> float | None:
        """The time a statement uses: the caller's on a caller clock, else none (the server's)."""
        return now if self.clock == "caller" else None

    def _notify(self, tx: Transaction) -> None:
        """Tell every listening worker, at this transaction's commit, that work may exist."""
        tx.defer("SELECT pg_notify(%s, '')", (self._channel,))

    def _configure(self, conn: Connection) -> None:
        conn.execute("SET lock_timeout = '30s'")
        # A worker frozen mid-transaction (SIGSTOP, a long GC pause) would hold its runs' row
        # locks forever, and SKIP LOCKED claims would skip them past their lease: the server
        # ends such a session instead, soon enough that a short lease still holds. The
        # store's transactions never wait on a call, only on a few statements; one that is
        # ended is retried on a fresh connection (nothing of it can have committed).
        conn.execute("SET idle_in_transaction_session_timeout = '2s'")
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        conn.execute("; ".join(self._sql.preparations()))

    def _run(
        self,
        work: Callable[[Transaction], T],
        *,
        write: bool = False,
        snapshot: bool = False,
        rerun_unknown: bool = False,
        flushed_later: bool = False,
    ) -> T:
        """Run ``work`` in one transaction, retrying it on a fresh connection while none of it
        can have committed (a connection lost before the commit was sent).

        With ``rerun_unknown``, a commit of unknown outcome is retried too: ``work`` then
        recognises, on its rerun, what its earlier attempt committed.
        """
        if self._closed:
            raise StoreError(f"journal store {self._shown()} is closed")
        if write and self.read_only:
            raise StoreError(f"journal {self._shown()} is open read-only: nothing can be written")
        deadline = time.monotonic() + self.reconnect_s
        delay = 0.05
        while True:
            try:
                with self._transaction(snapshot=snapshot, flushed_later=flushed_later) as tx:
                    return work(tx)
            except CommitUnknown as unknown:
                cause = unknown.__cause__ or unknown
                if rerun_unknown and time.monotonic() + delay <= deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise StoreError(
                    f"journal {self._shown()}: the connection was lost during a commit, whose "
                    f"outcome is unknown ({first_line(cause)})"
                ) from cause
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreError(f"journal {self._shown()}: {first_line(exc)}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            except psycopg.Error as exc:
                raise StoreError(f"journal {self._shown()}: {first_line(exc)}") from exc

    @contextmanager
    def _transaction(self, *, snapshot: bool, flushed_later: bool) -> Iterator[Transaction]:
        # The pool's connection() context is not used: on its way out it commits once
        # more, outside this method, and on a connection that died after the commit was
        # answered that second COMMIT fails like a transaction that never committed.
        conn = self._pool.getconn()
        tx = Transaction(
            conn, snapshot=snapshot, flushed_later=flushed_later, prepared=self._sql.prepared
        )
        try:
            try:
                yield tx
                tx.commit()
            except psycopg.OperationalError:
                raise  # judged below, by what was sent
            except BaseException:
                tx.rollback()
                raise
            if tx.sent and not _idle(conn) and not snapshot:
                raise CommitUnknown("the server did not confirm the commit")
        except psycopg.OperationalError as exc:
            if tx.sent and not snapshot:
                # The COMMIT may have landed: only the client's view of it was lost.
                raise CommitUnknown(first_line(exc)) from exc
            self._pool.check()  # a lost connection rarely goes alone (a server restart)
            raise  # nothing can have committed (or it was a read): it may run again
        finally:
            self._pool.putconn(conn)

    def _shown(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return self.url


def first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def _idle(conn: Connection) -> bool:
    """True when the server's last answer said no transaction is open: a COMMIT went in.

    A COMMIT counts only once its answer is read (libpq's pipeline documentation: the
    client must not assume work is committed when it sends a COMMIT).
    """
    return bool(conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE)
