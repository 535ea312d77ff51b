"""Callers for the fault harness: call in this thread, and answer some calls with a fault.

:class:`InlineCaller` makes each call in the engine's own thread (no pool, no timeout): fast
and deterministic for fakes that never hang. :class:`FaultingCaller` wraps another caller,
records every call in a :class:`~sagaguard.testing.ledger.Ledger` before it goes anywhere,
and answers the calls a schedule of :class:`~sagaguard.planner.testplan.Injection` aims at
the way a real other side would fail:

- ``fail`` / ``refuse``: answered "no", nothing changed (the step code is not called);
- ``timeout``: the step code is called (its effect happens) and the answer is lost.

At a verify point, each of them means verify could not tell. Crashes and the other faults
stand at the engine's fault points (:mod:`sagaguard.testing.injector`).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sagaguard.engine.calls import Call, Caller, Outcome, OutcomeKind
from sagaguard.engine.context import Applied, NotApplied
from sagaguard.engine.saga import Saga
from sagaguard.planner.testplan import FaultKind, Injection
from sagaguard.testing.ledger import Ledger, LedgerKind
from sagaguard.testing.world import World
from sagaguard.vocabulary import FaultPoint

__all__ = ["FaultingCaller", "InlineCaller", "role_of"]

_POINTS = {
    LedgerKind.CALL: (FaultPoint.BEFORE_CALL, FaultPoint.AFTER_CALL),
    LedgerKind.COMPENSATE: (FaultPoint.BEFORE_COMPENSATION, FaultPoint.AFTER_COMPENSATION),
    LedgerKind.VERIFY: (FaultPoint.BEFORE_VERIFY, FaultPoint.AFTER_VERIFY),
}
_ANSWERED = (FaultKind.FAIL, FaultKind.REFUSE, FaultKind.TIMEOUT)


class InlineCaller:
    """Calls user code in the calling thread; a coroutine runs to its end on a loop of its own.

    No timeout can stop a sync call made this way, so it is for code that answers (fakes,
    simulated providers); the engine's default :class:`~sagaguard.engine.ThreadCaller` is
    for the real thing.
    """

    def call(self, request: Call) -> Outcome:
        """Make the call and classify what happened."""
        try:
            value = request.fn(request.ctx)
            if inspect.isawaitable(value):
                value = asyncio.run(_within(value, request.timeout_s))
        except Exception as exc:  # noqa: BLE001 - any error of user code is an outcome
            return Outcome.of_exception(exc)
        return Outcome(OutcomeKind.OK, value=value)


async def _within(awaitable: Any, timeout_s: float | None) -> Any:
    return await asyncio.wait_for(awaitable, timeout_s)


def role_of(saga: Saga, request: Call) -> LedgerKind:
    """Which of its step's functions a call runs: the call, its compensation or its verify."""
    handlers = saga.handlers(request.ctx.step_id)
    # ==, not is: a bound method is a new object each time it is read, and equal to itself.
    if handlers.compensate is not None and request.fn == handlers.compensate:
        return LedgerKind.COMPENSATE
    if handlers.verify is not None and request.fn == handlers.verify:
        return LedgerKind.VERIFY
    return LedgerKind.CALL


class FaultingCaller:
    """Records every call, answers the scheduled ones with their fault, passes the rest on.

    One instance serves every engine of a scenario (the first owner, the ones that recover
    it, a racing second worker), so its ledger and counters span crashes. ``world``, when
    given, is asked after each verify whether the answer is true: a verify that says "not
    applied" while the provider holds the effect (or "applied" while it holds none) is a
    bug in the step's code, kept in :attr:`lies`.
    """

    def __init__(
        self,
        *,
        saga: Saga,
        faults: Iterable[Injection],
        ledger: Ledger,
        inner: Caller | None = None,
        world: World | None = None,
    ) -> None:
        self.saga = saga
        self.ledger = ledger
        self.inner: Caller = inner if inner is not None else InlineCaller()
        self.world = world
        self.lies: list[tuple[str, str]] = []
        """(step id, what verify got wrong), in the order the lies were told."""
        self._faults: dict[tuple[str, LedgerKind], list[Injection]] = {}
        for injection in faults:
            if injection.fault not in _ANSWERED:
                continue
            for role, points in _POINTS.items():
                if injection.point in points:
                    self._faults.setdefault((injection.step, role), []).append(injection)
        self._lock = threading.Lock()
        self._verifies: Counter[tuple[str, int]] = Counter()
        self._verify_number: dict[str, int] = {}

    def note_verify(self, step_id: str, number: int) -> None:
        """The engine is about to make verify call ``number`` of the step (its fault point)."""
        with self._lock:
            self._verify_number[step_id] = number

    def call(self, request: Call) -> Outcome:
        """Record the call, then answer it with its scheduled fault or pass it on."""
        ctx = request.ctx
        role = role_of(self.saga, request)
        self.ledger.record(ctx, role)
        number = self._number(role, ctx.step_id, ctx.attempt)
        fault = self._fault(ctx.step_id, role, number)
        where = f"{role.value} {number} of {ctx.step_id}"
        if fault is not None and fault.fault is not FaultKind.TIMEOUT:
            if role is LedgerKind.VERIFY:
                return Outcome(OutcomeKind.UNKNOWN, reason=f"injected: {where} could not tell")
            return Outcome(
                OutcomeKind.FAILED,
                reason=f"injected {fault.fault.value}: {where}, nothing changed",
                retryable=fault.fault is FaultKind.FAIL,
            )
        outcome = self.inner.call(request)
        if role is LedgerKind.VERIFY:
            self._check_answer(ctx.step_id, ctx.idempotency_key, outcome)
        if fault is not None:
            return Outcome(
                OutcomeKind.UNKNOWN, reason=f"injected timeout: {where} took effect, answer lost"
            )
        return outcome

    def _number(self, role: LedgerKind, step_id: str, attempt: int) -> int:
        """The attempt a fault is aimed at: of the call, the compensation, or the verify call."""
        if role is not LedgerKind.VERIFY:
            return attempt
        with self._lock:
            self._verifies[(step_id, attempt)] += 1
            noted = self._verify_number.pop(step_id, None)
            # An engine that names its verify calls at their fault point is believed; one
            # that does not has them counted here, per call of the step.
            return noted if noted is not None else self._verifies[(step_id, attempt)]

    def _fault(self, step_id: str, role: LedgerKind, number: int) -> Injection | None:
        """The fault aimed at this attempt; one aimed at it alone wins over "every attempt"."""
        aimed = self._faults.get((step_id, role), ())
        exact = [f for f in aimed if f.attempt == number]
        every = [f for f in aimed if f.attempt is None]
        found = exact or every
        return found[0] if found else None

    def _check_answer(self, step_id: str, key: str, outcome: Outcome) -> None:
        if self.world is None or outcome.kind is not OutcomeKind.OK:
            return
        live = self.world.live(key)
        if live is None:
            return  # no fake the harness can see holds effects of this kind
        process = self.saga.process
        if process.verify_after_for(process.step(step_id)) > 0:
            return  # "not found" within the settle delay is the provider's lag, not a lie
        if isinstance(outcome.value, NotApplied) and live > 0:
            self.lies.append(
                (step_id, f"verify said not applied while the provider held the effect ({key})")
            )
        elif isinstance(outcome.value, Applied) and live == 0:
            self.lies.append(
                (step_id, f"verify said applied while the provider held no effect ({key})")
            )
