"""Calls whose caller gave up: a Ctrl-C, a cancelled task, a timeout around ``run_async``.

Python cannot stop a sync call on its call thread, so when the code driving a run is
interrupted the call goes on: it is *in flight*, and its effect may still be on its way. The
engine keeps such a call here, by operation id. Until it has returned, nobody in this
engine verifies or repeats it: a second ``run`` or ``resume`` reports the run as in progress
(or waits for the call, when asked). Once it has returned, the next driver of the run
journals its outcome (:class:`Returned`) as if the interrupted driver had received it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from sagaguard.engine.calls import Outcome, PendingCall
from sagaguard.engine.saga import Saga
from sagaguard.storage.base import StepRecord, StepStatus

__all__ = ["Abandoned", "CallKind", "Returned", "counters_of"]


class CallKind(StrEnum):
    """Which code of a step a call ran."""

    STEP = "step"
    VERIFY = "verify"
    COMPENSATE = "compensate"


Counters = tuple[int, int, int]
"""A step's attempts, verify calls and compensation attempts: which call a call was."""


def counters_of(record: StepRecord) -> Counters:
    """The counters of a step's row; a call's outcome fits the row only while they hold."""
    return (record.attempts, record.verify_attempts, record.compensation_attempts)


@dataclass(frozen=True, slots=True)
class Returned:
    """The outcome of an abandoned call that has returned, for the next driver to journal."""

    kind: CallKind
    counters: Counters
    outcome: Outcome

    def fits(self, record: StepRecord, kind: CallKind) -> bool:
        """True when the step's row is still where it was when the call was made."""
        return self.kind is kind and counters_of(record) == self.counters


@dataclass(frozen=True, slots=True)
class _Entry:
    step_id: str
    kind: CallKind
    counters: Counters
    pending: PendingCall


class Abandoned:
    """The calls of one engine whose driver was interrupted, by operation id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, list[_Entry]] = {}

    def add(self, operation_id: str, saga: Saga, record: StepRecord, pending: PendingCall) -> None:
        """Keep ``pending``, a call of ``record``'s step that its driver gave up on."""
        handlers = saga.handlers(record.step_id)
        fn = pending.request.fn
        if record.status is StepStatus.COMPENSATING:
            kind = CallKind.COMPENSATE
        elif fn == handlers.verify and fn != handlers.call:
            kind = CallKind.VERIFY
        else:
            kind = CallKind.STEP
        entry = _Entry(record.step_id, kind, counters_of(record), pending)
        with self._lock:
            self._calls.setdefault(operation_id, []).append(entry)

    def busy(self, operation_id: str) -> bool:
        """True while an abandoned call of the run has not returned."""
        with self._lock:
            return any(not e.pending.done() for e in self._calls.get(operation_id, ()))

    def wait(self, operation_id: str, seconds: float) -> None:
        """Wait up to ``seconds`` for the run's abandoned calls to return."""
        deadline = time.monotonic() + seconds
        for entry in self._entries(operation_id):
            entry.pending.wait_more(max(0.0, deadline - time.monotonic()))

    async def wait_async(self, operation_id: str, seconds: float) -> None:
        """:meth:`wait` on an event loop: the loop runs on meanwhile."""
        deadline = time.monotonic() + seconds
        for entry in self._entries(operation_id):
            await entry.pending.wait_more_async(max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(0)

    def take(self, operation_id: str) -> dict[str, Returned]:
        """The outcomes of the run's abandoned calls that returned, by step; forgotten here."""
        with self._lock:
            entries = self._calls.pop(operation_id, [])
            waiting = [e for e in entries if not e.pending.done()]
            if waiting:
                self._calls[operation_id] = waiting
        return {
            e.step_id: Returned(e.kind, e.counters, e.pending.outcome())
            for e in entries
            if e.pending.done()
        }

    def _entries(self, operation_id: str) -> list[_Entry]:
        with self._lock:
            return list(self._calls.get(operation_id, ()))
