"""Journaling a person's finding on a step that waits for review.

The finding is checked before the claim (a plain mistake journals nothing) and again under
it (a resolution that raced this one is seen, or fenced off), then recorded with the release
in one commit. Where the run goes next is :mod:`sagaguard.engine.resolution`'s to say; this
module adds what only the process can tell: once the point of no return completed, a finding
never rolls the run back past it.
"""

from __future__ import annotations

from collections.abc import Callable

from sagaguard.engine.resolution import Resolution, resolution_change
from sagaguard.engine.saga import Saga
from sagaguard.exceptions import ResolutionError
from sagaguard.storage.base import JournalStore, RunSnapshot, RunStatus, StepChange, Transition
from sagaguard.storage.payloads import JSONValue
from sagaguard.vocabulary import EventKind

__all__ = ["apply_resolution"]


def apply_resolution(
    store: JournalStore,
    operation_id: str,
    *,
    step_id: str,
    outcome: Resolution,
    by: str,
    note: str,
    result: JSONValue,
    saga: Saga | None,
    clock: Callable[[], float],
    lease_s: float,
) -> RunSnapshot:
    """Journal the resolution of ``step_id`` and release the run; returns it as it stands."""
    _change(store.load(operation_id), step_id, outcome, result, saga)
    claim = store.claim(operation_id, owner=f"review:{by}", now=clock(), lease_s=lease_s)
    try:
        change, run_status = _change(store.load(operation_id), step_id, outcome, result, saga)
    except BaseException:
        store.release(claim, now=clock())
        raise
    transition = Transition(
        kind=EventKind.RESOLVED,
        step=change,
        run_status=run_status,
        reason=f"{outcome.value} by {by}: {note}",
        run_reason=f"resolved {step_id} as {outcome.value} by {by}",
        data={"by": by, "note": note, "as": outcome.value, "result": result},
    )
    store.record(claim, [transition], now=clock(), lease_s=lease_s, release=True)
    return store.load(operation_id)


def _change(
    snapshot: RunSnapshot,
    step_id: str,
    outcome: Resolution,
    result: JSONValue,
    saga: Saga | None,
) -> tuple[StepChange, RunStatus]:
    run = snapshot.run
    if run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
        raise ResolutionError(
            f"run {run.operation_id} is {run.status.value}, not needs_manual_review"
        )
    try:
        record = snapshot.step(step_id)
    except KeyError:
        raise ResolutionError(f"run {run.operation_id} has no step {step_id!r}") from None
    id_field = record.external_id_field
    if id_field is None and saga is not None:  # a run journaled before the field existed
        id_field = saga.process.step(step_id).external_id
    change, run_status = resolution_change(record, outcome, result, snapshot, id_field)
    if run_status is RunStatus.COMPENSATING and saga is not None:
        _never_past_the_pivot(snapshot, step_id, saga)
    return change, run_status


def _never_past_the_pivot(snapshot: RunSnapshot, step_id: str, saga: Saga) -> None:
    """Invariant 10: once the pivot completed, nothing at or before it is rolled back."""
    pivot = saga.process.pivot
    if pivot is None or pivot.id == step_id:
        return
    if snapshot.step(pivot.id).completed_seq is None:
        return
    raise ResolutionError(
        f"step {pivot.id} (the point of no return) completed, so run "
        f"{snapshot.run.operation_id} is never rolled back: resolve {step_id} as completed "
        "or not_applied, and undo by hand what must be undone"
    )
