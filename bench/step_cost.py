"""The engine's own cost of a 5-step run, in instructions: repeatable on a loaded machine.

Wall-clock figures on a shared machine move by tens of percent from one minute to the next;
instruction counts do not. This runs the saga of ``commit_bound.py`` (5 trivial steps)
under ``valgrind --tool=callgrind`` twice, with a few runs and with many more, and prints
the difference per run and per step, so the interpreter's start-up and the imports cancel
out. The counts include every thread (the engine's and the call pool's), no kernel time
(fsync is free here), so the SQLite figure is the store's and engine's Python and C alone.
Usage: ``python bench/step_cost.py [--store memory,sqlite] [--runs 0,50]``.
With ``--inner STORE N`` it only performs N runs after a warm-up (what valgrind runs).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

STEPS = 5
_TOTALS = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)


def inner(store_kind: str, runs: int, directory: str) -> None:
    """Warm up, then perform ``runs`` runs of the 5-step saga (valgrind counts them)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from commit_bound import saga

    from sagaguard.engine import Engine
    from sagaguard.storage import JournalStore, RunStatus
    from sagaguard.storage.memory import InMemoryStore
    from sagaguard.storage.sqlite import SQLiteStore

    os.makedirs(directory, exist_ok=True)
    store: JournalStore = (
        InMemoryStore()
        if store_kind == "memory"
        else SQLiteStore(path=os.path.join(directory, "journal.sqlite3"))
    )
    with Engine(store=store, owner="bench") as engine:
        for number in range(5 + runs):
            snapshot = engine.run(saga, operation_id=f"run-{number}", input={"n": number})
            assert snapshot.run.status is RunStatus.COMPLETED, snapshot.run


def instructions(store_kind: str, counts: tuple[int, ...]) -> list[int]:
    """Instructions of whole processes that perform ``counts`` runs on ``store_kind``.

    The processes run side by side: each count is exact whatever else runs.
    """
    directory = tempfile.mkdtemp(prefix="sagaguard-steps-")
    try:
        outs = [os.path.join(directory, f"callgrind.{runs}.out") for runs in counts]
        processes = [
            _valgrind(store_kind, runs, out, directory)
            for runs, out in zip(counts, outs, strict=True)
        ]
        codes = [process.wait() for process in processes]  # every one, even after a failure
        if any(codes):
            raise RuntimeError("a run under valgrind failed")
        return [_total(out) for out in outs]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _valgrind(store_kind: str, runs: int, out: str, directory: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            os.path.abspath(__file__),
            "--inner",
            store_kind,
            str(runs),
            os.path.join(directory, str(runs)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _total(out: str) -> int:
    with open(out, encoding="utf-8") as file:
        found = _TOTALS.search(file.read())
    if found is None:
        raise RuntimeError(f"callgrind wrote no totals to {out}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="memory,sqlite", help="memory, sqlite or both")
    parser.add_argument("--runs", default="0,50", help="the two run counts compared")
    parser.add_argument("--inner", nargs=3, metavar=("STORE", "N", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner[0], int(args.inner[1]), args.inner[2])
        return 0
    if shutil.which("valgrind") is None:
        print("step_cost: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    few, many = (int(n) for n in args.runs.split(","))
    for kind in args.store.split(","):
        if kind not in ("memory", "sqlite"):
            print(f"step_cost: unknown store {kind!r} (memory or sqlite)", file=sys.stderr)
            return 2
        low, high = instructions(kind, (few, many))
        per_run = (high - low) / (many - few)
        print(
            f"{kind:<7} {per_run:>14,.0f} instructions per {STEPS}-step run "
            f"({per_run / STEPS:,.0f} per step; runs {few} vs {many})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
