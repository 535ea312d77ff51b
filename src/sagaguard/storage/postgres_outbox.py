"""The PostgreSQL journal's alert outbox: alerts claimed under concurrency, then settled.

Due alerts are taken with ``FOR UPDATE SKIP LOCKED`` and hidden for a lease, so workers on
many machines never deliver one alert at once; a settlement counts a failed attempt or marks
the alert delivered, and appends its event to the run's trail (delivery always, a failure
only the first time).
"""

from __future__ import annotations

from typing import Any

from sagaguard.storage import postgres_statements as sql
from sagaguard.storage.base import NOTIFIER_ACTOR, OutboxAlert, alert_settled_event
from sagaguard.storage.payloads import dumps
from sagaguard.storage.postgres_connections import PostgresConnections
from sagaguard.storage.rows import EventRow, outbox_alert

__all__ = ["PostgresOutbox"]


class PostgresOutbox(PostgresConnections):
    """The outbox half of :class:`~sagaguard.storage.postgres.PostgresStore`."""

    def claim_due_alerts(self, *, now: float, lease_s: float, limit: int = 10) -> list[OutboxAlert]:
        """Take up to ``limit`` due alerts (``SKIP LOCKED``), hiding them for ``lease_s``."""

        def take(conn: sql.Conn) -> list[tuple[Any, ...]]:
            params = (self._now(now), max(limit, 0), lease_s)
            return conn.execute(self._sql.due_alerts, params).fetchall()

        rows = sorted(self._run(take, write=True), key=lambda row: (row[7], row[0]))
        return [outbox_alert(row) for row in rows]

    def settle_alert(
        self, alert_id: str, *, now: float, error: str | None = None, retry_at: float = 0.0
    ) -> None:
        """Mark an alert delivered, or count a failed attempt and set when to try again."""

        def settle(conn: sql.Conn) -> None:
            row = conn.execute(self._sql.lock_alert, (self._now(now), alert_id)).fetchone()
            if row is None:
                return
            op, kind, failed, at = row[0], row[1], row[2], float(row[3])
            self._claimed.drop(op)  # its event moves the run's last seq
            if error is None:
                conn.defer(self._sql.delivered, (at, alert_id))
            else:
                conn.defer(self._sql.failed, (error, retry_at, alert_id))
            event = alert_settled_event(kind, alert_id, failed_before=failed, error=error)
            if event is None:
                return
            seq_row = conn.execute(self._sql.append_seq, (op,)).fetchone()
            if seq_row is not None:
                event_kind, reason, data = event
                row_out = EventRow(
                    op, seq_row[0], at, NOTIFIER_ACTOR, event_kind, reason=reason, data=dumps(data)
                )
                sql.append(conn, self._sql, [row_out])

        self._run(settle, write=True)
