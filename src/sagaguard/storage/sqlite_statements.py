"""The SQLite journal's statements, and the row work of each write inside a transaction.

:class:`~sagaguard.storage.sqlite.SQLiteStore` owns connections and transactions; the
functions here run inside a transaction it opened, and turn rows into the records of
:mod:`sagaguard.storage.base` and back. Payloads are JSON text, never pickle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sagaguard.exceptions import RunNotFoundError, StaleOwnerError, StoreError
from sagaguard.storage.base import (
    Claim,
    Event,
    NewAlert,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StepRecord,
    StepStatus,
    Transition,
    dumps,
    loads,
)

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

SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM runs WHERE operation_id = ?"
SELECT_STEPS = f"SELECT {STEP_COLUMNS} FROM steps WHERE operation_id = ? ORDER BY position"
SELECT_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events WHERE operation_id = ? ORDER BY seq"
SELECT_IDENTITY = "SELECT process, input_hash FROM runs WHERE operation_id = ?"
INSERT_RUN = f"INSERT INTO runs ({RUN_COLUMNS}, last_seq) VALUES ({', '.join('?' * 12)}, 1)"
INSERT_STEP = f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ({', '.join('?' * 18)})"
INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
OWNED = "WHERE operation_id = ? AND fencing_token = ? AND owner = ?"
# record(): the fenced write renews the lease and reserves event numbers; then one read of the
# statuses the new events leave. (RETURNING would fold the two but costs more than the read.)
RENEW_FOR_RECORD = (
    f"UPDATE runs SET lease_expires_at = ?, updated_at = ?, last_seq = last_seq + ? {OWNED}"
)
CURRENT = (
    "SELECT r.status, r.reason, r.last_seq, s.step_id, s.status FROM runs AS r "
    "LEFT JOIN steps AS s ON s.operation_id = r.operation_id WHERE r.operation_id = ?"
)
RENEW = f"UPDATE runs SET lease_expires_at = ? {OWNED}"
RELEASE = (
    "UPDATE runs SET owner = NULL, lease_expires_at = NULL, updated_at = ?, "
    f"last_seq = last_seq + 1 {OWNED} RETURNING last_seq"
)
TAKE = (
    "UPDATE runs SET owner = ?, fencing_token = fencing_token + 1, lease_expires_at = ?, "
    "updated_at = ?, last_seq = last_seq + 1 WHERE operation_id = ? "
    "RETURNING fencing_token, last_seq"
)
UPDATE_STEP = (
    "UPDATE steps SET status = ?, attempts = COALESCE(?, attempts), "
    "last_attempt_at = COALESCE(?, last_attempt_at), external_id = COALESCE(?, external_id), "
    "result = COALESCE(?, result), failure_reason = COALESCE(?, failure_reason), "
    "compensation_attempts = COALESCE(?, compensation_attempts), "
    "completed_seq = COALESCE(?, completed_seq), "
    "first_attempt_at = COALESCE(?, first_attempt_at), "
    "unknown_since = COALESCE(?, unknown_since), "
    "verify_attempts = COALESCE(?, verify_attempts), "
    "compensation_first_at = COALESCE(?, compensation_first_at), "
    "kept = COALESCE(?, kept) WHERE operation_id = ? AND step_id = ?"
)
RELEASE_FOR_RECORD = (
    "UPDATE runs SET owner = NULL, lease_expires_at = NULL, updated_at = ?, "
    f"last_seq = last_seq + ? {OWNED}"
)
INSERT_ALERT = (
    "INSERT INTO alerts (alert_id, operation_id, kind, payload, created_at, next_attempt_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
DUE_ALERTS = (
    "SELECT alert_id, operation_id, kind, payload, created_at, attempts, last_error FROM alerts "
    "WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?"
)
APPEND_SEQ = "UPDATE runs SET last_seq = last_seq + 1 WHERE operation_id = ? RETURNING last_seq"
EXPIRED = (
    "SELECT operation_id, owner FROM runs WHERE status IN ('running', 'compensating') "
    "AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?) "
    "ORDER BY created_at, rowid LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Transitions with their payloads already encoded, ready to be written."""

    transitions: tuple[tuple[Transition, str | None, str | None], ...]
    alert_rows: tuple[tuple[Any, ...], ...]


def prepare(claim: Claim, transitions: Sequence[Transition], now: float) -> Prepared:
    """Encode every payload up front: a bad one fails before any write begins."""
    return Prepared(
        transitions=tuple(
            (t, None if t.step is None else encode(t.step.result), encode(t.data))
            for t in transitions
        ),
        alert_rows=tuple(
            alert_row(claim.operation_id, t.alert, now) for t in transitions if t.alert is not None
        ),
    )


