"""The caller seam: ``Engine(caller=...)`` makes every call of user code and its outcome rules."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sagaguard.engine import (
    Applied,
    Call,
    Engine,
    NotApplied,
    Outcome,
    OutcomeKind,
    Saga,
    StepContext,
)
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from tests.behaviour.sagas import FakeClock


class ScriptedCaller:
    """Calls in this thread, except where ``answers`` says what the call answers instead."""

    def __init__(self, answers: dict[tuple[str, str, int], Callable[[Call], Outcome]]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str, int, str]] = []

    def call(self, request: Call) -> Outcome:
        ctx = request.ctx
        role = getattr(request.fn, "__name__", "?")
        self.seen.append((ctx.step_id, role, ctx.attempt, threading.current_thread().name))
        answer = self.answers.get((ctx.step_id, role, ctx.attempt))
        if answer is not None:
            return answer(request)
        try:
            return Outcome(OutcomeKind.OK, value=request.fn(ctx))
        except Exception as exc:
            return Outcome.of_exception(exc)


def _shop(effects: dict[str, int]) -> Saga:
    saga = Saga("seam", defaults={"max_attempts": 2, "timeout": "5s", "backoff_base": "1ms"})

    @saga.step(changes=["reservation"], idempotent="yes", external_id="hold_id")
    def reserve(ctx: StepContext) -> dict[str, str]:
        effects[ctx.idempotency_key] = effects.get(ctx.idempotency_key, 0) + 1
        return {"hold_id": "h1"}

    @reserve.compensate
    def release(ctx: StepContext) -> None:
        """Release the hold."""
        effects[ctx.idempotency_key] -= 1

    @saga.step(changes=["payment"], idempotent="no", external_id="payment_id")
    def charge(ctx: StepContext) -> dict[str, str]:
        effects[ctx.idempotency_key] = effects.get(ctx.idempotency_key, 0) + 1
        return {"payment_id": "p1"}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund the charge."""

    @charge.verify
    def find(ctx: StepContext) -> Applied | NotApplied:
        if effects.get(ctx.idempotency_key):
            return Applied({"payment_id": "p1"})
        return NotApplied("no charge")

    return saga


def _lose_answer(request: Call) -> Outcome:
    request.fn(request.ctx)  # the effect happens; the answer never arrives
    return Outcome(OutcomeKind.UNKNOWN, reason="timed out (scripted)")


def test_an_injected_caller_makes_every_call_and_its_outcome_is_what_the_engine_acts_on(
    store: JournalStore, clock: FakeClock
) -> None:
    """A lost answer the caller reports is verified through the same caller, in this thread."""
    effects: dict[str, int] = {}
    caller = ScriptedCaller({("charge", "charge", 1): _lose_answer})
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e", caller=caller) as engine:
        snapshot = engine.run(_shop(effects), operation_id="op-seam", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    assert snapshot.step("charge").external_id == "p1"
    assert [(s, role, n) for s, role, n, _ in caller.seen] == [
        ("reserve", "reserve", 1),
        ("charge", "charge", 1),
        ("charge", "find", 1),
    ]
    here = threading.current_thread().name
    assert {thread for *_, thread in caller.seen} == {here}, "no pool thread was used"
    assert effects == {"op-seam:reserve": 1, "op-seam:charge": 1}, "charged once"


def test_a_refusal_from_the_caller_rolls_back_through_the_caller(
    store: JournalStore, clock: FakeClock
) -> None:
    effects: dict[str, int] = {}
    refused = Outcome(OutcomeKind.FAILED, reason="declined (scripted)", retryable=False)
    caller = ScriptedCaller({("charge", "charge", 1): lambda request: refused})
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e", caller=caller) as engine:
        snapshot = engine.run(_shop(effects), operation_id="op-refused", input=None)

    assert snapshot.run.status is RunStatus.COMPENSATED
    assert snapshot.step("charge").status is StepStatus.FAILED
    assert snapshot.step("reserve").status is StepStatus.COMPENSATED
    assert [(s, role) for s, role, *_ in caller.seen] == [
        ("reserve", "reserve"),
        ("charge", "charge"),
        ("reserve", "release"),
    ]
    assert effects == {"op-refused:reserve": 0}, "the charge was never made, the hold undone"


def test_the_async_engine_uses_an_injected_caller_too(
    store: JournalStore, clock: FakeClock
) -> None:
    effects: dict[str, int] = {}
    caller = ScriptedCaller({("charge", "charge", 1): _lose_answer})

    async def main() -> Any:
        with Engine(
            store=store, clock=clock, sleep=clock.sleep, owner="e", caller=caller
        ) as engine:
            return await engine.run_async(_shop(effects), operation_id="op-async", input=None)

    snapshot = asyncio.run(main())
    assert snapshot.run.status is RunStatus.COMPLETED
    assert [role for _, role, *_ in caller.seen] == ["reserve", "charge", "find"]
