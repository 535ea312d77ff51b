"""A fleet of workers on PostgreSQL: runs/s with 1, 2, 4, 8 workers, DBOS, the commit rate.

In one invocation, on one server:

- the server's commit rate: tiny INSERTs, one per transaction, ``synchronous_commit=on``,
  on as many connections as there are workers (the measurement of
  ``/work/shared/peers/fsync_limit.py``'s ``pg_insert_sync_on``, done by ``pg_store.Raw``),
  before and after the fleet figures (their mean is used);
- the fleet: K ``sagaguard worker`` processes (the CLI, as deployed), each fleet on a fresh
  schema of its own (so no fleet drains a journal grown by the ones before it), warmed by
  200 runs and analyzed, as a journal in use is; the
  parent submits N runs of a 5-step saga of trivial steps (``bench.engine_vs_dbos:five``)
  and the clock runs from the first submit until every run is completed;
- DBOS Transact on the same server (its own database), sequential and from 8 threads, in
  its own virtualenv ``.venv-bench`` (``pip install dbos psycopg``).

Each fleet figure is printed with how busy the machine's CPUs were while it ran and its CPU
time per run, all processes together (workers, server, submitter; from ``/proc/stat``, so
Linux only), the journal commits a run needs (counted, in process, on
the same path: submit, claim, drive), the commit-bound limit (commit rate / commits per
run) and its fraction of it. Usage: ``python bench/fleet.py [--url URL] [-n 1000]
[--workers 1,2,4,8] [--skip-dbos]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from engine_vs_dbos import CountingStore, ensure_bench_venv, five
from pg_store import Raw, in_threads

from sagaguard.engine import Engine, Worker
from sagaguard.storage import RunStatus
from sagaguard.storage.postgres import PostgresStore

ROOT = Path(__file__).resolve().parents[1]
APP = "bench.engine_vs_dbos:five"
DBOS_SCRIPT = Path("/work/shared/peers/dbos_bench.py")
SAGAGUARD = Path(sys.executable).with_name("sagaguard")
WARM_UP = 200
"""Runs each fleet drains, and then the tables are analyzed, before its clock starts."""


def url_with(url: str, **options: str) -> str:
    """``url`` with sagaguard or libpq query options added."""
    extra = "&".join(f"{key}={value}" for key, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def commit_rate(url: str, connections: int, seconds: float) -> float:
    """Tiny durable commits per second on ``connections`` connections."""
    schema = f"sg_bench_raw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    raw = Raw(url, schema, connections)
    try:
        return in_threads(connections, seconds, raw.commit)
    finally:
        raw.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def commits_per_run(url: str, count: int = 20) -> float:
    """Journal write transactions per run on the fleet's path, counted in this process."""
    store = PostgresStore.from_url(url)
    counting = CountingStore(store)
    try:
        with (
            Engine(store=counting, sagas=[five]) as engine,  # type: ignore[arg-type]
            Worker(engine, batch=count) as worker,
        ):
            for n in range(count):
                engine.submit(five, operation_id=f"count-{n}", input={"n": n})
            assert worker.run_once() == count
        return counting.writes / count
    finally:
        store.close()


