"""``run()`` inside a running event loop refuses a saga with async steps, journaling nothing."""

from __future__ import annotations

import asyncio

import pytest

from sagaguard import RunNotFoundError
from sagaguard.engine import Engine, Saga, SimulatedCrash, StepContext
from sagaguard.exceptions import EngineUsageError
from sagaguard.storage import JournalStore, RunStatus
from sagaguard.testing import CrashAt
from tests.behaviour.sagas import FakeClock


def _saga(*, async_step: bool) -> Saga:
    saga = Saga("looped_async" if async_step else "looped_sync")
    calls: list[str] = []

    if async_step:

        @saga.step(changes=["payment"], idempotent="no", compensation="none")
        async def charge(ctx: StepContext) -> None:
            calls.append(ctx.step_id)

    else:

        @saga.step(changes=["payment"], idempotent="no", compensation="none")
        def charge(ctx: StepContext) -> None:
            calls.append(ctx.step_id)

    return saga


def test_run_inside_a_loop_with_async_steps_refuses_before_journaling(engine: Engine) -> None:
    saga = _saga(async_step=True)

    async def handler() -> None:
        with pytest.raises(EngineUsageError, match=r"run_async"):
            engine.run(saga, operation_id="op-1")

    asyncio.run(handler())

    with pytest.raises(RunNotFoundError):
        engine.store.load("op-1")
    assert asyncio.run(engine.run_async(saga, operation_id="op-1")).run.status is (
        RunStatus.COMPLETED
    )


def test_resume_inside_a_loop_with_async_steps_is_refused_too(
    store: JournalStore, clock: FakeClock
) -> None:
    saga = _saga(async_step=True)
    crashing = Engine(store=store, clock=clock, faults=CrashAt("before_call", times=1))
    with crashing, pytest.raises(SimulatedCrash):
        asyncio.run(crashing.run_async(saga, operation_id="op-2"))
    clock.advance(3600)
    events = len(store.events("op-2"))

    async def handler() -> None:
        engine = Engine(store=store, clock=clock, sagas=[saga])
        with engine, pytest.raises(EngineUsageError, match=r"run_async"):
            engine.resume("op-2")

    asyncio.run(handler())
    assert len(store.events("op-2")) == events, "nothing journaled, not even a claim"
    assert store.load("op-2").run.status is RunStatus.RUNNING


def test_run_inside_a_loop_with_sync_steps_still_runs(engine: Engine) -> None:
    saga = _saga(async_step=False)

    async def handler() -> RunStatus:
        return engine.run(saga, operation_id="op-3").run.status

    assert asyncio.run(handler()) is RunStatus.COMPLETED
