"""The PostgreSQL store alone, as a fraction of what the server allows, in one invocation.

Alternating short slices, so that the server's load hits every figure alike:

- raw: one tiny INSERT per transaction through psycopg, on 1 and on 8 connections (threads):
  the server's commit rate, the ceiling of any durable journal on it;
- store: the writes of 5-step runs through :class:`PostgresStore` (``create_run`` with the
  first ``started``, then five ``record()`` calls, the last releasing), on 1 and 8 threads,
  as records/s (every ``create_run`` and ``record`` is one commit).

It prints commits/s per figure and the store's fraction of the raw rate at the same
concurrency. Everything lives in a fresh schema, dropped at the end. Usage:
``python bench/pg_store.py [--url postgresql://postgres@127.0.0.1:5432/test] [--seconds 1]
[--rounds 3]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable

import psycopg

from sagaguard.storage import NewRun, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.postgres import PostgresStore

STEPS = ("reserve", "charge", "invoice", "ship", "notify")
COMMITS_PER_RUN = len(STEPS) + 1


def in_threads(threads: int, seconds: float, work: Callable[[int], int]) -> float:
    """Commits/s of ``work(thread_number)`` run on ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline: list[float] = []

    def run(number: int) -> None:
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            counts[number] += work(number)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    started = time.perf_counter()
    deadline.append(started + seconds)
    barrier.wait()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


class Raw:
    """Tiny committed INSERTs, one connection per thread."""

    def __init__(self, url: str, schema: str, threads: int) -> None:
        self.conns = [psycopg.connect(url) for _ in range(threads)]
        self.table = f'"{schema}".raw'
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id bigserial, v text)")

    def commit(self, number: int) -> int:
        conn = self.conns[number]
        conn.execute(f"INSERT INTO {self.table} (v) VALUES (%s)", ('{"ok":true}',))
        conn.commit()
        return 1

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


class Runs:
    """The journal writes of 5-step runs, back to back, on one shared store."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.numbers = itertools.count()

    def run(self, number: int) -> int:
        op = f"run-{next(self.numbers)}"
        started = [_started(STEPS[0])]
        claim = self.store.create_run(
            NewRun(op, "bench", "1", {"n": op}, STEPS),
            owner=f"bench-{number}",
            now=time.time(),
            lease_s=30.0,
            transitions=started,
        ).claim
        assert claim is not None
        for index, step_id in enumerate(STEPS):
            change = StepChange(
                step_id, StepStatus.COMPLETED, result={"id": f"{op}-{index}"}, completed_seq=index
            )
            last = index + 1 == len(STEPS)
            following = (
                Transition("run_completed", run_status=RunStatus.COMPLETED)
                if last
                else _started(STEPS[index + 1])
            )
            claim = self.store.record(
                claim,
                [Transition("step_completed", change), following],
                now=time.time(),
                lease_s=30.0,
                release=last,
            )
        return COMMITS_PER_RUN


def _started(step_id: str) -> Transition:
    return Transition("step_started", StepChange(step_id, StepStatus.STARTED, attempts=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one slice")
    parser.add_argument("--rounds", type=int, default=3, help="slices of each kind")
    args = parser.parse_args()
    schema = f"sg_bench_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in args.url else "?"
    store = PostgresStore.from_url(f"{args.url}{separator}schema={schema}&pool_size=8")
    try:
        with psycopg.connect(args.url) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
            ).fetchone()
        assert row is not None
        print(
            f"PostgreSQL {row[0]}, synchronous_commit={row[1]}, psycopg {psycopg.__version__}; "
            f"median of {args.rounds} alternating slices of {args.seconds:g}s"
        )
        print(f"{'threads':>8}{'raw commits/s':>15}{'store commits/s':>17}{'fraction':>10}")
        runs = Runs(store)
        for threads in (1, 8):
            raw = Raw(args.url, schema, threads)
            raws, stores = [], []
            in_threads(threads, 0.2, runs.run)  # warm up
            for _ in range(args.rounds):
                raws.append(in_threads(threads, args.seconds, raw.commit))
                stores.append(in_threads(threads, args.seconds, runs.run))
            raw.close()
            raw_rate, store_rate = statistics.median(raws), statistics.median(stores)
            print(
                f"{threads:>8}{raw_rate:>15,.0f}{store_rate:>17,.0f}{store_rate / raw_rate:>10.2f}"
            )
        print(
            f"store commits: create_run + {len(STEPS)} record() per 5-step run "
            f"({COMMITS_PER_RUN} commits), no step work"
        )
    finally:
        store.close()
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