def apply_transitions(
    conn: sqlite3.Connection,
    claim: Claim,
    prepared: Prepared,
    *,
    now: float,
    lease: float,
    release: bool,
) -> None:
    """Within the caller's write transaction: the fenced part of ``record``."""
    op, owner = claim.operation_id, claim.owner
    events = len(prepared.transitions) + (1 if release else 0)
    if release:
        fenced = conn.execute(RELEASE_FOR_RECORD, (now, events, op, claim.fencing_token, owner))
    else:
        fenced = conn.execute(
            RENEW_FOR_RECORD, (lease, now, events, op, claim.fencing_token, owner)
        )
    if fenced.rowcount == 0:
        raise_unowned(conn, claim)
    current = conn.execute(CURRENT, (op,)).fetchall()
    run_status, run_reason, last_seq = current[0][:3]
    before = (run_status, run_reason)
    steps = {row[3]: row[4] for row in current if row[3] is not None}
    step_rows = []
    event_rows = []
    seq = last_seq - events
    for transition, result_text, data_text in prepared.transitions:
        seq += 1
        change = transition.step
        from_status = to_status = step_id = None
        if change is not None:
            step_id = change.step_id
            if step_id not in steps:
                raise StoreError(f"run {op!r} has no step {step_id!r}")
            from_status, to_status = steps[step_id], change.status.value
            steps[step_id] = to_status
            step_rows.append(
                (to_status, change.attempts, change.last_attempt_at, change.external_id,
                 result_text, change.failure_reason, change.compensation_attempts,
                 change.completed_seq, change.first_attempt_at, change.unknown_since,
                 change.verify_attempts, change.compensation_first_at,
                 None if change.kept is None else int(change.kept), op, step_id)
            )  # fmt: skip
        if transition.run_status is not None:
            # The event shows the step's move when there is one, else the run's.
            if from_status == to_status:
                from_status, to_status = run_status, transition.run_status.value
            run_status, run_reason = transition.run_status.value, transition.run_reason
        elif transition.run_reason is not None:
            run_reason = transition.run_reason
        event_rows.append(
            (op, seq, now, owner, transition.kind, step_id, from_status, to_status,
             transition.reason, data_text)
        )  # fmt: skip
    if step_rows:
        conn.executemany(UPDATE_STEP, step_rows)
    if (run_status, run_reason) != before:
        conn.execute(
            "UPDATE runs SET status = ?, reason = ? WHERE operation_id = ?",
            (run_status, run_reason, op),
        )
    if release:
        event_rows.append(released_event(claim, seq + 1, now))
    conn.executemany(INSERT_EVENT, event_rows)
    if prepared.alert_rows:
        conn.executemany(INSERT_ALERT, prepared.alert_rows)


def take(
    conn: sqlite3.Connection, op: str, holder: str | None, owner: str, now: float, lease: float
) -> Claim:
    """Give the run to ``owner`` with the next fencing token and a ``claimed`` event."""
    token, seq = conn.execute(TAKE, (owner, lease, now, op)).fetchall()[0]
    reason = None if holder is None or holder == owner else f"lease of {holder} expired"
    data = dumps({"fencing_token": token, "previous_owner": holder})
    conn.execute(INSERT_EVENT, (op, seq, now, owner, "claimed", None, None, None, reason, data))
    return Claim(op, owner, token, lease)


def released_event(claim: Claim, seq: int, now: float) -> tuple[Any, ...]:
    data = dumps({"fencing_token": claim.fencing_token})
    return (claim.operation_id, seq, now, claim.owner, "released", None, None, None, None, data)


def alert_row(op: str, alert: NewAlert, now: float) -> tuple[Any, ...]:
    return (alert.alert_id, op, alert.kind, dumps(alert.payload), now, alert.deliver_after)


def encode(value: object) -> str | None:
    """JSON text of a payload; ``None`` stays SQL NULL (nothing to store, nothing to encode)."""
    return None if value is None else dumps(value)


def raise_unowned(conn: sqlite3.Connection, claim: Claim) -> None:
    """Explain why a fenced write matched no row: the run is gone, or the claim is stale."""
    row = conn.execute(
        "SELECT fencing_token FROM runs WHERE operation_id = ?", (claim.operation_id,)
    ).fetchone()
    if row is None:
        raise RunNotFoundError(f"no run has operation_id {claim.operation_id!r}")
    raise StaleOwnerError(
        f"{claim.owner!r} no longer holds run {claim.operation_id!r} "
        f"(token {claim.fencing_token}, current {row[0]})"
    )


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
