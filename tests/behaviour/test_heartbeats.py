"""Heartbeats: a run whose call outlasts its lease stays its owner's; a fenced one stops.

Time is a fake clock the tests move; a heartbeat is awaited by watching the store, never by
sleeping. Each jump of the clock alone outlasts the lease the call's commit gave (lease plus
the step's timeout), so only heartbeats can keep the run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sagaguard.engine import Engine, Saga, StepContext
from sagaguard.exceptions import RunBusyError, StaleOwnerError, StoreError
from sagaguard.storage import Claim, JournalStore, RunStatus, StepStatus
from tests.behaviour.sagas import FakeClock

LEASE_S = 0.3
"""The engine's lease: heartbeats every 0.1 s of wall time."""
TIMEOUT_S = 30.0
"""The step's timeout: far longer than a test's call, so none times out."""
JUMP_S = LEASE_S + TIMEOUT_S + 1
"""One move of the clock during the call: past everything the call's commit leased."""
WAIT_S = 10.0
"""How long a test waits for a heartbeat before calling it missing."""


class Watched:
    """The store under test, telling which heartbeats landed and which writes were tried."""

    def __init__(self, inner: JournalStore, *, failing: int = 0) -> None:
        self._inner = inner
        self.failing = failing
        """How many heartbeats fail first, as in a database outage."""
        self._changed = threading.Condition()
        self.beats: list[float] = []
        """The ``now`` of every heartbeat the store accepted."""
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        if self.failing > 0:
            self.failing -= 1
            raise StoreError("cannot reach the journal (connection refused)")
        renewed = self._inner.heartbeat(claim, now=now, lease_s=lease_s)
        with self._changed:
            self.beats.append(now)
            self._changed.notify_all()
        return renewed

    def record(self, claim: Claim, transitions: Any, **kwargs: Any) -> Claim:
        self.writes.append(f"record by {claim.owner}")
        return self._inner.record(claim, transitions, **kwargs)

    def release(self, claim: Claim, **kwargs: Any) -> None:
        self.writes.append(f"release by {claim.owner}")
        self._inner.release(claim, **kwargs)

    def beat_at(self, at: float) -> bool:
        """Wait until a heartbeat at ``at`` or later landed; False if none came in time."""
        with self._changed:
            return self._changed.wait_for(lambda: any(b >= at for b in self.beats), WAIT_S)


@dataclass
class Probe:
    """What a rival saw at each move of the clock while the call ran."""

    clock: FakeClock
    watched: Watched
    rival: Engine
    seen: list[tuple[bool, str, int]] = field(default_factory=list)
    """(a heartbeat landed, what the rival's claim got, how many runs its recover took)."""

    def while_in_call(self, moves: int = 4) -> None:
        for _ in range(moves):
            self.clock.advance(JUMP_S)
            landed = self.watched.beat_at(self.clock.now)
            try:
                self.rival.store.claim(
                    "op-long", owner=self.rival.owner, now=self.clock.now, lease_s=LEASE_S
                )
                claimed = "claimed"
            except RunBusyError:
                claimed = "busy"
            self.seen.append((landed, claimed, len(self.rival.recover())))


def _long_step_saga(body: Callable[[], None], *, is_async: bool = False) -> Saga:
    saga = Saga("long", defaults={"timeout": f"{TIMEOUT_S}s", "max_attempts": 1})
    if is_async:

        async def work(ctx: StepContext) -> dict[str, str]:
            await asyncio.to_thread(body)
            return {"export_id": "x-1"}

    else:

        def work(ctx: StepContext) -> dict[str, str]:
            body()
            return {"export_id": "x-1"}

    step = saga.step(id="export", changes=["external_api"], idempotent="yes")(work)

    @step.compensate
    def undo(ctx: StepContext) -> None:
        """Delete the export."""

    return saga


@pytest.fixture
def watched(store: JournalStore) -> Watched:
    return Watched(store)


@pytest.fixture
def rival(store: JournalStore, clock: FakeClock) -> Iterator[Engine]:
    with Engine(store=store, clock=clock, owner="rival", lease_s=LEASE_S) as engine:
        yield engine


