"""Fault points: the named moments where a crash or failure can be injected.

The engine calls its injector at each point; the default injector does nothing. Tests and
``sagaguard verify`` pass one that raises :class:`SimulatedCrash` (or kills the process) at
a chosen point, so every claim about crashes can be checked against the real engine code.
Injected, never global: two engines in one process can carry different injectors.
"""

from __future__ import annotations

from typing import Protocol

from sagaguard.vocabulary import FaultPoint


class SimulatedCrash(BaseException):
    """Stands for the process dying at a fault point.

    A ``BaseException`` so that a step's ``except Exception`` cannot swallow it, as it could
    not swallow a real crash.
    """


class FaultInjector(Protocol):
    """Called by the engine at every fault point; may raise or kill the process."""

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        """Inject the fault planned for this point, if any."""
        ...


class NoFaults:
    """The production injector: never injects anything."""

    def check(self, point: FaultPoint, *, operation_id: str, step_id: str, attempt: int) -> None:
        """Do nothing."""


NO_FAULTS = NoFaults()
