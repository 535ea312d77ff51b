"""Async steps: run on the caller's loop by the async engine, and by the sync engine too."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sagaguard import StepFailed
from sagaguard.engine import Applied, Engine, NotApplied, Saga, StepContext
from sagaguard.storage import RunStatus


def _async_saga(events: list[str]) -> Saga:
    saga = Saga("async-checkout", defaults={"timeout": "1s"})
    charges: dict[str, str] = {}

    @saga.step(changes=["reservation"], idempotent="yes")
    async def reserve(ctx: StepContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        events.append("reserve")
        return {"reservation_id": "r1"}

    @reserve.compensate
    async def release(ctx: StepContext) -> None:
        """Release the reservation"""
        events.append(f"release:{ctx.result['reservation_id']}")

    @saga.step(changes=["payment"], idempotent="no", external_id="payment_id")
    async def charge(ctx: StepContext) -> dict[str, Any]:
        events.append("charge")
        charges[ctx.idempotency_key] = "ch_1"
        if ctx.input.get("hang"):
            await asyncio.sleep(10)
        return {"payment_id": "ch_1"}

    @charge.verify
    async def find_charge(ctx: StepContext) -> Applied | NotApplied:
        """Find the charge by idempotency key"""
        events.append("verify")
        found = charges.get(ctx.idempotency_key)
        return Applied({"payment_id": found}) if found else NotApplied()

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund"""
        events.append(f"refund:{ctx.external_id}")

    @saga.step(changes=["external_api"], idempotent="yes", max_attempts=1)
    def ship(ctx: StepContext) -> None:
        events.append("ship")
        if ctx.input.get("fail"):
            raise StepFailed("no courier")

    return saga


def test_run_async_executes_coroutine_steps_and_compensations(engine: Engine) -> None:
    events: list[str] = []
    snapshot = asyncio.run(
        engine.run_async(_async_saga(events), operation_id="a-1", input={"fail": True})
    )
    assert snapshot.run.status is RunStatus.COMPENSATED
    assert events == ["reserve", "charge", "ship", "refund:ch_1", "release:r1"]


def test_async_step_timeout_is_cancelled_and_verified(engine: Engine) -> None:
    events: list[str] = []
    saga = _async_saga(events)
    saga._definitions[1].fields["timeout"] = "50ms"
    saga._invalidate()
    snapshot = asyncio.run(engine.run_async(saga, operation_id="a-2", input={"hang": True}))
    assert snapshot.run.status is RunStatus.COMPLETED
    assert events == ["reserve", "charge", "verify", "ship"]


def test_sync_engine_runs_async_steps(engine: Engine) -> None:
    events: list[str] = []
    snapshot = engine.run(_async_saga(events), operation_id="a-3", input={})
    assert snapshot.run.status is RunStatus.COMPLETED
    assert events == ["reserve", "charge", "ship"]


def test_run_async_again_returns_the_run_and_calls_nothing(engine: Engine) -> None:
    """The same operation id through the async engine: the recorded run, no second call."""
    events: list[str] = []
    saga = _async_saga(events)
    first = asyncio.run(engine.run_async(saga, operation_id="a-4", input={}))
    again = asyncio.run(engine.run_async(saga, operation_id="a-4", input={}))
    assert first.run.status is again.run.status is RunStatus.COMPLETED
    assert again.run.updated_at == first.run.updated_at
    assert events == ["reserve", "charge", "ship"]


def test_a_hung_sync_step_under_the_async_engine_is_not_verified_blind(engine: Engine) -> None:
    """A sync call still running at its timeout may yet charge: a person decides."""
    release = threading.Event()
    calls: list[str] = []
    saga = Saga("async-hung", defaults={"timeout": "0.2s"})

    @saga.step(changes=["payment"], idempotent="no")
    def charge(ctx: StepContext) -> None:
        calls.append("charge")
        release.wait(10)

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund"""

    @charge.verify
    def find(ctx: StepContext) -> Applied | NotApplied:
        calls.append("verify")
        return NotApplied()

    snapshot = asyncio.run(engine.run_async(saga, operation_id="a-5", input={}))
    release.set()
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert calls == ["charge"]
