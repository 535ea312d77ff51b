"""A run's audit trail told in plain English, one line per event (the demo prints it beside each).

:class:`Narrator` remembers attempts per step as events are fed in journal order, so a
retry reads "Attempt 2 of charge_payment". Every kind of the vocabulary's
:class:`~sagaguard.vocabulary.EventKind` has its own sentence; a kind an older journal holds
is told generically. The text is the journal's as it is: the presentation escapes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sagaguard.vocabulary import EventKind

if TYPE_CHECKING:
    from sagaguard.storage.base import Event

__all__ = ["Narrator", "narrate_events"]


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
        if kind == EventKind.STEP_STARTED:
            n = self._attempts[step] = self._attempts.get(step, 0) + 1
            return f"Attempt {n} of {step} is committed as started, then the call is made."
        if kind == EventKind.COMPENSATION_STARTED:
            n = self._undo_attempts[step] = self._undo_attempts.get(step, 0) + 1
            return f"Undo attempt {n} of {step} is committed, then the compensation is called."
        if kind == EventKind.CLAIMED:
            took = f" It takes over: {event.reason}." if event.reason else ""
            return f"{event.actor} now owns the run (a new fencing token).{took}"
        if kind == EventKind.RESOLVED:
            data = event.data if isinstance(event.data, dict) else {}
            who, outcome, note = data.get("by", event.actor), data.get("as", "?"), data.get("note")
            return f"{who} resolved {step} as {outcome}: {note}. The journal keeps who and why."
        template = _TEMPLATES.get(kind)
        if template is None:
            on = f" on {step}" if event.step_id else ""
            return f"{kind.replace('_', ' ').capitalize()}{on}{reason}."
        return template.format(step=step, reason=reason)


_TEMPLATES: dict[str, str] = {
    EventKind.RUN_CREATED: (
        "The run is journaled before anything happens: input saved, steps pending."
    ),
    EventKind.STEP_COMPLETED: (
        "{step} answered; its result is committed before the next step starts."
    ),
    EventKind.STEP_FAILED: "{step} failed definitely, nothing changed{reason}: a retry is safe.",
    EventKind.OUTCOME_UNKNOWN: (
        "{step} gave no answer{reason}: the outcome is unknown, so it is not retried blind."
    ),
    EventKind.CALL_IN_FLIGHT: (
        "{step} outlived its timeout and still runs{reason}: nobody verifies or retries it "
        "until it returns."
    ),
    EventKind.VERIFY_CALLED: (
        "The engine asks the provider what really happened to {step} (verify)."
    ),
    EventKind.VERIFIED_APPLIED: (
        "Verify found the effect: {step} is completed without calling it again."
    ),
    EventKind.VERIFIED_NOT_APPLIED: "Verify found no effect of {step}{reason}: a retry is safe.",
    EventKind.VERIFY_FAILED: "Verify could not tell what happened to {step}{reason}.",
    EventKind.VERIFY_DEFERRED: (
        "Verify found nothing of {step} yet{reason}; the provider may lag, so the engine "
        "waits before it counts."
    ),
    EventKind.STEP_GAVE_UP: "{step} failed on every attempt it is allowed{reason}.",
    EventKind.BEST_EFFORT_FAILED: (
        "{step} is best-effort and did not succeed{reason}: its route is alerted and the run "
        "goes on without it."
    ),
    EventKind.FORWARD_RECOVERY: (
        "{step} failed after the point of no return{reason}: it is pushed forward, never "
        "rolled back."
    ),
    EventKind.ROLLBACK_STARTED: "The run rolls back: completed steps are undone, latest first.",
    EventKind.STEP_COMPENSATED: "{step} is undone.",
    EventKind.COMPENSATION_ATTEMPT_FAILED: (
        "Undoing {step} failed{reason}; it is retried within bounds."
    ),
    EventKind.COMPENSATION_FAILED: (
        "Undoing {step} failed for good{reason}: the rollback halts and a person is alerted."
    ),
    EventKind.NEEDS_MANUAL_REVIEW: "Automation stops at {step}: a person must decide{reason}.",
    EventKind.AWAITING_REVIEW: "The run waits in needs_manual_review until someone resolves it.",
    EventKind.IRREVERSIBLE_KEPT: "{step} cannot be undone; its mitigation is on record{reason}.",
    EventKind.RUN_COMPLETED: (
        "The run is completed: every required step done, each effect exactly once."
    ),
    EventKind.RUN_COMPENSATED: "The run is compensated: every confirmed effect was undone.",
    EventKind.RUN_FAILED: "The run failed before any effect: nothing needed undoing.",
    EventKind.RELEASED: "The owner lets go of the run.",
    EventKind.ALERT_DELIVERED: "The alert reached its route{reason}.",
    EventKind.ALERT_FAILED: "The alert could not be delivered{reason}; it is retried.",
}


def narrate_events(events: Iterable[Event]) -> list[str]:
    """One plain-English line per event, in journal order."""
    narrator = Narrator()
    return [narrator.tell(event) for event in events]