def cpu_times() -> tuple[float, float] | None:
    """The machine's (busy, all) CPU seconds since boot, over every CPU; ``None`` off Linux."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(field) for field in stat.readline().split()[1:]]
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


@dataclass(frozen=True)
class Fleet:
    """A fleet's figures: runs/s, and (on Linux) the machine's busy fraction and CPU per run."""

    runs_per_s: float
    busy: float | None
    cpu_ms_per_run: float | None


def fleet(base_url: str, workers: int, runs: int, logs: Path, concurrency: int = 1) -> Fleet:
    """``workers`` worker processes (each driving ``concurrency`` runs at once) draining
    ``runs`` submitted runs, on a schema of its own (dropped afterwards)."""
    schema = f"sg_bench_fleet_{uuid.uuid4().hex[:8]}"
    url = url_with(base_url, schema=schema)
    store = PostgresStore.from_url(url)
    processes = []
    try:
        for number in range(workers):
            log = logs / f"worker-{workers}x{concurrency}-{number}.log"
            with log.open("w") as err:
                processes.append(
                    subprocess.Popen(
                        [str(SAGAGUARD), "worker", APP, "--db", url, "--interval", "0.05",
                         "--batch", "100", "--concurrency", str(concurrency)],
                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                    )
                )  # fmt: skip
            _wait_for(lambda log=log: "started on" in log.read_text(), "worker start")
        with Engine(store=store) as submitter:
            # A journal in use has statistics (autovacuum analyzes it within a minute); a
            # fresh schema has none, and its claims then sort every waiting run. Warm it.
            _drain(store, submitter, [f"warm-{n:04d}" for n in range(WARM_UP)], done=0)
            with psycopg.connect(base_url, autocommit=True) as conn:
                for table in ("runs", "steps", "events", "alerts"):
                    conn.execute(f'ANALYZE "{schema}".{table}')
            ops = [f"k{workers}x{concurrency}-{n:06d}" for n in range(runs)]
            cpu, start = cpu_times(), time.perf_counter()
            _drain(store, submitter, ops, done=WARM_UP)
            elapsed, cpu_after = time.perf_counter() - start, cpu_times()
            if cpu is None or cpu_after is None:
                return Fleet(runs / elapsed, None, None)
            busy, every = cpu_after[0] - cpu[0], cpu_after[1] - cpu[1]
            return Fleet(runs / elapsed, busy / every, 1e3 * busy / runs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        store.close()
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _drain(store: PostgresStore, submitter: Engine, ops: list[str], *, done: int) -> None:
    """Submit ``ops`` and return once they are completed too (``done`` were before)."""
    for op in ops:
        submitter.submit(five, operation_id=op, input={"n": op})
    while (counts := store.count_runs()).get(RunStatus.COMPLETED, 0) < done + len(ops):
        if any(s is not RunStatus.COMPLETED and s is not RunStatus.RUNNING for s in counts):
            raise RuntimeError(f"runs did not complete: {counts}")
        # Often enough for a figure to 1 %, rarely enough not to load the server.
        time.sleep(0.02)


def _wait_for(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.05)


def dbos(url: str, venv: Path, runs: int, mode: str) -> float | str:
    """DBOS workflows/s on its own database of the same server, or why not."""
    if not DBOS_SCRIPT.exists():
        return f"{DBOS_SCRIPT} not found"
    try:
        python = ensure_bench_venv(venv)
    except RuntimeError as exc:
        return str(exc)
    base = url.rsplit("/", 1)[0]
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        command = [str(python), str(DBOS_SCRIPT), "--db", f"{base}/sagaguard_bench_dbos",
                   "--fresh", "--mode", mode, "-n", str(runs), "--threads", "8",
                   "--json-out", out.name]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
        lines = Path(out.name).read_text().splitlines()
    if done.returncode != 0 or not lines:
        return f"dbos_bench.py exit {done.returncode}: {done.stderr.strip()[-200:]}"
    return float(json.loads(lines[-1])["wf_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("-n", type=int, default=1000, help="runs per worker count")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, at concurrency 1")
    parser.add_argument(
        "--one-worker-concurrency", type=int, default=8, help="then one worker at this; 0: no"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per commit-rate slice")
    parser.add_argument("--dbos-runs", type=int, default=300)
    parser.add_argument("--skip-dbos", action="store_true")
    parser.add_argument("--bench-venv", default=str(ROOT / ".venv-bench"))
    args = parser.parse_args()
    counts = [int(k) for k in args.workers.split(",")]
    schema = f"sg_bench_fleet_{uuid.uuid4().hex[:8]}"
    url = url_with(args.url, schema=schema)
    with psycopg.connect(args.url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
        ).fetchone()
    assert row is not None
    print(f"PostgreSQL {row[0]}, synchronous_commit={row[1]}, {os.cpu_count()} CPUs, n={args.n}")
    before = {k: commit_rate(args.url, k, args.seconds) for k in counts}
    commits = commits_per_run(url)
    figures: dict[int, Fleet] = {}
    wide = args.one_worker_concurrency
    with tempfile.TemporaryDirectory() as logs:
        for k in counts:
            figures[k] = fleet(args.url, k, args.n, Path(logs))
        one_wide = fleet(args.url, 1, args.n, Path(logs), concurrency=wide) if wide else None
    after = {k: commit_rate(args.url, k, args.seconds) for k in counts}
    dbos_seq = dbos_conc = "skipped"
    if not args.skip_dbos:
        dbos_seq = dbos(args.url, Path(args.bench_venv), args.dbos_runs, "seq")
        dbos_conc = dbos(args.url, Path(args.bench_venv), args.dbos_runs, "conc")
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(f"journal commits per run (submit, claim, 5 steps): {commits:.1f}")
    print(
        f"{'workers':>8}{'runs/s':>9}{'commits/s':>11}{'server commits/s':>18}"
        f"{'commit-bound runs/s':>21}{'fraction':>10}{'CPUs busy':>11}{'CPU ms/run':>12}"
    )
    for k in counts:
        rate = (before[k] + after[k]) / 2
        bound = rate / commits
        got = figures[k]
        print(
            f"{k:>8}{got.runs_per_s:>9.0f}{got.runs_per_s * commits:>11.0f}{rate:>18.0f}"
            f"{bound:>21.0f}{got.runs_per_s / bound:>10.2f}{_cpu(got)}"
        )
    if one_wide is not None:
        rate = (before[1] + after[1]) / 2
        print(
            f"1 worker at concurrency {wide}: {one_wide.runs_per_s:.0f} runs/s, "
            f"{one_wide.runs_per_s * commits:.0f} commits/s (1-connection commit rate "
            f"{rate:.0f})"
            + (
                ""
                if one_wide.busy is None
                else f", CPUs {one_wide.busy:.0%} busy, {one_wide.cpu_ms_per_run:.2f} CPU ms/run"
            )
        )
    ours = [("1 worker", figures.get(1)), (f"{counts[-1]} workers", figures[counts[-1]])]
    if one_wide is not None:
        ours.append((f"1 worker at concurrency {wide}", one_wide))
    for label, peer in (("sequential", dbos_seq), ("8 threads", dbos_conc)):
        if not isinstance(peer, float):
            print(f"DBOS {label}: {peer}")
            continue
        ratios = ", ".join(
            f"{name} {value.runs_per_s / peer:.1f}x" for name, value in ours if value
        )
        print(f"DBOS {label}: {peer:.1f} runs/s; sagaguard: {ratios}")
    return 0


def _cpu(got: Fleet) -> str:
    if got.busy is None or got.cpu_ms_per_run is None:
        return f"{'-':>11}{'-':>12}"
    return f"{got.busy:>11.0%}{got.cpu_ms_per_run:>12.2f}"


if __name__ == "__main__":
    sys.exit(main())
