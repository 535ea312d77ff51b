"""The PostgreSQL journal's statements, for one schema, and the row work inside a transaction.

:class:`~sagaguard.storage.postgres.PostgresStore` owns the pool and the transactions; the
functions here read the rows a call needs, let :mod:`sagaguard.storage.journal` decide, and
write what it decided. Every statement that judges a lease reads the time through
``NOW``: the caller's ``now`` when one is given (a store on the caller's clock), else the
server's ``clock_timestamp()`` (the default), so the same SQL serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sagaguard.exceptions import RunNotFoundError
from sagaguard.storage import journal
from sagaguard.storage.base import (
    Claim,
    RunSnapshot,
    StepRecord,
)
from sagaguard.storage.journal import Folded
from sagaguard.storage.postgres_transaction import Transaction
from sagaguard.storage.rows import (
    ALERT_COLUMNS,
    EVENT_COLUMNS,
    KEPT_UNLESS_GIVEN,
    RUN_COLUMNS,
    STATE_COLUMNS,
    STEP_COLUMNS,
    AlertRow,
    EventRow,
    RunState,
    run_record,
    step_record,
    step_row,
)

Conn = Transaction
"""What the row work runs on: one transaction (reads at once, writes with the commit)."""

NOW = "COALESCE(%s::float8, extract(epoch FROM clock_timestamp())::float8)"
ACTIVE = "('running', 'compensating')"


class Statements:
    """Every statement of the store, with the schema's name written in."""

    def __init__(self, quoted_schema: str) -> None:
        q = quoted_schema
        self.select_run = f"SELECT {RUN_COLUMNS}, last_seq FROM {q}.runs WHERE operation_id = %s"
        self.held_as_known = f"SELECT {q}.held_as_known(%s, %s, %s, %s, %s)"
        self.created_here = f"SELECT {q}.created_here(%s, %s, %s)"
        self.select_steps = (
            f"SELECT {STEP_COLUMNS} FROM {q}.steps WHERE operation_id = %s ORDER BY position"
        )
        self.select_events = (
            f"SELECT {EVENT_COLUMNS} FROM {q}.events WHERE operation_id = %s ORDER BY seq"
        )
        self.now_and_run = (
            f"SELECT {NOW}, {RUN_COLUMNS}, create_token FROM (SELECT 1) AS one "
            f"LEFT JOIN {q}.runs ON operation_id = %s"
        )
        self.lock_state = (
            f"SELECT {STATE_COLUMNS}, {NOW} FROM {q}.runs WHERE operation_id = %s FOR UPDATE"
        )
        self.lock_state_and_steps = (
            f"SELECT {STATE_COLUMNS}, {NOW}, (SELECT json_agg(json_build_array(s.step_id, "
            f"s.status)) FROM {q}.steps AS s WHERE s.operation_id = r.operation_id "
            f"AND s.step_id = ANY(%s)), r.record_token FROM {q}.runs AS r "
            "WHERE r.operation_id = %s FOR UPDATE"
        )
        self.insert_run = (
            f"INSERT INTO {q}.runs ({RUN_COLUMNS}, last_seq) VALUES "
            f"({', '.join(['%s'] * 12)}, 1) ON CONFLICT (operation_id) DO NOTHING "
            "RETURNING created_order"
        )
        # create_run's insert: the run with its creator's token (see PostgresStore.create_run).
        self.create_run = (
            f"INSERT INTO {q}.runs ({RUN_COLUMNS}, create_token, last_seq) VALUES "
            f"({', '.join(['%s'] * 13)}, 1) ON CONFLICT (operation_id) DO NOTHING "
            "RETURNING created_order"
        )
        self.insert_step = (
            f"INSERT INTO {q}.steps ({STEP_COLUMNS}) VALUES ({', '.join(['%s'] * 18)})"
        )
        self.insert_event = (
            f"INSERT INTO {q}.events ({EVENT_COLUMNS}) VALUES ({', '.join(['%s'] * 10)})"
        )
        self.insert_alert = (
            f"INSERT INTO {q}.alerts ({ALERT_COLUMNS}) VALUES ({', '.join(['%s'] * 6)})"
        )
        ownership = (
            f"UPDATE {q}.runs SET owner = %s, lease_expires_at = %s, fencing_token = %s, "
            "updated_at = %s, last_seq = %s, record_token = COALESCE(%s, record_token)"
        )
        self.write_ownership = f"{ownership} WHERE operation_id = %s"
        self.write_state = f"{ownership}, status = %s, reason = %s WHERE operation_id = %s"
        self.update_step = (
            f"UPDATE {q}.steps SET status = %s, "
            + "".join(f"{name} = COALESCE(%s, {name}), " for name in KEPT_UNLESS_GIVEN)
            + "result = COALESCE(%s, result) WHERE operation_id = %s AND step_id = %s"
        )
        self.renew = (
            f"UPDATE {q}.runs SET lease_expires_at = %s WHERE operation_id = %s "
            "AND fencing_token = %s AND owner = %s"
        )
        expired = (
            f"SELECT operation_id, {STATE_COLUMNS}, now FROM {q}.runs, (SELECT {NOW} AS now) AS t "
            f"WHERE status IN {ACTIVE} AND (owner IS NULL OR lease_expires_at IS NULL "
            "OR lease_expires_at <= t.now) {of} ORDER BY created_at, created_order LIMIT %s "
            f"FOR UPDATE OF runs SKIP LOCKED"
        )
        self.expired_any = expired.format(of="")
        self.expired_of = expired.format(
            of="AND (process, version) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        )
        self.due_alerts = (
            f"WITH t AS (SELECT {NOW} AS now), due AS (SELECT a.alert_id, a.next_attempt_at "
            f"FROM {q}.alerts AS a, t WHERE a.delivered_at IS NULL AND a.next_attempt_at <= t.now "
            "ORDER BY a.next_attempt_at, a.alert_id LIMIT %s FOR UPDATE OF a SKIP LOCKED) "
            f"UPDATE {q}.alerts AS a SET next_attempt_at = t.now + %s FROM due, t "
            "WHERE a.alert_id = due.alert_id RETURNING a.alert_id, a.operation_id, a.kind, "
            "a.payload, a.created_at, a.attempts, a.last_error, due.next_attempt_at"
        )
        self.lock_alert = (
            f"SELECT operation_id, kind, attempts, {NOW} FROM {q}.alerts "
            "WHERE alert_id = %s AND delivered_at IS NULL FOR UPDATE"
        )
        self.delivered = f"UPDATE {q}.alerts SET delivered_at = %s WHERE alert_id = %s"
        self.failed = (
            f"UPDATE {q}.alerts SET attempts = attempts + 1, last_error = %s, "
            "next_attempt_at = %s WHERE alert_id = %s"
        )
        self.append_seq = (
            f"UPDATE {q}.runs SET last_seq = last_seq + 1 WHERE operation_id = %s "
            "RETURNING last_seq"
        )
        self.list_all = (
            f"SELECT {RUN_COLUMNS} FROM {q}.runs "
            "ORDER BY created_at DESC, created_order DESC LIMIT %s"
        )
        self.list_status = (
            f"SELECT {RUN_COLUMNS} FROM {q}.runs WHERE status = %s "
            "ORDER BY created_at DESC, created_order DESC LIMIT %s"
        )
        self.select_runs = f"SELECT {RUN_COLUMNS} FROM {q}.runs WHERE operation_id = ANY(%s)"
        self.select_steps_of = (
            f"SELECT {STEP_COLUMNS} FROM {q}.steps WHERE operation_id = ANY(%s) "
            "ORDER BY operation_id, position"
        )
        self.count_runs = f"SELECT status, count(*) FROM {q}.runs GROUP BY status"
        # Through runs_by_status: only the runs with that status are read.
        self.oldest_run = (
            f"SELECT {RUN_COLUMNS} FROM {q}.runs WHERE status = %s "
            "ORDER BY updated_at, created_at, created_order LIMIT 1"
        )
        # Through alerts_due, which holds only the undelivered alerts.
        self.alert_backlog = (
            "SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(created_at) "
            f"FROM {q}.alerts WHERE delivered_at IS NULL"
        )
        self.prune = (
            f"DELETE FROM {q}.runs WHERE operation_id IN (SELECT operation_id FROM {q}.runs AS r "
            "WHERE status = ANY(%s) AND updated_at < %s AND NOT EXISTS (SELECT 1 FROM "
            f"{q}.alerts AS a WHERE a.operation_id = r.operation_id AND a.delivered_at IS NULL) "
            "LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING operation_id"
        )
        self.prune_rows = tuple(
            f"DELETE FROM {q}.{table} WHERE operation_id = ANY(%s)"
            for table in ("steps", "events", "alerts")
        )
        named = [(f"sg_{attr}", getattr(self, attr)) for attr in _PREPARED]
        named += [
            (f"sg_{attr}_{count}", rows_of(getattr(self, attr), count))
            for attr, most in _PREPARED_ROWS
            for count in range(1, most + 1)
        ]
        self.prepared = {
            text: (name, f"EXECUTE {name}({', '.join(['%s'] * text.count('%s'))})")
            for name, text in named
        }
        """By statement text: the name it is prepared under in every session of the pool,
        and the EXECUTE that runs it with the same parameters."""
        assert all(text.count("%s") for text in self.prepared), "EXECUTE x() is no statement"

    def preparations(self) -> list[str]:
        """The PREPARE of every statement in :attr:`prepared`, for a new session."""
        out = []
        for text, (name, _) in self.prepared.items():
            numbered = text
            for n in range(1, text.count("%s") + 1):
                numbered = numbered.replace("%s", f"${n}", 1)
            out.append(f"PREPARE {name} AS {numbered}")
        return out


_PREPARED = (
    "select_run", "select_steps", "now_and_run", "lock_state", "lock_state_and_steps",
    "create_run", "write_ownership", "write_state", "update_step", "renew", "expired_any",
    "expired_of",
)  # fmt: skip
"""The statements of a run's hot path: planned once per session, not at every message."""
_PREPARED_ROWS = (("insert_event", 4), ("insert_alert", 2))
"""The INSERTs of a run's hot path prepared for 1 to this many rows (a record appends one
to three events and a release one more; a transition raises at most one alert). A
multi-row INSERT of more rows is planned at every message."""


CLAIM_PLAN = ("SET LOCAL enable_sort = off", "SET LOCAL enable_bitmapscan = off")
"""How a claim reads the queue: the oldest claimable runs off ``runs_active``, in its order,
whatever the statistics say. Without them (a journal not analyzed yet: autovacuum's first
pass comes within a minute) the planner sorted every waiting run at every claim: 4.2 ms
at 3,000 waiting, against 0.2 ms read off the index."""


def lock_expired(
    conn: Conn, sql: Statements, now: float | None, limit: int, wanted: journal.Processes | None
) -> list[tuple[Any, ...]]:
    """Lock and read up to ``limit`` runs ``claim_expired`` may take, oldest first."""
    for setting in CLAIM_PLAN:
        conn.defer(setting)
    query, params = expired(sql, now, limit, wanted)
    return conn.execute(query, params).fetchall()


def expired(
    sql: Statements, now: float | None, limit: int, wanted: journal.Processes | None
) -> tuple[str, tuple[object, ...]]:
    """The statement and parameters that lock the runs ``claim_expired`` may take."""
    if wanted is None:
        return sql.expired_any, (now, limit)
    names, versions = [p for p, _ in wanted], [v for _, v in wanted]
    return sql.expired_of, (now, names, versions, limit)


def write(
    conn: Conn, sql: Statements, operation_id: str, folded: Folded, *, token: str | None = None
) -> None:
    """Write what :func:`journal.fold` decided (the run's row is locked by the caller),
    marking the row with ``token`` when given."""
    for w in folded.steps:
        conn.defer(sql.update_step, (*w.values(), operation_id, w.step_id))
    write_state(conn, sql, operation_id, folded.run, moved=folded.run_changed, token=token)
    append(conn, sql, folded.events)
    if folded.alerts:
        insert_alerts(conn, sql, folded.alerts)


def write_state(
    conn: Conn,
    sql: Statements,
    operation_id: str,
    after: RunState,
    *,
    moved: bool = False,
    token: str | None = None,
) -> None:
    """Overwrite the changing part of a run's row; status and reason only when ``moved``.

    ``token`` (a ``record`` call's) replaces the row's record token; without it the token
    is kept, so no other write can make a record's rerun take its own rows for another's.
    """
    values = (
        after.owner, after.lease_expires_at, after.fencing_token, after.updated_at,
        after.last_seq, token,
    )  # fmt: skip
    if moved:
        conn.defer(sql.write_state, (*values, after.status.value, after.reason, operation_id))
    else:
        conn.defer(sql.write_ownership, (*values, operation_id))


def append(conn: Conn, sql: Statements, rows: Sequence[EventRow]) -> None:
    insert_rows(conn, sql.insert_event, rows)


def insert_alerts(conn: Conn, sql: Statements, rows: Sequence[AlertRow]) -> None:
    insert_rows(conn, sql.insert_alert, rows)


def insert_rows(conn: Conn, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """Every row in one multi-row INSERT (``statement`` inserts one).

    Not ``executemany``: psycopg runs it in pipeline mode, where a client that freezes
    mid-batch leaves its session "active", so the server never times it out and the run's
    row lock is held for as long as the freeze lasts.
    """
    if rows:
        conn.defer(rows_of(statement, len(rows)), [value for row in rows for value in row])


def rows_of(statement: str, count: int) -> str:
    """``statement``, an INSERT of one row, made to insert ``count`` rows."""
    head, values, group = statement.rpartition(" VALUES ")
    assert values, "an INSERT ... VALUES (...) statement"
    return f"{head} VALUES {', '.join([group] * count)}"


def take(
    conn: Conn,
    sql: Statements,
    operation_id: str,
    before: RunState,
    *,
    owner: str,
    now: float,
    lease_s: float,
) -> tuple[Claim, RunState]:
    """Write a claim of the run (its row locked): the claim, and the run's state after it."""
    after, event, claim = journal.take(operation_id, before, owner=owner, now=now, lease_s=lease_s)
    write_state(conn, sql, operation_id, after)
    append(conn, sql, [event])
    return claim, after


def insert_steps(conn: Conn, sql: Statements, snapshot: RunSnapshot) -> None:
    insert_rows(conn, sql.insert_step, [step_row(record) for record in snapshot.steps])


def snapshot(conn: Conn, sql: Statements, operation_id: str, *, last: bool = False) -> RunSnapshot:
    """The run and its steps, read in one message (and the transaction ended, if ``last``)."""
    return snapshot_and_seq(conn, sql, operation_id, last=last)[0]


def snapshot_and_seq(
    conn: Conn, sql: Statements, operation_id: str, *, last: bool = False
) -> tuple[RunSnapshot, int]:
    """:func:`snapshot`, with the seq of the run's latest event."""
    runs, steps = conn.fetch_sets(
        [(sql.select_run, (operation_id,)), (sql.select_steps, (operation_id,))], commit=last
    )
    if not runs:
        raise RunNotFoundError(f"no run has operation_id {operation_id!r}")
    run = run_record(runs[0][:-1])
    return RunSnapshot(run=run, steps=tuple(step_record(s) for s in steps)), int(runs[0][-1])


def snapshots(
    conn: Conn, sql: Statements, operation_ids: Sequence[str], *, last: bool = False
) -> list[RunSnapshot]:
    """The runs of ``operation_ids`` that exist, with their steps, in the order given."""
    ids = list(operation_ids)
    run_rows, step_rows = conn.fetch_sets(
        [(sql.select_runs, (ids,)), (sql.select_steps_of, (ids,))], commit=last
    )
    steps: dict[str, list[StepRecord]] = {}
    for row in step_rows:
        record = step_record(row)
        steps.setdefault(record.operation_id, []).append(record)
    runs = {}
    for row in run_rows:
        run = run_record(row)
        runs[run.operation_id] = RunSnapshot(run, tuple(steps.get(run.operation_id, ())))
    return [runs[op] for op in ids if op in runs]
