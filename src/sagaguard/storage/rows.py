"""The rows a store writes, as :mod:`sagaguard.storage.journal` hands them over.

Payloads in these rows are JSON text already (encoded once, before a store takes a lock);
the field order of each tuple is the column order of its table, so a SQL store passes them
to ``executemany`` as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

from sagaguard.storage.base import EncodedJSON, RunRecord, StepChange, dumps
from sagaguard.vocabulary import RunStatus

__all__ = ["KEPT_UNLESS_GIVEN", "AlertRow", "EventRow", "RunState", "StepWrite", "encode"]

KEPT_UNLESS_GIVEN = (
    "attempts",
    "last_attempt_at",
    "external_id",
    "failure_reason",
    "compensation_attempts",
    "completed_seq",
    "first_attempt_at",
    "unknown_since",
    "verify_attempts",
    "compensation_first_at",
    "kept",
)
"""Step fields a ``StepChange`` overwrites only when it carries a value (``None`` keeps).

``result`` follows the same rule; it is written as JSON text, so it is handled beside these.
SQL stores build their step ``UPDATE`` from this tuple (``col = COALESCE(?, col)``)."""


def encode(value: object, *, what: str = "payload") -> str | None:
    """JSON text of a payload; ``None`` stays ``None`` (stored as NULL, nothing to encode).

    An :class:`~sagaguard.storage.base.EncodedJSON` was encoded already: its text is used.
    """
    if value is None:
        return None
    if isinstance(value, EncodedJSON):
        return value.text
    return dumps(value, what=what)


class EventRow(NamedTuple):
    """One event as stores write it: the columns of the event log, data as JSON text."""

    operation_id: str
    seq: int
    at: float
    actor: str
    kind: str
    step_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    reason: str | None = None
    data: str | None = None


class AlertRow(NamedTuple):
    """One alert as stores insert it into the outbox, payload as JSON text."""

    alert_id: str
    operation_id: str
    kind: str
    payload: str
    created_at: float
    next_attempt_at: float


@dataclass(frozen=True, slots=True)
class RunState:
    """The part of a run's row that calls change (identity and input never change)."""

    status: RunStatus
    reason: str | None
    owner: str | None
    lease_expires_at: float | None
    fencing_token: int
    updated_at: float
    last_seq: int
    """The seq of the run's latest event: the next event is ``last_seq + 1``."""

    @classmethod
    def of(cls, run: RunRecord, *, last_seq: int) -> RunState:
        """The changing part of ``run``."""
        return cls(
            run.status,
            run.reason,
            run.owner,
            run.lease_expires_at,
            run.fencing_token,
            run.updated_at,
            last_seq,
        )

    def onto(self, run: RunRecord) -> RunRecord:
        """``run`` with this state."""
        return dataclasses.replace(
            run,
            status=self.status,
            reason=self.reason,
            owner=self.owner,
            lease_expires_at=self.lease_expires_at,
            fencing_token=self.fencing_token,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True, slots=True)
class StepWrite:
    """One step row to update: its changes merged, its result already JSON text."""

    step_id: str
    change: StepChange
    result: str | None
    """JSON text of the new result; ``None`` keeps the stored one."""

    def values(self) -> tuple[Any, ...]:
        """``status``, then :data:`KEPT_UNLESS_GIVEN` in order, then ``result`` (SQL params)."""
        change = self.change
        kept = tuple(getattr(change, name) for name in KEPT_UNLESS_GIVEN)
        return (change.status.value, *kept, self.result)
