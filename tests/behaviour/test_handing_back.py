"""``Engine.hand_back``: a caller that stops journals what its call told and lets the run go.

After a Ctrl-C during a sync step, the call goes on in its call thread. Handing the run back
waits for it, journals its outcome and what follows from it without a call, and releases
the lease: another owner then continues at once, with no verify and no second charge. A call
that has not returned keeps the lease: nobody else may verify or repeat it while it runs.
"""

from __future__ import annotations

import _thread
import asyncio
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.engine.handing_back import HandBack
from sagaguard.storage import JournalStore, RunSnapshot, RunStatus, StepStatus
from sagaguard.testing import Behaviour, FakeProvider
from tests.behaviour.interrupting import WAIT_S, Gate, Interrupter


class World:
    """Two providers (stock, then payment) and the gate the first charge waits at."""

    def __init__(self) -> None:
        self.stock = FakeProvider("stock")
        self.psp = FakeProvider("psp", honours_keys=False)
        self.gate = Gate()
        self.shipped: list[int] = []

    def saga(self) -> Saga:
        saga = Saga("handing_back", defaults={"timeout": "30s"})
        reserve = saga.step(id="reserve", changes=["reservation"], idempotent="yes")(
            self.stock.call
        )
        reserve.compensate(self.stock.compensate)

        def charge(ctx: StepContext) -> Any:
            if ctx.attempt == 1:
                self.gate.hold(ctx)
            return self.psp.call(ctx)

        step = saga.step(changes=["payment"], idempotent="no", external_id="charge_id")(charge)
        step.compensate(self.psp.compensate)
        step.verify(self.psp.lookup)

        @saga.step(changes=["external_api"], idempotent="yes", compensation="none")
        def ship(ctx: StepContext) -> dict[str, str]:
            self.shipped.append(ctx.attempt)
            return {"ship_id": "s-1"}

        return saga

    def calls(self, provider: FakeProvider, kind: str) -> int:
        return len(provider.ledger.select(kind=kind))


@pytest.fixture
def world() -> World:
    """Fresh providers and gate."""
    return World()


@pytest.fixture
def engine(store: JournalStore) -> Iterator[Engine]:
    """An engine on the real clock: the interrupted call runs on a real thread."""
    with Engine(store=store, owner="cli", lease_s=60) as running:
        yield running


def _interrupted_run(engine: Engine, world: World, op: str) -> Saga:
    """Start ``op``; a Ctrl-C reaches the caller while the charge waits at the gate."""
    saga = world.saga()
    interrupter = Interrupter(world.gate)
    with pytest.raises(KeyboardInterrupt):
        engine.run(saga, operation_id=op, input={"amount": 5})
    interrupter.join()
    return saga


def _handed_back(engine: Engine, world: World, op: str) -> tuple[Saga, RunSnapshot]:
    """Interrupt ``op`` at the charge, let the charge return, hand the run back."""
    saga = _interrupted_run(engine, world, op)
    world.gate.open.set()
    handed = engine.hand_back(op, wait_s=WAIT_S)
    assert handed.result is HandBack.RELEASED
    assert handed.snapshot is not None
    assert handed.snapshot.run.owner is None, "released: no live owner left"
    return saga, handed.snapshot


def _another_owner(store: JournalStore, saga: Saga) -> Engine:
    return Engine(store=store, sagas=[saga], owner="next", lease_s=60)


def test_the_returned_charge_is_journaled_and_the_run_released_without_a_next_step(
    engine: Engine, world: World, store: JournalStore
) -> None:
    saga, run = _handed_back(engine, world, "op-1")

    assert run.run.status is RunStatus.RUNNING
    assert run.step("charge").status is StepStatus.COMPLETED
    assert run.step("charge").external_id == world.psp.effects()[0].result["charge_id"]
    assert run.step("ship").status is StepStatus.PENDING, "no next step was started"
    assert world.shipped == []

    with _another_owner(store, saga) as following:
        done = following.run(saga, operation_id="op-1", input={"amount": 5})
    assert done.run.status is RunStatus.COMPLETED, "taken up at once, not 'a live owner'"
    assert world.calls(world.psp, "call") == 1, "charged exactly once"
    assert world.calls(world.psp, "verify") == 0, "its own answer settled it"
    assert world.shipped == [1]


