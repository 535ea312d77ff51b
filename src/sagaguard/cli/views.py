"""View models of the journal: plain dicts shared by terminal tables, ``--json`` and web pages.

Pure functions of :class:`~sagaguard.storage.base.RunRecord`, ``RunSnapshot`` and ``Event``
lists: no I/O, no colours, no widths. ``sagaguard runs show`` renders :func:`run_view` as
tables and ``--json`` prints it as is, so the two can never disagree; a web page can reuse
the same dicts. Times are ISO 8601 in UTC (``2025-06-01T12:00:00.123Z``). :class:`Narrator`
tells each journal event in one plain-English line (the demo prints it next to the event).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sagaguard.engine.resolution import Resolution
from sagaguard.vocabulary import StepStatus

if TYPE_CHECKING:
    from sagaguard.storage.base import Event, RunRecord, RunSnapshot, StepRecord

__all__ = [
    "REVIEW_STATUSES",
    "Narrator",
    "clock_time",
    "event_view",
    "iso_time",
    "narrate_events",
    "resolutions_for",
    "review_item",
    "run_summary",
    "run_view",
    "step_view",
    "waiting_step",
]

REVIEW_STATUSES = (StepStatus.NEEDS_MANUAL_REVIEW, StepStatus.COMPENSATION_FAILED)
"""Step statuses that hold a run in ``needs_manual_review``, in the order they are looked for."""

_FORWARD_WAITING = (StepStatus.NEEDS_MANUAL_REVIEW, StepStatus.UNKNOWN, StepStatus.STARTED)


def iso_time(at: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC with milliseconds; ``None`` stays ``None``.

    A time no calendar holds (an infinite lease an older version stored) is shown as the
    first or last moment ISO 8601 can write, so one absurd row never hides the journal.
    """
    if at is None or math.isnan(at):
        return None
    if not _EARLIEST <= at <= _LATEST:
        return _LAST_MOMENT if at > 0 else _FIRST_MOMENT
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_FIRST_MOMENT = "0001-01-01T00:00:00.000Z"
_LAST_MOMENT = "9999-12-31T23:59:59.999Z"
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def clock_time(at: float) -> str:
    """The time of day in UTC with milliseconds (``12:00:00.123``): short enough for a table."""
    text = iso_time(at) or ""
    return text[11:23]


def run_summary(run: RunRecord) -> dict[str, Any]:
    """One run as a row: what ``runs list`` shows."""
    return {
        "operation_id": run.operation_id,
        "process": run.process,
        "version": run.version,
        "status": run.status.value,
        "reason": run.reason,
        "owner": run.owner,
        "lease_expires_at": iso_time(run.lease_expires_at),
        "fencing_token": run.fencing_token,
        "created_at": iso_time(run.created_at),
        "updated_at": iso_time(run.updated_at),
    }


def step_view(step: StepRecord) -> dict[str, Any]:
    """One step of a run: status, attempts, external id, result and the last reason."""
    return {
        "step_id": step.step_id,
        "position": step.position,
        "status": step.status.value,
        "attempts": step.attempts,
        "compensation_attempts": step.compensation_attempts,
        "last_attempt_at": iso_time(step.last_attempt_at),
        "idempotency_key": step.idempotency_key,
        "external_id": step.external_id,
        "result": step.result,
        "reason": step.failure_reason,
        "completed_seq": step.completed_seq,
    }


def event_view(event: Event) -> dict[str, Any]:
    """One journal event: who did what to which step, when, from which status to which, why."""
    return {
        "seq": event.seq,
        "at": iso_time(event.at),
        "actor": event.actor,
        "kind": event.kind,
        "step_id": event.step_id,
        "from": event.from_status,
        "to": event.to_status,
        "reason": event.reason,
        "data": event.data,
    }


def run_view(snapshot: RunSnapshot, events: Sequence[Event] | None = None) -> dict[str, Any]:
    """A whole run: its summary, input, step timeline and (when given) its events."""
    view = run_summary(snapshot.run)
    view["input"] = snapshot.run.input
    view["steps"] = [step_view(step) for step in snapshot.steps]
    if events is not None:
        view["events"] = [event_view(event) for event in events]
    return view


def waiting_step(snapshot: RunSnapshot) -> StepRecord | None:
    """The step a person must look at in a run that needs review (``None`` if none waits)."""
    for wanted in REVIEW_STATUSES:
        for step in snapshot.steps:
            if step.status is wanted:
                return step
    return None


