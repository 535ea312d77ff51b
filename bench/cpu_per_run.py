"""CPU per run on PostgreSQL, the worker's and the server's, and the ceiling they set.

On a machine whose cores are shared by the workers and the server, throughput is bounded
by CPU long before the disk: ``cores / (worker CPU + server CPU per run)`` runs/s, however
many workers run. This bench measures both parts on the worker's own path, in one thread
(claim one run, drive it to its end, the next), so that nothing else runs:

- **worker**: this process's CPU time (``time.process_time``) per run;
- **server**: the CPU time of the server's backends and WAL writer per run, read from
  ``/proc/<pid>/stat`` (so only for a server on this machine);
- **a bare commit**: the server's CPU for one tiny ``INSERT`` and its durable ``COMMIT``,
  measured in the same invocation, in alternating slices with the runs. The journal commits
  a run needs (submit, claim and one per step, the least write-ahead allows) times that
  is the part of the server's CPU no statement work can remove.

It prints each figure with its median over the slices, and the ceilings: what the measured
CPU allows on this machine's cores, and what it would allow were the worker free and the
server only committing. Usage: ``python bench/cpu_per_run.py [--url URL] [-n 300]
[--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from engine_vs_dbos import five

from sagaguard.engine import Engine

COMMITS_PER_RUN = 8
"""A submitted 5-step run: its submit, its claim and six records (``fleet.py`` counts them)."""


def server_pids(url: str) -> list[int]:
    """The server's client backends and WAL writer, as of now."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND backend_type IN ('client backend', 'walwriter')"
        ).fetchall()
    return [row[0] for row in rows]


def cpu_s(pids: list[int]) -> float:
    """User plus system CPU seconds of these processes (a gone one counts nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def bare_commits(conn: psycopg.Connection[tuple[object, ...]], table: str, count: int) -> None:
    for _ in range(count):
        conn.execute(f"INSERT INTO {table} (v) VALUES (%s)", ('{"ok":true}',))
        conn.commit()


def main() -> int:
    """Print CPU per run, worker and server, and the ceilings they set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("-n", type=int, default=300, help="runs per slice")
    parser.add_argument("--rounds", type=int, default=5, help="slices of runs and of commits")
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        print("this bench reads /proc: Linux only", file=sys.stderr)
        return 2
    schema = f"sg_bench_cpu_{uuid.uuid4().hex[:8]}"
    url = f"{args.url}{'&' if '?' in args.url else '?'}schema={schema}"
    raw = psycopg.connect(args.url)
    table = f'"{schema}".raw'
    worker_ms: list[float] = []
    server_ms: list[float] = []
    wall_ms: list[float] = []
    commit_us: list[float] = []
    try:
        with Engine(store=url, sagas=[five], lease_s=30) as engine:
            total = args.n * args.rounds + 100
            for n in range(total):
                engine.submit(five, operation_id=f"r-{n}", input={"n": n})
            for _ in range(100):  # warm: prepared statements, caches, the pool
                for claim in engine.claim_runs(1):
                    engine.drive_until_stop(claim)
            with psycopg.connect(args.url, autocommit=True) as conn:
                conn.execute(f"CREATE TABLE {table} (id bigserial, v text)")
                for name in ("runs", "steps", "events"):
                    conn.execute(f'ANALYZE "{schema}".{name}')
            pids = server_pids(args.url)
            if not pids:
                print("no server process is visible here: run it against a local server")
                return 2
            for _ in range(args.rounds):
                server, worker, wall = cpu_s(pids), time.process_time(), time.perf_counter()
                driven = 0
                while driven < args.n:
                    for claim in engine.claim_runs(1):
                        engine.drive_until_stop(claim)
                        driven += 1
                wall_ms.append(1e3 * (time.perf_counter() - wall) / driven)
                worker_ms.append(1e3 * (time.process_time() - worker) / driven)
                server_ms.append(1e3 * (cpu_s(pids) - server) / driven)
                commits = args.n * COMMITS_PER_RUN
                server = cpu_s(pids)
                bare_commits(raw, table, commits)
                commit_us.append(1e6 * (cpu_s(pids) - server) / commits)
    finally:
        raw.close()
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    cores = os.cpu_count() or 1
    worker, server = statistics.median(worker_ms), statistics.median(server_ms)
    commit = statistics.median(commit_us)
    floor = COMMITS_PER_RUN * commit / 1e3
    print(f"PostgreSQL, {cores} CPUs, {args.rounds} slices of {args.n} runs (medians)")
    print(f"wall per run                {statistics.median(wall_ms):6.2f} ms (one at a time)")
    print(f"worker CPU per run          {worker:6.2f} ms")
    print(f"server CPU per run          {server:6.2f} ms")
    print(f"server CPU per bare commit  {commit:6.0f} us", end="")
    print(f"; x {COMMITS_PER_RUN} commits = {floor:.2f} ms")
    print(f"ceiling, as measured        {1e3 * cores / (worker + server):6.0f} runs/s")
    print(f"ceiling, worker free, server only committing  {1e3 * cores / floor:6.0f} runs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
