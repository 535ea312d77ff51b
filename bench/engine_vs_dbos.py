"""sagaguard vs DBOS on one workload, in one invocation: runs of 5 trivial steps on SQLite.

sagaguard is measured in this process, on a fresh journal with ``synchronous=FULL`` (the
headline: a payment journal must survive a power cut) and ``synchronous=NORMAL``. DBOS runs
the same workload through ``bench/dbos_peer.py`` in its own virtualenv (``.venv-bench``,
created on first use), on its default SQLite settings. The table states the durability
setting of each, the machine, and the ratio of runs/s.

    .venv/bin/python bench/engine_vs_dbos.py                  # N=1000, sequential
    .venv/bin/python bench/engine_vs_dbos.py -n 200 --skip-dbos
    .venv/bin/python bench/engine_vs_dbos.py --mode threads --threads 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage.base import JournalStore
from sagaguard.storage.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(__file__).resolve().with_name("dbos_peer.py")
STEPS = 5

five = Saga("bench_five", observability=["logs"])
one = Saga("bench_one", observability=["logs"])


def _trivial(number: int) -> Callable[[StepContext], dict[str, Any]]:
    def step(ctx: StepContext) -> dict[str, Any]:
        return {"step": number, "ok": True}

    step.__name__ = f"step_{number}"
    step.__doc__ = f"Trivial step {number}"
    return step


for _number in range(1, STEPS + 1):
    five.step(changes=["database"], idempotent="yes")(_trivial(_number))
one.step(changes=["database"], idempotent="yes")(_trivial(1))


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = -(-len(sorted_values) * p // 100) - 1
    return sorted_values[int(max(0, min(len(sorted_values) - 1, rank)))]


class CountingStore:
    """Counts write transactions (each one durable commit) and reads on a journal store."""

    WRITES = frozenset({"create_run", "claim", "claim_expired", "record", "heartbeat", "release"})
    READS = frozenset({"load", "list_runs", "events"})

    def __init__(self, inner: JournalStore) -> None:
        self.inner = inner
        self.writes = 0
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.WRITES | self.READS:
            return attr
        counter = "writes" if name in self.WRITES else "reads"

        def counted(*args: Any, **kwargs: Any) -> Any:
            setattr(self, counter, getattr(self, counter) + 1)
            return attr(*args, **kwargs)

        return counted


def run_sequential(engine: Engine, saga: Saga, n: int, prefix: str) -> tuple[float, list[float]]:
    """``n`` runs one after another: wall time and per-run latencies (seconds)."""
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        snapshot = engine.run(saga, operation_id=f"{prefix}-{i}", input={"x": i})
        latencies.append(time.perf_counter() - t0)
        if snapshot.run.status.value != "completed":
            raise RuntimeError(f"run {prefix}-{i} ended {snapshot.run.status.value}")
    return time.perf_counter() - start, latencies


def run_threads(
    engine: Engine, saga: Saga, n: int, prefix: str, threads: int
) -> tuple[float, list[float]]:
    """``n`` runs from ``threads`` threads sharing one engine, in a closed loop."""
    lock = threading.Lock()
    counter = iter(range(n))
    latencies: list[float] = []
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                _, lats = run_sequential(engine, saga, 1, f"{prefix}-{i}")
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                latencies.extend(lats)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start, latencies


def measure_sagaguard(path: Path, synchronous: str, args: argparse.Namespace) -> dict[str, Any]:
    """One durability setting on a fresh journal file: the timed phases, then the counts."""
    url = f"sqlite:///{path}" + ("" if synchronous == "FULL" else f"?synchronous={synchronous}")
    engine = Engine(store=url, owner="bench")
    res: dict[str, Any] = {"system": "sagaguard", "url": url, "mode": args.mode}
    try:
        details = engine.store.info().details
        res["db"] = {k: details.get(k) for k in ("journal_mode", "synchronous", "sqlite_version")}
        if args.mode == "threads":
            res["threads"] = args.threads
            run_threads(engine, five, args.warmup, "w", args.threads)
            cpu0 = time.process_time()
            wall, lats = run_threads(engine, five, args.n, "m", args.threads)
        else:
            res["threads"] = 1
            run_sequential(engine, five, args.warmup, "w")
            run_sequential(engine, one, max(1, args.warmup // 2), "w1")
            cpu0 = time.process_time()
            wall, lats = run_sequential(engine, five, args.n, "m")
        cpu = time.process_time() - cpu0
        ms = sorted(x * 1000.0 for x in lats)
        res.update(
            runs=args.n,
            wall_s=wall,
            runs_per_s=args.n / wall,
            lat_mean_ms=statistics.fmean(ms),
            lat_p50_ms=percentile(ms, 50),
            lat_p99_ms=percentile(ms, 99),
            us_per_step_amortized=wall / (args.n * STEPS) * 1e6,
            cpu_ms_per_run=cpu / args.n * 1000.0,
        )
        if args.mode == "seq":
            n1 = max(20, args.n // 2)
            _, one_lats = run_sequential(engine, one, n1, "one")
            res["one_step_lat_mean_ms"] = statistics.fmean(one_lats) * 1000.0
            res["us_per_step_marginal"] = (
                (res["lat_mean_ms"] - res["one_step_lat_mean_ms"]) * 1000.0 / (STEPS - 1)
            )
    finally:
        engine.close()
    res.update(count_transactions(url, count=20))
    with sqlite3.connect(path) as conn:
        runs_done = conn.execute(
            "SELECT count(*) FROM runs WHERE status = 'completed' AND operation_id LIKE 'm-%'"
        ).fetchone()[0]
        steps_done = conn.execute(
            "SELECT count(*) FROM steps WHERE status = 'completed' AND operation_id LIKE 'm-%'"
        ).fetchone()[0]
        res["file_journal_mode"] = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).upper()
    conn.close()
    res["check_ok"] = runs_done == args.n and steps_done == args.n * STEPS
    return res


def count_transactions(url: str, *, count: int) -> dict[str, float]:
    """Write transactions (durable commits) and reads per run, 5-step and 1-step."""
    store = CountingStore(SQLiteStore.from_url(url))
    engine = Engine(store=store, owner="bench-count")
    try:
        run_sequential(engine, five, count, "c5")
        writes5, reads5 = store.writes / count, store.reads / count
        store.writes = store.reads = 0
        run_sequential(engine, one, count, "c1")
        return {
            "commits_per_run": writes5,
            "reads_per_run": reads5,
            "commits_per_one_step_run": store.writes / count,
        }
    finally:
        engine.close()
        store.inner.close()


def disk_ceiling(directory: Path, *, commits: int = 1000) -> float:
    """What the disk allows: tiny SQLite WAL commits per second with synchronous=FULL."""
    path = directory / "ceiling.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v TEXT)")
        start = time.perf_counter()
        for i in range(commits):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
            conn.execute("COMMIT")
        return commits / (time.perf_counter() - start)
    finally:
        conn.close()


def ensure_bench_venv(venv: Path) -> Path:
    """The Python of a virtualenv with DBOS installed, creating it on first use."""
    python = venv / "bin" / "python"
    if python.exists() and _has_dbos(python):
        return python
    print(f"[bench] installing DBOS into {venv} (first use) ...", file=sys.stderr, flush=True)
    if not python.exists():
        _checked([sys.executable, "-m", "venv", str(venv)], "python -m venv")
    _checked([str(python), "-m", "pip", "install", "-q", "dbos"], "pip install dbos")
    if not _has_dbos(python):
        raise RuntimeError(f"dbos is still not importable from {python}")
    return python


def _has_dbos(python: Path) -> bool:
    probe = subprocess.run([str(python), "-c", "import dbos"], capture_output=True, check=False)
    return probe.returncode == 0


def _checked(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def measure_dbos(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    """DBOS on the same workload, in its own virtualenv and process."""
    python = ensure_bench_venv(Path(args.bench_venv))
    command = [str(python), str(PEER), "--db", str(directory / "dbos.sqlite")]
    command += ["-n", str(args.n), "--warmup", str(args.warmup), "--mode", args.mode]
    command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"dbos_peer.py exit {done.returncode}: {' | '.join(tail)}")
    res: dict[str, Any] = json.loads(lines[-1])
    if done.returncode != 0:
        res["error"] = f"exit {done.returncode} (durability check failed?)"
    return res


def machine(directory: Path) -> dict[str, Any]:
    """The facts a reader needs to compare these figures with others."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mounts = []
    with open("/proc/mounts", encoding="utf-8", errors="replace") as table:
        mounts = [line.split()[:3] for line in table]
    target = str(directory.resolve())
    hits = [m for m in mounts if target == m[1] or target.startswith(m[1].rstrip("/") + "/")]
    fs = max(hits, key=lambda m: len(m[1]), default=["?", "?", "?"])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
        "dir": target,
        "filesystem": f"{fs[2]} on {fs[0]}",
    }


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(result: dict[str, Any]) -> None:
    """The human-readable table."""
    m, args = result["machine"], result["args"]
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['os']}, Python {m['python']}, ", end="")
    print(f"SQLite {m['sqlite']}; journals in {m['dir']} ({m['filesystem']})")
    print(f"disk ceiling: {result['ceiling_commits_per_s']:,.0f} SQLite WAL commits/s ", end="")
    print("(synchronous=FULL, one tiny insert each)")
    how = "sequential" if args["mode"] == "seq" else f"{args['threads']} threads"
    print(f"workload: {args['n']} runs x {STEPS} trivial steps, {how}, ", end="")
    print(f"after {args['warmup']} warm-up runs\n")
    header = (
        f"{'':<18}{'journal, synchronous':<26}{'runs/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'us/step':>9}{'us/step':>9}{'commits':>9}{'CPU ms':>9}"
    )
    print(header)
    print(f"{'':<44}{'':>27}{'marginal':>9}{'amort.':>9}{'per run':>9}{'per run':>9}")
    for label, row in result["rows"]:
        if "runs_per_s" not in row:
            print(f"{label:<18}{row.get('error', 'not measured')}")
            continue
        db = row["db"]
        print(
            f"{label:<18}{db['journal_mode'] + ', ' + db['synchronous']:<26}"
            f"{row['runs_per_s']:>9.1f}{row['lat_p50_ms']:>9.2f}{row['lat_p99_ms']:>9.2f}"
            f"{_fmt(row.get('us_per_step_marginal'), '>9.0f'):>9}"
            f"{row['us_per_step_amortized']:>9.0f}"
            f"{_fmt(row.get('commits_per_run'), '>9.1f'):>9}{row['cpu_ms_per_run']:>9.1f}"
            + ("" if row.get("check_ok", True) else "  DURABILITY CHECK FAILED")
        )
    print()
    if "dbos" in result:
        print("DBOS sets neither journal_mode nor synchronous on SQLite: the file keeps SQLite's")
        print("defaults as shown (rollback journal, synchronous=FULL); sagaguard uses WAL.")
    for name, ratio in result["ratios"].items():
        verdict = "meets" if ratio >= 5 else "misses"
        print(f"ratio {name}: {ratio:.1f}x DBOS's runs/s ({verdict} the 5x target)")
    if not result["ratios"]:
        print(f"ratio: not computed (DBOS {result.get('dbos_skipped', 'not measured')})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="measured runs per system")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured runs first")
    parser.add_argument("--mode", choices=("seq", "threads"), default="seq")
    parser.add_argument("--threads", type=int, default=8, help="threads in --mode threads")
    parser.add_argument("--skip-dbos", action="store_true", help="measure sagaguard only")
    parser.add_argument("--json-out", help="append the figures to this file as one JSON line")
    parser.add_argument("--dir", help="where to put the fresh journals (default: a temp dir)")
    parser.add_argument("--bench-venv", default=str(ROOT / ".venv-bench"), help="DBOS's venv")
    args = parser.parse_args(argv)
    if args.n < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("-n and --threads must be at least 1, --warmup at least 0")
    with tempfile.TemporaryDirectory(prefix="sagaguard-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        result: dict[str, Any] = {"machine": machine(directory), "args": vars(args)}
        result["ceiling_commits_per_s"] = disk_ceiling(directory)
        full = measure_sagaguard(directory / "full.sqlite3", "FULL", args)
        normal = measure_sagaguard(directory / "normal.sqlite3", "NORMAL", args)
        rows: list[tuple[str, dict[str, Any]]] = [
            ("sagaguard", full),
            ("sagaguard", normal),
        ]
        result["sagaguard_full"], result["sagaguard_normal"] = full, normal
        result["ratios"] = {}
        if args.skip_dbos:
            result["dbos_skipped"] = "skipped (--skip-dbos)"
        else:
            try:
                dbos = measure_dbos(directory, args)
            except Exception as exc:
                result["dbos_skipped"] = f"could not be measured: {exc}"
                print(f"[bench] DBOS {result['dbos_skipped']}", file=sys.stderr)
            else:
                result["dbos"] = dbos
                rows.append((f"DBOS {dbos.get('dbos_version', '')}", dbos))
                result["ratios"] = {
                    "sagaguard FULL / DBOS": full["runs_per_s"] / dbos["runs_per_s"],
                    "sagaguard NORMAL / DBOS": normal["runs_per_s"] / dbos["runs_per_s"],
                }
        result["rows"] = rows
        report(result)
    if args.json_out:
        result.pop("rows")
        with open(args.json_out, "a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    checks = [full["check_ok"], normal["check_ok"], result.get("dbos", {}).get("check_ok", True)]
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
