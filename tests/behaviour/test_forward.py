"""Forward execution: each step once, results journaled, failures retried within bounds."""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard.engine import Engine, FaultPoint
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from tests.behaviour.sagas import CHECKOUT_STEPS, FakeClock, Provider, checkout
from tests.behaviour.test_ownership import CrashOnce, die_running


def test_happy_path_calls_each_step_once_in_order(engine: Engine) -> None:
    provider = Provider()
    snapshot = engine.run(checkout(provider), operation_id="op-1", input={"cart": [1, 2]})
    assert snapshot.run.status is RunStatus.COMPLETED
    assert provider.order("call") == CHECKOUT_STEPS
    assert [s.status for s in snapshot.steps] == [StepStatus.COMPLETED] * 5
    assert [s.completed_seq for s in snapshot.steps] == [1, 2, 3, 4, 5]
    assert snapshot.run.owner is None, "a finished run is released"


def test_result_and_external_id_are_journaled(engine: Engine) -> None:
    snapshot = engine.run(checkout(Provider()), operation_id="op-ext", input=None)
    payment = snapshot.step("charge_payment")
    assert payment.result == {"charge_payment_id": "charge_payment-op-ext"}
    assert payment.external_id == "charge_payment-op-ext"
    assert payment.idempotency_key == "op-ext:charge_payment"


def test_context_carries_input_and_earlier_results(engine: Engine) -> None:
    provider = Provider()
    seen = {}

    def hook(ctx: object) -> None:
        seen[ctx.step_id] = ctx  # type: ignore[attr-defined]

    provider.hook = hook
    engine.run(checkout(provider), operation_id="op-ctx", input={"cart": ["sku-1"]})
    ctx = seen["book_delivery"]
    assert ctx.input == {"cart": ["sku-1"]}
    assert set(ctx.results) == {"create_order", "reserve_stock", "charge_payment"}
    assert ctx.external_ids["charge_payment"] == "charge_payment-op-ctx"
    assert ctx.fencing_token >= 1


def test_definite_failure_is_retried_with_the_same_key_then_succeeds(
    engine: Engine, clock: FakeClock
) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail")
    snapshot = engine.run(checkout(provider), operation_id="op-retry", input=None)
    assert snapshot.run.status is RunStatus.COMPLETED
    calls = provider.calls("book_delivery")
    assert [c.attempt for c in calls] == [1, 2, 3]
    assert {c.key for c in calls} == {"op-retry:book_delivery"}
    assert snapshot.step("book_delivery").attempts == 3
    assert len(clock.sleeps) == 2, "one backoff before each retry"


def test_backoff_is_jittered_and_bounded_by_the_exponential_cap(store: object) -> None:
    clock = FakeClock()
    provider = Provider()
    provider.plan("create_order", "fail", "fail")
    saga = checkout(provider)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="b") as engine:  # type: ignore[arg-type]
        engine.run(saga, operation_id="op-backoff", input=None)
    base = saga.process.defaults.backoff_base
    assert 0 <= clock.sleeps[0] <= base
    assert 0 <= clock.sleeps[1] <= base * 2


def test_the_same_operation_id_returns_the_existing_run_without_new_calls(engine: Engine) -> None:
    provider = Provider()
    saga = checkout(provider)
    first = engine.run(saga, operation_id="op-dup", input={"a": 1})
    calls = len(provider.ledger)
    again = engine.run(saga, operation_id="op-dup", input={"a": 1})
    assert again.run == first.run
    assert len(provider.ledger) == calls


def test_a_different_input_under_one_operation_id_is_a_conflict(engine: Engine) -> None:
    from sagaguard import OperationConflictError

    provider = Provider()
    saga = checkout(provider)
    engine.run(saga, operation_id="op-c", input={"a": 1})
    calls = len(provider.ledger)
    with pytest.raises(OperationConflictError):
        engine.run(saga, operation_id="op-c", input={"a": 2})
    assert len(provider.ledger) == calls


def test_a_step_that_hangs_past_its_timeout_is_an_unknown_outcome(engine: Engine) -> None:
    import threading

    from sagaguard.engine import Saga

    release = threading.Event()
    saga = Saga("hang", defaults={"timeout": "50ms"})

    @saga.step(changes=["external_api"], idempotent="no")
    def call_partner(ctx: object) -> dict[str, bool]:
        release.wait(5)
        return {"ok": True}

    snapshot = engine.run(saga, operation_id="op-hang", input=None)
    release.set()
    step = snapshot.step("call_partner")
    assert step.status is StepStatus.NEEDS_MANUAL_REVIEW
    assert step.attempts == 1, "a non-idempotent step is never retried blind"
    assert "timed out" in (step.failure_reason or "") or snapshot.run.reason


def test_a_result_that_is_not_json_sends_the_step_to_review(engine: Engine) -> None:
    from sagaguard.engine import Saga

    saga = Saga("bad-result")

    @saga.step(changes=["database"], idempotent="yes")
    def returns_a_set(ctx: object) -> object:
        return {1, 2}

    snapshot = engine.run(saga, operation_id="op-set", input=None)
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert "JSON" in (snapshot.step("returns_a_set").failure_reason or "")


class WriteLog:
    """A store that notes each write call (one transaction each) and what the run held then."""

    WRITES = frozenset({"create_run", "claim", "claim_expired", "record", "heartbeat", "release"})

    def __init__(self, inner: JournalStore, provider: Provider) -> None:
        self._inner, self._provider = inner, provider
        self.writes: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self.WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self.writes.append((name, len(self._provider.ledger)))
            return attr(*args, **kwargs)

        return write


def test_a_run_of_n_steps_costs_n_plus_one_commits(store: JournalStore, clock: FakeClock) -> None:
    """The run with the start of step 1; each result with the next start; the last with the
    release. Fewer would break write-ahead; more is fsync time a payment journal pays."""
    provider = Provider()
    log = WriteLog(store, provider)
    with Engine(store=log, clock=clock, sleep=clock.sleep, owner="e") as engine:
        snapshot = engine.run(checkout(provider), operation_id="op-n", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    assert [name for name, _ in log.writes] == ["create_run"] + ["record"] * 5
    # Each commit comes before the next call: after k calls, commit k+1 (write-ahead).
    assert [calls for _, calls in log.writes] == [0, 1, 2, 3, 4, 5]
    assert store.events("op-n")[-1].kind == "released"
    assert store.load("op-n").run.owner is None


def test_a_run_taken_over_after_its_owner_died_owes_no_backoff_it_already_waited(
    store: JournalStore, clock: FakeClock
) -> None:
    """The backoff counts from the journaled attempt: the dead owner's lease was the wait."""
    saga = checkout(Provider())
    die_running(
        store, clock, saga, "op-dead", faults=CrashOnce(FaultPoint.AFTER_CALL, "reserve_stock")
    )
    clock.advance(60)
    slept_before = len(clock.sleeps)
    with Engine(store=store, sagas=[saga], clock=clock, sleep=clock.sleep, lease_s=10) as worker:
        [recovered] = worker.recover()

    assert recovered.run.status is RunStatus.COMPLETED
    assert recovered.step("reserve_stock").attempts == 2, "retried with the same key"
    assert clock.sleeps[slept_before:] == [], "the 60 s without an owner were the backoff"