def test_a_refused_charge_starts_the_rollback_but_compensates_nothing(
    engine: Engine, world: World, store: JournalStore
) -> None:
    world.psp.script("charge", Behaviour.REFUSE)
    saga, run = _handed_back(engine, world, "op-2")

    assert run.run.status is RunStatus.COMPENSATING, "the refusal's consequence"
    assert run.step("charge").status is StepStatus.FAILED
    assert run.step("reserve").status is StepStatus.COMPLETED
    assert world.calls(world.stock, "compensate") == 0, "the compensation is the next owner's"

    with _another_owner(store, saga) as following:
        done = following.resume("op-2")
    assert done.run.status is RunStatus.COMPENSATED
    assert world.calls(world.psp, "call") == 1, "a refusal is never retried"
    assert world.calls(world.stock, "compensate") == 1


def test_an_unknown_outcome_is_journaled_and_verify_left_to_the_next_owner(
    engine: Engine, world: World, store: JournalStore
) -> None:
    world.psp.script("charge", Behaviour.APPLY_THEN_TIMEOUT)
    saga, run = _handed_back(engine, world, "op-3")

    assert run.step("charge").status is StepStatus.UNKNOWN
    assert world.calls(world.psp, "verify") == 0, "no verify before the hand-back"

    with _another_owner(store, saga) as worker:
        [done] = worker.recover()  # a worker on the real clock: no lease to wait out
    assert done.run.status is RunStatus.COMPLETED
    assert world.calls(world.psp, "verify") == 1, "the next owner verified it"
    assert world.calls(world.psp, "call") == 1, "found applied: never charged again"


def test_a_caller_stopped_between_attempts_hands_back_without_the_retry(
    store: JournalStore, world: World
) -> None:
    """Interrupted in the backoff after a definite failure: the retry is the next owner's.

    The backoff is jittered from zero and counts from the failed attempt's journaled start,
    so a short draw could be over before the engine looks: this one draws its longest (the
    default 0.2 s).
    """
    world.psp.script("charge", Behaviour.FAIL)
    world.gate.open.set()
    saga = world.saga()

    def interrupted_sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    with Engine(store=store, owner="cli", sleep=interrupted_sleep, rng=_Longest()) as engine:
        with pytest.raises(KeyboardInterrupt):
            engine.run(saga, operation_id="op-7", input={"amount": 5})
        handed = engine.hand_back("op-7", wait_s=0.0)

    assert handed.result is HandBack.RELEASED
    assert handed.snapshot is not None
    charge = handed.snapshot.step("charge")
    assert charge.status is StepStatus.FAILED
    assert charge.attempts == 1, "no attempt was journaled for the retry it did not make"
    assert handed.snapshot.run.owner is None
    with _another_owner(store, saga) as following:
        done = following.resume("op-7")
    assert done.run.status is RunStatus.COMPLETED
    assert done.step("charge").attempts == 2
    assert world.calls(world.psp, "call") == 2, "the failed call, then the retry"


def test_a_call_still_running_keeps_the_lease_until_it_returns(
    engine: Engine, world: World, store: JournalStore
) -> None:
    saga = _interrupted_run(engine, world, "op-4")

    kept = engine.hand_back("op-4", wait_s=0.0)

    assert kept.result is HandBack.IN_FLIGHT
    assert kept.snapshot is not None
    assert kept.snapshot.run.owner == "cli", "nobody may verify or repeat a running charge"
    with _another_owner(store, saga) as following:
        busy = following.run(saga, operation_id="op-4", input={"amount": 5})
        assert busy.run.status is RunStatus.RUNNING
        assert following.recover() == [], "its lease is live"
    assert world.calls(world.psp, "verify") == 0

    world.gate.open.set()
    released = engine.hand_back("op-4", wait_s=WAIT_S)

    assert released.result is HandBack.RELEASED
    assert released.snapshot is not None
    assert released.snapshot.step("charge").status is StepStatus.COMPLETED
    assert world.calls(world.psp, "call") == 1


