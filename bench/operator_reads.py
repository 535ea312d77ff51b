"""What the operator's reads cost as the journal grows: ms per call at 10,000 and 100,000 runs.

A journal of N finished runs (3 steps each, one run in 20 completed without its best-effort
step, the rest completed or compensated) plus 100 runs waiting for review (each with its
alert, half of them delivered) is written in bulk with the journal's own row builders, then
each read of :mod:`sagaguard.operator` is timed, the median of several calls:

- ``journal_counts``: runs per status, the run waiting longest, the alert backlog;
- ``list_runs(limit=50, status=completed)``: a page of completed runs with their oddities
  (``list_runs`` then ``load_many``: "operator page"), beside the store's bare
  ``list_runs`` of the same page ("store page");
- ``review_queue(limit=100)``: the whole queue, with each run's trail;
- ``run_detail``: one run with its steps and events.

SQLite runs at ``synchronous=OFF`` (only reads are timed); ``--pg URL`` adds PostgreSQL, in
a fresh schema (``--pg-schema``) dropped after each size. Usage: ``python
bench/operator_reads.py [--sizes 10000,100000] [--calls 15] [--dir DIR]
[--pg postgresql://postgres@127.0.0.1:5432/test]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sagaguard import operator
from sagaguard.storage import JournalStore, NewRun, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.base import NewAlert, RunSnapshot
from sagaguard.storage.journal import first_rows
from sagaguard.storage.rows import EventRow, run_row, step_row
from sagaguard.storage.sqlite import SQLiteStore

STEPS = ("charge", "ship", "send_email")
WAITING = 100
T0 = 1_700_000_000.0


def finished(n: int) -> tuple[RunSnapshot, list[EventRow]]:
    """Run number ``n`` as the journal holds it once finished, with its two events."""
    new = NewRun(f"run-{n:08d}", "checkout", "1", {"order": n}, STEPS)
    first = first_rows(new, owner=None, now=T0 + n, lease_s=0)
    status, left = RunStatus.COMPLETED, StepStatus.COMPLETED
    if n % 5 == 4:
        status, left = RunStatus.COMPENSATED, StepStatus.COMPENSATED
    steps = tuple(
        dataclasses.replace(
            step,
            status=StepStatus.FAILED if n % 20 == 0 and step.step_id == "send_email" else left,
            attempts=1,
            result={"id": f"{step.step_id}-{n}"},
        )
        for step in first.steps
    )
    run = dataclasses.replace(first.run, status=status, updated_at=T0 + n + 1)
    events = [
        EventRow(run.operation_id, 1, T0 + n, "bench", "run_created", to_status="running"),
        EventRow(run.operation_id, 2, T0 + n + 1, "bench", f"run_{status.value}"),
    ]
    return RunSnapshot(run, steps), events


def fill_sqlite(store: SQLiteStore, count: int) -> None:
    """Write ``count`` finished runs in one transaction, through the store's own statements."""
    from sagaguard.storage import sqlite_statements as sql

    conn = store._conn()
    conn.execute("BEGIN")
    for start in range(0, count, 5_000):
        built = [finished(n) for n in range(start, min(start + 5_000, count))]
        conn.executemany(sql.INSERT_RUN, [run_row(s.run, '{"order": 1}') for s, _ in built])
        conn.executemany(sql.INSERT_STEP, [step_row(step) for s, _ in built for step in s.steps])
        conn.executemany(sql.INSERT_EVENT, [event for _, events in built for event in events])
    conn.execute("UPDATE runs SET last_seq = 2")
    conn.execute("COMMIT")


def fill_postgres(store: Any, count: int) -> None:
    """Write ``count`` finished runs through the store's own statements, in one transaction."""

    def write(tx: Any) -> None:
        tx.execute("SELECT 1")  # sends BEGIN: the bulk inserts below join the transaction
        cursor = tx.connection.cursor()
        for start in range(0, count, 5_000):
            built = [finished(n) for n in range(start, min(start + 5_000, count))]
            runs = [run_row(s.run, '{"order": 1}') for s, _ in built]
            cursor.executemany(store._sql.insert_run, runs)
            steps = [step_row(step) for s, _ in built for step in s.steps]
            cursor.executemany(store._sql.insert_step, steps)
            events = [event for _, events in built for event in events]
            cursor.executemany(store._sql.insert_event, events)
        cursor.execute(f"UPDATE {store._quoted}.runs SET last_seq = 2")
        cursor.execute(f"ANALYZE {store._quoted}.runs")

    store._run(write, write=True)


