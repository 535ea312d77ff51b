"""What one ``record()`` costs as a run grows: µs per record at 5, 50 and 200 steps.

A run of n steps is created, then driven the way the engine writes it: one ``record()`` per
step that completes the step (with a small result) and starts the next. The figure is the
mean wall time of those records, the best of several runs (other load on the machine only
ever adds time). The SQLite store runs at ``synchronous=OFF`` so the disk's
fsync does not hide the store's own work; the memory store shows the pure bookkeeping.

A store whose record reads every step of the run costs O(n) per record (O(n²) per run);
one that touches only the rows a record changes costs the same at every n.
Usage: ``python bench/record_cost.py [--sizes 5,50,200] [--runs 5] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from sagaguard.storage import JournalStore, NewRun, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.memory import InMemoryStore
from sagaguard.storage.sqlite import SQLiteStore


def drive(store: JournalStore, operation_id: str, steps: int) -> float:
    """µs per record() over one run of ``steps`` steps."""
    ids = tuple(f"step_{i}" for i in range(steps))
    new = NewRun(operation_id, "bench", "1", {"n": steps}, ids)
    claim = store.create_run(
        new, owner="bench", now=time.time(), lease_s=30.0, transitions=[_started(ids[0])]
    ).claim
    assert claim is not None
    started = time.perf_counter()
    for index, step_id in enumerate(ids):
        change = StepChange(
            step_id,
            StepStatus.COMPLETED,
            result={"id": f"{step_id}-{operation_id}", "amount": 4200},
            completed_seq=index + 1,
        )
        following = (
            _started(ids[index + 1])
            if index + 1 < len(ids)
            else Transition("run_completed", run_status=RunStatus.COMPLETED)
        )
        claim = store.record(
            claim,
            [Transition("step_completed", change), following],
            now=time.time(),
            lease_s=30.0,
            release=index + 1 == len(ids),
        )
    elapsed = time.perf_counter() - started
    assert store.load(operation_id).run.status is RunStatus.COMPLETED
    return elapsed / steps * 1e6


def _started(step_id: str) -> Transition:
    change = StepChange(step_id, StepStatus.STARTED, attempts=1, last_attempt_at=time.time())
    return Transition("step_started", change)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,50,200", help="steps per run, comma-separated")
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per size (the best is shown: load only adds)"
    )
    parser.add_argument("--dir", default=None, help="directory for the SQLite journal")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="sagaguard-bench-", dir=args.dir)
    stores: dict[str, JournalStore] = {
        "memory": InMemoryStore(),
        "sqlite (synchronous=OFF)": SQLiteStore(
            path=os.path.join(directory, "record-cost.sqlite3"), synchronous="OFF"
        ),
    }
    print(f"µs per record(), best of {args.runs} runs per size")
    print(f"{'store':<26}" + "".join(f"{f'n={size}':>10}" for size in sizes))
    for name, store in stores.items():
        figures = []
        for size in sizes:
            drive(store, f"warm-{size}", size)
            samples = [drive(store, f"n{size}-{run}", size) for run in range(args.runs)]
            figures.append(min(samples))
        print(f"{name:<26}" + "".join(f"{figure:>10.0f}" for figure in figures))
        store.close()
    shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
