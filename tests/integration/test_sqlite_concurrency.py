"""Several owners on one SQLite file: threads with their own store, and real processes.

The in-process write lock cannot help here; only SQLite's own locking (``BEGIN IMMEDIATE``
and the busy timeout) keeps two owners from taking one run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sagaguard.storage import Claim, NewRun
from sagaguard.storage.sqlite import SQLiteStore

T0 = 1_700_000_000.0
LATER = T0 + 100.0

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from sagaguard.exceptions import RunBusyError
    from sagaguard.storage.sqlite import SQLiteStore

    path, mode, runs, now, owner, reverse = sys.argv[1:7]
    store = SQLiteStore(path=path)
    # The start line: say so, then wait until the test lets every process go at once.
    print("ready", flush=True)
    sys.stdin.readline()
    won, busy = [], 0
    if mode == "claim":
        # Owners walk the runs in opposite directions, so they meet and contend mid-way.
        order = range(int(runs))
        for n in reversed(order) if reverse == "1" else order:
            try:
                won.append(store.claim(f"op-{n}", owner=owner, now=float(now), lease_s=30.0))
            except RunBusyError:
                busy += 1
            time.sleep(0.001)
    else:
        while batch := store.claim_expired(owner=owner, now=float(now), lease_s=30.0, limit=2):
            won.extend(batch)
            time.sleep(0.001)  # a worker does some work between claims
    print(json.dumps({"won": [[c.operation_id, c.fencing_token] for c in won], "busy": busy}))
    store.close()
    """
)


def _journal_with_expired_runs(path: Path, runs: int) -> None:
    store = SQLiteStore(path=path)
    try:
        for n in range(runs):
            new = NewRun(f"op-{n}", "checkout", "1", {"n": n}, ("reserve", "charge"))
            store.create_run(new, owner="crashed", now=T0, lease_s=1.0)
    finally:
        store.close()


def _race(path: Path, mode: str, owners: list[str], runs: int) -> dict[str, Any]:
    """Start one process per owner, release them together, and collect what each reports."""
    argv = [sys.executable, "-c", _CHILD, str(path), mode, str(runs), repr(LATER)]
    children = {
        owner: subprocess.Popen(
            [*argv, owner, str(index % 2)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, owner in enumerate(owners)
    }
    for owner, child in children.items():  # every child has opened the store
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", f"{owner}: {child.stderr}"
    for child in children.values():  # then all go together
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    taken: dict[str, Any] = {}
    for owner, child in children.items():
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        taken[owner] = json.loads(out)
    return taken


@pytest.mark.slow
def test_two_processes_claiming_the_same_runs_each_run_goes_to_exactly_one(
    tmp_path: Path,
) -> None:
    path, runs = tmp_path / "journal.sqlite3", 40
    _journal_with_expired_runs(path, runs)

    reports = _race(path, "claim", ["proc-a", "proc-b"], runs)

    winners = Counter(op for report in reports.values() for op, _ in report["won"])
    assert sorted(winners) == sorted(f"op-{n}" for n in range(runs))
    assert set(winners.values()) == {1}
    # Both tried every run: each attempt that did not win was told the run is busy.
    assert sum(report["busy"] for report in reports.values()) == runs
    store = SQLiteStore(path=path)
    try:
        for owner, report in reports.items():
            for op, token in report["won"]:
                run = store.load(op).run
                assert (run.owner, run.fencing_token) == (owner, token)
                assert token == 2
    finally:
        store.close()


@pytest.mark.slow
def test_processes_recovering_together_never_receive_the_same_run(tmp_path: Path) -> None:
    path, runs = tmp_path / "journal.sqlite3", 120
    _journal_with_expired_runs(path, runs)

    reports = _race(path, "recover", [f"proc-{i}" for i in range(4)], runs)

    handed_out = Counter(op for report in reports.values() for op, _ in report["won"])
    assert sorted(handed_out) == sorted(f"op-{n}" for n in range(runs))
    assert set(handed_out.values()) == {1}


def test_threads_with_their_own_store_on_one_file_never_share_a_run(tmp_path: Path) -> None:
    path, runs, workers = tmp_path / "journal.sqlite3", 40, 4
    _journal_with_expired_runs(path, runs)
    stores = [SQLiteStore(path=path) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    taken: list[list[Claim]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def recover(index: int) -> None:
        try:
            barrier.wait()
            while batch := stores[index].claim_expired(
                owner=f"w{index}", now=LATER, lease_s=30.0, limit=2
            ):
                taken[index].extend(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=recover, args=(i,)) for i in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for store in stores:
            store.close()

    assert errors == []
    handed_out = Counter(c.operation_id for claims in taken for c in claims)
    assert len(handed_out) == runs
    assert set(handed_out.values()) == {1}
