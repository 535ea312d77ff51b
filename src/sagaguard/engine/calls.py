"""Calling user code: one outcome type, a sync and an async way to get it.

The run logic (``runner.py``) never calls user code itself: it yields a :class:`Call` and
receives an :class:`Outcome`. The sync engine and the async engine each perform calls their
own way (threads or the caller's event loop) but share every decision.

A sync call runs on a call thread (:mod:`sagaguard.engine.call_threads`), so the engine can
stop *waiting* at its timeout. Python cannot stop the thread, so such a call is *in flight*:
a :class:`PendingCall` the engine can wait on again, and nobody verifies or repeats it while
it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum, StrEnum, auto
from typing import Any, Protocol

from sagaguard.engine.call_threads import CallThreads
from sagaguard.engine.context import StepContext
from sagaguard.exceptions import StepFailed

logger = logging.getLogger("sagaguard.engine")

_STEP_EXITS = (KeyboardInterrupt, SystemExit)
"""What a step may raise to stop its process, and what the engine takes as one more error
of user code instead: on a pool thread it was raised by the step itself (Python delivers
signals to the main thread only), and letting it out would end the caller's process with
the call's outcome never journaled, the run left ``running`` under a live lease."""

_WAKE_S = 0.2
"""How often a wait for a call wakes up. CPython runs a signal's handler in the waiting
thread only once it wakes, so a Ctrl-C that lands just before the wait blocks is felt
within this, not when the call returns or times out."""

_COROUTINE_GRACE_S = 1.0
"""How much longer than its timeout a coroutine on a call thread is waited for: it is
cancelled at its timeout and needs a moment to unwind before its thread is free."""


class OutcomeKind(StrEnum):
    """What a call told us."""

    OK = "ok"
    """It returned: the value is its answer."""
    FAILED = "failed"
    """It raised ``StepFailed``: a definite failure, nothing changed."""
    UNKNOWN = "unknown"
    """It raised something else or timed out: nobody knows what happened."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one call of user code."""

    kind: OutcomeKind
    value: Any = None
    reason: str = ""
    retryable: bool = True
    """For a definite failure: whether a repeat could get another answer."""
    pending: PendingCall | None = None
    """Set when the call outlived its timeout and still runs on its thread (in flight)."""

    @property
    def in_flight(self) -> bool:
        """True when the call is still running: its effect may still be on its way."""
        return self.pending is not None

    @classmethod
    def of_exception(cls, exc: BaseException) -> Outcome:
        """Classify an exception raised by user code."""
        if isinstance(exc, StepFailed):
            # Any object may be the reason (an exception, a provider's error): its str() is.
            return cls(OutcomeKind.FAILED, reason=describe(exc.reason), retryable=exc.retry)
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return cls(OutcomeKind.UNKNOWN, reason="timed out")
        if isinstance(exc, _STEP_EXITS):
            # It may have had its effect first: as unknown as any other error.
            name = describe(exc, prefix=type(exc).__name__)
            return cls(OutcomeKind.UNKNOWN, reason=f"the step raised {name}, caught by the engine")
        return cls(OutcomeKind.UNKNOWN, reason=describe(exc, prefix=type(exc).__name__))


def describe(value: object, *, prefix: str | None = None, limit: int = 300) -> str:
    """A short one-line ``str()`` of anything: a reason object, an exception, a result.

    Never raises: an object whose ``str()`` fails (or recurses too deep) is named by its type.
    """
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a reason must never break the engine
        text = f"<{type(value).__name__} that cannot be shown>"
    text = " ".join(text.split())
    if prefix is not None:
        text = f"{prefix}: {text}" if text else prefix
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Call:
    """A request from the run logic: call ``fn(ctx)`` within ``timeout_s``."""

    fn: Callable[..., Any]
    ctx: StepContext
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """A request from the run logic: wait ``seconds`` before the next move."""

    seconds: float


@dataclass(frozen=True, slots=True)
class WaitFor:
    """A request from the run logic: wait up to ``seconds`` more for a call in flight.

    Answered with the call's :class:`Outcome` once it returned, or ``None`` if it still runs.
    """

    pending: PendingCall
    seconds: float


Request = Call | Sleep | WaitFor


class _State(Enum):
    QUEUED = auto()
    RUNNING = auto()
    DONE = auto()
    WITHDRAWN = auto()


_WITHDRAWN = Outcome(OutcomeKind.FAILED, reason="withdrawn before it started")


