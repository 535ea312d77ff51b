"""Poison runs: whatever a step, verify or the engine itself does, run() and recover() return.

A run that cannot go on is put into ``needs_manual_review`` with the error, so a worker goes
on with its other runs; a run whose saga changed under it is left alone with a clear error.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sagaguard import SagaDefinitionError, StepFailed
from sagaguard.engine import Applied, Engine, FaultPoint, RecordingNotifier, Saga, StepContext
from sagaguard.engine.faults import SimulatedCrash
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from sagaguard.testing import CrashAt
from tests.behaviour.sagas import FakeClock

DEPTH = 3000


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _one_step(call: Any, *, verify: Any = None, name: str = "poison", **fields: Any) -> Saga:
    saga = Saga(name, defaults={"max_attempts": 2, "timeout": "5s"})
    step = saga.step(id="charge", changes=["payment"], **fields)(call)
    step.compensate(lambda ctx: None)
    if verify is not None:
        step.verify(verify)
    return saga


def _engine(store: JournalStore, clock: FakeClock, **options: Any) -> Engine:
    return Engine(store=store, clock=clock, sleep=clock.sleep, lease_s=30, **options)


class Reason:
    """A reason object that is not text."""

    def __str__(self) -> str:
        return "card declined by issuer"


@pytest.mark.parametrize("reason", [ValueError("card declined by issuer"), Reason()], ids=repr)
def test_step_failed_with_any_reason_object_is_a_definite_failure_named_by_its_str(
    engine: Engine, reason: Any
) -> None:
    calls: list[int] = []

    def charge(ctx: StepContext) -> None:
        calls.append(ctx.attempt)
        raise StepFailed(reason, retry=False)

    snapshot = engine.run(_one_step(charge, idempotent="no"), operation_id="op-1")

    assert calls == [1], "a refusal is not repeated"
    assert snapshot.run.status is RunStatus.FAILED
    assert snapshot.step("charge").status is StepStatus.FAILED
    assert "card declined by issuer" in (snapshot.step("charge").failure_reason or "")


def test_a_result_nested_thousands_deep_sends_the_run_to_review(engine: Engine) -> None:
    snapshot = engine.run(
        _one_step(lambda ctx: _deep(DEPTH), idempotent="no"), operation_id="op-deep"
    )

    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    step = snapshot.step("charge")
    assert step.status is StepStatus.NEEDS_MANUAL_REVIEW
    assert "nested too deeply" in (step.failure_reason or "")
    assert snapshot.run.owner is None, "the run is handed back"


def test_a_result_no_journal_can_store_sends_the_run_to_review(engine: Engine) -> None:
    snapshot = engine.run(
        _one_step(lambda ctx: {"name": "lone \ud800 surrogate"}, idempotent="no"),
        operation_id="op-surrogate",
    )

    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert "surrogate" in (snapshot.step("charge").failure_reason or "")


def test_verify_applied_with_a_deep_result_sends_the_run_to_review_once(
    store: JournalStore, clock: FakeClock
) -> None:
    verifies: list[int] = []

    def charge(ctx: StepContext) -> None:
        raise TimeoutError("no answer")

    def find(ctx: StepContext) -> Applied:
        verifies.append(ctx.attempt)
        return Applied(_deep(DEPTH))

    saga = _one_step(charge, verify=find, idempotent="no")
    with _engine(store, clock) as engine:
        snapshot = engine.run(saga, operation_id="op-verify")
        assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
        assert "nested too deeply" in (snapshot.step("charge").failure_reason or "")
        clock.advance(3600)
        assert engine.recover() == [], "a run in review is not picked up again"
    assert verifies == [1]


def test_an_error_the_engine_did_not_expect_sends_the_run_to_review_and_recover_goes_on(
    store: JournalStore, clock: FakeClock
) -> None:
    saga = _one_step(lambda ctx: {"charge_id": "ch-1"}, idempotent="yes")
    with _engine(store, clock, owner="dead", faults=CrashAt("after_call", times=2)) as dead:
        for op in ("op-poison", "op-healthy"):
            with pytest.raises(SimulatedCrash):
                dead.run(saga, operation_id=op)
    clock.advance(3600)

    class Broken:
        """An injector with a bug of its own: the engine did not expect this error."""

        def check(self, point: FaultPoint, *, operation_id: str, **_: Any) -> None:
            if operation_id == "op-poison" and point is FaultPoint.BEFORE_CALL:
                raise RuntimeError("injector bug")

    notifier = RecordingNotifier()
    with _engine(store, clock, sagas=[saga], faults=Broken(), notifier=notifier) as worker:
        recovered = {s.run.operation_id: s for s in worker.recover()}

    assert set(recovered) == {"op-poison", "op-healthy"}
    assert recovered["op-healthy"].run.status is RunStatus.COMPLETED
    poison = recovered["op-poison"]
    assert poison.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert poison.step("charge").status is StepStatus.NEEDS_MANUAL_REVIEW
    assert "RuntimeError: injector bug" in (poison.step("charge").failure_reason or "")
    assert poison.run.owner is None
    assert [a.operation_id for a in notifier.alerts] == ["op-poison"]


def _grown(saga_name: str) -> Saga:
    saga = _one_step(lambda ctx: {"charge_id": "ch-1"}, idempotent="yes", name=saga_name)
    saga.step(id="ship", changes=["external_api"], idempotent="yes", compensation="none")(
        lambda ctx: {"ship_id": "sh-1"}
    )
    return saga


def test_a_step_added_without_a_version_bump_leaves_the_run_alone_with_a_clear_error(
    store: JournalStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    old = _one_step(lambda ctx: {"charge_id": "ch-1"}, idempotent="yes", name="changed")
    with _engine(store, clock, owner="dead", faults=CrashAt("after_call")) as dead:
        with pytest.raises(SimulatedCrash):
            dead.run(old, operation_id="op-changed")
        healthy = _one_step(lambda ctx: {"charge_id": "ch-2"}, idempotent="yes", name="other")
        with pytest.raises(SimulatedCrash):
            dead.run(healthy, operation_id="op-other")
    before = store.events("op-changed")
    clock.advance(3600)

    with _engine(store, clock, sagas=[_grown("changed"), healthy]) as worker:
        with caplog.at_level(logging.ERROR, logger="sagaguard.engine"):
            recovered = worker.recover()
        assert [s.run.operation_id for s in recovered] == ["op-other"]
        assert "op-changed" in caplog.text
        assert "ship" in caplog.text
        clock.advance(3600)
        with pytest.raises(SagaDefinitionError, match=r"op-changed.*'ship'.*version"):
            worker.resume("op-changed")

    after = store.load("op-changed")
    assert after.run.status is RunStatus.RUNNING
    assert after.step("charge").status is StepStatus.STARTED, "left as the crash left it"
    added = store.events("op-changed")[len(before) :]
    assert {str(e.kind) for e in added} <= {"claimed", "released"}, "only ownership moved"
