"""Partial-failure tests as data: the faults to inject and the final state the rules expect.

Each test of a plan names its faults by the engine's fault points and a :class:`FaultKind`,
and states the expected end of the run: the status of every step and of the run, how many
times each step's call, verify and compensation run, and the alerts raised. Every
expectation is derived from :func:`sagaguard.rules.decide` (by :mod:`.simulate`), so a fault
harness can run the test against the real engine and compare field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import Field

from sagaguard.planner.part import Part
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus

__all__ = [
    "Count",
    "ExpectedAlert",
    "ExpectedState",
    "FaultKind",
    "Injection",
    "PartialFailureTest",
    "StepExpectation",
    "TestCategory",
]


class TestCategory(StrEnum):
    """The partial-failure tests the guide asks for."""

    __test__ = False  # not a pytest test class despite its name

    FAILURE_AFTER_STEP = "failure_after_step"
    CRASH_BEFORE_PERSIST = "crash_before_persist"
    TIMEOUT = "timeout"
    RETRY_AFTER_PARTIAL_SUCCESS = "retry_after_partial_success"
    PARALLEL_SAME_OPERATION_ID = "parallel_same_operation_id"
    COMPENSATION_FAILURE = "compensation_failure"


class FaultKind(StrEnum):
    """What the injected fault does at its point."""

    FAIL = "fail"
    """A definite failure a repeat may fix: answered "no", nothing changed (``StepFailed``)."""
    REFUSE = "refuse"
    """A refusal a repeat cannot change, e.g. a decline (``StepFailed(retry=False)``)."""
    CRASH = "crash"
    """The worker process dies here; a restarted worker resumes from the journal."""
    TIMEOUT = "timeout"
    """The call took effect but its answer never arrives within the step's timeout."""
    CONCURRENT_START = "concurrent_start"
    """A second worker starts the same operation_id while the first is paused here."""
    RESUBMIT = "resubmit"
    """The client sends the same operation_id again (after a crash or a lost answer)."""


class Injection(Part):
    """One fault to inject: on which step, at which point, what it does, on which attempt."""

    step: str
    point: FaultPoint
    fault: FaultKind
    attempt: int | None = Field(
        description="the attempt it fires on, from 1 (of the call, or of the compensation at "
        "a compensation point); null: every attempt"
    )


class Count(Part):
    """How many times something runs: exactly ``at_least`` when ``at_most`` equals it."""

    at_least: int
    at_most: int | None = Field(
        description="null: no upper bound the rules fix (retried for as long as a time window "
        "lasts, so the number depends on the clock)"
    )


class StepExpectation(Part):
    """The final state of a run of consecutive steps that all end the same way in a test.

    ``first`` to ``last`` (inclusive, in process order): merging equal neighbours keeps a
    plan's tests linear in the number of steps, since most steps of a test end alike.
    """

    first: str
    last: str
    status: StepStatus
    calls: Count = Field(description="runs of the step's call")
    verifies: Count = Field(description="runs of its verify")
    compensations: Count = Field(description="runs of its compensation")


class ExpectedAlert(Part):
    """An alert a test expects, and where it goes."""

    kind: AlertKind
    step: str
    route: str | None = Field(description="the step's alert route; null when none is declared")


class ExpectedState(Part):
    """The final state a partial-failure test asserts."""

    run_status: RunStatus
    steps: tuple[StepExpectation, ...] = Field(
        description="runs of steps covering every step once, in process order; "
        "compensations run latest first"
    )
    alerts: tuple[ExpectedAlert, ...] = Field(description="alerts raised, in order")

    def per_step(self, step_ids: Sequence[str]) -> dict[str, StepExpectation]:
        """The expectation of every step, given the process's step ids in order."""
        out: dict[str, StepExpectation] = {}
        position = {step_id: i for i, step_id in enumerate(step_ids)}
        for expectation in self.steps:
            for step_id in step_ids[position[expectation.first] : position[expectation.last] + 1]:
                out[step_id] = expectation
        return out


class PartialFailureTest(Part):
    """One partial-failure test: scenario, injected faults, expected final state."""

    id: str
    category: TestCategory
    step: str = Field(description="the step the test is about")
    scenario: str
    injection: tuple[Injection, ...]
    expected: ExpectedState