def test_a_run_the_engine_does_not_hold_is_left_alone(
    engine: Engine, world: World, store: JournalStore
) -> None:
    saga = world.saga()
    world.gate.open.set()
    done = engine.run(saga, operation_id="op-5", input={"amount": 5})
    events = len(store.events("op-5"))

    assert engine.hand_back("op-5", wait_s=0.0).result is HandBack.NOT_HELD
    assert engine.hand_back("never-ran", wait_s=0.0).snapshot is None
    assert len(store.events("op-5")) == events, "nothing journaled"
    assert done.run.status is RunStatus.COMPLETED


def test_a_cancelled_run_async_is_handed_back_the_same_way(
    engine: Engine, world: World, store: JournalStore
) -> None:
    saga = world.saga()

    async def client() -> HandBack:
        request = asyncio.create_task(engine.run_async(saga, operation_id="op-6"))
        await asyncio.to_thread(world.gate.entered.wait, WAIT_S)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        world.gate.open.set()
        return (await engine.hand_back_async("op-6", wait_s=WAIT_S)).result

    assert asyncio.run(client()) is HandBack.RELEASED
    charge = store.load("op-6").step("charge")
    assert charge.status is StepStatus.COMPLETED
    assert store.load("op-6").run.owner is None


def test_an_interrupt_right_after_the_call_was_submitted_never_loses_the_call(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interrupt lands between the hand-off to a call thread and its return.

    Whether the call's thread started or not, the hand-back must know of it: it keeps the
    lease while the charge may run, or withdraws the call so that it never runs.
    """
    saga = world.saga()
    threads = engine._caller._threads
    submit = threads.submit

    def submit_then_interrupt(task: Any) -> None:
        submit(task)
        raise KeyboardInterrupt

    world.gate.open.set()
    engine.run(saga, operation_id="warm-up", input={"amount": 1})  # reserve, charge, ship done
    charges_before = world.calls(world.psp, "call")
    world.gate.open.clear()
    monkeypatch.setattr(threads, "submit", submit_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        engine.run(saga, operation_id="op-8", input={"amount": 5})  # the reserve's submit
    monkeypatch.setattr(threads, "submit", submit)

    handed = engine.hand_back("op-8", wait_s=0.0)
    world.gate.open.set()
    threads.close()
    threads.join()  # every call that started has ended

    assert handed.snapshot is not None
    reserve = handed.snapshot.step("reserve")
    ran = len(world.stock.ledger.select(kind="call")) - 1  # the warm-up's reserve
    if handed.result is HandBack.RELEASED:
        assert ran == 0, "released while the call could still run"
        assert reserve.status is StepStatus.FAILED
        assert "withdrawn" in (reserve.failure_reason or "")
    else:
        assert handed.result is HandBack.IN_FLIGHT
        assert handed.snapshot.run.owner == "cli"
    assert world.calls(world.psp, "call") == charges_before


def test_an_interrupt_that_lands_before_the_wait_blocks_is_felt_while_the_call_runs(
    engine: Engine, world: World
) -> None:
    """A signal handled just before the caller blocks on the call wakes nothing; the wait
    must still see it soon, not at the call's timeout (30 s here) when the step is done.

    ``_thread.interrupt_main`` stands for that signal: it marks the interrupt as pending in
    the main thread without waking it, as a signal landing before the wait began does.
    """
    saga = world.saga()

    def interrupt_once_inside() -> None:
        assert world.gate.entered.wait(WAIT_S)
        _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_once_inside)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        engine.run(saga, operation_id="op-9", input={"amount": 5})
    interrupter.join()

    assert not world.gate.open.is_set()
    assert engine.hand_back("op-9", wait_s=0.0).result is HandBack.IN_FLIGHT, (
        "interrupted while the charge still ran"
    )
    world.gate.open.set()
    assert engine.hand_back("op-9", wait_s=WAIT_S).result is HandBack.RELEASED


class _Longest(random.Random):
    """A jitter that always draws the longest wait."""

    def uniform(self, a: float, b: float) -> float:
        return b
