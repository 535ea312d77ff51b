"""The SQLite journal's statements, and the reads and writes of each call inside a transaction.

:class:`~sagaguard.storage.sqlite.SQLiteStore` owns connections and transactions; the
functions here run inside a transaction it opened. They read the rows a call needs, let
:mod:`sagaguard.storage.journal` decide what to write, and write it. A ``record`` touches the
run's row and the rows of the steps it changes, never the others. Payloads are JSON text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sagaguard.exceptions import RunNotFoundError
from sagaguard.storage import journal
from sagaguard.storage.base import (
    Claim,
    Event,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StepRecord,
    StepStatus,
    loads,
)
from sagaguard.storage.journal import Folded
from sagaguard.storage.rows import KEPT_UNLESS_GIVEN, EventRow, RunState, encode

RUN_COLUMNS = (
    "operation_id, process, version, input, input_hash, status, owner, lease_expires_at, "
    "fencing_token, created_at, updated_at, reason"
)
STEP_COLUMNS = (
    "operation_id, step_id, position, status, attempts, last_attempt_at, idempotency_key, "
    "external_id, result, failure_reason, compensation_attempts, completed_seq, "
    "external_id_field, first_attempt_at, unknown_since, verify_attempts, "
    "compensation_first_at, kept"
)
EVENT_COLUMNS = "operation_id, seq, at, actor, kind, step_id, from_status, to_status, reason, data"
STATE_COLUMNS = "status, reason, owner, lease_expires_at, fencing_token, updated_at, last_seq"
ALERT_COLUMNS = "alert_id, operation_id, kind, payload, created_at, next_attempt_at"

_STATE_OF_RUN = ", ".join(f"r.{name}" for name in STATE_COLUMNS.split(", "))
SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM runs WHERE operation_id = ?"
SELECT_STEPS = f"SELECT {STEP_COLUMNS} FROM steps WHERE operation_id = ? ORDER BY position"
SELECT_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events WHERE operation_id = ? ORDER BY seq"
SELECT_STATE = f"SELECT {STATE_COLUMNS} FROM runs WHERE operation_id = ?"
INSERT_RUN = f"INSERT INTO runs ({RUN_COLUMNS}, last_seq) VALUES ({', '.join('?' * 12)}, 1)"
INSERT_STEP = f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ({', '.join('?' * 18)})"
INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_ALERT = f"INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
WRITE_STATE = (
    "UPDATE runs SET status = ?, reason = ?, owner = ?, lease_expires_at = ?, "
    "fencing_token = ?, updated_at = ?, last_seq = ? WHERE operation_id = ?"
)
OWNED = "WHERE operation_id = ? AND fencing_token = ? AND owner = ?"
RENEW = f"UPDATE runs SET lease_expires_at = ? {OWNED}"
# "A None field keeps the stored value": journal.KEPT_UNLESS_GIVEN, as COALESCE.
UPDATE_STEP = (
    "UPDATE steps SET status = ?, "
    + "".join(f"{name} = COALESCE(?, {name}), " for name in KEPT_UNLESS_GIVEN)
    + "result = COALESCE(?, result) WHERE operation_id = ? AND step_id = ?"
)
DUE_ALERTS = (
    "SELECT alert_id, operation_id, kind, payload, created_at, attempts, last_error FROM alerts "
    "WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?"
)
APPEND_SEQ = "UPDATE runs SET last_seq = last_seq + 1 WHERE operation_id = ? RETURNING last_seq"
EXPIRED = (
    f"SELECT operation_id, {STATE_COLUMNS} FROM runs "
    "WHERE status IN ('running', 'compensating') "
    "AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?) "
    "ORDER BY created_at, rowid LIMIT ?"
)


def run_state(conn: sqlite3.Connection, operation_id: str) -> RunState | None:
    """The changing part of a run's row, or ``None`` for an unknown run."""
    row = conn.execute(SELECT_STATE, (operation_id,)).fetchone()
    return None if row is None else state(row)


def state(row: Any) -> RunState:
    """A row of ``STATE_COLUMNS`` as a :class:`RunState`."""
    status, reason, owner, lease, token, updated_at, last_seq = row
    return RunState(RunStatus(status), reason, owner, lease, token, updated_at, last_seq)


def state_and_steps(
    conn: sqlite3.Connection, operation_id: str, step_ids: tuple[str, ...]
) -> tuple[RunState | None, dict[str, StepStatus]]:
    """The run's state and the status of each of ``step_ids`` it has, in one indexed read.

    Only the rows named are read, so a record costs the same in a run of 5 steps or 500.
    """
    if not step_ids:
        return run_state(conn, operation_id), {}
    marks = ", ".join("?" * len(step_ids))
    rows = conn.execute(
        f"SELECT {_STATE_OF_RUN}, s.step_id, s.status FROM runs AS r LEFT JOIN steps AS s "
        f"ON s.operation_id = r.operation_id AND s.step_id IN ({marks}) "
        "WHERE r.operation_id = ?",
        (*step_ids, operation_id),
    ).fetchall()
    if not rows:
        return None, {}
    statuses = {row[7]: StepStatus(row[8]) for row in rows if row[7] is not None}
    return state(rows[0][:7]), statuses


