"""One owner per run: leases, fencing tokens, recovery after a crash (simulated in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard import StaleOwnerError
from sagaguard.engine import Engine, FaultInjector, FaultPoint, Saga, SimulatedCrash
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from tests.behaviour.sagas import FakeClock, Provider, checkout


class CrashOnce:
    """Raises SimulatedCrash the first time the engine reaches ``point`` for ``step_id``."""

    def __init__(self, point: FaultPoint, step_id: str) -> None:
        self.point, self.step_id, self.fired = point, step_id, False

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        if not self.fired and point is self.point and step_id == self.step_id:
            self.fired = True
            raise SimulatedCrash(f"{point} {step_id}")


def die_running(
    store: JournalStore,
    clock: FakeClock,
    saga: Saga,
    operation_id: str,
    *,
    faults: FaultInjector,
    input: Any = None,
    owner: str | None = None,
) -> Engine:
    """Start ``operation_id`` on an engine (lease 10 s) that crashes where ``faults`` says.

    Returns the dead engine: its run stays ``running`` under its lease, for a test to take over.
    """
    dead = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner=owner, lease_s=10, faults=faults
    )
    with pytest.raises(SimulatedCrash):
        dead.run(saga, operation_id=operation_id, input=input)
    return dead


def _crash_then_recover(
    store: JournalStore,
    clock: FakeClock,
    provider: Provider,
    point: FaultPoint,
    step_id: str,
    **saga_options: Any,
) -> Any:
    saga = checkout(provider, **saga_options)
    crashing = Engine(
        store=store,
        clock=clock,
        sleep=clock.sleep,
        owner="dead",
        lease_s=10,
        faults=CrashOnce(point, step_id),
    )
    with pytest.raises(SimulatedCrash):
        crashing.run(saga, operation_id="op-crash", input=None)
    assert store.load("op-crash").run.owner == "dead", "the dead owner still holds the lease"
    survivor = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="survivor", lease_s=10, sagas=[saga]
    )
    assert survivor.recover() == [], "a live lease is not taken over"
    clock.advance(3600)
    recovered = survivor.recover()
    assert [s.run.operation_id for s in recovered] == ["op-crash"]
    return recovered[0]


def test_crash_after_the_charge_before_its_commit_is_verified_not_repeated(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    snapshot = _crash_then_recover(store, clock, provider, FaultPoint.AFTER_CALL, "charge_payment")
    assert snapshot.run.status is RunStatus.COMPLETED
    assert len(provider.calls("charge_payment")) == 1
    assert len(provider.calls("charge_payment", "verify")) == 1


def test_crash_after_the_charge_without_verify_waits_for_a_person(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    snapshot = _crash_then_recover(
        store, clock, provider, FaultPoint.AFTER_CALL, "charge_payment", payment_verify=False
    )
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert len(provider.calls("charge_payment")) == 1
    assert "crash" in (snapshot.step("charge_payment").failure_reason or "")


def test_crash_after_an_idempotent_call_retries_it_with_the_same_key(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    snapshot = _crash_then_recover(store, clock, provider, FaultPoint.AFTER_CALL, "reserve_stock")
    assert snapshot.run.status is RunStatus.COMPLETED
    calls = provider.calls("reserve_stock")
    assert [c.attempt for c in calls] == [1, 2]
    assert calls[0].key == calls[1].key


def test_a_retry_whose_backoff_the_crash_already_waited_shares_the_commit_of_its_unknown(
    store: JournalStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The survivor finds the step started: ``outcome_unknown``, then (idempotent, and an hour
    without an owner has waited its backoff) attempt 2 at once. No wait between them owes
    a commit: both go in the one that comes before the call."""
    records: list[list[str]] = []
    real_record = store.record

    def record(claim: Any, transitions: Any, **kwargs: Any) -> Any:
        records.append([str(t.kind) for t in transitions])
        return real_record(claim, transitions, **kwargs)

    monkeypatch.setattr(store, "record", record)
    provider = Provider()
    snapshot = _crash_then_recover(store, clock, provider, FaultPoint.AFTER_CALL, "reserve_stock")
    assert snapshot.run.status is RunStatus.COMPLETED
    assert [c.attempt for c in provider.calls("reserve_stock")] == [1, 2]
    unknown = [kinds for kinds in records if "outcome_unknown" in kinds]
    assert unknown == [["outcome_unknown", "step_started"]]
    kinds = [e.kind for e in store.events("op-crash")]
    assert kinds[kinds.index("outcome_unknown") + 1] == "step_started"


def test_crash_after_commit_resumes_at_the_next_step(store: JournalStore, clock: FakeClock) -> None:
    provider = Provider()
    snapshot = _crash_then_recover(
        store, clock, provider, FaultPoint.AFTER_COMMIT, "charge_payment"
    )
    assert snapshot.run.status is RunStatus.COMPLETED
    assert [len(provider.calls(s)) for s in ("create_order", "charge_payment", "send_email")] == [
        1,
        1,
        1,
    ]


