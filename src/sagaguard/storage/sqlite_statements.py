"""The SQLite journal's statements, and the reads and writes of each call inside a transaction.

:class:`~sagaguard.storage.sqlite.SQLiteStore` owns connections and transactions; the
functions here run inside a transaction it opened. They read the rows a call needs, let
:mod:`sagaguard.storage.journal` decide what to write, and write it. A ``record`` touches the
run's row and the rows of the steps it changes, never the others. Payloads are JSON text.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence

from sagaguard.exceptions import RunNotFoundError
from sagaguard.storage import journal
from sagaguard.storage.base import (
    Claim,
    RunSnapshot,
    RunStatus,
    StepRecord,
    StepStatus,
)
from sagaguard.storage.journal import Folded
from sagaguard.storage.rows import (
    ALERT_COLUMNS,
    EVENT_COLUMNS,
    KEPT_UNLESS_GIVEN,
    RUN_COLUMNS,
    STATE_COLUMNS,
    STEP_COLUMNS,
    STEP_STATUS,
    EventRow,
    RunState,
    run_record,
    run_row,
    step_record,
    step_row,
)
from sagaguard.storage.rows import run_state as state
from sagaguard.vocabulary import AlertKind, EventKind

# Rows carry statuses and kinds as StrEnum members and flags as bools. sqlite3 binds only an
# exact int, float or str at once; anything else it first offers to its adapters, and a
# type with none costs two failed attribute lookups (two formatted AttributeErrors) per
# parameter: about half a million instructions per 5-step run. Adapted to the very value
# sqlite3 would bind anyway, so what is stored is unchanged.
for _enum in (RunStatus, StepStatus, EventKind, AlertKind):
    sqlite3.register_adapter(_enum, str)
sqlite3.register_adapter(bool, int)

_STATE_OF_RUN = ", ".join(f"r.{name}" for name in STATE_COLUMNS.split(", "))
SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM runs WHERE operation_id = ?"
SELECT_STEPS = f"SELECT {STEP_COLUMNS} FROM steps WHERE operation_id = ? ORDER BY position"
SELECT_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events WHERE operation_id = ? ORDER BY seq"
SELECT_STATE = f"SELECT {STATE_COLUMNS} FROM runs WHERE operation_id = ?"
INSERT_RUN = f"INSERT INTO runs ({RUN_COLUMNS}, last_seq) VALUES ({', '.join('?' * 12)}, 1)"
INSERT_STEP = f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ({', '.join('?' * 18)})"
INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_ALERT = f"INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
# Status is indexed and changes a few times per run; the lease and counters change on every
# write. Only a write that moves the status sets it, so that renewing rewrites no index page.
WRITE_OWNERSHIP = (
    "UPDATE runs SET owner = ?, lease_expires_at = ?, fencing_token = ?, updated_at = ?, "
    "last_seq = ? WHERE operation_id = ?"
)
WRITE_STATE = (
    "UPDATE runs SET owner = ?, lease_expires_at = ?, fencing_token = ?, updated_at = ?, "
    "last_seq = ?, status = ?, reason = ? WHERE operation_id = ?"
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
COUNT_RUNS = "SELECT status, COUNT(*) FROM runs GROUP BY status"
# Through runs_by_status: only the runs with that status are read.
OLDEST_RUN = (
    f"SELECT {RUN_COLUMNS} FROM runs WHERE status = ? "
    "ORDER BY updated_at, created_at, rowid LIMIT 1"
)
# Through alerts_due, which holds only the undelivered alerts.
ALERT_BACKLOG = (
    "SELECT COUNT(*), COALESCE(SUM(attempts > 0), 0), MIN(created_at) FROM alerts "
    "WHERE delivered_at IS NULL"
)
_EXPIRED = (
    f"SELECT operation_id, {STATE_COLUMNS} FROM runs "
    "WHERE status IN ('running', 'compensating') "
    "AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?) {of} "
    "ORDER BY created_at, rowid LIMIT ?"
)
EXPIRED = _EXPIRED.format(of="")
# The pairs travel as one JSON parameter, so one statement serves any number of them.
EXPIRED_OF = _EXPIRED.format(
    of="AND (process, version) IN (SELECT json_extract(value, '$[0]'), "
    "json_extract(value, '$[1]') FROM json_each(?))"
)


def expired(
    now: float, limit: int, wanted: journal.Processes | None
) -> tuple[str, tuple[object, ...]]:
    """The statement and parameters that list the runs ``claim_expired`` may take."""
    if wanted is None:
        return EXPIRED, (now, limit)
    return EXPIRED_OF, (now, json.dumps(wanted), limit)


def run_state(conn: sqlite3.Connection, operation_id: str) -> RunState | None:
    """The changing part of a run's row, or ``None`` for an unknown run."""
    row = conn.execute(SELECT_STATE, (operation_id,)).fetchone()
    return None if row is None else state(row)


