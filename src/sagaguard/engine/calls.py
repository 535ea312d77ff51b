"""Calling user code: one outcome type, a sync and an async way to get it.

The run logic (``runner.py``) never calls user code itself: it yields a :class:`Call` and
receives an :class:`Outcome`. The sync engine and the async engine each perform calls their
own way (threads or the caller's event loop) but share every decision.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sagaguard.engine.context import StepContext
from sagaguard.exceptions import StepFailed

logger = logging.getLogger("sagaguard.engine")


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
    in_flight: bool = False
    """The call timed out and is still running on a thread that Python cannot stop: its
    effect may still be on its way, so asking the other side now proves nothing."""
    retryable: bool = True
    """For a definite failure: whether a repeat could get another answer."""

    @classmethod
    def of_exception(cls, exc: BaseException) -> Outcome:
        """Classify an exception raised by user code."""
        if isinstance(exc, StepFailed):
            return cls(OutcomeKind.FAILED, reason=_short(exc.reason), retryable=exc.retry)
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return cls(OutcomeKind.UNKNOWN, reason="timed out")
        return cls(OutcomeKind.UNKNOWN, reason=_short(f"{type(exc).__name__}: {exc}"))


@dataclass(frozen=True, slots=True)
class Call:
    """A request from the run logic: call ``fn(ctx)`` within ``timeout_s``."""

    fn: Callable[..., Any]
    ctx: StepContext
    timeout_s: float | None


@dataclass(frozen=True, slots=True)
class Sleep:
    """A request from the run logic: wait ``seconds`` before the next attempt."""

    seconds: float


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Caller(Protocol):
    """The engine's one-method seam to user code: perform a :class:`Call`, say what happened.

    Like httpx's transport: the run logic builds every call and acts on every outcome; how
    a call is made is the caller's business. :class:`ThreadCaller` is the default (a pool
    thread, so a timeout stops the wait); ``Engine(caller=...)`` injects another, e.g. the
    fault harness's, which answers some calls itself (a refusal, a lost answer) and passes
    the rest on. A caller never raises for an error of user code: that is an outcome.
    """

    def call(self, request: Call) -> Outcome:
        """Make the call and classify what happened (see :class:`OutcomeKind`)."""
        ...


class ThreadCaller:
    """Performs calls of user code, for the sync and the async engine alike.

    A sync function with a timeout runs on a pool thread so the engine can stop waiting.
    Python cannot kill a thread, so a call still running at its timeout is abandoned and
    reported as an unknown outcome *in flight*; one that never got a thread (every thread
    busy with hung calls) is withdrawn and reported as a definite failure, since it never
    ran. A coroutine runs under ``asyncio.wait_for``, which does cancel it.
    """

    def __init__(self, *, max_workers: int = 32) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="sagaguard-call"
        )
        self._local = threading.local()

    def call(self, request: Call) -> Outcome:
        """Run the call in this thread's way (sync engine) and classify what happened."""
        try:
            if inspect.iscoroutinefunction(request.fn):
                value = self._run_coroutine(request.fn(request.ctx), request.timeout_s)
            elif request.timeout_s is None:
                value = request.fn(request.ctx)
            else:
                future = self._pool.submit(request.fn, request.ctx)
                try:
                    value = future.result(timeout=request.timeout_s)
                except TimeoutError:
                    if not future.done():
                        return _abandon(future, request)
                    # It ended just now, or the call itself raised TimeoutError.
                    value = future.result()
            if inspect.isawaitable(value):
                # An async callable object, or a wrapper that returns a coroutine.
                value = self._run_coroutine(value, request.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any error of user code is an outcome
            return Outcome.of_exception(exc)
        return Outcome(OutcomeKind.OK, value=value)

    async def call_async(self, request: Call) -> Outcome:
        """Run the call on the caller's event loop (async engine) and classify what happened."""
        try:
            if inspect.iscoroutinefunction(request.fn):
                value = await asyncio.wait_for(request.fn(request.ctx), request.timeout_s)
            else:
                future = self._pool.submit(request.fn, request.ctx)
                waiting = asyncio.wrap_future(future)
                # asyncio.wait, not wait_for: a timeout must not cancel what it cannot stop.
                done, _ = await asyncio.wait({waiting}, timeout=request.timeout_s)
                if not done:
                    outcome = _abandon(future, request)
                    waiting.cancel()  # detach from this loop; the thread's future is unaffected
                    return outcome
                value = waiting.result()
            if inspect.isawaitable(value):
                value = await asyncio.wait_for(value, request.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any error of user code is an outcome
            return Outcome.of_exception(exc)
        return Outcome(OutcomeKind.OK, value=value)

    def _run_coroutine(self, awaitable: Awaitable[Any], timeout_s: float | None) -> Any:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            self._local.loop = loop
        return loop.run_until_complete(asyncio.wait_for(awaitable, timeout_s))

    def close(self) -> None:
        """Stop accepting calls; hung calls are abandoned, not awaited."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is not None and not loop.is_closed():
            loop.close()


def _abandon(future: concurrent.futures.Future[Any], request: Call) -> Outcome:
    """The outcome of a sync call that did not finish within its timeout."""
    ctx = request.ctx
    if future.cancel():
        return Outcome(
            OutcomeKind.FAILED,
            reason=f"not started within {request.timeout_s:g}s: every call thread is busy "
            "with calls that hung, so it was withdrawn unmade",
        )
    logger.warning(
        "%s of run %s (attempt %d) still runs after its %gs timeout: abandoned",
        ctx.step_id,
        ctx.operation_id,
        ctx.attempt,
        request.timeout_s,
    )
    future.add_done_callback(lambda done: _report_late(done, ctx))
    return Outcome(
        OutcomeKind.UNKNOWN,
        reason=f"timed out after {request.timeout_s:g}s, call still running",
        in_flight=True,
    )


def _report_late(future: concurrent.futures.Future[Any], ctx: StepContext) -> None:
    """Log how an abandoned call ended: a person reviewing the step wants to know."""
    if future.cancelled():
        return
    error = future.exception()
    ending = "returned" if error is None else f"raised {type(error).__name__}: {error}"
    logger.warning(
        "abandoned call %s of run %s (attempt %d, key %s) finished late: %s",
        ctx.step_id,
        ctx.operation_id,
        ctx.attempt,
        ctx.idempotency_key,
        _short(ending),
    )
