"""How calls of user code end: hung past their timeout, never started, awaitable, odd results."""

from __future__ import annotations

import threading
from typing import Any

from sagaguard.engine import Applied, Engine, NotApplied, Saga, StepContext
from sagaguard.storage import JournalStore, RunStatus, StepStatus
from sagaguard.vocabulary import EventKind
from tests.behaviour.sagas import FakeClock

TIMEOUT = "0.2s"


def _charge_saga(
    *, release: threading.Event, calls: list[str], idempotent: str = "no", name: str = "pay"
) -> Saga:
    """One charge that hangs until ``release`` is set; verify would say "not applied"."""
    saga = Saga(name, defaults={"timeout": TIMEOUT, "max_attempts": 3})

    @saga.step(changes=["payment"], idempotent=idempotent, external_id="payment_id")
    def charge(ctx: StepContext) -> dict[str, str]:
        calls.append(f"{ctx.operation_id}:{ctx.attempt}")
        release.wait(10)
        return {"payment_id": f"p-{ctx.operation_id}"}

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund the charge."""

    @charge.verify
    def find(ctx: StepContext) -> Applied | NotApplied:
        calls.append(f"{ctx.operation_id}:verify")
        return NotApplied("no charge under that key yet")

    return saga


def test_a_call_still_running_after_its_timeout_is_not_verified_or_repeated(
    store: JournalStore, clock: FakeClock
) -> None:
    """The abandoned thread may still charge: "not applied" from verify would prove nothing."""
    release, calls = threading.Event(), []
    saga = _charge_saga(release=release, calls=calls)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        snapshot = engine.run(saga, operation_id="op-hung", input=None)
        release.set()

    assert calls == ["op-hung:1"], "neither verified nor called again"
    assert snapshot.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    charge = snapshot.step("charge")
    assert charge.status is StepStatus.NEEDS_MANUAL_REVIEW
    assert "still running" in (charge.failure_reason or "")


class ReleaseWhenInFlight:
    """A store that lets a hung call go on the moment the engine journals it as in flight."""

    def __init__(self, inner: JournalStore, release: threading.Event) -> None:
        self._inner, self._release = inner, release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def record(self, claim: Any, transitions: Any, **kwargs: Any) -> Any:
        claimed = self._inner.record(claim, transitions, **kwargs)
        if any(t.kind == EventKind.CALL_IN_FLIGHT for t in transitions):
            self._release.set()
        return claimed


def test_a_call_in_flight_is_waited_for_and_its_own_answer_settles_it(
    store: JournalStore, clock: FakeClock
) -> None:
    """Even an idempotent call is not repeated while it runs: its late answer counts."""
    release, calls = threading.Event(), []
    saga = Saga("idem", defaults={"timeout": "5s", "max_attempts": 2})

    @saga.step(changes=["external_api"], idempotent="yes")
    def book(ctx: StepContext) -> dict[str, str]:
        calls.append(str(ctx.attempt))
        release.wait(10)
        return {"booking": "b-1"}

    @book.compensate
    def cancel(ctx: StepContext) -> None:
        """Cancel the booking."""

    watched = ReleaseWhenInFlight(store, release)
    saga._definitions[0].fields["timeout"] = TIMEOUT
    saga._invalidate()
    with Engine(store=watched, clock=clock, sleep=clock.sleep, owner="e") as engine:  # type: ignore[arg-type]
        snapshot = engine.run(saga, operation_id="op-idem", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    assert calls == ["1"], "waited for, not called again"
    assert snapshot.step("book").result == {"booking": "b-1"}
    kinds = [e.kind for e in store.events("op-idem") if e.step_id == "book"]
    assert kinds == ["step_started", "call_in_flight", "step_completed"]


def test_a_call_that_never_got_a_thread_is_withdrawn_and_never_runs_late(
    store: JournalStore, clock: FakeClock
) -> None:
    """With every call thread hung, a queued call must not start after the engine gave up."""
    release, calls = threading.Event(), []
    saga = _charge_saga(release=release, calls=calls)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e", call_threads=1) as engine:
        first = engine.run(saga, operation_id="op-a", input=None)
        second = engine.run(saga, operation_id="op-b", input=None)
        release.set()
        engine.store.load("op-b")
        # Give a late start every chance to show itself before looking.
        threading.Event().wait(0.3)

    assert first.run.status is RunStatus.NEEDS_MANUAL_REVIEW
    assert [c for c in calls if c.startswith("op-b")] == [], "op-b's charge never ran"
    assert second.run.status is RunStatus.FAILED, "nothing happened, nothing to undo"
    charge = second.step("charge")
    assert charge.attempts == 3
    assert "not started" in (charge.failure_reason or "")


def test_an_async_callable_object_is_awaited(store: JournalStore, clock: FakeClock) -> None:
    class Reserve:
        __name__ = "reserve"

        async def __call__(self, ctx: StepContext) -> dict[str, str]:
            return {"hold": "h-1"}

    def wrapper(ctx: StepContext) -> Any:
        return Reserve()(ctx)  # a sync function handing back a coroutine

    saga = Saga("awaitables")
    saga.step(id="reserve", changes=["reservation"], idempotent="yes", compensation="none")(
        Reserve()
    )
    saga.step(id="wrapped", changes=["database"], idempotent="yes", compensation="none")(wrapper)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        snapshot = engine.run(saga, operation_id="op-aw", input=None)

    assert snapshot.run.status is RunStatus.COMPLETED
    assert snapshot.step("reserve").result == {"hold": "h-1"}
    assert snapshot.step("wrapped").result == {"hold": "h-1"}


def test_later_steps_see_results_as_the_journal_holds_them(
    store: JournalStore, clock: FakeClock
) -> None:
    """Tuples and int keys come back from JSON as lists and strings; live runs see the same."""
    seen: list[Any] = []
    saga = Saga("shapes")

    @saga.step(changes=["database"], idempotent="yes", compensation="none")
    def first(ctx: StepContext) -> dict[Any, Any]:
        return {"items": (1, 2), 7: "seven"}

    @saga.step(changes=["database"], idempotent="yes", compensation="none")
    def second(ctx: StepContext) -> None:
        seen.append(ctx.results["first"])

    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e") as engine:
        snapshot = engine.run(saga, operation_id="op-shape", input=None)

    assert seen == [{"items": [1, 2], "7": "seven"}]
    assert snapshot.step("first").result == seen[0]


def test_the_lease_covers_a_verify_call_as_long_as_its_timeout(
    store: JournalStore, clock: FakeClock
) -> None:
    """A slow verify must not let a second owner start verifying the same step."""
    saga = Saga("slowverify", defaults={"timeout": "120s", "max_attempts": 2})
    stolen: list[object] = []
    rival = Engine(store=store, clock=clock, sleep=clock.sleep, owner="rival", lease_s=30)

    @saga.step(changes=["payment"], idempotent="unknown")
    def charge(ctx: StepContext) -> None:
        raise ConnectionError("reset by peer")

    @charge.compensate
    def refund(ctx: StepContext) -> None:
        """Refund the charge."""

    @charge.verify
    def find(ctx: StepContext) -> Applied | NotApplied:
        clock.advance(90)  # well past the 30 s lease, within the 120 s timeout
        stolen.extend(rival.recover())
        return Applied({"payment_id": "p-1"})

    rival.register(saga)
    with Engine(store=store, clock=clock, sleep=clock.sleep, owner="e", lease_s=30) as engine:
        snapshot = engine.run(saga, operation_id="op-sv", input=None)
    rival.close()

    assert stolen == []
    assert snapshot.run.status is RunStatus.COMPLETED
