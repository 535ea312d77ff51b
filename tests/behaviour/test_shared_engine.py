"""One engine shared by threads, people resolving at once, and saga versions side by side."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sagaguard import OperationConflictError, RunNotFoundError
from sagaguard.engine import Applied, Engine, NotApplied, Saga, StepContext
from sagaguard.exceptions import ResolutionError
from sagaguard.storage import JournalStore, RunSnapshot, RunStatus, StepStatus
from tests.behaviour.sagas import FakeClock, Provider, checkout


def _slow_charge_saga(calls: list[int], entered: threading.Event, go: threading.Event) -> Saga:
    saga = Saga("slow", defaults={"timeout": "10s"})

    @saga.step(changes=["payment"], idempotent="no")
    def charge(ctx: StepContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        entered.set()
        go.wait(5)
        return {"payment_id": "p-1"}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund the charge."""

    @charge.verify
    def find(ctx: StepContext) -> Applied | NotApplied:
        return NotApplied("nothing under that key yet")

    return saga


def test_a_duplicate_run_on_the_same_engine_returns_the_run_and_calls_nothing(
    store: JournalStore, clock: FakeClock
) -> None:
    """The lease belongs to the engine, so only the engine can tell its two callers apart."""
    calls: list[int] = []
    entered, go = threading.Event(), threading.Event()
    saga = _slow_charge_saga(calls, entered, go)
    results: dict[str, Any] = {}
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="shared") as engine:

        def first() -> None:
            results["first"] = engine.run(saga, operation_id="op-dup", input={"n": 1})

        thread = threading.Thread(target=first)
        thread.start()
        assert entered.wait(5)
        duplicate = engine.run(saga, operation_id="op-dup", input={"n": 1})
        go.set()
        thread.join(10)

    assert calls == [1], "the charge ran once"
    assert duplicate.run.status is RunStatus.RUNNING
    assert duplicate.step("charge").status is StepStatus.STARTED
    assert results["first"].run.status is RunStatus.COMPLETED


def test_a_conflicting_input_is_refused_even_while_the_run_is_driven(
    store: JournalStore, clock: FakeClock
) -> None:
    calls: list[int] = []
    entered, go = threading.Event(), threading.Event()
    saga = _slow_charge_saga(calls, entered, go)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="shared") as engine:
        thread = threading.Thread(
            target=lambda: engine.run(saga, operation_id="op-c", input={"n": 1})
        )
        thread.start()
        assert entered.wait(5)
        with pytest.raises(OperationConflictError):
            engine.run(saga, operation_id="op-c", input={"n": 2})
        go.set()
        thread.join(10)
    assert calls == [1]


def test_many_threads_starting_one_operation_call_each_step_once(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    saga = checkout(provider)
    barrier = threading.Barrier(8)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="shared") as engine:

        def start() -> None:
            barrier.wait()
            engine.run(saga, operation_id="op-many", input=None)

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        final = engine.store.load("op-many")

    assert final.run.status is RunStatus.COMPLETED
    assert sorted(e.step_id for e in provider.ledger) == sorted(s.step_id for s in final.steps), (
        "every step called exactly once"
    )


def _waiting_for_review(engine: Engine, provider: Provider) -> Saga:
    provider.plan("charge_payment", "timeout_applied")
    saga = checkout(provider, payment_verify=False)
    snapshot = engine.run(saga, operation_id="op-r", input=None)
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    return saga


class FirstReadFrom:
    """A store whose first ``load`` returns an earlier snapshot: a read that a write overtook."""

    def __init__(self, inner: JournalStore, earlier: RunSnapshot) -> None:
        self._inner = inner
        self._earlier: RunSnapshot | None = earlier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def load(self, operation_id: str) -> RunSnapshot:
        earlier, self._earlier = self._earlier, None
        return earlier if earlier is not None else self._inner.load(operation_id)