def stop_for_review(store: JournalStore, count: int) -> None:
    """``count`` runs waiting for a person, each with its alert; half the alerts delivered."""
    for n in range(count):
        at = T0 + 10_000_000 + n
        created = store.create_run(
            NewRun(f"wait-{n:04d}", "checkout", "1", {"order": n}, STEPS),
            owner="bench",
            now=at,
            lease_s=30,
        )
        assert created.claim is not None
        alert = NewAlert(f"alert-{n}", "needs_manual_review", {"route": "finance"}, at)
        move = Transition(
            "needs_manual_review",
            step=StepChange("charge", StepStatus.NEEDS_MANUAL_REVIEW, failure_reason="timeout"),
            run_status=RunStatus.NEEDS_MANUAL_REVIEW,
            data={"route": "finance", "alert_id": alert.alert_id},
            alert=alert,
        )
        store.record(created.claim, [move], now=at, lease_s=30, release=True)
        if n % 2:
            store.settle_alert(alert.alert_id, now=at + 1)


def median_ms(call: Callable[[], object], calls: int) -> float:
    """The median wall time of ``call`` in ms, after one unmeasured call."""
    call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def figures(store: JournalStore, count: int, calls: int) -> dict[str, float]:
    """The ms per call of each read, checked to read what was written."""
    counts = operator.journal_counts(store)
    assert counts.review_queue == WAITING, counts
    assert sum(n for _, n in counts.runs_by_status) == count + WAITING, counts
    page = operator.list_runs(store, limit=50, status=RunStatus.COMPLETED)
    assert any(row.oddities for row in page), "the page should hold best-effort oddities"
    assert len(operator.review_queue(store, limit=WAITING)) == WAITING
    done = RunStatus.COMPLETED
    return {
        "journal_counts": median_ms(lambda: operator.journal_counts(store), calls),
        "store page": median_ms(lambda: store.list_runs(limit=50, status=done), calls),
        "operator page": median_ms(lambda: operator.list_runs(store, limit=50, status=done), calls),
        "review_queue": median_ms(lambda: operator.review_queue(store, limit=WAITING), calls),
        "run_detail": median_ms(lambda: operator.run_detail(store, "run-00000020"), calls),
    }


@contextmanager
def sqlite_journal(directory: str, count: int) -> Iterator[JournalStore]:
    path = os.path.join(directory, f"operator-{count}.sqlite3")
    store = SQLiteStore(path=path, synchronous="OFF")
    try:
        fill_sqlite(store, count)
        stop_for_review(store, WAITING)
        yield store
    finally:
        store.close()


@contextmanager
def postgres_journal(url: str, count: int, schema: str) -> Iterator[JournalStore]:
    import psycopg

    from sagaguard.storage.postgres import PostgresStore

    separator = "&" if "?" in url else "?"
    store = PostgresStore.from_url(f"{url}{separator}schema={schema}&clock=caller")
    try:
        fill_postgres(store, count)
        stop_for_review(store, WAITING)
        yield store
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="finished runs, comma-separated")
    parser.add_argument("--calls", type=int, default=15, help="timed calls per read (median)")
    parser.add_argument("--dir", default=None, help="directory for the SQLite journals")
    parser.add_argument("--pg", default=None, metavar="URL", help="also measure PostgreSQL")
    parser.add_argument(
        "--pg-schema",
        default=f"sg_bench_operator_{uuid.uuid4().hex[:12]}",
        help="the schema to create (and drop) for each PostgreSQL journal",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="sagaguard-bench-", dir=args.dir)
    journals: list[tuple[str, Callable[[int], Any]]] = [
        ("sqlite", lambda count: sqlite_journal(directory, count))
    ]
    if args.pg:
        journals.append(
            ("postgresql", lambda count: postgres_journal(args.pg, count, args.pg_schema))
        )
    try:
        print(f"ms per call, median of {args.calls}; {WAITING} runs wait for review")
        print(f"{'store':<11}{'runs':>8}" + "".join(f"{name:>15}" for name in _COLUMNS))
        for name, opened in journals:
            for count in sizes:
                with opened(count) as store:
                    measured = figures(store, count, args.calls)
                line = "".join(f"{measured[column]:>15.2f}" for column in _COLUMNS)
                print(f"{name:<11}{count:>8}{line}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


_COLUMNS = ("journal_counts", "store page", "operator page", "review_queue", "run_detail")


if __name__ == "__main__":
    sys.exit(main())
