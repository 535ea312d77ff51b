"""A step that raises ``SystemExit`` or ``KeyboardInterrupt`` ends its call, not the caller.

On a pool thread such an exception can only come from the step itself (signals reach the
main thread alone). Let out, it would end the caller's process with the run ``running`` and
its lease held; instead its outcome is unknown, like any other error of user code, and the
rulebook decides: a retry for an idempotent step, a person for one nothing can verify.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from sagaguard.vocabulary import EventKind
from tests.behaviour.sagas import FakeClock


def _interrupt() -> None:
    raise KeyboardInterrupt


EXITS = [
    pytest.param(lambda: sys.exit(3), "SystemExit: 3", id="sys.exit(3)"),
    pytest.param(lambda: sys.exit(), "SystemExit", id="sys.exit()"),
    pytest.param(_interrupt, "KeyboardInterrupt", id="KeyboardInterrupt"),
]


def _saga(
    name: str, raise_exit: Any, *, idempotent: str, calls: list[int], coroutine: bool = False
) -> Saga:
    saga = Saga(name, defaults={"timeout": "5s", "max_attempts": 3})

    def call(ctx: StepContext) -> dict[str, str]:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise_exit()
        return {"charge_id": "ch-1"}

    async def call_async(ctx: StepContext) -> dict[str, str]:
        return call(ctx)

    step = saga.step(id="charge", changes=["payment"], idempotent=idempotent)
    charge = step(call_async if coroutine else call)

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund the charge."""

    return saga


def _unknown_reasons(store: JournalStore, op: str) -> list[str]:
    return [
        e.reason or ""
        for e in store.events(op)
        if e.kind == EventKind.OUTCOME_UNKNOWN and e.step_id == "charge"
    ]


@pytest.mark.parametrize(
    ("coroutine", "is_async"),
    [(False, False), (False, True), (True, False)],
    ids=["sync-step-run", "sync-step-run_async", "async-step-run"],
)
@pytest.mark.parametrize(("raise_exit", "named"), EXITS)
def test_an_idempotent_step_that_raises_an_exit_is_unknown_and_retried(
    store: JournalStore,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    raise_exit: Any,
    named: str,
    coroutine: bool,
    is_async: bool,
) -> None:
    """Wherever the step runs on a pool thread: the async engine's sync steps, and the sync
    engine's async steps (on the thread's own loop, which must not log the exit either)."""
    calls: list[int] = []
    saga = _saga("exits", raise_exit, idempotent="yes", calls=calls, coroutine=coroutine)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        if is_async:
            snapshot = asyncio.run(engine.run_async(saga, operation_id="op-exit"))
        else:
            snapshot = engine.run(saga, operation_id="op-exit")

    assert "never retrieved" not in caplog.text

    assert snapshot.run.status is RunStatus.COMPLETED
    assert calls == [1, 2], "the unknown outcome of an idempotent step is retried"
    assert snapshot.run.owner is None
    [reason] = _unknown_reasons(store, "op-exit")
    assert f"the step raised {named}" in reason


def test_an_exit_of_a_step_nothing_can_verify_goes_to_a_person(
    store: JournalStore, clock: FakeClock
) -> None:
    calls: list[int] = []
    saga = _saga("exit_unverifiable", lambda: sys.exit(3), idempotent="no", calls=calls)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        snapshot = engine.run(saga, operation_id="op-exit")

    assert calls == [1], "a repeat could charge twice"
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    charge = snapshot.step("charge")
    assert charge.status is StepStatus.NEEDS_MANUAL_REVIEW
    assert "SystemExit: 3" in (charge.failure_reason or "")
    assert snapshot.run.owner is None
