"""The fleet's ledger: every call the fake providers receive, as a row in PostgreSQL.

Four worker processes and the test share it, and a SIGKILL cannot lose a row: each call is
committed (autocommit) before the provider does anything else, with its operation id, step,
idempotency key, attempt, fencing token and pid, and whether it took effect. A provider that
honours idempotency keys takes effect at most once per key; one that does not takes effect
every time it applies, which is what makes a second call of a non-idempotent step visible.
Like the real provider the README asks for ("What a lease cannot do"), each refuses a call
whose fencing token is lower than one it has seen for the key: a worker frozen inside a call
(SIGSTOP) that wakes after another took its run over cannot apply it a second time.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from sagaguard.testing.ledger import Ledger, LedgerEntry, LedgerKind

if TYPE_CHECKING:
    import psycopg

    from sagaguard.engine import StepContext

__all__ = ["PgLedger"]

_COLUMNS = "operation_id, step_id, kind, idempotency_key, attempt, pid, time, fencing_token, effect"


class PgLedger(Ledger):
    """A :class:`~sagaguard.testing.ledger.Ledger` in table ``fleet_ledger`` of ``schema``."""

    def __init__(self, *, conninfo: str, schema: str) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._table = f'"{schema}".fleet_ledger'
        self._local = threading.local()

    def create(self) -> None:
        """Create the table (the test does, once, before any worker starts)."""
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} (id bigserial PRIMARY KEY, "
            "operation_id text NOT NULL, step_id text NOT NULL, kind text NOT NULL, "
            "idempotency_key text NOT NULL, attempt int NOT NULL, pid int NOT NULL, "
            "time double precision NOT NULL, fencing_token int, effect boolean)"
        )

    def append(self, entry: LedgerEntry) -> None:
        """Commit one row whose effect is not known (a lookup)."""
        self._insert(entry, None, dedupe=False)

    def record_effect(
        self, ctx: StepContext, kind: LedgerKind, *, applies: bool, dedupe: bool
    ) -> bool:
        """Commit the call ``ctx`` describes; True when it took effect.

        ``applies``: the provider carries the request out. ``dedupe``: it honours the
        idempotency key, so a key that already took effect does not take effect again.
        """
        entry = LedgerEntry(
            operation_id=ctx.operation_id,
            step_id=ctx.step_id,
            kind=kind,
            idempotency_key=ctx.idempotency_key,
            attempt=ctx.attempt,
            pid=os.getpid(),
            time=time.time(),
            fencing_token=ctx.fencing_token,
        )
        return self._insert(entry, applies, dedupe=dedupe)

    def took_effect(self, operation_id: str, step_id: str, kind: LedgerKind) -> bool:
        """True when some call of this step and kind took effect (what verify asks)."""
        rows = self._execute(
            f"SELECT 1 FROM {self._table} WHERE operation_id = %s AND step_id = %s "
            "AND kind = %s AND effect LIMIT 1",
            (operation_id, step_id, kind.value),
        )
        return bool(rows)

    def entries(self) -> list[LedgerEntry]:
        """Every row, in commit order of their ids."""
        rows = self._execute(f"SELECT {_COLUMNS} FROM {self._table} ORDER BY id")
        return [_entry(row) for row in rows]

    def effects(self) -> list[tuple[str, str, str, int]]:
        """(operation id, step, kind, how many calls took effect) for every call made."""
        rows = self._execute(
            f"SELECT operation_id, step_id, kind, count(*) FILTER (WHERE effect) "
            f"FROM {self._table} WHERE kind <> 'verify' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]

    def close(self) -> None:
        """Close this thread's connection (a worker's threads end with their process)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _insert(self, entry: LedgerEntry, applies: bool | None, *, dedupe: bool) -> bool:
        values = (
            entry.operation_id,
            entry.step_id,
            entry.kind.value,
            entry.idempotency_key,
            entry.attempt,
            entry.pid,
            entry.time,
            entry.fencing_token,
        )
        # The provider checks fencing tokens, as the README asks of a real one: a call
        # under a lower token than one it already saw for the key (a frozen worker that
        # woke after another took its run over) is refused. The key's lock makes the
        # token check, the dedupe check and the row commit together.
        rows = self._execute(
            f"INSERT INTO {self._table} ({_COLUMNS}) SELECT %s, %s, %s, %s, %s, %s, %s, %s, "
            f"%s AND NOT (%s AND EXISTS (SELECT 1 FROM {self._table} "
            "WHERE idempotency_key = %s AND kind = %s AND effect)) "
            f"AND NOT EXISTS (SELECT 1 FROM {self._table} "
            "WHERE idempotency_key = %s AND fencing_token > %s) RETURNING effect",
            (
                *values,
                applies,
                dedupe,
                entry.idempotency_key,
                entry.kind.value,
                entry.idempotency_key,
                entry.fencing_token,
            ),
            lock=entry.idempotency_key,
        )
        return bool(rows[0][0])

    def _execute(
        self, query: str, params: tuple[Any, ...] = (), *, lock: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``query``; with ``lock``, in a transaction holding that key's advisory lock."""
        import psycopg

        conn: psycopg.Connection[tuple[Any, ...]] | None = getattr(self._local, "conn", None)
        try:
            if conn is None or conn.closed or conn.broken:
                conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
                self._local.conn = conn
            if lock is None:
                cursor = conn.execute(query, params)
                return cursor.fetchall() if cursor.description else []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
                cursor = conn.execute(query, params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            # The provider's own database went away (a killed backend, a restart): this call
            # fails with an unknown outcome; the next one connects again.
            self._local.conn = None
            raise


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(
        operation_id=row[0],
        step_id=row[1],
        kind=LedgerKind(row[2]),
        idempotency_key=row[3],
        attempt=int(row[4]),
        pid=int(row[5]),
        time=float(row[6]),
        fencing_token=None if row[7] is None else int(row[7]),
    )
