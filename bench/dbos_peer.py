"""The DBOS half of the benchmark: the same workload as sagaguard's, on DBOS Transact.

Runs in its own virtualenv (``.venv-bench``, PyPI ``dbos``), one process per measurement,
because DBOS is a process-wide singleton. ``engine_vs_dbos.py`` starts it as a subprocess.

A workflow of 5 trivial steps (each returns a small dict), every workflow with its own id,
on a fresh SQLite system database. Sequential mode: a warm-up, N 5-step workflows (timed),
then N/2 1-step workflows for the marginal cost of one step, ``(mean5 - mean1) / 4``, the
same formula the sagaguard half uses. Threads mode: N workflows from ``--threads`` threads.
A short extra phase counts the SQL commits per workflow (it is kept out of the timed phase).

Prints exactly one JSON line on stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version as package_version
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

NUM_STEPS = 5


@DBOS.step()
def step_one(x: int) -> dict[str, Any]:
    return {"step": 1, "x": x, "ok": True}


@DBOS.step()
def step_two(x: int) -> dict[str, Any]:
    return {"step": 2, "x": x, "ok": True}


@DBOS.step()
def step_three(x: int) -> dict[str, Any]:
    return {"step": 3, "x": x, "ok": True}


@DBOS.step()
def step_four(x: int) -> dict[str, Any]:
    return {"step": 4, "x": x, "ok": True}


@DBOS.step()
def step_five(x: int) -> dict[str, Any]:
    return {"step": 5, "x": x, "ok": True}


STEPS = (step_one, step_two, step_three, step_four, step_five)


@DBOS.workflow()
def five_step_workflow(x: int) -> dict[str, Any]:
    results = [step(x) for step in STEPS]
    return {"x": x, "n": len(results), "last": results[-1]}


@DBOS.workflow()
def one_step_workflow(x: int) -> dict[str, Any]:
    return {"x": x, "n": 1, "last": step_one(x)}


Workflow = Callable[[int], dict[str, Any]]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(p / 100.0 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, rank))]


def run_one(workflow: Workflow, workflow_id: str, x: int) -> float:
    """Run one workflow to completion in this thread; its latency in seconds."""
    start = time.perf_counter()
    with SetWorkflowID(workflow_id):
        result = workflow(x)
    elapsed = time.perf_counter() - start
    if result["x"] != x:
        raise RuntimeError(f"workflow {workflow_id} returned {result!r}")
    return elapsed


def run_sequential(workflow: Workflow, n: int, prefix: str) -> tuple[float, list[float]]:
    """``n`` workflows one after another: wall time and latencies."""
    start = time.perf_counter()
    latencies = [run_one(workflow, f"{prefix}-{i}", i) for i in range(n)]
    return time.perf_counter() - start, latencies


def run_threads(workflow: Workflow, n: int, prefix: str, threads: int) -> tuple[float, list[float]]:
    """``n`` workflows from ``threads`` threads in a closed loop: wall time and latencies."""
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        mine: list[float] = []
        barrier.wait()
        try:
            while True:
                with lock:
                    i = next_index[0]
                    if i >= n:
                        break
                    next_index[0] += 1
                mine.append(run_one(workflow, f"{prefix}-{i}", i))
        except BaseException as exc:
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, latencies


def _system_db() -> Any:
    # DBOS has no public handle on its system database; read-only use of an internal.
    from dbos._dbos import _get_dbos_instance

    return _get_dbos_instance()._sys_db


def effective_pragmas() -> dict[str, Any]:
    """journal_mode and synchronous as DBOS's own connections have them."""
    import sqlalchemy as sa

    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    with _system_db().engine.connect() as conn:
        mode = conn.execute(sa.text("PRAGMA journal_mode")).scalar()
        level = conn.execute(sa.text("PRAGMA synchronous")).scalar()
        sqlite_version = conn.execute(sa.text("SELECT sqlite_version()")).scalar()
    return {
        "journal_mode": str(mode).upper(),
        "synchronous": names.get(int(level), str(level)),
        "sqlite_version": sqlite_version,
    }