class PendingCall:
    """A sync call on a call thread: wait for it, again, from any thread or loop.

    Its own small future: a lock held until the call is settled, released once, so every
    waiter (a wait, a wait again, a loop's callback) passes through it in turn.
    """

    __slots__ = ("_callbacks", "_error", "_guard", "_outcome", "_settled", "_state", "request")

    def __init__(self, request: Call) -> None:
        self.request = request
        self._guard = threading.Lock()
        self._settled = threading.Lock()
        self._settled.acquire()  # released when the call is settled
        self._state = _State.QUEUED
        self._outcome: Outcome | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []

    def done(self) -> bool:
        """True once the call returned (or was withdrawn before it started)."""
        return self._state is _State.DONE or self._state is _State.WITHDRAWN

    def outcome(self) -> Outcome:
        """The outcome of a call that is done."""
        if self._error is not None:
            raise self._error
        assert self._outcome is not None, "outcome() of a call still running"
        return self._outcome

    def wait(self, timeout_s: float) -> Outcome:
        """Wait for the call's outcome; past ``timeout_s`` it is in flight (or withdrawn)."""
        if self._wait(timeout_s):
            return self.outcome()
        return self._overdue(timeout_s)

    def wait_more(self, seconds: float) -> Outcome | None:
        """Wait up to ``seconds`` more for a call in flight; ``None`` if it still runs."""
        return self.outcome() if self._wait(seconds) else None

    async def wait_async(self, timeout_s: float) -> Outcome:
        """:meth:`wait` on an event loop: the loop runs on while the thread works."""
        if await self._wait_on_loop(timeout_s):
            return self.outcome()
        return self._overdue(timeout_s)

    async def wait_more_async(self, seconds: float) -> Outcome | None:
        """:meth:`wait_more` on an event loop."""
        return self.outcome() if await self._wait_on_loop(seconds) else None

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the call's thread, or now) once the call is done."""
        with self._guard:
            if not self.done():
                self._callbacks.append(callback)
                return
        callback()

    # -- the call thread's side (see ThreadCaller.start) ---------------------------------------

    def begin(self) -> bool:
        """The call gets its thread: False if it was withdrawn first (it must not run)."""
        with self._guard:
            if self._state is not _State.QUEUED:
                return False
            self._state = _State.RUNNING
            return True

    def settle(self, outcome: Outcome | None, error: BaseException | None = None) -> None:
        """The call ended with ``outcome`` (or raised ``error`` past the step's guard)."""
        with self._guard:
            self._outcome, self._error = outcome, error
            self._state = _State.DONE
            callbacks, self._callbacks = self._callbacks, []
        self._wake(callbacks)

    def withdraw(self) -> bool:
        """Withdraw the call unless its code has started; True when it will never run."""
        return self._cancel()

    # -- internals ----------------------------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        if self.done():
            return True
        # Short slices: CPython runs a signal's handler in this thread only once it wakes.
        deadline = time.monotonic() + max(seconds, 0.0)
        while not self._settled.acquire(True, min(max(deadline - time.monotonic(), 0.0), _WAKE_S)):
            if time.monotonic() >= deadline:
                return False
        self._settled.release()  # let the next waiter through
        return True

    def _cancel(self) -> bool:
        """Withdraw a call not started yet; True if it is (or already was) withdrawn."""
        with self._guard:
            if self._state is not _State.QUEUED:
                return self._state is _State.WITHDRAWN
            self._outcome = _WITHDRAWN
            self._state = _State.WITHDRAWN
            callbacks, self._callbacks = self._callbacks, []
        self._wake(callbacks)
        return True

    def _wake(self, callbacks: list[Callable[[], None]]) -> None:
        self._settled.release()
        for callback in callbacks:
            callback()

    async def _wait_on_loop(self, seconds: float) -> bool:
        if self.done():
            return True
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[None] = loop.create_future()

        def settled() -> None:
            if not waiting.done():
                waiting.set_result(None)

        def on_thread() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits there
                loop.call_soon_threadsafe(settled)

        self.on_done(on_thread)
        # asyncio.wait, not wait_for: a timeout must not cancel what it cannot stop.
        done, _ = await asyncio.wait({waiting}, timeout=seconds)
        if not done:
            waiting.cancel()  # a late end then finds nobody waiting on this loop
        return bool(done)

    def _overdue(self, timeout_s: float) -> Outcome:
        """The outcome of a call that did not finish within its timeout."""
        if self._cancel():
            return Outcome(
                OutcomeKind.FAILED,
                reason=f"not started within {timeout_s:g}s: every call thread is busy with "
                "calls that hung, so it was withdrawn unmade",
            )
        if self.done():  # it ended just now
            return self.outcome()
        ctx = self.request.ctx
        logger.warning(
            "%s of run %s (attempt %d) still runs after its %gs timeout: in flight",
            ctx.step_id,
            ctx.operation_id,
            ctx.attempt,
            timeout_s,
        )
        self.on_done(lambda: _report_late(self, ctx))
        return Outcome(
            OutcomeKind.UNKNOWN,
            reason=f"timed out after {timeout_s:g}s, call still running",
            pending=self,
        )


class Caller(Protocol):
    """The engine's one-method seam to user code: perform a :class:`Call`, say what happened.

    Like httpx's transport: the run logic builds every call and acts on every outcome; how
    a call is made is the caller's business. :class:`ThreadCaller` is the default (a call
    thread, so a timeout stops the wait); ``Engine(caller=...)`` injects another, e.g. the
    fault harness's, which answers some calls itself (a refusal, a lost answer) and passes
    the rest on. A caller never raises for an error of user code: that is an outcome.
    """

    def call(self, request: Call) -> Outcome:
        """Make the call and classify what happened (see :class:`OutcomeKind`)."""
        ...


