"""What a person's finding does to a step that waits for review, and where the run goes next.

Pure: given the step's record and the finding, the step change and the run's new status, or
:class:`~sagaguard.exceptions.ResolutionError` when the finding does not fit the step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sagaguard.exceptions import ResolutionError
from sagaguard.vocabulary import RunStatus, StepStatus

if TYPE_CHECKING:
    from sagaguard.storage.base import RunSnapshot, StepChange, StepRecord

__all__ = ["Resolution", "external_id_of", "resolution_change"]


class Resolution(StrEnum):
    """What a person found when they looked at a step waiting for review."""

    COMPLETED = "completed"
    """The step's effect happened (give its result): the run continues forward."""
    NOT_APPLIED = "not_applied"
    """The effect did not happen: the step may be retried within its bound, else rolled back."""
    COMPENSATED = "compensated"
    """The effect was undone by hand: the rollback continues with the step before it."""


def external_id_of(step_id: str, field: str, result: Any) -> str:
    """The external id a person's ``completed`` finding carries, or ``ResolutionError``.

    A step that persists an id (``external_id: payment_id``) is completed only with a result
    that holds it: its compensation (the refund) and later steps read it from the journal,
    and a completion without it could never be undone.
    """
    example = f'{{"{field}": "..."}}'
    if not isinstance(result, dict):
        given = "no result" if result is None else _JSON_KINDS.get(type(result), "another value")
        raise ResolutionError(
            f"step {step_id} persists {field}: resolving it as completed needs its result, "
            f"an object holding {field} (e.g. {example}), not {given}"
        )
    if field not in result:
        keys = ", ".join(sorted(map(str, result))[:5]) or "none"
        raise ResolutionError(
            f"step {step_id} persists {field}: the result must hold it (e.g. {example}); "
            f"its keys: {keys}"
        )
    value = result[field]
    if value is None or isinstance(value, bool | dict | list) or not str(value).strip():
        raise ResolutionError(
            f"step {step_id} persists {field}: {field} must be a non-empty text or number, "
            f"not {repr(value)[:40]}"
        )
    return str(value)


_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


def resolution_change(
    record: StepRecord,
    outcome: Resolution,
    result: Any,
    snapshot: RunSnapshot,
    external_id_field: str | None,
) -> tuple[StepChange, RunStatus]:
    """The step change and run status a resolution leads to, or ``ResolutionError``."""
    from sagaguard.storage.base import StepChange

    step_id, status = record.step_id, record.status
    waiting_forward = (StepStatus.NEEDS_MANUAL_REVIEW, StepStatus.UNKNOWN, StepStatus.STARTED)
    if status in waiting_forward:
        if outcome is Resolution.COMPLETED:
            seq = 1 + max((r.completed_seq or 0) for r in snapshot.steps)
            external = None
            if external_id_field:
                external = external_id_of(step_id, external_id_field, result)
            return (
                StepChange(
                    step_id,
                    StepStatus.COMPLETED,
                    result=result,
                    external_id=external,
                    completed_seq=seq,
                    failure_reason="resolved by a person: completed",
                ),
                RunStatus.RUNNING,
            )
        if outcome is Resolution.NOT_APPLIED:
            return (
                StepChange(
                    step_id, StepStatus.FAILED, failure_reason="resolved by a person: not applied"
                ),
                RunStatus.RUNNING,
            )
        seq = 1 + max((r.completed_seq or 0) for r in snapshot.steps)
        return (
            StepChange(
                step_id,
                StepStatus.COMPENSATED,
                completed_seq=seq,
                failure_reason="resolved by a person: applied and undone by hand",
            ),
            RunStatus.COMPENSATING,
        )
    if status is StepStatus.COMPENSATION_FAILED:
        if outcome is Resolution.COMPENSATED:
            return (
                StepChange(step_id, StepStatus.COMPENSATED, failure_reason="compensated by hand"),
                RunStatus.COMPENSATING,
            )
        raise ResolutionError(
            f"step {step_id} failed to compensate: resolve it --as compensated once it is undone"
        )
    raise ResolutionError(
        f"step {step_id} is {status.value}: only a step waiting for review resolves"
    )
