"""Performing what a run driver asks for, sync or async; and which runs an engine holds.

:class:`Pump` feeds a :class:`~sagaguard.engine.runner.RunDriver` its calls' outcomes: a
sync call on a pool thread (waited for within its timeout, and again while it is in flight),
a coroutine on the running loop for the async engine, a sleep between attempts. While it
waits on a call, the run's lease is renewed by the engine's
:class:`~sagaguard.engine.heartbeat.Heartbeats`.
:class:`Holds` says which runs this engine is driving right now, so two callers of one
engine never drive one run.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sagaguard.engine.abandoned import Abandoned
from sagaguard.engine.calls import (
    Call,
    Caller,
    Outcome,
    PendingCall,
    Request,
    Sleep,
    ThreadCaller,
    WaitFor,
)
from sagaguard.engine.faults import SimulatedCrash
from sagaguard.engine.heartbeat import Beat, Heartbeats
from sagaguard.engine.runner import RunDriver, RunGenerator
from sagaguard.exceptions import StaleOwnerError

__all__ = ["Hold", "Holds", "Pump"]


@dataclass
class Hold:
    """One run held by this engine: started (duplicates may read it), and done."""

    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class Holds:
    """The runs one engine is starting or driving: one drive per run per engine at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, Hold] = {}

    def enter(self, operation_id: str) -> bool:
        """Hold the run for this caller; False when another caller of this engine holds it."""
        with self._lock:
            if operation_id in self._held:
                return False
            self._held[operation_id] = Hold()
            return True

    def get(self, operation_id: str) -> Hold | None:
        """The run's hold, if this engine holds it."""
        with self._lock:
            return self._held.get(operation_id)

    def started(self, operation_id: str) -> None:
        """The holder's start is over: duplicate requests may now read the run."""
        hold = self.get(operation_id)
        if hold is not None:
            hold.started.set()

    def leave(self, operation_id: str) -> None:
        """Let go of the run."""
        with self._lock:
            hold = self._held.pop(operation_id, None)
        if hold is not None:
            hold.started.set()
            hold.done.set()


class Pump:
    """Performs a driver's requests: calls on threads or the loop, sleeps, waits for calls."""

    def __init__(
        self,
        *,
        caller: ThreadCaller,
        sleep: Callable[[float], None],
        sleep_is_real: bool,
        abandoned: Abandoned,
        heartbeats: Heartbeats,
        injected: Caller | None = None,
    ) -> None:
        self._abandoned = abandoned
        """Where calls of an interrupted drive are kept until the run's next driver."""
        self._heartbeats = heartbeats
        """Renews a run's lease while its drive waits on a call."""
        self._injected = injected
        """A caller given to the engine (the fault harness's): it makes every call instead."""
        self._caller = caller
        self._sleep = sleep
        self._sleep_is_real = sleep_is_real

    def drive(self, driver: RunDriver) -> None:
        """Drive the run in this thread until the driver stops."""
        generator: RunGenerator = driver.drive()
        calls: list[PendingCall] = []
        try:
            request = next(generator)
            while True:
                request = generator.send(self._perform(driver, request, calls))
        except StopIteration:
            return
        except SimulatedCrash:
            raise  # stands for the process dying: its calls die with it
        except BaseException:
            self._abandon(driver, calls)
            raise

    def _perform(
        self, driver: RunDriver, request: Request, calls: list[PendingCall]
    ) -> Outcome | None:
        calls.clear()
        if isinstance(request, Sleep):
            self._sleep(request.seconds)
            return None
        with self._beating(driver) as beat:
            outcome = self._call(request, calls)
        return _unless_lost(beat, outcome)

    def _beating(self, driver: RunDriver) -> AbstractContextManager[Beat]:
        run = driver.run
        return self._heartbeats.beating(run.operation_id, lambda: run.claim)

    def _call(self, request: Call | WaitFor, calls: list[PendingCall]) -> Outcome | None:
        if isinstance(request, WaitFor):
            calls.append(request.pending)
            return request.pending.wait_more(request.seconds)
        if self._injected is not None:
            return self._injected.call(request)
        pending = self._caller.start(request, track=calls.append)
        calls.append(pending)
        return pending.wait(self._caller.wait_s(request))

    async def drive_async(self, driver: RunDriver) -> None:
        """Drive the run on the running event loop until the driver stops."""
        generator: RunGenerator = driver.drive()
        calls: list[PendingCall] = []
        try:
            request = next(generator)
            while True:
                request = generator.send(await self._perform_async(driver, request, calls))
        except StopIteration:
            return
        except SimulatedCrash:
            raise
        except BaseException:
            # A cancelled task too (asyncio.wait_for around run_async): the thread runs on.
            self._abandon(driver, calls)
            raise

    def _abandon(self, driver: RunDriver, calls: list[PendingCall]) -> None:
        """The driver was interrupted: keep its calls that may not be journaled yet."""
        # Every call's intent is journaled before the call starts, so a call here means the
        # run is in the journal, whatever the driver's own bookkeeping had reached.
        run = driver.run
        for pending in {id(p): p for p in [*calls, *driver.calls_in_flight()]}.values():
            # Its code not started yet: it never runs, and its next driver sees it withdrawn.
            pending.withdraw()
            record = run.steps[pending.request.ctx.step_id]
            self._abandoned.add(run.operation_id, run.saga, record, pending)

    async def _perform_async(
        self, driver: RunDriver, request: Request, calls: list[PendingCall]
    ) -> Outcome | None:
        calls.clear()
        if isinstance(request, Sleep):
            if self._sleep_is_real:
                await asyncio.sleep(request.seconds)
            else:
                self._sleep(request.seconds)
            return None
        with self._beating(driver) as beat:
            outcome = await self._call_async(request, calls)
        return _unless_lost(beat, outcome)

    async def _call_async(
        self, request: Call | WaitFor, calls: list[PendingCall]
    ) -> Outcome | None:
        if isinstance(request, WaitFor):
            calls.append(request.pending)
            return await request.pending.wait_more_async(request.seconds)
        if self._injected is not None:
            # One method: an injected caller is sync, as a transport's handler is.
            return self._injected.call(request)
        if isinstance(request, Call) and inspect.iscoroutinefunction(request.fn):
            return await self._caller.call_on_loop(request)
        pending = self._caller.start(request, track=calls.append)
        calls.append(pending)
        return await pending.wait_async(self._caller.wait_s(request))


def _unless_lost(beat: Beat, outcome: Outcome | None) -> Outcome | None:
    """The call's outcome for the driver, unless a heartbeat found the run taken over.

    Raised before the driver sees the outcome, so the lost drive writes nothing more, not
    even the fenced commit the store would refuse. The call is kept as an interrupted
    drive's (:mod:`~sagaguard.engine.abandoned`), should this engine take the run again.
    """
    if beat.lost:
        raise StaleOwnerError(
            f"run {beat.operation_id!r} was taken over by another owner during a call "
            "(a heartbeat was fenced off): this drive stopped and wrote nothing more"
        )
    return outcome