def test_crash_inside_a_compensation_is_not_repeated_blind(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    provider.plan("book_delivery", "fail", "fail", "fail")
    snapshot = _crash_then_recover(
        store, clock, provider, FaultPoint.AFTER_COMPENSATION, "charge_payment"
    )
    assert len(provider.calls("charge_payment", "compensate")) == 1
    assert snapshot.step("charge_payment").status is StepStatus.COMPENSATION_FAILED
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW


def test_stale_owner_write_is_rejected_and_its_late_result_not_applied(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    saga = checkout(provider)
    survivor = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="survivor", lease_s=10, sagas=[saga]
    )
    taken_over = []

    def stall_then_lose_the_lease(ctx: Any) -> None:
        # The first owner hangs inside the delivery call until its lease is long gone;
        # meanwhile the survivor recovers the run and finishes it.
        if ctx.step_id == "book_delivery" and not taken_over:
            taken_over.append(True)
            clock.advance(3600)
            survivor.recover()

    provider.hook = stall_then_lose_the_lease
    slow = Engine(store=store, clock=clock, sleep=clock.sleep, owner="slow", lease_s=10)
    with pytest.raises(StaleOwnerError):
        slow.run(saga, operation_id="op-stale", input=None)
    final = store.load("op-stale")
    assert final.run.status is RunStatus.COMPLETED
    actors = {e.actor for e in store.events("op-stale") if e.kind == "step_completed"}
    assert "slow" not in {
        e.actor
        for e in store.events("op-stale")
        if e.kind == "step_completed" and e.step_id == "book_delivery"
    }
    assert "survivor" in actors
    assert len(provider.calls("send_email")) == 1, "the irreversible email went out once"
    assert final.run.fencing_token >= 2


def test_recover_leaves_runs_of_unknown_processes_alone(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    crashing = Engine(
        store=store,
        clock=clock,
        sleep=clock.sleep,
        owner="dead",
        lease_s=10,
        faults=CrashOnce(FaultPoint.BEFORE_CALL, "create_order"),
    )
    with pytest.raises(SimulatedCrash):
        crashing.run(checkout(provider, name="other"), operation_id="op-other", input=None)
    clock.advance(3600)
    stranger = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="stranger", sagas=[checkout(provider)]
    )
    assert stranger.recover() == []
    assert store.load("op-other").run.status is RunStatus.RUNNING


def test_attempts_survive_crashes_and_stay_bounded(store: JournalStore, clock: FakeClock) -> None:
    provider = Provider()
    saga = checkout(provider)

    class CrashEveryTime:
        def check(
            self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int
        ) -> None:
            if point is FaultPoint.BEFORE_CALL and step_id == "reserve_stock":
                raise SimulatedCrash

    for round_ in range(5):
        engine = Engine(
            store=store,
            clock=clock,
            sleep=clock.sleep,
            owner=f"o{round_}",
            lease_s=10,
            faults=CrashEveryTime(),
            sagas=[saga],
        )
        try:
            if round_ == 0:
                engine.run(saga, operation_id="op-bound", input=None)
            else:
                engine.recover()
        except SimulatedCrash:
            pass
        clock.advance(3600)
    snapshot = store.load("op-bound")
    assert snapshot.step("reserve_stock").attempts == 3, "bounded by max_attempts across crashes"
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW


def test_recover_skips_a_run_taken_over_mid_drive_and_goes_on(
    store: JournalStore, clock: FakeClock
) -> None:
    provider = Provider()
    saga = checkout(provider)
    for op in ("op-x", "op-y"):
        dead = Engine(
            store=store,
            clock=clock,
            sleep=clock.sleep,
            owner=f"dead-{op}",
            lease_s=10,
            faults=CrashOnce(FaultPoint.BEFORE_CALL, "create_order"),
        )
        with pytest.raises(SimulatedCrash):
            dead.run(saga, operation_id=op, input=None)
    clock.advance(3600)
    rival = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="rival", lease_s=10, sagas=[saga]
    )
    stolen = []

    def rival_takes_the_run_in_hand(ctx: Any) -> None:
        if ctx.step_id == "reserve_stock" and not stolen:
            stolen.append(ctx.operation_id)
            clock.advance(3600)
            rival.resume(ctx.operation_id)

    provider.hook = rival_takes_the_run_in_hand
    first = Engine(
        store=store, clock=clock, sleep=clock.sleep, owner="first", lease_s=10, sagas=[saga]
    )
    recovered = first.recover()
    other = ({"op-x", "op-y"} - set(stolen)).pop()
    assert [s.run.operation_id for s in recovered] == [other]
    for op in ("op-x", "op-y"):
        assert store.load(op).run.status is RunStatus.COMPLETED


def test_recover_asked_to_stop_finishes_the_run_in_hand_and_takes_no_other(
    store: JournalStore, clock: FakeClock
) -> None:
    """A worker told to shut down must not start the rest of its batch."""
    provider = Provider()
    saga = checkout(provider)
    for number in range(3):
        crashing = Engine(
            store=store,
            clock=clock,
            sleep=clock.sleep,
            owner=f"dead-{number}",
            lease_s=10,
            faults=CrashOnce(FaultPoint.AFTER_COMMIT, "reserve_stock"),
        )
        with pytest.raises(SimulatedCrash):
            crashing.run(saga, operation_id=f"op-{number}", input=None)
    clock.advance(3600)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1

    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="w", sagas=[saga]) as worker:
        recovered = worker.recover(limit=10, stop=stop)

    assert [s.run.status for s in recovered] == [RunStatus.COMPLETED]
    statuses = sorted(store.load(f"op-{n}").run.status.value for n in range(3))
    assert statuses == ["completed", "running", "running"]
