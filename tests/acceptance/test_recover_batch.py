"""Two workers recovering batches of expired runs from one SQLite journal.

``recover()`` claims expired runs one at a time, just before it drives each, so a run never
waits in a batch while its lease runs out. While the first worker is busy with one run,
another worker takes a second one; the first must never claim or act on it, and must still
finish every other expired run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sagaguard.engine import Engine, StepContext
from sagaguard.storage.base import RunStatus
from sagaguard.storage.sqlite import SQLiteStore
from sagaguard.testing import CrashAt, FaultPoint, MemoryLedger, SimulatedCrash, check_invariants
from tests.acceptance.shop import build

LEASE_S = 10.0
STEP_TIMEOUT_S = 5.0  # the shop's default step timeout, added to the lease during a call


class Clock:
    """Time shared by every engine of the test, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class TwoWorkers:
    """Three expired runs (their owner died before charging) and two workers on one journal."""

    def __init__(self, journal: Path) -> None:
        self.clock = Clock()
        self.ledger = MemoryLedger()
        self.took_over: list[str] = []
        self.saga = build("idempotent", self.ledger, charge_hook=self._slow_first_run)
        self.stores = [SQLiteStore(path=journal) for _ in range(3)]
        dead = Engine(
            store=self.stores[0],
            clock=self.clock,
            owner="dead",
            lease_s=LEASE_S,
            faults=CrashAt(FaultPoint.BEFORE_CALL, step_id="charge"),
        )
        for op in ("op-1", "op-2", "op-3"):
            with pytest.raises(SimulatedCrash):
                dead.run(self.saga, operation_id=op, input={})
        dead.close()
        self.clock.now += LEASE_S + STEP_TIMEOUT_S + 1
        self.first, self.second = (
            Engine(
                store=store,
                sagas=[self.saga],
                clock=self.clock,
                sleep=lambda s: None,
                owner=owner,
                lease_s=LEASE_S,
            )
            for store, owner in zip(self.stores[1:], ("worker-1", "worker-2"), strict=True)
        )

    def _slow_first_run(self, ctx: StepContext) -> None:
        # worker-1's charge of op-1 takes longer than the lease worker-1 holds on op-2 (but
        # not longer than its own call's lease): meanwhile worker-2 recovers what expired.
        if ctx.operation_id == "op-1" and not self.took_over:
            self.clock.now += LEASE_S + STEP_TIMEOUT_S / 2
            self.took_over = [s.run.operation_id for s in self.second.recover(limit=1)]

    def close(self) -> None:
        self.first.close()
        self.second.close()
        for store in self.stores:
            store.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[TwoWorkers]:
    """The two-worker setup on a fresh journal."""
    made = TwoWorkers(tmp_path / "journal.sqlite3")
    yield made
    made.close()


def test_a_run_another_worker_took_is_never_claimed_or_acted_on_by_the_first(
    workers: TwoWorkers,
) -> None:
    workers.first.recover()
    assert workers.took_over == ["op-2"], "worker-2 took over only the run whose lease ran out"
    store = workers.stores[1]
    events = store.events("op-2")
    claims = [e for e in events if e.kind == "claimed"]
    assert [e.actor for e in claims] == ["worker-2"]
    assert [e for e in events if e.actor == "worker-1"] == [], "worker-1 never touched op-2"
    calls = workers.ledger.select(operation_id="op-2")
    assert calls, "op-2 was called by someone"
    assert {e.fencing_token for e in calls} <= {1, claims[0].data["fencing_token"]}, (
        "only the dead first owner and worker-2 called anything for op-2"
    )
    for op in ("op-1", "op-2"):
        assert store.load(op).run.status is RunStatus.COMPLETED
        violations = check_invariants(
            store.load(op), store.events(op), workers.ledger, workers.saga.process
        )
        assert violations == []


def test_recover_skips_a_run_another_worker_took_over_and_finishes_its_batch(
    workers: TwoWorkers,
) -> None:
    recovered = workers.first.recover()
    assert [s.run.operation_id for s in recovered] == ["op-1", "op-3"]
    store = workers.stores[1]
    for op in ("op-1", "op-2", "op-3"):
        assert store.load(op).run.status is RunStatus.COMPLETED
        assert store.load(op).run.owner is None
