"""Runs as people read them: a row of a list, and one run in detail with its steps and events.

Pure builders (:meth:`RunRow.of`, :meth:`RunDetail.of`) over the journal's records, and two
reads over a :class:`~sagaguard.storage.base.JournalStore` (:func:`list_runs`,
:func:`run_detail`) that a read-only store serves. Each view is frozen and keeps the
journal's text as it is: escaping is the presentation's job (the terminal escapes controls,
a web page HTML-escapes). ``to_json()`` gives the dict ``--json`` prints, times in ISO 8601.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sagaguard.operator.oddities import Oddity, may_be_odd, oddities_of
from sagaguard.operator.times import iso_time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from _typeshed import DataclassInstance

    from sagaguard.storage.base import Event, JournalStore, RunRecord, RunSnapshot, StepRecord
    from sagaguard.storage.payloads import JSONValue
    from sagaguard.vocabulary import RunStatus, StepStatus

__all__ = ["EventView", "RunDetail", "RunRow", "StepView", "list_runs", "run_detail"]


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run as a list shows it: where it stands, who holds it, and what looks odd."""

    operation_id: str
    process: str
    version: str
    status: RunStatus
    reason: str | None
    owner: str | None
    lease_expires_at: float | None
    fencing_token: int
    created_at: float
    updated_at: float
    oddities: tuple[Oddity, ...] = ()

    @classmethod
    def of(cls, run: RunRecord, odd: Sequence[Oddity] = ()) -> RunRow:
        """The row of a run record, with what :func:`~.oddities.oddities_of` found in it."""
        return _copied(cls, run, oddities=tuple(odd))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: one element of ``runs list --json``."""
        return {
            "operation_id": self.operation_id,
            "process": self.process,
            "version": self.version,
            "status": self.status.value,
            "reason": self.reason,
            "owner": self.owner,
            "lease_expires_at": iso_time(self.lease_expires_at),
            "fencing_token": self.fencing_token,
            "created_at": iso_time(self.created_at),
            "updated_at": iso_time(self.updated_at),
            "oddities": [odd.to_json() for odd in self.oddities],
        }


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of a run: status, attempts forward and back, external id, result, reason."""

    step_id: str
    position: int
    status: StepStatus
    attempts: int
    compensation_attempts: int
    last_attempt_at: float | None
    idempotency_key: str
    external_id: str | None
    result: JSONValue
    reason: str | None
    completed_seq: int | None

    @classmethod
    def of(cls, step: StepRecord) -> StepView:
        """The view of a step record."""
        return _copied(cls, step, reason=step.failure_reason)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "step_id": self.step_id,
            "position": self.position,
            "status": self.status.value,
            "attempts": self.attempts,
            "compensation_attempts": self.compensation_attempts,
            "last_attempt_at": iso_time(self.last_attempt_at),
            "idempotency_key": self.idempotency_key,
            "external_id": self.external_id,
            "result": self.result,
            "reason": self.reason,
            "completed_seq": self.completed_seq,
        }


@dataclass(frozen=True, slots=True)
class EventView:
    """One line of the audit trail: who did what to which step, when, from what to what, why."""

    seq: int
    at: float
    actor: str
    kind: str
    """An :class:`~sagaguard.vocabulary.EventKind` value (an older journal may hold others)."""
    step_id: str | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    data: JSONValue

    @classmethod
    def of(cls, event: Event) -> EventView:
        """The view of a journal event."""
        return _copied(cls, event)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``from`` and ``to`` are the statuses)."""
        return {
            "seq": self.seq,
            "at": iso_time(self.at),
            "actor": self.actor,
            "kind": self.kind,
            "step_id": self.step_id,
            "from": self.from_status,
            "to": self.to_status,
            "reason": self.reason,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A whole run: its row, its input, its steps in process order and (when read) its events."""

    row: RunRow
    input: JSONValue
    steps: tuple[StepView, ...]
    events: tuple[EventView, ...] | None = None
    """``None`` when the events were not read (a view right after a run, say)."""

    @classmethod
    def of(cls, snapshot: RunSnapshot, events: Sequence[Event] | None = None) -> RunDetail:
        """The detail of a run as one snapshot holds it, with its events when given."""
        return cls(
            row=RunRow.of(snapshot.run, oddities_of(snapshot)),
            input=snapshot.run.input,
            steps=tuple(StepView.of(step) for step in snapshot.steps),
            events=None if events is None else tuple(EventView.of(event) for event in events),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: what ``runs show --json`` prints."""
        view = self.row.to_json()
        view["input"] = self.input
        view["steps"] = [step.to_json() for step in self.steps]
        if self.events is not None:
            view["events"] = [event.to_json() for event in self.events]
        return view


View = TypeVar("View", bound="DataclassInstance")


def _copied(view: type[View], record: object, **given: Any) -> View:
    """A view whose fields are the record's fields of the same names, except those given."""
    names = (f.name for f in dataclasses.fields(view))
    return view(**{name: given[name] if name in given else getattr(record, name) for name in names})


def list_runs(
    store: JournalStore, *, status: RunStatus | None = None, limit: int = 100
) -> list[RunRow]:
    """Runs newest first, each with its oddities (at most two reads, whatever ``limit``)."""
    records = store.list_runs(status=status, limit=limit)
    looked_at = [run.operation_id for run in records if may_be_odd(run)]
    found = {
        snapshot.run.operation_id: oddities_of(snapshot)
        for snapshot in (store.load_many(looked_at) if looked_at else ())
    }
    return [RunRow.of(run, found.get(run.operation_id, ())) for run in records]


def run_detail(store: JournalStore, operation_id: str) -> RunDetail:
    """One run with its steps and every event (``RunNotFoundError`` for an unknown id)."""
    snapshot = store.load(operation_id)
    return RunDetail.of(snapshot, store.events(operation_id))
