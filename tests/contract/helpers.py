"""Small builders shared by the contract tests: a run, its transitions, and a fake clock's times."""

from __future__ import annotations

from typing import Any

from sagaguard.storage import (
    Claim,
    Event,
    JournalStore,
    NewRun,
    RunSnapshot,
    RunStatus,
    StepChange,
    StepStatus,
    Transition,
)

T0 = 1_700_000_000.0
"""The fake clock's start: every test passes times explicitly."""
LEASE = 30.0
STEPS = ("reserve", "charge", "ship")
INPUT: dict[str, Any] = {"order": "A-17", "amount_cents": 4200, "items": [{"sku": "X", "qty": 2}]}


def new_run(
    operation_id: str = "op-1",
    *,
    process: str = "checkout",
    version: str = "1",
    input: Any = None,
    steps: tuple[str, ...] = STEPS,
) -> NewRun:
    """A run request; ``input`` defaults to a fresh copy of :data:`INPUT`."""
    payload = (
        {**INPUT, "items": [dict(item) for item in INPUT["items"]]} if input is None else input
    )
    return NewRun(
        operation_id=operation_id, process=process, version=version, input=payload, step_ids=steps
    )


def start(
    store: JournalStore,
    operation_id: str = "op-1",
    *,
    owner: str = "worker-a",
    now: float = T0,
    lease_s: float = LEASE,
    **run: Any,
) -> Claim:
    """Create a run and return its creator's claim."""
    result = store.create_run(new_run(operation_id, **run), owner=owner, now=now, lease_s=lease_s)
    assert result.created
    assert result.claim is not None
    return result.claim


def step(kind: str, step_id: str, status: StepStatus, **fields: Any) -> Transition:
    """A transition that changes one step."""
    return Transition(kind=kind, step=StepChange(step_id=step_id, status=status, **fields))


def started(step_id: str, *, attempt: int = 1, at: float = T0) -> Transition:
    """The write-ahead record committed before a step's call."""
    return step("step_started", step_id, StepStatus.STARTED, attempts=attempt, last_attempt_at=at)


def completed(
    step_id: str, *, seq: int, result: Any = None, external_id: str | None = None
) -> Transition:
    """A step's confirmed effect."""
    return step(
        "step_completed",
        step_id,
        StepStatus.COMPLETED,
        result=result,
        external_id=external_id,
        completed_seq=seq,
    )


def run_becomes(status: RunStatus, *, reason: str | None = None) -> Transition:
    """A transition that changes only the run's status."""
    return Transition(kind=f"run_{status.value}", run_status=status, run_reason=reason)


def journal(store: JournalStore, operation_id: str = "op-1") -> tuple[RunSnapshot, list[Event]]:
    """Everything the store holds about one run, to compare before and after a rejected write."""
    return store.load(operation_id), store.events(operation_id)