def _engine(watched: Watched, clock: FakeClock, saga: Saga) -> Engine:
    return Engine(
        store=watched,  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
        owner="holder",
        lease_s=LEASE_S,
        sagas=[saga],
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_step_running_far_longer_than_its_lease_keeps_its_run(
    watched: Watched, clock: FakeClock, rival: Engine, store: JournalStore, is_async: bool
) -> None:
    probe = Probe(clock, watched, rival)
    saga = _long_step_saga(probe.while_in_call, is_async=is_async)
    rival.register(saga)
    start = clock.now

    with _engine(watched, clock, saga) as engine:
        if is_async:
            snapshot = asyncio.run(engine.run_async(saga, operation_id="op-long"))
        else:
            snapshot = engine.run(saga, operation_id="op-long")

    assert probe.seen == [(True, "busy", 0)] * 4
    assert clock.now - start > 3 * (LEASE_S + TIMEOUT_S), "the call outlasted 3 leases"
    assert snapshot.run.status is RunStatus.COMPLETED
    assert [e.kind for e in store.events("op-long")].count("claimed") == 0, "never taken over"


def test_heartbeats_go_on_after_the_store_failed_some(
    store: JournalStore, clock: FakeClock, rival: Engine
) -> None:
    """An outage costs beats, not the thread: once the store answers, the lease is renewed."""
    watched = Watched(store, failing=2)
    probe = Probe(clock, watched, rival)
    saga = _long_step_saga(probe.while_in_call)
    rival.register(saga)

    with _engine(watched, clock, saga) as engine:
        snapshot = engine.run(saga, operation_id="op-long")

    assert watched.failing == 0
    assert probe.seen == [(True, "busy", 0)] * 4
    assert snapshot.run.status is RunStatus.COMPLETED


class Logged(logging.Handler):
    """Sets ``seen`` once the engine logs a message holding ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@pytest.fixture
def lost_logged() -> Iterator[Logged]:
    handler = Logged("lost during a call")
    logger = logging.getLogger("sagaguard.engine")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_heartbeat_that_finds_the_run_taken_over_stops_the_drive_writing_nothing(
    watched: Watched, clock: FakeClock, store: JournalStore, lost_logged: Logged
) -> None:
    in_call, go_on = threading.Event(), threading.Event()

    def body() -> None:
        in_call.set()
        go_on.wait(WAIT_S)

    saga = _long_step_saga(body)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            engine.run(saga, operation_id="op-long")
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    with _engine(watched, clock, saga) as engine:
        driving = threading.Thread(target=run)
        driving.start()
        assert in_call.wait(WAIT_S)
        # A rival whose clock is far ahead takes the run over (as after a long freeze).
        taken = store.claim("op-long", owner="rival", now=clock.now + 3600, lease_s=3600)
        writes, before = list(watched.writes), (store.load("op-long"), store.events("op-long"))
        assert lost_logged.seen.wait(WAIT_S), "a heartbeat found the claim fenced off"
        go_on.set()
        driving.join(WAIT_S)

    assert not driving.is_alive()
    assert [type(f) for f in failures] == [StaleOwnerError]
    assert "heartbeat" in str(failures[0])
    assert watched.writes == writes, "the lost drive tried no write at all"
    assert (store.load("op-long"), store.events("op-long")) == before
    run_now = store.load("op-long")
    assert (run_now.run.owner, run_now.run.fencing_token) == ("rival", taken.fencing_token)
    assert run_now.step("export").status is StepStatus.STARTED


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sagaguard-heartbeat-")]


def test_the_heartbeat_thread_runs_during_calls_and_is_gone_after_close(
    store: JournalStore, clock: FakeClock
) -> None:
    before = set(_heartbeat_threads())  # of engines other tests left open
    during: list[list[str]] = []
    saga = _long_step_saga(
        lambda: during.append([t.name for t in set(_heartbeat_threads()) - before])
    )

    with Engine(store=store, clock=clock, owner="closing", lease_s=LEASE_S) as engine:
        engine.run(saga, operation_id="op-1")

    assert during == [["sagaguard-heartbeat-closing"]]
    assert set(_heartbeat_threads()) == before, "close() stopped and joined it"
