"""Calling user code: one outcome type, a sync and an async way to get it.

The run logic (``runner.py``) never calls user code itself: it yields a :class:`Call` and
receives an :class:`Outcome`. The sync engine and the async engine each perform calls their
own way (threads or the caller's event loop) but share every decision.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sagaguard.engine.context import StepContext
from sagaguard.exceptions import StepFailed


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

    @classmethod
    def of_exception(cls, exc: BaseException) -> Outcome:
        """Classify an exception raised by user code."""
        if isinstance(exc, StepFailed):
            return cls(OutcomeKind.FAILED, reason=_short(exc.reason))
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


class ThreadCaller:
    """Performs calls for the sync engine.

    A sync function with a timeout runs on a pool thread so the engine can stop waiting;
    Python cannot kill the thread, so a hung call keeps its thread while the run moves on
    (its outcome is recorded as unknown and handled by the rules). A coroutine function runs
    on a private event loop under ``asyncio.wait_for``, which does cancel it.
    """

    def __init__(self, *, max_workers: int = 32) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="sagaguard-call"
        )
        self._local = threading.local()

    def call(self, request: Call) -> Outcome:
        """Run the call and classify what happened."""
        try:
            if inspect.iscoroutinefunction(request.fn):
                value = self._run_coroutine(request)
            elif request.timeout_s is None:
                value = request.fn(request.ctx)
            else:
                future = self._pool.submit(request.fn, request.ctx)
                value = future.result(timeout=request.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any error of user code is an outcome
            return Outcome.of_exception(exc)
        return Outcome(OutcomeKind.OK, value=value)

    def _run_coroutine(self, request: Call) -> Any:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            self._local.loop = loop
        return loop.run_until_complete(asyncio.wait_for(request.fn(request.ctx), request.timeout_s))

    def close(self) -> None:
        """Stop accepting calls; hung calls are abandoned, not awaited."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is not None and not loop.is_closed():
            loop.close()


async def call_async(request: Call) -> Outcome:
    """Perform a call for the async engine, on the caller's event loop."""
    try:
        if inspect.iscoroutinefunction(request.fn):
            value = await asyncio.wait_for(request.fn(request.ctx), request.timeout_s)
        else:
            value = await asyncio.wait_for(
                asyncio.to_thread(request.fn, request.ctx), request.timeout_s
            )
    except Exception as exc:  # noqa: BLE001 - any error of user code is an outcome
        return Outcome.of_exception(exc)
    return Outcome(OutcomeKind.OK, value=value)
