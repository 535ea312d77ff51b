"""What is visibly odd about a run: what its status alone would hide from the person reading it.

A run ends ``completed`` even when a best-effort step (``required: false``: a confirmation
email, an SMS) failed for good or stays unknown: the engine goes on without it and alerts
its route (DESIGN.md section 2). A list that shows only "completed" would hide that the
customer never got the email; every view of the run carries its oddities instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sagaguard.vocabulary import RunStatus, StepStatus

if TYPE_CHECKING:
    from sagaguard.storage.base import RunRecord, RunSnapshot

__all__ = ["Oddity", "OddityKind", "may_be_odd", "oddities_of"]


class OddityKind(StrEnum):
    """What is odd about a run."""

    BEST_EFFORT_FAILED = "best_effort_failed"
    """The run completed without a best-effort step, which failed for good."""
    BEST_EFFORT_UNKNOWN = "best_effort_unknown"
    """The run completed; whether a best-effort step took effect is not known."""


@dataclass(frozen=True, slots=True)
class Oddity:
    """One odd thing about a run, and the step it is about."""

    kind: OddityKind
    step_id: str
    step_status: StepStatus
    reason: str | None
    """The step's last failure reason, as journaled."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind.value,
            "step_id": self.step_id,
            "step_status": self.step_status.value,
            "reason": self.reason,
        }


_KIND_OF_STEP = {
    StepStatus.FAILED: OddityKind.BEST_EFFORT_FAILED,
    StepStatus.UNKNOWN: OddityKind.BEST_EFFORT_UNKNOWN,
    StepStatus.STARTED: OddityKind.BEST_EFFORT_UNKNOWN,
}
"""In a completed run every required step completed: a step left like this was best-effort."""


def may_be_odd(run: RunRecord) -> bool:
    """Whether :func:`oddities_of` can find anything in this run (lets a list read fewer steps)."""
    return run.status is RunStatus.COMPLETED


def oddities_of(snapshot: RunSnapshot) -> tuple[Oddity, ...]:
    """What is odd about the run, in process order (none for most runs)."""
    if not may_be_odd(snapshot.run):
        return ()
    return tuple(
        Oddity(kind, step.step_id, step.status, step.failure_reason)
        for step in snapshot.steps
        if (kind := _KIND_OF_STEP.get(step.status)) is not None
    )