def write(conn: sqlite3.Connection, operation_id: str, folded: Folded) -> None:
    """Write what :func:`journal.fold` decided: step rows, the run's row, events, alerts."""
    for w in folded.steps:
        conn.execute(UPDATE_STEP, (*w.values(), operation_id, w.step_id))
    write_state(conn, operation_id, folded.run)
    append(conn, folded.events)
    for alert in folded.alerts:
        conn.execute(INSERT_ALERT, alert)


def write_state(conn: sqlite3.Connection, operation_id: str, after: RunState) -> None:
    """Overwrite the changing part of a run's row (the caller holds the write lock)."""
    conn.execute(
        WRITE_STATE,
        (
            after.status.value,
            after.reason,
            after.owner,
            after.lease_expires_at,
            after.fencing_token,
            after.updated_at,
            after.last_seq,
            operation_id,
        ),
    )


def take(
    conn: sqlite3.Connection,
    operation_id: str,
    before: RunState,
    *,
    owner: str,
    now: float,
    lease_s: float,
) -> Claim:
    """Give the run to ``owner``: the journal's takeover, written."""
    after, event, claim = journal.take(operation_id, before, owner=owner, now=now, lease_s=lease_s)
    write_state(conn, operation_id, after)
    conn.execute(INSERT_EVENT, event)
    return claim


def insert_run(conn: sqlite3.Connection, snapshot: RunSnapshot, input_text: str) -> None:
    """Insert a new run's row and its steps' rows (as :func:`journal.first_rows` built them)."""
    conn.execute(INSERT_RUN, run_row(snapshot.run, input_text))
    conn.executemany(INSERT_STEP, [step_row(record) for record in snapshot.steps])


def run_row(run: RunRecord, input_text: str) -> tuple[Any, ...]:
    return (
        run.operation_id, run.process, run.version, input_text, run.input_hash,
        run.status.value, run.owner, run.lease_expires_at, run.fencing_token, run.created_at,
        run.updated_at, run.reason,
    )  # fmt: skip


def step_row(s: StepRecord) -> tuple[Any, ...]:
    return (
        s.operation_id, s.step_id, s.position, s.status.value, s.attempts, s.last_attempt_at,
        s.idempotency_key, s.external_id, encode(s.result), s.failure_reason,
        s.compensation_attempts, s.completed_seq, s.external_id_field, s.first_attempt_at,
        s.unknown_since, s.verify_attempts, s.compensation_first_at, s.kept,
    )  # fmt: skip


def append(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    if len(rows) == 1:
        conn.execute(INSERT_EVENT, rows[0])
    else:
        conn.executemany(INSERT_EVENT, rows)


def raise_unowned(conn: sqlite3.Connection, claim: Claim) -> None:
    """Explain why a fenced write matched no row: the run is gone, or the claim is stale."""
    journal.check_current(claim, run_state(conn, claim.operation_id))


def snapshot(conn: sqlite3.Connection, operation_id: str) -> RunSnapshot:
    row = conn.execute(SELECT_RUN, (operation_id,)).fetchone()
    if row is None:
        raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
    steps = conn.execute(SELECT_STEPS, (operation_id,)).fetchall()
    return RunSnapshot(run=run_record(row), steps=tuple(step_record(s) for s in steps))


def run_record(row: Any) -> RunRecord:
    """A ``runs`` row (columns as in ``RUN_COLUMNS``) as a record."""
    values = list(row)
    values[3], values[5] = loads(values[3]), RunStatus(values[5])
    return RunRecord(*values)


def step_record(row: Any) -> StepRecord:
    """A ``steps`` row (columns as in ``STEP_COLUMNS``) as a record."""
    values = list(row)
    values[3], values[8] = StepStatus(values[3]), loads(values[8])
    values[17] = bool(values[17])
    return StepRecord(*values)


def event(row: Any) -> Event:
    """An ``events`` row (columns as in ``EVENT_COLUMNS``) as a record."""
    values = list(row)
    values[9] = loads(values[9])
    return Event(*values)


def prune_batch(
    conn: sqlite3.Connection, older_than: float, statuses: tuple[RunStatus, ...], *, limit: int
) -> int:
    """Remove up to ``limit`` prunable runs: the run's row first, so its events may go."""
    marks = ", ".join("?" * len(statuses))
    rows = conn.execute(
        f"SELECT operation_id FROM runs WHERE status IN ({marks}) AND updated_at < ? "
        "AND NOT EXISTS (SELECT 1 FROM alerts AS a WHERE a.operation_id = runs.operation_id "
        "AND a.delivered_at IS NULL) ORDER BY updated_at LIMIT ?",
        (*(status.value for status in statuses), older_than, limit),
    ).fetchall()
    for table in ("runs", "steps", "events", "alerts"):
        conn.executemany(f"DELETE FROM {table} WHERE operation_id = ?", rows)
    return len(rows)