class ThreadCaller:
    """Performs calls of user code, for the sync and the async engine alike.

    A sync function runs on a call thread; so does a coroutine function for the sync engine
    (on that thread's own event loop, cancelled at its timeout). The async engine runs a
    coroutine function on the caller's loop under ``asyncio.wait_for``.
    """

    def __init__(self, *, max_workers: int = 32) -> None:
        self._threads = CallThreads(max_threads=max_workers, name="sagaguard-call")

    def start(
        self, request: Call, *, track: Callable[[PendingCall], None] | None = None
    ) -> PendingCall:
        """Start the call on a call thread; the engine then waits on the pending call.

        ``track`` is told of the call in the caller's thread before it is handed off: an
        interrupt that reaches the caller anywhere after that (Ctrl-C between the hand-off
        and the return) can never lose a call that may already run. One that lands before
        the hand-off leaves a call that never runs; the caller withdraws it
        (:meth:`PendingCall.withdraw`), as it may any call whose code has not started.
        """
        pending = PendingCall(request)
        if track is not None:
            track(pending)
        self._threads.submit(_Perform(self, pending))
        return pending

    def call(self, request: Call) -> Outcome:
        """Run the call and wait for it within its timeout (the sync engine's way)."""
        return self.start(request).wait(self.wait_s(request))

    def wait_s(self, request: Call) -> float:
        """How long to wait for a call started with :meth:`start`."""
        if inspect.iscoroutinefunction(request.fn):
            return request.timeout_s + _COROUTINE_GRACE_S
        return request.timeout_s

    async def call_on_loop(self, request: Call) -> Outcome:
        """Run a coroutine function on the running loop (the async engine's way)."""
        try:
            value = await asyncio.wait_for(request.fn(request.ctx), request.timeout_s)
            if inspect.isawaitable(value):
                value = await asyncio.wait_for(value, request.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any error of user code is an outcome
            return Outcome.of_exception(exc)
        return Outcome(OutcomeKind.OK, value=value)

    def _guarded(self, request: Call) -> Outcome:
        """Run on a call thread: the call's outcome (an error of the step is one)."""
        try:
            if inspect.iscoroutinefunction(request.fn):
                value = self._run_coroutine(request.fn(request.ctx), request.timeout_s)
            else:
                value = request.fn(request.ctx)
            if inspect.isawaitable(value):
                # An async callable object, or a wrapper that returns a coroutine.
                value = self._run_coroutine(value, request.timeout_s)
        except (Exception, *_STEP_EXITS) as exc:  # noqa: BLE001 - any error of user code is an outcome
            return Outcome.of_exception(exc)
        return Outcome(OutcomeKind.OK, value=value)

    @staticmethod
    def _run_coroutine(awaitable: Awaitable[Any], timeout_s: float) -> Any:
        # A loop of its own per call, closed after it: nothing of one call outlives it.
        async def exits_carried() -> Any:
            try:
                return await awaitable
            except _STEP_EXITS as exc:
                # A task lets these out of its loop, which then logs its own traceback.
                raise _CarriedExit(exc) from None

        async def within_timeout() -> Any:
            return await asyncio.wait_for(exits_carried(), timeout_s)

        try:
            return asyncio.run(within_timeout())
        except _CarriedExit as carried:
            raise carried.exc from None

    def close(self) -> None:
        """Stop accepting calls; calls in flight are abandoned, not awaited."""
        self._threads.close()


class _Perform:
    """One call as its thread runs it (the :class:`~sagaguard.engine.call_threads.Task`)."""

    __slots__ = ("_caller", "_pending")

    def __init__(self, caller: ThreadCaller, pending: PendingCall) -> None:
        self._caller, self._pending = caller, pending

    def run(self) -> None:
        pending = self._pending
        if not pending.begin():
            return  # withdrawn before it started: the step's code never ran
        try:
            outcome = self._caller._guarded(pending.request)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, as a future does
            pending.settle(None, exc)
        else:
            pending.settle(outcome)

    def withdraw(self) -> None:
        self._pending.withdraw()


class _CarriedExit(Exception):  # noqa: N818 - it carries, it is not an error of its own
    """A step coroutine's SystemExit or KeyboardInterrupt, carried out of its event loop."""

    def __init__(self, exc: KeyboardInterrupt | SystemExit) -> None:
        super().__init__(type(exc).__name__)
        self.exc = exc


def _report_late(pending: PendingCall, ctx: StepContext) -> None:
    """Log how a call in flight ended: a person reviewing the step wants to know."""
    try:
        outcome = pending.outcome()
    except BaseException as error:  # noqa: BLE001 - how it ended is all that is told
        ending = f"raised {type(error).__name__}"
    else:
        if outcome is _WITHDRAWN:
            return
        ending = "returned" if outcome.kind is OutcomeKind.OK else f"ended {outcome.reason}"
    logger.warning(
        "call %s of run %s in flight (attempt %d, key %s) finished late: %s",
        ctx.step_id,
        ctx.operation_id,
        ctx.attempt,
        ctx.idempotency_key,
        describe(ending),
    )
