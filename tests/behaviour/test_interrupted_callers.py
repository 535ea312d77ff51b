"""A caller that gives up (Ctrl-C, a cancelled task) never makes the engine charge twice.

The sync call it gave up on goes on in its call thread: it is *in flight*. Until it returned,
a second ``run`` or ``resume`` of the operation on the same engine reports the run as in
progress (status ``running``) and calls nothing; once it returned, its outcome is journaled
and the run continues, without a verify and without a repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from sagaguard.testing import Behaviour, FakeProvider
from tests.behaviour.interrupting import WAIT_S, Gate, Interrupter


def _checkout(psp: FakeProvider, gate: Gate, **defaults: Any) -> Saga:
    saga = Saga("interrupted", defaults={"timeout": "30s", **defaults})

    def charge(ctx: StepContext) -> Any:
        if ctx.attempt == 1:
            gate.hold(ctx)
        return psp.call(ctx)

    step = saga.step(changes=["payment"], idempotent="no", external_id="charge_id")(charge)
    step.compensate(psp.compensate)
    step.verify(psp.lookup)
    saga.step(id="ship", changes=["external_api"], idempotent="yes", compensation="none")(
        lambda ctx: {"ship_id": "s-1"}
    )
    return saga


@pytest.fixture
def psp() -> FakeProvider:
    """A provider that charges again on every call (it does not honour keys)."""
    return FakeProvider("psp", honours_keys=False)


@pytest.fixture
def real_engine(store: JournalStore) -> Iterator[Engine]:
    """An engine on the real clock: the in-flight call runs on a real thread."""
    with Engine(store=store, owner="web", lease_s=60) as engine:
        yield engine


def test_ctrl_c_during_a_sync_step_then_a_rerun_does_not_charge_twice(
    real_engine: Engine, psp: FakeProvider
) -> None:
    gate = Gate()
    saga = _checkout(psp, gate)
    interrupter = Interrupter(gate)
    with pytest.raises(KeyboardInterrupt):
        real_engine.run(saga, operation_id="op-1", input={"amount": 5})
    interrupter.join()

    again = real_engine.run(saga, operation_id="op-1", input={"amount": 5})
    assert again.run.status is RunStatus.RUNNING, "in progress: its call is in flight"
    assert again.step("charge").status is StepStatus.STARTED
    assert real_engine.resume("op-1").run.status is RunStatus.RUNNING
    assert real_engine.recover() == []

    gate.open.set()
    done = real_engine.run(saga, operation_id="op-1", input={"amount": 5}, wait_s=WAIT_S)

    assert done.run.status is RunStatus.COMPLETED
    assert len(psp.ledger.select(kind="call")) == 1, "charged exactly once"
    assert psp.ledger.select(kind="verify") == [], "its own answer settled it: no verify"
    assert [e.result for e in psp.effects()] == [done.step("charge").result]
    kinds = [str(e.kind) for e in real_engine.store.events("op-1")]
    assert kinds.count("step_started") == 2, "one charge attempt, one ship attempt"


def test_a_cancelled_run_async_during_a_sync_step_then_a_retry_does_not_charge_twice(
    real_engine: Engine, psp: FakeProvider
) -> None:
    gate = Gate()
    saga = _checkout(psp, gate)

    async def client() -> tuple[RunStatus, RunStatus]:
        request = asyncio.create_task(real_engine.run_async(saga, operation_id="op-2"))
        await asyncio.to_thread(gate.entered.wait, WAIT_S)
        request.cancel()  # what asyncio.wait_for does when the client's timeout expires
        with pytest.raises(asyncio.CancelledError):
            await request
        retried = await real_engine.run_async(saga, operation_id="op-2")
        gate.open.set()
        finished = await real_engine.run_async(saga, operation_id="op-2", wait_s=WAIT_S)
        return retried.run.status, finished.run.status

    retried, finished = asyncio.run(client())

    assert retried is RunStatus.RUNNING, "the retry saw the charge in flight"
    assert finished is RunStatus.COMPLETED
    assert len(psp.ledger.select(kind="call")) == 1, "charged exactly once"
    assert psp.ledger.select(kind="verify") == []


def test_an_abandoned_call_that_failed_is_journaled_as_its_failure(
    real_engine: Engine, psp: FakeProvider
) -> None:
    gate = Gate()
    psp.script("charge", Behaviour.REFUSE)
    saga = _checkout(psp, gate)
    interrupter = Interrupter(gate)
    with pytest.raises(KeyboardInterrupt):
        real_engine.run(saga, operation_id="op-3")
    interrupter.join()
    gate.open.set()

    done = real_engine.resume("op-3", wait_s=WAIT_S)

    assert done.run.status is RunStatus.FAILED
    assert len(psp.ledger.select(kind="call")) == 1
    assert "refuse" in (done.step("charge").failure_reason or "")


def test_a_ctrl_c_during_a_verify_journals_the_verify_answer(
    real_engine: Engine, psp: FakeProvider
) -> None:
    gate = Gate()
    psp.script("charge", Behaviour.APPLY_THEN_TIMEOUT)
    saga = Saga("interrupted_verify", defaults={"timeout": "30s"})

    def charge(ctx: StepContext) -> Any:
        return psp.call(ctx)

    def lookup(ctx: StepContext) -> Any:
        gate.hold(ctx)
        return psp.lookup(ctx)

    step = saga.step(changes=["payment"], idempotent="no")(charge)
    step.compensate(psp.compensate)
    step.verify(lookup)
    interrupter = Interrupter(gate)
    with pytest.raises(KeyboardInterrupt):
        real_engine.run(saga, operation_id="op-4")
    interrupter.join()
    assert real_engine.run(saga, operation_id="op-4").run.status is RunStatus.RUNNING
    gate.open.set()

    done = real_engine.run(saga, operation_id="op-4", wait_s=WAIT_S)

    assert done.run.status is RunStatus.COMPLETED
    assert len(psp.ledger.select(kind="call")) == 1
    assert len(psp.ledger.select(kind="verify")) == 1, "the abandoned verify's answer was used"