@functools.cache
def _state_and_steps(count: int) -> str:
    marks = ", ".join("?" * count)
    return (
        f"SELECT {_STATE_OF_RUN}, s.step_id, s.status FROM runs AS r LEFT JOIN steps AS s "
        f"ON s.operation_id = r.operation_id AND s.step_id IN ({marks}) "
        "WHERE r.operation_id = ?"
    )


def state_and_steps(
    conn: sqlite3.Connection, operation_id: str, step_ids: tuple[str, ...]
) -> tuple[RunState | None, dict[str, StepStatus]]:
    """The run's state and the status of each of ``step_ids`` it has, in one indexed read.

    Only the rows named are read, so a record costs the same in a run of 5 steps or 500.
    """
    if not step_ids:
        return run_state(conn, operation_id), {}
    rows = conn.execute(_state_and_steps(len(step_ids)), (*step_ids, operation_id)).fetchall()
    if not rows:
        return None, {}
    statuses = {row[7]: STEP_STATUS[row[8]] for row in rows if row[7] is not None}
    return state(rows[0][:7]), statuses


def write(conn: sqlite3.Connection, operation_id: str, folded: Folded) -> None:
    """Write what :func:`journal.fold` decided: step rows, the run's row, events, alerts."""
    if folded.steps:
        conn.executemany(
            UPDATE_STEP, [(*w.values(), operation_id, w.step_id) for w in folded.steps]
        )
    write_state(conn, operation_id, folded.run, moved=folded.run_changed)
    append(conn, folded.events)
    for alert in folded.alerts:
        conn.execute(INSERT_ALERT, alert)


def write_state(
    conn: sqlite3.Connection, operation_id: str, after: RunState, *, moved: bool = False
) -> None:
    """Overwrite the changing part of a run's row; status and reason only when ``moved``."""
    values = (
        after.owner, after.lease_expires_at, after.fencing_token, after.updated_at,
        after.last_seq,
    )  # fmt: skip
    if moved:
        conn.execute(WRITE_STATE, (*values, after.status.value, after.reason, operation_id))
    else:
        conn.execute(WRITE_OWNERSHIP, (*values, operation_id))


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


def append(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    if len(rows) == 1:
        conn.execute(INSERT_EVENT, rows[0])
    else:
        conn.executemany(INSERT_EVENT, rows)


def snapshot(conn: sqlite3.Connection, operation_id: str) -> RunSnapshot:
    row = conn.execute(SELECT_RUN, (operation_id,)).fetchone()
    if row is None:
        raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
    steps = conn.execute(SELECT_STEPS, (operation_id,)).fetchall()
    return RunSnapshot(run=run_record(row), steps=tuple(step_record(s) for s in steps))


_MANY = 500
"""Ids per statement when reading many runs: well below SQLite's limit on parameters."""


def snapshots(conn: sqlite3.Connection, operation_ids: Sequence[str]) -> list[RunSnapshot]:
    """The runs of ``operation_ids`` that exist, with their steps, in the order given."""
    runs: dict[str, RunSnapshot] = {}
    for start in range(0, len(operation_ids), _MANY):
        chunk = operation_ids[start : start + _MANY]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE operation_id IN ({marks})", chunk
        ).fetchall()
        steps: dict[str, list[StepRecord]] = {}
        for row in conn.execute(
            f"SELECT {STEP_COLUMNS} FROM steps WHERE operation_id IN ({marks}) "
            "ORDER BY operation_id, position",
            chunk,
        ):
            record = step_record(row)
            steps.setdefault(record.operation_id, []).append(record)
        for row in rows:
            run = run_record(row)
            runs[run.operation_id] = RunSnapshot(run, tuple(steps.get(run.operation_id, ())))
    return [runs[op] for op in operation_ids if op in runs]


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