def test_a_resolution_overtaken_by_another_is_refused(
    store: JournalStore, clock: FakeClock
) -> None:
    """Bob read the waiting step, then Ann resolved it: Bob's contrary finding must not land."""
    provider = Provider()
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        _waiting_for_review(engine, provider)
    read_by_bob = store.load("op-r")
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="ann") as ann:
        ann.resolve(
            "op-r",
            step_id="charge_payment",
            outcome="completed",
            by="ann",
            note="charge found",
            result={"charge_payment_id": "ch-1"},
            proceed=False,
        )
    bob = Engine(store=FirstReadFrom(store, read_by_bob), clock=clock, owner="bob")

    with pytest.raises(ResolutionError, match="not needs_manual_review"):
        bob.resolve(
            "op-r", step_id="charge_payment", outcome="not_applied", by="bob", note="no charge"
        )

    assert [e.reason for e in store.events("op-r") if e.kind == "resolved"] == [
        "completed by ann: charge found"
    ]
    assert store.load("op-r").step("charge_payment").status is StepStatus.COMPLETED
    assert store.load("op-r").run.owner is None, "bob's claim was given back"


def test_a_resolution_without_the_saga_still_records_the_external_id(
    store: JournalStore, clock: FakeClock
) -> None:
    """The journal knows which result field holds the id; the reviewer needs no code."""
    provider = Provider()
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        _waiting_for_review(engine, provider)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="reviewer") as bare:
        resolved = bare.resolve(
            "op-r",
            step_id="charge_payment",
            outcome="completed",
            by="ann",
            note="found it in the PSP dashboard",
            result={"charge_payment_id": "ch-42"},
        )
    assert resolved.step("charge_payment").external_id == "ch-42"
    assert resolved.run.status is RunStatus.RUNNING, "left for a worker that has the saga"


def _versioned(version: str, calls: list[str]) -> Saga:
    saga = Saga("versioned", version=version)

    @saga.step(changes=["database"], idempotent="yes")
    def write(ctx: StepContext) -> dict[str, str]:
        calls.append(f"v{version}")
        return {"v": version}

    @write.compensate
    def delete(ctx: StepContext) -> None:
        """Delete the row."""

    return saga


def test_a_run_resumes_only_on_the_version_it_started_with(
    store: JournalStore, clock: FakeClock
) -> None:
    calls: list[str] = []
    v1, v2 = _versioned("1", calls), _versioned("2", calls)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="dead", lease_s=10) as dead:
        created = dead.store.create_run(
            _new_run_of(v1, "op-v"), owner="dead", now=clock(), lease_s=10
        )
        assert created.created
    clock.advance(60)
    with Engine(store=store, clock=clock, sleep=clock.sleep, sagas=[v2], owner="new") as newer:
        with pytest.raises(RunNotFoundError, match=r"'versioned' v1.*has v2"):
            newer.resume("op-v")
        assert newer.recover() == []
        assert calls == []
    with Engine(store=store, clock=clock, sleep=clock.sleep, sagas=[v1, v2], owner="both") as both:
        clock.advance(60)
        [recovered] = both.recover()
    assert recovered.step("write").result == {"v": "1"}
    assert calls == ["v1"]


def test_a_refused_version_does_not_replace_the_one_the_engine_knows(
    store: JournalStore, clock: FakeClock
) -> None:
    calls: list[str] = []
    v1, v2 = _versioned("1", calls), _versioned("2", calls)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e", sagas=[v1]) as engine:
        engine.store.create_run(_new_run_of(v1, "op-x"), owner="gone", now=clock(), lease_s=1)
        with pytest.raises(OperationConflictError, match="v1, not v2"):
            engine.run(v2, operation_id="op-x", input=None)
        clock.advance(10)
        resumed = engine.resume("op-x")
    assert resumed.run.status is RunStatus.COMPLETED
    assert calls == ["v1"]


def _new_run_of(saga: Saga, operation_id: str) -> Any:
    from sagaguard.storage import NewRun

    return NewRun(
        operation_id=operation_id,
        process=saga.process.name,
        version=saga.process.version,
        input=None,
        step_ids=tuple(s.id for s in saga.process.steps),
    )