def resolutions_for(status: StepStatus) -> tuple[str, ...]:
    """The ``--as`` values ``review resolve`` accepts for a step in ``status``.

    Mirrors :meth:`sagaguard.engine.Engine.resolve`: a step whose outcome is unknown may be
    declared completed, not applied or compensated by hand; a failed compensation only
    compensated (once a person has undone the effect).
    """
    if status in _FORWARD_WAITING:
        return tuple(r.value for r in Resolution)
    if status is StepStatus.COMPENSATION_FAILED:
        return (Resolution.COMPENSATED.value,)
    return ()


def review_item(
    snapshot: RunSnapshot, events: Sequence[Event], *, route: str | None = None
) -> dict[str, Any]:
    """A run waiting for a person: the waiting step, why, who was alerted, what they may do.

    The alert route comes from the journal when the engine recorded it with the event,
    else from ``route`` (the saga's ``alerts`` map, when the caller knows the saga).
    """
    step = waiting_step(snapshot)
    recorded = _recorded_route(events, step.step_id if step else None)
    return {
        "operation_id": snapshot.run.operation_id,
        "process": snapshot.run.process,
        "version": snapshot.run.version,
        "waiting_since": iso_time(snapshot.run.updated_at),
        "step_id": step.step_id if step else None,
        "step_status": step.status.value if step else None,
        "reason": (step.failure_reason if step else None) or snapshot.run.reason,
        "route": recorded or route,
        "resolve_as": list(resolutions_for(step.status)) if step else [],
    }


def _recorded_route(events: Sequence[Event], step_id: str | None) -> str | None:
    for event in reversed(events):
        if event.step_id == step_id and isinstance(event.data, dict):
            route = event.data.get("route")
            if isinstance(route, str):
                return route
    return None


class Narrator:
    """Tells journal events one by one in plain English, remembering attempts per step."""

    def __init__(self) -> None:
        self._attempts: dict[str, int] = {}
        self._undo_attempts: dict[str, int] = {}

    def tell(self, event: Event) -> str:
        """One line for one event (events must be fed in journal order)."""
        step = event.step_id or "-"
        reason = f" ({event.reason})" if event.reason else ""
        kind = event.kind
        if kind == "step_started":
            n = self._attempts[step] = self._attempts.get(step, 0) + 1
            return f"Attempt {n} of {step} is committed as started, then the call is made."
        if kind == "compensation_started":
            n = self._undo_attempts[step] = self._undo_attempts.get(step, 0) + 1
            return f"Undo attempt {n} of {step} is committed, then the compensation is called."
        if kind == "claimed":
            took = f" It takes over: {event.reason}." if event.reason else ""
            return f"{event.actor} now owns the run (a new fencing token).{took}"
        if kind == "resolved":
            data = event.data if isinstance(event.data, dict) else {}
            who, outcome, note = data.get("by", event.actor), data.get("as", "?"), data.get("note")
            return f"{who} resolved {step} as {outcome}: {note}. The journal keeps who and why."
        template = _TEMPLATES.get(kind)
        if template is None:
            on = f" on {step}" if event.step_id else ""
            return f"{kind.replace('_', ' ').capitalize()}{on}{reason}."
        return template.format(step=step, reason=reason)


_TEMPLATES = {
    "run_created": "The run is journaled before anything happens: input saved, steps pending.",
    "step_completed": "{step} answered; its result is committed before the next step starts.",
    "step_failed": "{step} failed definitely, nothing changed{reason}: a retry is safe.",
    "outcome_unknown": (
        "{step} gave no answer{reason}: the outcome is unknown, so it is not retried blind."
    ),
    "verify_called": "The engine asks the provider what really happened to {step} (verify).",
    "verified_applied": "Verify found the effect: {step} is completed without calling it again.",
    "verified_not_applied": "Verify found no effect of {step}{reason}: a retry is safe.",
    "step_gave_up": "{step} failed on every attempt it is allowed{reason}.",
    "rollback_started": "The run rolls back: completed steps are undone, latest first.",
    "step_compensated": "{step} is undone.",
    "compensation_attempt_failed": "Undoing {step} failed{reason}; it is retried within bounds.",
    "compensation_failed": (
        "Undoing {step} failed for good{reason}: the rollback halts and a person is alerted."
    ),
    "needs_manual_review": "Automation stops at {step}: a person must decide{reason}.",
    "awaiting_review": "The run waits in needs_manual_review until someone resolves it.",
    "irreversible_kept": "{step} cannot be undone; its mitigation is on record{reason}.",
    "run_completed": "The run is completed: every step done, each effect exactly once.",
    "run_compensated": "The run is compensated: every confirmed effect was undone.",
    "run_failed": "The run failed before any effect: nothing needed undoing.",
    "released": "The owner lets go of the run.",
}


def narrate_events(events: Iterable[Event]) -> list[str]:
    """One plain-English line per event, in journal order."""
    narrator = Narrator()
    return [narrator.tell(event) for event in events]
