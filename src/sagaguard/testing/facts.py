"""One run's journal and ledger of calls, indexed for the invariant checks, and what they find.

Shared by :mod:`sagaguard.testing.invariants` (what happened to calls) and
:mod:`sagaguard.testing.endings` (bounds and how a run may stop).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sagaguard.model import Process, Step, StepClass
from sagaguard.storage.base import Event, RunSnapshot, StepRecord
from sagaguard.testing.ledger import LedgerEntry, LedgerKind
from sagaguard.vocabulary import EventKind, StepStatus

__all__ = ["UNSETTLED", "RunFacts", "Violation", "undoable"]

UNSETTLED = (StepStatus.STARTED, StepStatus.UNKNOWN, StepStatus.NEEDS_MANUAL_REVIEW)
"""Step statuses whose outcome nobody knows yet."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: its number in DESIGN.md section 4, the run, the step, what."""

    invariant: int
    operation_id: str
    step_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.operation_id + (f"/{self.step_id}" if self.step_id else "")
        return f"invariant {self.invariant} [{where}]: {self.message}"


@dataclass
class RunFacts:
    """One run's journal and ledger, indexed for the checks; violations gather in ``out``."""

    snapshot: RunSnapshot
    events: list[Event]
    entries: list[LedgerEntry]
    process: Process
    out: list[Violation] = field(default_factory=list)

    @property
    def op(self) -> str:
        return self.snapshot.run.operation_id

    def record(self, step_id: str) -> StepRecord:
        return self.snapshot.step(step_id)

    def step_events(self, step_id: str, *kinds: EventKind) -> list[Event]:
        return [e for e in self.events if e.step_id == step_id and (not kinds or e.kind in kinds)]

    def calls(self, step_id: str, kind: LedgerKind) -> list[LedgerEntry]:
        return [e for e in self.entries if e.step_id == step_id and e.kind is kind]

    def seq(self, step_id: str) -> int | None:
        return self.record(step_id).completed_seq

    def went_on_without(self, step_id: str) -> bool:
        """True for a best-effort step the run went on without (failed or unknown, alerted)."""
        step = self.process.step(step_id)
        return not step.required and bool(self.step_events(step_id, EventKind.BEST_EFFORT_FAILED))

    def flag(self, invariant: int, step_id: str | None, message: str) -> None:
        self.out.append(Violation(invariant, self.op, step_id, message))

    def replay(self) -> Iterator[tuple[Event, dict[str, str]]]:
        """Each step event with every step's status just before it."""
        status = {s.id: StepStatus.PENDING.value for s in self.process.steps}
        for event in self.events:
            if event.step_id is None or event.step_id not in status:
                continue
            yield event, dict(status)
            status[event.step_id] = event.to_status or status[event.step_id]


def undoable(step: Step) -> bool:
    """True for a step the engine compensates when a rollback reaches it."""
    return step.step_class is StepClass.COMPENSATABLE
