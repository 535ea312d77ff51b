"""The rows a store writes, as :mod:`sagaguard.storage.journal` hands them over.

Payloads in these rows are JSON text already (encoded once, before a store takes a lock);
the field order of each tuple is the column order of its table, so a SQL store passes them
to ``executemany`` as they are.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sagaguard.storage.base import Event, OutboxAlert, RunRecord, StepChange, StepRecord
from sagaguard.storage.payloads import EncodedJSON, dumps, loads
from sagaguard.vocabulary import RunStatus, StepStatus

__all__ = [
    "ALERT_COLUMNS",
    "EVENT_COLUMNS",
    "KEPT_UNLESS_GIVEN",
    "RUN_COLUMNS",
    "RUN_STATUS",
    "STATE_COLUMNS",
    "STEP_COLUMNS",
    "STEP_STATUS",
    "AlertRow",
    "EventRow",
    "RunState",
    "StepWrite",
    "encode",
    "event_record",
    "outbox_alert",
    "run_record",
    "run_row",
    "run_state",
    "step_record",
    "step_row",
]

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


_kept_values = operator.attrgetter(*KEPT_UNLESS_GIVEN)

RUN_STATUS: dict[str, RunStatus] = {status.value: status for status in RunStatus}
"""A stored run status as its enum member (a dict lookup: an Enum call costs far more)."""
STEP_STATUS: dict[str, StepStatus] = {status.value: status for status in StepStatus}
"""A stored step status as its enum member."""


def run_state(row: Sequence[Any]) -> RunState:
    """A row of ``status, reason, owner, lease_expires_at, fencing_token, updated_at,
    last_seq`` as a :class:`RunState`."""
    status, reason, owner, lease, token, updated_at, last_seq = row
    return RunState(RUN_STATUS[status], reason, owner, lease, token, updated_at, last_seq)


def encode(value: object, *, what: str = "payload") -> str | None:
    """JSON text of a payload; ``None`` stays ``None`` (stored as NULL, nothing to encode).

    An :class:`~sagaguard.storage.payloads.EncodedJSON` was encoded already: its text is used.
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
        return (change.status, *_kept_values(change), self.result)


# -- SQL rows and records: columns in the order of RUN_COLUMNS, STEP_COLUMNS, EVENT_COLUMNS ----

RUN_COLUMNS = (
    "operation_id, process, version, input, input_hash, status, owner, lease_expires_at, "
    "fencing_token, created_at, updated_at, reason"
)
STEP_COLUMNS = (
    "operation_id, step_id, position, status, attempts, last_attempt_at, idempotency_key, "
    "external_id, result, failure_reason, compensation_attempts, completed_seq, "
    "external_id_field, first_attempt_at, unknown_since, verify_attempts, "
    "compensation_first_at, kept"
)
EVENT_COLUMNS = "operation_id, seq, at, actor, kind, step_id, from_status, to_status, reason, data"
STATE_COLUMNS = "status, reason, owner, lease_expires_at, fencing_token, updated_at, last_seq"
ALERT_COLUMNS = "alert_id, operation_id, kind, payload, created_at, next_attempt_at"


def run_row(run: RunRecord, input_text: str) -> tuple[Any, ...]:
    """The ``runs`` row of a new run (its input as JSON text)."""
    return (
        run.operation_id, run.process, run.version, input_text, run.input_hash,
        run.status.value, run.owner, run.lease_expires_at, run.fencing_token, run.created_at,
        run.updated_at, run.reason,
    )  # fmt: skip


def step_row(s: StepRecord) -> tuple[Any, ...]:
    """The ``steps`` row of a step record."""
    return (
        s.operation_id, s.step_id, s.position, s.status.value, s.attempts, s.last_attempt_at,
        s.idempotency_key, s.external_id, encode(s.result), s.failure_reason,
        s.compensation_attempts, s.completed_seq, s.external_id_field, s.first_attempt_at,
        s.unknown_since, s.verify_attempts, s.compensation_first_at, s.kept,
    )  # fmt: skip


def run_record(row: Sequence[Any]) -> RunRecord:
    """A ``runs`` row as a record."""
    values = list(row)
    values[3], values[5] = loads(values[3]), RUN_STATUS[values[5]]
    return RunRecord(*values)


def step_record(row: Sequence[Any]) -> StepRecord:
    """A ``steps`` row as a record (``kept`` may come back as 0/1)."""
    values = list(row)
    values[3], values[8], values[17] = STEP_STATUS[values[3]], loads(values[8]), bool(values[17])
    return StepRecord(*values)


def event_record(row: Sequence[Any]) -> Event:
    """An ``events`` row as a record."""
    values = list(row)
    values[9] = loads(values[9])
    return Event(*values)


def outbox_alert(row: Sequence[Any]) -> OutboxAlert:
    """A row of ``alert_id, operation_id, kind, payload, created_at, attempts, last_error``."""
    return OutboxAlert(row[0], row[1], row[2], loads(row[3]), row[4], row[5], row[6])
