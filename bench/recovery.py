"""Recovery throughput: runs left by a crashed owner, recovered by one ``sagaguard.Worker``.

For each store (SQLite always; PostgreSQL when ``--pg URL`` or ``SAGAGUARD_TEST_PG_URL`` is
given) and each concurrency (default 1 and 4):

- an owner starts N runs of a 5-step saga of trivial idempotent steps and "dies" before the
  call of the third step (``CrashAt(BEFORE_CALL)``), with a lease of 0.1 s (plus the 1 s
  call timeout a started step's lease covers): N runs stay ``running``, owned by nobody
  alive, their third step ``started``, every lease expired before the clock starts;
- on PostgreSQL the tables are then analyzed, as autovacuum does to a journal in use;
- one Worker on a fresh engine recovers them all; the clock runs from ``worker.run()`` until
  the last run is completed. A retry's backoff counts from the journaled start of the last
  attempt, so a run whose owner died long enough ago owes none of it: it calls its started
  step again at once.

It prints recovered runs/s per store and concurrency against the target (>= 300 runs/s per
worker). Usage: ``python bench/recovery.py [-n 1000] [--concurrency 1,4] [--pg URL]
[--dir DIR] [--json-out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sagaguard import Worker
from sagaguard.engine import Engine, FaultPoint, Saga, SimulatedCrash, StepContext
from sagaguard.storage import RunStatus
from sagaguard.testing import CrashAt

TARGET = 300.0
"""Recovered runs/s one worker must reach."""
STEPS = ("reserve", "charge", "invoice", "ship", "notify")
CALL_TIMEOUT_S = 1
LEASE_S = 0.1


class Finished:
    """Counts runs whose last step ran; set when all ``expected`` did."""

    def __init__(self) -> None:
        self.expected = 0
        self.count = 0
        self.all_done = threading.Event()
        self._lock = threading.Lock()

    def last_step(self, ctx: StepContext) -> dict[str, str]:
        with self._lock:
            self.count += 1
            if self.count >= self.expected:
                self.all_done.set()
        return {"done": ctx.operation_id}


def saga_of(finished: Finished) -> Saga:
    """Five trivial idempotent steps; the last one counts finished runs."""
    # The lease a call holds covers its timeout too: a short one lets the dead owner's
    # leases run out soon after the crash.
    saga = Saga("recovery-bench", defaults={"max_attempts": 3, "timeout": f"{CALL_TIMEOUT_S}s"})
    for step_id in STEPS[:-1]:
        saga.step(id=step_id, changes=["database"], idempotent="yes")(lambda ctx: {"ok": True})
    saga.step(id=STEPS[-1], changes=["database"], idempotent="yes")(finished.last_step)
    return saga


def crash_runs(url: str, saga: Saga, count: int, prefix: str) -> None:
    """``count`` runs whose owner died before the third step's call, leases soon expired."""
    crash = CrashAt(FaultPoint.BEFORE_CALL, step_id=STEPS[2])
    with Engine(store=url, owner=f"crashed-{prefix}", lease_s=LEASE_S, faults=crash) as dead:
        for number in range(count):
            with suppress(SimulatedCrash):
                dead.run(saga, operation_id=f"{prefix}-{number}")
    # Setup only: every lease (its call's timeout included) runs out before the clock starts.
    time.sleep(CALL_TIMEOUT_S + LEASE_S + 0.2)


def recover(url: str, count: int, concurrency: int) -> dict[str, Any]:
    """Crash ``count`` runs, then time one Worker recovering them all."""
    finished = Finished()
    saga = saga_of(finished)
    prefix = f"c{concurrency}-{uuid.uuid4().hex[:6]}"
    crash_runs(url, saga, count, prefix)
    analyze(url)
    finished.expected = count
    with Engine(store=url, sagas=[saga], lease_s=30) as engine:
        worker = Worker(engine, concurrency=concurrency, batch=50, interval_s=0.5)
        thread = threading.Thread(target=worker.run)
        started = time.perf_counter()
        thread.start()
        ok = finished.all_done.wait(600)
        elapsed = time.perf_counter() - started
        worker.stop()
        thread.join()
        worker.close()
        statuses = [engine.store.load(f"{prefix}-{n}").run.status for n in range(count)]
    completed = sum(status is RunStatus.COMPLETED for status in statuses)
    return {
        "runs": count,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "runs_per_s": round(count / elapsed, 1) if ok else 0.0,
        "completed": completed,
        "ok": ok and completed == count,
    }


@contextmanager
def sqlite_url(directory: str | None) -> Iterator[str]:
    """A fresh SQLite journal (``synchronous=FULL``) in a temporary directory."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        yield f"sqlite:///{Path(tmp) / 'journal.sqlite3'}"


def analyze(url: str) -> None:
    """Give a PostgreSQL journal the statistics a journal in use has.

    Autovacuum analyzes a table within a minute of its first thousand rows, but this bench
    is over in seconds: without statistics every claim sorts all the waiting runs instead of
    reading the oldest few off the index (about 1 ms a claim at 1,000 waiting runs).
    """
    if not url.startswith("postgresql"):
        return
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(part.split("=", 1) for part in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        for table in ("runs", "steps", "events"):
            conn.execute(f'ANALYZE "{schema}".{table}')


@contextmanager
def pg_url(base: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards."""
    import psycopg

    schema = f"sg_recovery_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}schema={schema}&pool_size=16"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    """Print recovered runs/s per store and concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="crashed runs per figure")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated (default 1,4)")
    parser.add_argument("--pg", default=os.environ.get("SAGAGUARD_TEST_PG_URL"))
    parser.add_argument("--dir", help="where the SQLite journal goes (default: temp dir)")
    parser.add_argument("--json-out", help="append every figure as one JSON line")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")]
    stores: list[tuple[str, Any]] = [("sqlite", lambda: sqlite_url(args.dir))]
    if args.pg:
        stores.append(("postgres", lambda: pg_url(args.pg)))
    print(f"{args.n} runs left by a crashed owner, one Worker; target >= {TARGET:.0f} runs/s")
    print(f"{'store':<10}{'concurrency':>12}{'seconds':>10}{'runs/s':>10}  target")
    figures = []
    for name, opened in stores:
        for level in levels:
            with opened() as url:
                figure = {"store": name, **recover(url, args.n, level)}
            figures.append(figure)
            verdict = "met" if figure["runs_per_s"] >= TARGET else "NOT met"
            if not figure["ok"]:
                verdict = f"FAILED ({figure['completed']}/{figure['runs']} completed)"
            print(
                f"{name:<10}{level:>12}{figure['seconds']:>10.2f}"
                f"{figure['runs_per_s']:>10.1f}  {verdict}"
            )
    if not args.pg:
        print("PostgreSQL skipped (no --pg URL and no SAGAGUARD_TEST_PG_URL)")
    if args.json_out:
        with open(args.json_out, "a", encoding="utf-8") as out:
            for figure in figures:
                out.write(json.dumps(figure) + "\n")
    return 0 if all(f["ok"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