def count_commits(workflow: Workflow, n: int, prefix: str) -> dict[str, float]:
    """Statements and writing commits per workflow, from SQLAlchemy engine events."""
    from sqlalchemy import event

    engine = _system_db().engine
    engine = getattr(engine, "engine", engine)
    counts = {"statements": 0, "commits": 0, "writing_commits": 0}
    wrote: set[int] = set()

    def on_statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        counts["statements"] += 1
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if verb in ("INSERT", "UPDATE", "DELETE", "WITH"):
            wrote.add(id(conn.connection))

    def on_commit(conn: Any) -> None:
        counts["commits"] += 1
        if id(conn.connection) in wrote:
            wrote.discard(id(conn.connection))
            counts["writing_commits"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        run_sequential(workflow, n, prefix)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
    return {key: value / n for key, value in counts.items()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Launch DBOS on a fresh SQLite file, run the phases, return the figures."""
    url = f"sqlite:///{os.path.abspath(args.db)}"
    DBOS.reset_system_database(system_database_url=url)
    config: DBOSConfig = {"name": "sagaguard_bench", "system_database_url": url}
    config["log_level"] = "WARNING"
    DBOS(config=config)
    DBOS.launch()
    try:
        prefix = f"b{uuid.uuid4().hex[:10]}"
        n = args.n
        res: dict[str, Any] = {
            "system": "dbos",
            "dbos_version": package_version("dbos"),
            "sqlalchemy_version": package_version("sqlalchemy"),
            "python": sys.version.split()[0],
            "mode": args.mode,
            "threads": args.threads if args.mode == "threads" else 1,
            "runs": n,
            "steps_per_run": NUM_STEPS,
            "warmup": args.warmup,
            "db": effective_pragmas(),
        }
        if args.mode == "threads":
            run_threads(five_step_workflow, args.warmup, f"{prefix}-w", args.threads)
            cpu0 = time.process_time()
            wall, latencies = run_threads(five_step_workflow, n, f"{prefix}-m", args.threads)
        else:
            run_sequential(five_step_workflow, args.warmup, f"{prefix}-w")
            run_sequential(one_step_workflow, max(1, args.warmup // 2), f"{prefix}-w1")
            cpu0 = time.process_time()
            wall, latencies = run_sequential(five_step_workflow, n, f"{prefix}-m")
        cpu = time.process_time() - cpu0
        ms = sorted(x * 1000.0 for x in latencies)
        res.update(
            wall_s=wall,
            runs_per_s=n / wall,
            lat_mean_ms=statistics.fmean(ms),
            lat_p50_ms=percentile(ms, 50),
            lat_p99_ms=percentile(ms, 99),
            us_per_step_amortized=wall / (n * NUM_STEPS) * 1e6,
            cpu_ms_per_run=cpu / n * 1000.0,
        )
        if args.mode == "seq":
            n1 = max(20, n // 2)
            _, one = run_sequential(one_step_workflow, n1, f"{prefix}-one")
            mean1_ms = statistics.fmean(one) * 1000.0
            res["one_step_runs"] = n1
            res["one_step_lat_mean_ms"] = mean1_ms
            res["us_per_step_marginal"] = (res["lat_mean_ms"] - mean1_ms) * 1000.0 / 4
        if args.count:
            try:
                five = count_commits(five_step_workflow, args.count, f"{prefix}-c5")
                one_counts = count_commits(one_step_workflow, args.count, f"{prefix}-c1")
                res["commits_per_run"] = five["writing_commits"]
                res["statements_per_run"] = five["statements"]
                res["commits_per_one_step_run"] = one_counts["writing_commits"]
            except Exception as exc:
                res["commits_error"] = f"{type(exc).__name__}: {exc}"
        res["check_ok"] = check_rows(f"{prefix}-m", n)
    finally:
        DBOS.destroy(destroy_registry=False)
    return res


def check_rows(prefix: str, n: int) -> bool:
    """Every measured workflow is recorded as SUCCESS with its 5 step outputs."""
    import sqlalchemy as sa

    sysdb = _system_db()
    tables = sysdb.tables
    status, outputs = tables.workflow_status, tables.operation_outputs
    with sysdb.engine.connect() as conn:
        done = conn.execute(
            sa.select(sa.func.count())
            .select_from(status)
            .where(status.c.workflow_uuid.like(f"{prefix}-%"), status.c.status == "SUCCESS")
        ).scalar()
        steps = conn.execute(
            sa.select(sa.func.count())
            .select_from(outputs)
            .where(outputs.c.workflow_uuid.like(f"{prefix}-%"))
        ).scalar()
    return bool(done == n and steps == n * NUM_STEPS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file for DBOS's system database")
    parser.add_argument("-n", type=int, default=1000, help="measured workflows (default 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured workflows first")
    parser.add_argument("--mode", choices=("seq", "threads"), default="seq")
    parser.add_argument("--threads", type=int, default=8, help="threads in --mode threads")
    parser.add_argument(
        "--count", type=int, default=20, help="workflows in the commit-counting phase (0: skip)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.warmup < 0 or args.threads < 1 or args.count < 0:
        parser.error("-n and --threads must be at least 1; --warmup and --count not negative")
    # DBOS logs to stdout by default; the parent reads stdout for the one JSON line.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    res = measure(args)
    sys.stdout.write(json.dumps(res) + "\n")
    return 0 if res["check_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
