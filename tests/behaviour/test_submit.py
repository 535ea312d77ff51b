"""submit() journals a run for a worker without running it; run_detailed() says how it met a run.

Both answer a duplicate request from the journal with the same dedupe, conflict and version
rules as ``run``, and say whether the call created, resumed or joined the run, or found it
recorded, so a caller never loads the run first to guess.
"""

from __future__ import annotations

import asyncio

import pytest

from sagaguard import OperationConflictError
from sagaguard.engine import Encounter, Engine, FaultPoint
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from sagaguard.testing import CrashAt
from tests.behaviour.sagas import CHECKOUT_STEPS, FakeClock, Provider, checkout
from tests.behaviour.test_ownership import die_running

ORDER = {"order": "A-1", "amount_cents": 4200}


def test_a_submitted_run_is_journaled_unowned_and_nothing_is_called(
    engine: Engine, store: JournalStore
) -> None:
    provider = Provider()

    result = engine.submit(checkout(provider), operation_id="op-1", input=ORDER)

    assert (result.encounter, result.found) == (Encounter.CREATED, None)
    assert result.snapshot == store.load("op-1")
    run = result.snapshot.run
    assert (run.status, run.owner, run.fencing_token) == (RunStatus.RUNNING, None, 0)
    assert [s.status for s in result.snapshot.steps] == [StepStatus.PENDING] * 5
    assert provider.ledger == []


def test_submitting_again_returns_the_run_and_another_input_is_a_conflict(
    engine: Engine, store: JournalStore
) -> None:
    saga = checkout(Provider())
    engine.submit(saga, operation_id="op-1", input=ORDER)
    events = store.events("op-1")

    again = engine.submit(saga, operation_id="op-1", input=dict(ORDER))

    assert (again.encounter, again.found) == (Encounter.JOINED, RunStatus.RUNNING)
    with pytest.raises(OperationConflictError):
        engine.submit(saga, operation_id="op-1", input={**ORDER, "amount_cents": 1})
    with pytest.raises(OperationConflictError, match="not v2"):
        engine.submit(checkout(Provider(), version="2"), operation_id="op-1", input=ORDER)
    assert store.events("op-1") == events


def test_submitting_a_finished_run_returns_the_recorded_run(engine: Engine) -> None:
    provider = Provider()
    saga = checkout(provider)
    engine.run(saga, operation_id="op-1", input=ORDER)
    calls = len(provider.ledger)

    again = engine.submit(saga, operation_id="op-1", input=ORDER)

    assert (again.encounter, again.found) == (Encounter.RECORDED, RunStatus.COMPLETED)
    assert len(provider.ledger) == calls


def test_a_submitted_run_is_finished_by_the_next_claim(engine: Engine, store: JournalStore) -> None:
    provider = Provider()
    engine.submit(checkout(provider), operation_id="op-1", input=ORDER)

    [recovered] = engine.recover()

    assert recovered.run.status is RunStatus.COMPLETED
    assert [e.step_id for e in provider.ledger] == CHECKOUT_STEPS
    assert store.events("op-1")[1].data == {"fencing_token": 1, "previous_owner": None}


def test_run_detailed_says_created_then_recorded(engine: Engine) -> None:
    saga = checkout(Provider())

    first = engine.run_detailed(saga, operation_id="op-1", input=ORDER)
    second = engine.run_detailed(saga, operation_id="op-1", input=ORDER)

    assert (first.encounter, first.found) == (Encounter.CREATED, None)
    assert first.snapshot.run.status is RunStatus.COMPLETED
    assert (second.encounter, second.found) == (Encounter.RECORDED, RunStatus.COMPLETED)
    assert second.snapshot == first.snapshot


def test_run_detailed_resumes_a_dead_owners_run_and_joins_a_live_one(
    store: JournalStore, clock: FakeClock
) -> None:
    saga = checkout(Provider())
    dead = die_running(
        store,
        clock,
        saga,
        "op-1",
        input=ORDER,
        owner="dead",
        faults=CrashAt(FaultPoint.BEFORE_CALL, step_id="reserve_stock"),
    )
    later = Engine(store=store, clock=clock, sleep=clock.sleep, owner="later", lease_s=10)

    joined = later.run_detailed(saga, operation_id="op-1", input=ORDER)
    clock.advance(3600)
    resumed = later.run_detailed(saga, operation_id="op-1", input=ORDER)

    assert (joined.encounter, joined.found) == (Encounter.JOINED, RunStatus.RUNNING)
    assert joined.snapshot.run.owner == "dead"
    assert (resumed.encounter, resumed.found) == (Encounter.RESUMED, RunStatus.RUNNING)
    assert resumed.snapshot.run.status is RunStatus.COMPLETED
    dead.close()
    later.close()


def test_run_detailed_async_says_how_it_met_the_run(engine: Engine) -> None:
    saga = checkout(Provider())
    engine.submit(saga, operation_id="op-1", input=ORDER)

    result = asyncio.run(engine.run_detailed_async(saga, operation_id="op-1", input=ORDER))

    assert (result.encounter, result.found) == (Encounter.RESUMED, RunStatus.RUNNING)
    assert result.snapshot.run.status is RunStatus.COMPLETED
