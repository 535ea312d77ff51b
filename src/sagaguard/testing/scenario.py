"""One scenario of the fault matrix, and what running it showed.

A :class:`Scenario` is a schedule of faults (the plan's own
:class:`~sagaguard.planner.testplan.Injection`\\ s), the end the rulebook promises for it
(:class:`~sagaguard.planner.testplan.ExpectedState`), and, for the scenarios about more than
one worker, who else acts and where. A :class:`ScenarioResult` lists every :class:`Failure`
the run showed: a broken invariant, a final state other than the promised one, a world
that disagrees with the journal, a stale owner that was not fenced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sagaguard.planner.testplan import ExpectedState, Injection
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus

__all__ = [
    "Duplicate",
    "Failure",
    "Observed",
    "Scenario",
    "ScenarioKind",
    "ScenarioResult",
    "StepObservation",
]


class ScenarioKind(StrEnum):
    """Where a scenario comes from, and what it is about."""

    PLAN = "plan"
    """A partial-failure test of the plan, run as written, with the plan's id."""
    CRASH = "crash"
    """The worker dies at a fault point; a fresh engine recovers the run from the journal."""
    TIMEOUT = "timeout"
    """A call takes effect, and its answer is lost."""
    DUPLICATE = "duplicate"
    """The same operation_id again, after the run or at the same time."""
    RACE = "race"
    """A second owner takes the run over while the first one still holds a call's answer."""
    COMPENSATION = "compensation"
    """A rollback's compensation fails, once or for good."""
    VERIFY = "verify"
    """Verify cannot tell, once or for good."""
    PIVOT = "pivot"
    """A step after the point of no return fails or is refused."""
    BEST_EFFORT = "best_effort"
    """A best-effort step fails, is refused or loses its answer."""
    EXPLORE = "explore"
    """A random schedule of several faults (``--explore``)."""


class Duplicate(StrEnum):
    """How the same operation_id arrives again."""

    SEQUENTIAL = "sequential"
    """Once the run is over: the same input gets the run back, another input is a conflict."""
    CONCURRENT = "concurrent"
    """Two workers start it at the same moment (threads lined up by a barrier)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """Faults to inject into one run, and the end the rules promise for it."""

    id: str
    kind: ScenarioKind
    title: str
    faults: tuple[Injection, ...]
    expected: ExpectedState
    step: str | None = None
    """The step the scenario is about (None: the whole run)."""
    takeover_at: tuple[str, FaultPoint] | None = None
    """A second owner takes the run over while the first waits at this point of this step
    (attempt 1), and the first one then tries to go on."""
    duplicate: Duplicate | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """One way a scenario's run went wrong."""

    check: str
    """``invariant N``, ``expected``, ``world``, ``verify``, ``ownership``, ``duplicate`` or
    ``engine`` (the engine raised, or the run did not settle)."""
    step: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.step}]" if self.step else ""
        return f"{self.check}{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class StepObservation:
    """How one step ended: its status, and how often its three functions were called."""

    status: StepStatus
    calls: int
    verifies: int
    compensations: int


@dataclass(frozen=True, slots=True)
class Observed:
    """How a scenario's run ended, in the terms of :class:`ExpectedState`."""

    run_status: RunStatus
    steps: Mapping[str, StepObservation]
    alerts: tuple[tuple[AlertKind, str | None, str | None], ...]
    """(kind, step, route) of every alert, in the order they were raised."""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """What running one scenario showed."""

    scenario: Scenario
    seed: int
    failures: tuple[Failure, ...]
    observed: Observed | None
    """None when the run could not be observed (the engine raised before it existed)."""
    restarts: int = 0
    """How many fresh engines took the run up after a crash."""
    seconds: float = 0.0
    operation_id: str = field(default="")

    @property
    def passed(self) -> bool:
        """True when nothing went wrong."""
        return not self.failures
