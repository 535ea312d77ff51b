"""The library Worker: drives submitted and orphaned runs, several at once, and never gives up.

Concurrency is proved with a barrier that N steps must reach together; the drain with a step
held in flight by an event. Nothing here sleeps to line a race up.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sagaguard import StoreError, Worker
from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage import Claim, JournalStore, RunSnapshot, RunStatus
from tests.behaviour.sagas import CHECKOUT_STEPS, FakeClock, Provider, checkout
from tests.waking import SaysWhenIdle, submit_until

WAIT_S = 10.0
"""How long a test waits for something that should happen at once (a hang fails it)."""


def _engine(store: JournalStore, clock: FakeClock, **options: Any) -> Engine:
    return Engine(store=store, clock=clock, sleep=clock.sleep, lease_s=30, **options)


def _one_step(code: Any, *, name: str = "single", version: str = "1") -> Saga:
    saga = Saga(name, version=version, defaults={"max_attempts": 1, "timeout": "60s"})
    saga.step(id="only", changes=["database"], idempotent="yes")(code)
    return saga


def _in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name="test-worker")
    thread.start()
    return thread


def test_submitted_runs_are_finished_by_one_pass(store: JournalStore, clock: FakeClock) -> None:
    provider = Provider()
    with _engine(store, clock) as engine, Worker(engine, concurrency=2, batch=10) as worker:
        for number in range(3):
            engine.submit(checkout(provider), operation_id=f"op-{number}", input={"n": number})

        assert worker.run_once() == 3

        assert [store.load(f"op-{n}").run.status for n in range(3)] == [RunStatus.COMPLETED] * 3
        assert sorted(e.step_id for e in provider.ledger) == sorted(CHECKOUT_STEPS * 3)
        stats = worker.stats
        assert (stats.claimed, stats.finished, stats.failed, stats.in_hand) == (3, 3, 0, 0)
        assert worker.run_once() == 0


def test_n_runs_are_driven_in_parallel(store: JournalStore, clock: FakeClock) -> None:
    """Each step waits at a barrier of N: only N runs driven at once get past it."""
    n = 4
    barrier = threading.Barrier(n, timeout=WAIT_S)

    def meet(ctx: StepContext) -> dict[str, int]:
        return {"arrived": barrier.wait()}

    saga = _one_step(meet)
    with _engine(store, clock) as engine, Worker(engine, concurrency=n, batch=n) as worker:
        for number in range(n):
            engine.submit(saga, operation_id=f"op-{number}")

        assert worker.run_once() == n

    snapshots = [store.load(f"op-{number}") for number in range(n)]
    assert [s.run.status for s in snapshots] == [RunStatus.COMPLETED] * n
    assert sorted(s.step("only").result["arrived"] for s in snapshots) == list(range(n))


def test_stop_drains_the_run_in_hand_and_claims_nothing_more(
    store: JournalStore, clock: FakeClock
) -> None:
    entered, release = threading.Event(), threading.Event()

    def held(ctx: StepContext) -> dict[str, str]:
        if ctx.operation_id == "first":
            entered.set()
            assert release.wait(WAIT_S), "the test never let the step go"
        return {"done": ctx.operation_id}

    saga = _one_step(held)
    with _engine(store, clock) as engine:
        worker = Worker(engine, concurrency=1, interval_s=0.05)
        engine.submit(saga, operation_id="first")
        thread = _in_thread(worker)
        assert entered.wait(WAIT_S)

        worker.stop()
        engine.submit(saga, operation_id="second")
        assert thread.is_alive(), "run() waits for the step in flight"
        release.set()
        thread.join(WAIT_S)

        assert not thread.is_alive()
        first = store.load("first").run
        assert (first.status, first.owner, first.lease_expires_at) == (
            RunStatus.COMPLETED,
            None,
            None,
        )
        second = store.load("second").run
        assert (second.owner, second.fencing_token) == (None, 0), "never claimed"
        worker.close()


class PoisonLoads:
    """A store whose ``load`` of one run raises what no engine code expects."""

    def __init__(self, inner: JournalStore, poison: str) -> None:
        self._inner, self._poison = inner, poison

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def load(self, operation_id: str) -> RunSnapshot:
        if operation_id == self._poison:
            raise ValueError(f"cannot read {operation_id}")
        return self._inner.load(operation_id)


def test_a_poison_run_does_not_stop_the_worker(
    store: JournalStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    provider = Provider()
    saga = checkout(provider)
    with _engine(store, clock) as submitter:
        for op in ("good-1", "poison", "good-2"):
            submitter.submit(saga, operation_id=op)
    with (
        _engine(PoisonLoads(store, "poison"), clock, sagas=[saga]) as engine,  # type: ignore[arg-type]
        Worker(engine, concurrency=1, batch=10) as worker,
    ):
        assert worker.run_once() == 3

        assert store.load("good-1").run.status is RunStatus.COMPLETED
        assert store.load("good-2").run.status is RunStatus.COMPLETED
        assert (worker.stats.finished, worker.stats.failed) == (2, 1)
    assert "run poison raised; the worker goes on" in caplog.text


class AwayAtFirst:
    """A store whose first ``claims`` claims fail as a journal that is away fails."""

    def __init__(self, inner: JournalStore, claims: int) -> None:
        self._inner, self.failures_left = inner, claims

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def claim_expired(self, **arguments: Any) -> list[Claim]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise StoreError("journal unavailable: connection refused")
        return self._inner.claim_expired(**arguments)


def test_a_journal_that_is_away_is_retried_next_pass(store: JournalStore, clock: FakeClock) -> None:
    done = threading.Event()

    def finish(ctx: StepContext) -> None:
        done.set()

    saga = _one_step(finish)
    away = AwayAtFirst(store, claims=2)
    with _engine(away, clock, sagas=[saga]) as engine:  # type: ignore[arg-type]
        engine.submit(saga, operation_id="op-1")
        worker = Worker(engine, interval_s=0.05)
        thread = _in_thread(worker)

        assert done.wait(WAIT_S)
        worker.stop()
        thread.join(WAIT_S)
        worker.close()

    assert store.load("op-1").run.status is RunStatus.COMPLETED
    assert (worker.stats.pass_errors, away.failures_left) == (2, 0)


def test_runs_of_versions_the_worker_lacks_are_never_claimed(
    store: JournalStore, clock: FakeClock
) -> None:
    old, new = (_one_step(lambda ctx: None, version=v) for v in ("1", "2"))
    with _engine(store, clock) as submitter:
        submitter.submit(old, operation_id="old")
        submitter.submit(new, operation_id="new")
    untouched = store.load("old"), store.events("old")
    with _engine(store, clock, sagas=[new]) as engine, Worker(engine) as worker:
        assert worker.run_once() == 1
        clock.advance(3600)  # any lease would have run out by now
        assert worker.run_once() == 0

    assert store.load("new").run.status is RunStatus.COMPLETED
    assert (store.load("old"), store.events("old")) == untouched


def test_a_submit_wakes_an_idle_worker_at_once(store: JournalStore, clock: FakeClock) -> None:
    """The worker's interval is far longer than the test waits: only a wake-up finishes a run.

    Lined up as :mod:`tests.waking` says.
    """
    done = threading.Event()

    def finish(ctx: StepContext) -> None:
        done.set()

    saga = _one_step(finish)
    waits = SaysWhenIdle(store)
    with _engine(waits, clock, sagas=[saga]) as engine:  # type: ignore[arg-type]
        worker = Worker(engine, interval_s=600)
        thread = _in_thread(worker)
        try:
            assert waits.waiting.wait(WAIT_S)
            submit_until(done, lambda op: engine.submit(saga, operation_id=op))
            assert done.is_set(), "the idle worker was not woken"
        finally:
            worker.stop()
            thread.join(WAIT_S)
            worker.close()
