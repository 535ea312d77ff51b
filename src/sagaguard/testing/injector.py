"""The fault points of a scenario: crash there, or let something happen while the run waits.

:class:`ScheduledFaults` is the engine's :class:`~sagaguard.engine.faults.FaultInjector`
for one scenario, shared by every engine that works on its run. At its point each
:class:`~sagaguard.planner.testplan.Injection` does what its kind says:

- ``crash``: the worker dies here (:class:`~sagaguard.engine.faults.SimulatedCrash`);
- ``concurrent_start``: a second worker starts the same operation_id, while this one waits;
- ``resubmit``: the client will send the same operation_id again once this worker is gone.

Each fires once per attempt it aims at, however many workers pass the point. A hook may be
set for a point too (a second owner taking the run over while the first one waits there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from sagaguard.engine.faults import SimulatedCrash
from sagaguard.planner.testplan import FaultKind, Injection
from sagaguard.testing.caller import FaultingCaller
from sagaguard.testing.faults import Hit
from sagaguard.vocabulary import FaultPoint

__all__ = ["ScheduledFaults"]

Hook = Callable[[], None]


class ScheduledFaults:
    """Crashes and interleavings at the engine's fault points, as a scenario schedules them."""

    def __init__(
        self,
        faults: Iterable[Injection],
        *,
        caller: FaultingCaller | None = None,
        on_concurrent_start: Hook | None = None,
    ) -> None:
        self.faults = tuple(faults)
        self.caller = caller
        self.on_concurrent_start = on_concurrent_start
        self.hooks: dict[tuple[FaultPoint, str, int], Hook] = {}
        """One-shot actions at a point of a step's attempt (the takeover of a racing owner)."""
        self.seen: list[Hit] = []
        self.crashes: list[Hit] = []
        self.resubmit = False
        """Set once a ``resubmit`` fired: the client sends the operation_id again."""
        self._fired: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        """Act on every fault scheduled for this point of this attempt; a crash comes last."""
        hit = Hit(FaultPoint(point), operation_id, step_id, attempt)
        if point is FaultPoint.BEFORE_VERIFY and self.caller is not None:
            self.caller.note_verify(step_id, attempt)
        with self._lock:
            self.seen.append(hit)
            hook = self.hooks.pop((hit.point, step_id, attempt), None)
            due = [f for f in self._due(hit) if self._fire(f, attempt)]
        if hook is not None:
            hook()
        crash = False
        for injection in due:
            if injection.fault is FaultKind.CONCURRENT_START and self.on_concurrent_start:
                self.on_concurrent_start()
            elif injection.fault is FaultKind.RESUBMIT:
                self.resubmit = True
            elif injection.fault is FaultKind.CRASH:
                crash = True
        if crash:
            self.crashes.append(hit)
            raise SimulatedCrash(
                f"injected crash at {hit.point.value} of {step_id} attempt {attempt} "
                f"(run {operation_id})"
            )

    def _due(self, hit: Hit) -> list[Injection]:
        return [
            f
            for f in self.faults
            if f.point == hit.point
            and f.step == hit.step_id
            and (f.attempt is None or f.attempt == hit.attempt)
        ]

    def _fire(self, injection: Injection, attempt: int) -> bool:
        key = (id(injection), attempt)
        if key in self._fired:
            return False
        self._fired.add(key)
        return True
