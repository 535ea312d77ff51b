"""What the SQLite journal costs beyond its fsync: record() calls/s against raw WAL commits/s.

For each durability setting (``synchronous=FULL``, the default, and ``NORMAL``) it measures:

- raw: one tiny INSERT per transaction on a bare WAL connection (what the disk allows);
- journal: the writes of a 5-step saga on :class:`SQLiteStore`, as the engine makes them: one
  ``create_run`` that also starts the first step, then five ``record()`` calls (complete each
  step and start the next in one call; the last completes the run and releases it), with no
  step work in between.

The two alternate in short slices over several rounds and the medians are printed, so that a
noisy neighbour on the disk hits both alike. Usage:
``python bench/store_commits.py [--seconds 1] [--rounds 5] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

from sagaguard.storage import NewRun, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.sqlite import SQLiteStore

STEPS = ("reserve", "charge", "invoice", "ship", "notify")
RECORDS_PER_RUN = len(STEPS)


class RawCommits:
    """A bare WAL connection doing one tiny INSERT per transaction."""

    def __init__(self, *, path: str, synchronous: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")

    def run_for(self, seconds: float) -> float:
        """Commits/s over ``seconds``."""
        count, started = 0, time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT INTO t (v) VALUES (?)", ('{"ok":true}',))
            self.conn.execute("COMMIT")
            count += 1
        return count / (time.perf_counter() - started)


class JournalRuns:
    """The journal writes of 5-step sagas, back to back."""

    def __init__(self, *, path: str, synchronous: str) -> None:
        self.store = SQLiteStore(path=path, synchronous=synchronous)
        effective = self.store.info().details["synchronous"]
        assert effective == synchronous, effective
        self.runs = 0

    def run_for(self, seconds: float) -> tuple[float, float, float]:
        """record() calls/s, µs per record() and µs per create_run over ``seconds``."""
        records, in_create, in_record = 0, 0.0, 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            n, now = self.runs, time.time()
            new = NewRun(f"op-{n}", "bench", "1", {"n": n}, STEPS)
            t0 = time.perf_counter()
            first, *batches = _saga(n)
            claim = self.store.create_run(
                new, owner="bench", now=now, lease_s=30.0, transitions=first
            ).claim
            t1 = time.perf_counter()
            assert claim is not None
            for number, batch in enumerate(batches, start=1):
                last = number == len(batches)
                claim = self.store.record(claim, batch, now=now, lease_s=30.0, release=last)
            t2 = time.perf_counter()
            in_create, in_record = in_create + t1 - t0, in_record + t2 - t1
            records += RECORDS_PER_RUN
            self.runs += 1
        last = self.store.load(f"op-{self.runs - 1}")
        assert last.run.status is RunStatus.COMPLETED, last.run.status
        per_run = records // RECORDS_PER_RUN
        return records / in_record, in_record / records * 1e6, in_create / per_run * 1e6


def _saga(n: int) -> list[list[Transition]]:
    """The six write batches of one 5-step run: create_run's, then five record() calls."""
    batches: list[list[Transition]] = [[_started(STEPS[0], n)]]
    for index, step_id in enumerate(STEPS):
        change = StepChange(
            step_id, StepStatus.COMPLETED, result={"id": f"{step_id}-{n}"}, completed_seq=index + 1
        )
        following = (
            _started(STEPS[index + 1], n)
            if index + 1 < len(STEPS)
            else Transition("run_completed", run_status=RunStatus.COMPLETED)
        )
        batches.append([Transition("step_completed", change), following])
    return batches


def _started(step_id: str, n: int) -> Transition:
    change = StepChange(step_id, StepStatus.STARTED, attempts=1, last_attempt_at=float(n))
    return Transition("step_started", change)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one slice")
    parser.add_argument("--rounds", type=int, default=5, help="slices per measure")
    parser.add_argument("--dir", default=None, help="directory on the disk under test")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="sagaguard-bench-")
    os.makedirs(directory, exist_ok=True)
    print(
        f"sqlite {sqlite3.sqlite_version}, WAL, median of {args.rounds} slices of "
        f"{args.seconds:g}s, in {directory}"
    )
    print(
        f"{'synchronous':<12}{'raw commits/s':>14}{'record()/s':>12}{'µs/record':>11}"
        f"{'µs over raw':>13}{'µs/create':>11}{'runs/s':>9}"
    )
    for synchronous in ("FULL", "NORMAL"):
        raw = RawCommits(
            path=os.path.join(directory, f"raw-{synchronous}.db"), synchronous=synchronous
        )
        journal = JournalRuns(
            path=os.path.join(directory, f"journal-{synchronous}.db"), synchronous=synchronous
        )
        raws, rates, per_record, per_create = [], [], [], []
        for _ in range(args.rounds):
            raws.append(raw.run_for(args.seconds))
            rate, record_us, create_us = journal.run_for(args.seconds)
            rates.append(rate)
            per_record.append(record_us)
            per_create.append(create_us)
        raw_rate, record_us = statistics.median(raws), statistics.median(per_record)
        create_us = statistics.median(per_create)
        runs = 1e6 / (create_us + RECORDS_PER_RUN * record_us)
        print(
            f"{synchronous:<12}{raw_rate:>14,.0f}{statistics.median(rates):>12,.0f}"
            f"{record_us:>11.0f}{record_us - 1e6 / raw_rate:>13.0f}{create_us:>11.0f}{runs:>9,.0f}"
        )
        journal.store.close()
        raw.conn.close()
    print(f"runs/s: create_run + {RECORDS_PER_RUN} record() per 5-step run, no step work")
    return 0


if __name__ == "__main__":
    sys.exit(main())
