"""How close engine runs on the SQLite journal come to what the disk allows, side by side.

The commit-bound limit of a journal is its raw commit rate divided by the commits a run
needs (n + 1 for n steps: the run's creation with the ``started`` of step 1, one commit per
step after it). In one process, this alternates short slices of

- raw: one tiny INSERT per transaction on a bare WAL connection, same directory, same
  ``synchronous``;
- runs: ``Engine.run`` of a 5-step saga of trivial steps on ``SQLiteStore``;

- engine only: the same runs on the in-memory store, the engine's own cost per run;

so that a noisy disk hits all alike, and prints the medians and the fraction
``runs/s x commits per run / raw commits/s`` (the target at ``synchronous=FULL`` is 0.5).
It also prints the ceiling of that fraction for any store: a store whose writes cost no
more than the raw commits still leaves the engine's own time per run. Where fsync is cheap
the ceiling, not the store, is what bounds the fraction.
Usage: ``python bench/commit_bound.py [--seconds 1] [--rounds 5] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage import RunStatus
from sagaguard.storage.memory import InMemoryStore
from sagaguard.storage.sqlite import SQLiteStore

STEPS = 5
COMMITS_PER_RUN = STEPS + 1

saga = Saga("bench_commit_bound", observability=["logs"])
for _number in range(1, STEPS + 1):

    def _step(ctx: StepContext, number: int = _number) -> dict[str, Any]:
        return {"step": number, "ok": True}

    _step.__name__ = f"step_{_number}"
    _step.__doc__ = f"Trivial step {_number}"
    saga.step(changes=["database"], idempotent="yes")(_step)


def raw_commits(conn: sqlite3.Connection, seconds: float) -> float:
    """Tiny WAL commits per second over ``seconds``."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", ('{"ok":true}',))
        conn.execute("COMMIT")
        count += 1
    return count / (time.perf_counter() - started)


def engine_runs(engine: Engine, numbers: itertools.count[int], seconds: float) -> float:
    """Completed 5-step runs per second over ``seconds``."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        snapshot = engine.run(saga, operation_id=f"run-{next(numbers)}", input={"n": count})
        assert snapshot.run.status is RunStatus.COMPLETED, snapshot.run
        count += 1
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one slice")
    parser.add_argument("--rounds", type=int, default=5, help="slices of each kind")
    parser.add_argument("--dir", default=None, help="directory on the disk under test")
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL"))
    args = parser.parse_args()
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="sagaguard-bench-", dir=args.dir)
    try:
        raw = sqlite3.connect(os.path.join(directory, "raw.db"), isolation_level=None)
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute(f"PRAGMA synchronous = {args.synchronous}")
        raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        store = SQLiteStore(
            path=os.path.join(directory, "journal.sqlite3"), synchronous=args.synchronous
        )
        assert store.info().details["synchronous"] == args.synchronous
        numbers = itertools.count()
        with (
            Engine(store=store, owner="bench") as engine,
            Engine(store=InMemoryStore(), owner="bench") as bare,
        ):
            engine_runs(engine, numbers, 0.2)  # warm up
            engine_runs(bare, numbers, 0.2)
            raws, runs, bares = [], [], []
            for _ in range(args.rounds):
                raws.append(raw_commits(raw, args.seconds))
                runs.append(engine_runs(engine, numbers, args.seconds))
                bares.append(engine_runs(bare, numbers, args.seconds))
        store.close()
        raw.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    raw_rate, run_rate = statistics.median(raws), statistics.median(runs)
    bare_rate = statistics.median(bares)
    fraction = run_rate * COMMITS_PER_RUN / raw_rate
    # A store that cost only its raw commits: the engine's time plus the commits' time.
    ceiling_rate = 1 / (1 / bare_rate + COMMITS_PER_RUN / raw_rate)
    print(
        f"sqlite {sqlite3.sqlite_version}, WAL, synchronous={args.synchronous}, "
        f"median of {args.rounds} alternating slices of {args.seconds:g}s"
    )
    print(f"raw commits/s            {raw_rate:>10,.0f}")
    limit = raw_rate / COMMITS_PER_RUN
    print(f"commit-bound runs/s      {limit:>10,.0f}  ({COMMITS_PER_RUN} commits/run)")
    print(f"engine runs/s            {run_rate:>10,.0f}")
    print(f"engine-only runs/s       {bare_rate:>10,.0f}  (in-memory store)")
    ceiling = ceiling_rate * COMMITS_PER_RUN / raw_rate
    print(f"ceiling of the fraction  {ceiling:>10.2f}  (engine time + raw commits per run)")
    store_us = (1 / run_rate - 1 / bare_rate) * 1e6
    commits_us = COMMITS_PER_RUN * 1e6 / raw_rate
    print(f"store µs per run         {store_us:>10,.0f}  (its raw commits: {commits_us:,.0f})")
    print(f"fraction of the limit    {fraction:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
