"""What the engine did with the target once its situation arose, read from the journal.

The observation is put in the rulebook's words (:class:`~sagaguard.rules.Decision`): the
first thing the engine did after the situation (retried? verified? waited? compensated?
kept? a person? went on?), where it ended once nothing more was tried, the alert it raised,
and each point where it decided whether to try again (how many tries it had made, how long
since the first), so a bound can be checked against the ruling's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sagaguard.rules import Decision, Situation
from sagaguard.storage.base import Event
from sagaguard.vocabulary import AlertKind, EventKind
from tests.conformance.cells import SETTLE_S, TARGET, Cell, Outcome

_ACTIONS = {
    EventKind.STEP_STARTED: Decision.RETRY,
    EventKind.VERIFY_CALLED: Decision.VERIFY,
    EventKind.IRREVERSIBLE_KEPT: Decision.KEEP,
    EventKind.NEEDS_MANUAL_REVIEW: Decision.MANUAL_REVIEW,
    EventKind.COMPENSATION_FAILED: Decision.MANUAL_REVIEW,
    EventKind.BEST_EFFORT_FAILED: Decision.CONTINUE,
    EventKind.STEP_GAVE_UP: Decision.ROLLBACK,
}
"""Target events that are a move of the engine, and which decision each one carries out."""
_ENDINGS = (Decision.ROLLBACK, Decision.MANUAL_REVIEW, Decision.CONTINUE)
_ONSET = {
    Situation.DEFINITE_FAILURE: EventKind.STEP_FAILED,
    Situation.REFUSED: EventKind.STEP_FAILED,
    Situation.TIMEOUT: EventKind.OUTCOME_UNKNOWN,
    Situation.CRASH_BEFORE_PERSIST: EventKind.OUTCOME_UNKNOWN,
    Situation.CALL_IN_FLIGHT: EventKind.CALL_IN_FLIGHT,
    Situation.VERIFY_NOT_APPLIED: EventKind.VERIFIED_NOT_APPLIED,
    Situation.VERIFY_TOO_SOON: EventKind.VERIFY_DEFERRED,
    Situation.VERIFY_FAILED: EventKind.VERIFY_FAILED,
}
"""The target event that shows the engine met the situation."""


@dataclass(frozen=True, slots=True)
class Point:
    """One moment the engine decided whether to try again: tries so far, seconds since the first."""

    tries: int
    elapsed_s: float


@dataclass
class Seen:
    """What the engine did, in the rulebook's words; ``arose`` False: the situation never came."""

    arose: bool
    first: Decision = Decision.NONE
    ends: Decision = Decision.NONE
    alert: AlertKind | None = None
    points: list[Point] = field(default_factory=list)
    """For a bounded repeat: every decision point, the last one where it gave up."""


def observe(cell: Cell, outcome: Outcome, *, late: Outcome | None = None) -> Seen:
    """Read what the engine did with the target in ``cell`` (``late``: the in-flight run whose
    hung call answered during the wait)."""
    situation = cell.situation
    events = outcome.target_events()
    alert = _alert(outcome)
    if situation is Situation.DUPLICATE_REQUEST:
        again = outcome.duplicate
        same = again is not None and again.run == outcome.snapshot.run
        quiet = len(outcome.ledger) == outcome.calls_before_duplicate
        decision = Decision.RETURN_EXISTING if same and quiet else Decision.RETRY
        return Seen(arose=True, first=decision, ends=decision, alert=None)
    if situation is Situation.LATER_STEP_FAILED:
        return _rollback_reached(outcome, events, alert)
    if situation in (
        Situation.COMPENSATION_FAILED,
        Situation.COMPENSATION_REFUSED,
        Situation.COMPENSATION_UNKNOWN,
    ):
        return _compensation(events, alert)
    onset = _first(events, _ONSET[situation])
    if onset is None:
        return Seen(arose=False)
    if situation is Situation.CALL_IN_FLIGHT:
        return _in_flight(outcome, late, events, onset, alert)
    first, at = _next_action(outcome, events, onset.seq)
    if situation is Situation.VERIFY_TOO_SOON:
        waited = (
            at is not None
            and at.at > onset.at
            and at.at - _unknown_since(events, onset) >= SETTLE_S
        )
        if first is Decision.VERIFY and waited:
            return Seen(arose=True, first=Decision.WAIT, ends=Decision.VERIFY, alert=alert)
        return Seen(arose=True, first=first, ends=first, alert=alert)
    return Seen(
        arose=True,
        first=first,
        ends=_last_ending(outcome, events),
        alert=alert,
        points=_points(events, situation, first),
    )


def _alert(outcome: Outcome) -> AlertKind | None:
    mine = [a.kind for a in outcome.alerts if a.step_id == TARGET]
    return mine[-1] if mine else None


def _first(events: Sequence[Event], kind: EventKind, after: int = 0) -> Event | None:
    return next((e for e in events if e.kind == kind and e.seq > after), None)


