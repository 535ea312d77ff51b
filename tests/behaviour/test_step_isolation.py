"""Steps get copies: nothing a step does to its context changes what the journal says.

A step that mutates ``ctx.input`` or an earlier step's ``ctx.results`` changes only its own
copy: later steps and compensations see what the journal holds, and the caller's own input
object is untouched (so resubmitting it is a duplicate, not a conflict).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage import RunStatus


def _saga(seen: dict[str, Any]) -> Saga:
    saga = Saga("isolated", defaults={"max_attempts": 1})

    @saga.step(changes=["payment"], idempotent="yes", external_id="payment_id")
    def charge(ctx: StepContext) -> dict[str, Any]:
        amount = ctx.input["amount"]  # type: ignore[index, call-overload]
        ctx.input["amount"] = 0  # type: ignore[index]
        ctx.input["items"].append("stolen")  # type: ignore[index, call-overload, union-attr]
        return {"payment_id": "pay-1", "amount": amount}

    charge.compensate(lambda ctx: None)

    @saga.step(changes=["external_api"], idempotent="yes", compensation="none")
    def ship(ctx: StepContext) -> None:
        seen["ship_input"] = ctx.input
        ctx.results["charge"]["amount"] = 1  # type: ignore[index]

    @saga.step(changes=["email"], idempotent="yes", compensation="none")
    def notify(ctx: StepContext) -> None:
        seen["notify_results"] = ctx.results["charge"]

    return saga


def test_a_step_mutating_its_input_and_results_changes_nothing_the_journal_holds(
    engine: Engine,
) -> None:
    seen: dict[str, Any] = {}
    given = {"amount": 25, "items": ["book"]}
    saga = _saga(seen)

    snapshot = engine.run(saga, operation_id="op-1", input=given)

    assert given == {"amount": 25, "items": ["book"]}, "the caller's object is untouched"
    assert snapshot.run.input == {"amount": 25, "items": ["book"]}
    assert seen["ship_input"] == {"amount": 25, "items": ["book"]}, "a later step sees the input"
    assert snapshot.step("charge").result == {"payment_id": "pay-1", "amount": 25}
    assert seen["notify_results"] == {"payment_id": "pay-1", "amount": 25}
    again = engine.run(saga, operation_id="op-1", input=given)
    assert again.run.status is snapshot.run.status, "the same input is a duplicate, no conflict"


def test_a_compensation_gets_the_result_as_journaled(engine: Engine) -> None:
    seen: dict[str, Any] = {}
    saga = Saga("isolated_refund", defaults={"max_attempts": 1})

    @saga.step(changes=["payment"], idempotent="yes")
    def charge(ctx: StepContext) -> dict[str, Any]:
        return {"amount": 25}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        seen["refund_amount"] = ctx.result["amount"]  # type: ignore[index, call-overload]

    @saga.step(changes=["external_api"], idempotent="yes")
    def ship(ctx: StepContext) -> None:
        ctx.results["charge"]["amount"] = 1_000_000  # type: ignore[index]
        raise_failed()

    ship.compensate(lambda ctx: None)

    snapshot = engine.run(saga, operation_id="op-2")

    assert snapshot.run.status is RunStatus.COMPENSATED
    assert seen["refund_amount"] == 25, "the refund is of the amount the journal holds"


def test_an_async_step_gets_copies_too(engine: Engine) -> None:
    saga = Saga("isolated_async", defaults={"max_attempts": 1})
    seen: dict[str, Any] = {}

    @saga.step(changes=["database"], idempotent="yes", compensation="none")
    async def first(ctx: StepContext) -> None:
        ctx.input["n"] = 2  # type: ignore[index]

    @saga.step(changes=["database"], idempotent="yes", compensation="none")
    async def second(ctx: StepContext) -> None:
        seen["n"] = ctx.input["n"]  # type: ignore[index, call-overload]

    given = {"n": 1}
    asyncio.run(engine.run_async(saga, operation_id="op-3", input=given))

    assert given == {"n": 1}
    assert seen["n"] == 1


def raise_failed() -> None:
    from sagaguard import StepFailed

    raise StepFailed("no courier", retry=False)