def _classify(outcome: Outcome, event: Event) -> Decision | None:
    decision = _ACTIONS.get(EventKind(event.kind))
    if decision is Decision.ROLLBACK:
        later = [e for e in outcome.events if e.seq > event.seq]
        rolled = bool(later) and later[0].kind == EventKind.ROLLBACK_STARTED
        return Decision.ROLLBACK if rolled else None
    return decision


def _next_action(
    outcome: Outcome, events: Sequence[Event], after: int
) -> tuple[Decision, Event | None]:
    for event in events:
        if event.seq <= after:
            continue
        decision = _classify(outcome, event)
        if decision is not None:
            return decision, event
    return Decision.NONE, None


def _last_ending(outcome: Outcome, events: Sequence[Event]) -> Decision:
    for event in reversed(events):
        decision = _classify(outcome, event)
        if decision in _ENDINGS:
            return decision
    return Decision.NONE


def _unknown_since(events: Sequence[Event], onset: Event) -> float:
    unknown = [e for e in events if e.kind == EventKind.OUTCOME_UNKNOWN and e.seq < onset.seq]
    return unknown[-1].at if unknown else onset.at


def _in_flight(
    outcome: Outcome,
    late: Outcome | None,
    events: Sequence[Event],
    onset: Event,
    alert: AlertKind | None,
) -> Seen:
    """First: what happened while the hung call ran on (it answered, late, during the wait);
    ends: what happened when it never answered."""
    first = Decision.NONE
    if late is not None:
        late_events = late.target_events()
        late_onset = _first(late_events, EventKind.CALL_IN_FLIGHT)
        after = [e for e in late_events if late_onset is not None and e.seq > late_onset.seq]
        answered = bool(after) and after[0].kind == EventKind.STEP_COMPLETED
        first = Decision.WAIT if answered else _next_action(late, late_events, onset.seq)[0]
    ends, _ = _next_action(outcome, events, onset.seq)
    return Seen(arose=True, first=first, ends=ends, alert=alert)


def _rollback_reached(outcome: Outcome, events: Sequence[Event], alert: AlertKind | None) -> Seen:
    trigger = next(
        (
            e
            for e in outcome.events
            if e.step_id != TARGET
            and e.kind in (EventKind.STEP_GAVE_UP, EventKind.NEEDS_MANUAL_REVIEW)
        ),
        None,
    )
    if trigger is None:
        return Seen(arose=False)
    for event in events:
        if event.seq <= trigger.seq:
            continue
        if event.kind == EventKind.COMPENSATION_STARTED:
            return Seen(
                arose=True, first=Decision.COMPENSATE, ends=Decision.COMPENSATE, alert=alert
            )
        if event.kind == EventKind.IRREVERSIBLE_KEPT:
            return Seen(arose=True, first=Decision.KEEP, ends=Decision.KEEP, alert=alert)
    return Seen(arose=True, first=Decision.NONE, ends=Decision.NONE, alert=alert)


def _compensation(events: Sequence[Event], alert: AlertKind | None) -> Seen:
    starts = [e for e in events if e.kind == EventKind.COMPENSATION_STARTED]
    if not starts:
        return Seen(arose=False)
    after = [e for e in events if e.seq > starts[0].seq]
    first = Decision.NONE
    for event in after:
        if event.kind == EventKind.COMPENSATION_STARTED:
            first = Decision.RETRY
            break
        if event.kind == EventKind.COMPENSATION_FAILED:
            first = Decision.MANUAL_REVIEW
            break
    ends = (
        Decision.MANUAL_REVIEW
        if events[-1].kind == EventKind.COMPENSATION_FAILED
        else Decision.NONE
    )
    points = [
        Point(
            tries=len([s for s in starts if s.seq < e.seq]),
            elapsed_s=e.at - starts[0].at,
        )
        for e in events
        if e.kind == EventKind.COMPENSATION_ATTEMPT_FAILED
    ]
    return Seen(arose=True, first=first, ends=ends, alert=alert, points=points)


def _points(events: Sequence[Event], situation: Situation, first: Decision) -> list[Point]:
    """Every point where the engine decided whether to repeat what it did first."""
    starts = [e for e in events if e.kind == EventKind.STEP_STARTED]
    if not starts:
        return []
    if first is Decision.VERIFY:
        kinds = {_ONSET[situation], EventKind.VERIFY_FAILED}
        counted = EventKind.VERIFY_CALLED
    elif first is Decision.RETRY:
        kinds = {_ONSET[situation]}
        counted = EventKind.STEP_STARTED
    else:
        return []
    points = []
    for event in events:
        if event.kind not in kinds:
            continue
        since = [s for s in starts if s.seq < event.seq]
        if counted is EventKind.VERIFY_CALLED:
            base = since[-1].seq if since else 0
            tries = len([e for e in events if e.kind == counted and base < e.seq < event.seq])
        else:
            tries = len(since)
        points.append(Point(tries=tries, elapsed_s=event.at - starts[0].at))
    return points
