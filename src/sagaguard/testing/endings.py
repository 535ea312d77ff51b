"""The invariants about bounds and endings: 5, 6, 9 and 10 of DESIGN.md section 4.

Bounds come from the rulebook (:func:`sagaguard.rules.decide`), as the engine's do: a step
may be tried more often than its attempts only within a time window the rules give it (a
step after the point of no return, a failing compensation), and only while that window was
open when the next try was decided.
"""

from __future__ import annotations

from collections import Counter

from sagaguard.engine.alerts import Alert
from sagaguard.model import Step
from sagaguard.rules import Bound, Situation, decide
from sagaguard.storage.base import Event, RunStatus
from sagaguard.testing.facts import RunFacts, undoable
from sagaguard.testing.ledger import LedgerKind
from sagaguard.vocabulary import EventKind, StepStatus

__all__ = [
    "alerts_sent",
    "attempts_bounded",
    "failed_compensation_surfaces",
    "point_of_no_return",
    "settled",
]

_WAITING = (StepStatus.NEEDS_MANUAL_REVIEW, StepStatus.COMPENSATION_FAILED)
_ALERTED = (
    EventKind.COMPENSATION_FAILED,
    EventKind.NEEDS_MANUAL_REVIEW,
    EventKind.BEST_EFFORT_FAILED,
)


def attempts_bounded(facts: RunFacts) -> None:
    """5: attempts within bounds (in number, and in time where a window applies), counted
    once each, surviving crashes."""
    for step in facts.process.steps:
        record = facts.record(step.id)
        forward = _bound(facts, step, Situation.DEFINITE_FAILURE)
        backward = _bound(facts, step, Situation.COMPENSATION_FAILED)
        limits = (
            ("attempts", record.attempts, forward, LedgerKind.CALL, EventKind.STEP_STARTED),
            (
                "compensation attempts",
                record.compensation_attempts,
                backward,
                LedgerKind.COMPENSATE,
                EventKind.COMPENSATION_STARTED,
            ),
        )
        for what, count, bound, kind, journaled in limits:
            starts = facts.step_events(step.id, journaled)
            limit = bound.attempts or 0
            if count > limit and not _within_window(facts, step.id, starts, bound):
                facts.flag(5, step.id, f"{count} {what}, more than the bound of {limit}")
            if len(starts) != count:
                facts.flag(
                    5,
                    step.id,
                    f"{len(starts)} {journaled.value} events but {count} {what} persisted: "
                    "the count was lost or reset",
                )
            numbers = Counter(e.attempt for e in facts.calls(step.id, kind))
            for number, times in sorted(numbers.items()):
                if number > count:
                    facts.flag(
                        5,
                        step.id,
                        f"{kind.value} as attempt {number}, beyond the {count} persisted "
                        f"(bound {limit})",
                    )
                if times > 1:
                    facts.flag(5, step.id, f"{kind.value} attempt {number} was made {times} times")
        _verify_calls_bounded(facts, step)


def _bound(facts: RunFacts, step: Step, situation: Situation) -> Bound:
    bound = decide(step, situation, process=facts.process).bound
    if bound is not None:
        return bound
    defaults = facts.process.defaults
    if situation is Situation.COMPENSATION_FAILED:
        return Bound(attempts=defaults.compensation_attempts)
    return Bound(attempts=facts.process.max_attempts_for(step))


def _within_window(facts: RunFacts, step_id: str, starts: list[Event], bound: Bound) -> bool:
    """True when every try past the bound's attempts was decided while its window was open."""
    if bound.window_s is None or not starts:
        return False
    first = starts[0].at
    events = facts.step_events(step_id)
    for start in starts[bound.attempts or 0 :]:
        decided = [e for e in events if e.seq < start.seq][-1]
        if decided.at - first >= bound.window_s:
            return False
    return True


def _verify_calls_bounded(facts: RunFacts, step: Step) -> None:
    """5: verify calls are attempts too: bounded per call of the step, across crashes."""
    bound = decide(step, Situation.VERIFY_FAILED, process=facts.process, verify_bound=True).bound
    limit = bound.attempts if bound is not None and bound.attempts is not None else 0
    per_call: Counter[int] = Counter()
    deferred: Counter[int] = Counter()
    call = 0
    for event in facts.step_events(step.id):
        if event.kind == EventKind.STEP_STARTED:
            call += 1
        elif event.kind == EventKind.VERIFY_CALLED:
            per_call[call] += 1
        elif event.kind == EventKind.VERIFY_DEFERRED:
            deferred[call] += 1  # a "not found" too soon is asked again once more
    for number, made in sorted(per_call.items()):
        if made > limit + deferred[number]:
            facts.flag(
                5,
                step.id,
                f"{made} verify calls for attempt {number}, more than the bound of {limit}",
            )


def failed_compensation_surfaces(facts: RunFacts) -> None:
    """6: a failed compensation is its own event and leaves the run waiting for a person."""
    for record in facts.snapshot.steps:
        if record.status is not StepStatus.COMPENSATION_FAILED:
            continue
        if not facts.step_events(record.step_id, EventKind.COMPENSATION_FAILED):
            facts.flag(6, record.step_id, "compensation_failed without its own event")
        if facts.snapshot.run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
            facts.flag(
                6,
                record.step_id,
                f"compensation failed but the run is {facts.snapshot.run.status.value}, "
                "not needs_manual_review",
            )
    for event in facts.events:
        if event.kind != EventKind.COMPENSATION_FAILED or event.step_id is None:
            continue
        still = facts.record(event.step_id).status is StepStatus.COMPENSATION_FAILED
        resolved = any(
            later.seq > event.seq for later in facts.step_events(event.step_id, EventKind.RESOLVED)
        )
        if not still and not resolved:
            facts.flag(
                6,
                event.step_id,
                f"the compensation failure of event {event.seq} was left without a "
                "person's resolution",
            )


def alerts_sent(facts: RunFacts, alerts: list[Alert]) -> None:
    """6 (and section 2): each compensation failure, review and best-effort failure alerts."""
    sent = Counter((a.kind.value, a.step_id) for a in alerts)
    wanted = Counter((e.kind, e.step_id) for e in facts.events if e.kind in _ALERTED)
    for (kind, step_id), count in sorted(wanted.items(), key=str):
        if sent[(kind, step_id)] < count:
            facts.flag(6, step_id, f"{count} {kind} event(s) but {sent[(kind, step_id)]} alert(s)")


def point_of_no_return(facts: RunFacts) -> None:
    """10: once the pivot completed, the engine compensates nothing at or before it; a
    best-effort step's failure never rolls the run back."""
    for event in facts.events:
        if event.kind != EventKind.ROLLBACK_STARTED:
            continue
        cause = _step_given_up_before(facts, event)
        if cause is not None and not facts.process.step(cause).required:
            facts.flag(10, cause, f"the run rolled back (event {event.seq}) for a best-effort step")
    pivot = facts.process.pivot
    if pivot is None:
        return
    done = [e for e in facts.step_events(pivot.id) if e.to_status == StepStatus.COMPLETED]
    if not done:
        return
    here = facts.process.index(pivot.id)
    for event in facts.events:
        if event.seq <= done[0].seq or event.actor.startswith("review:"):
            continue
        if event.kind == EventKind.ROLLBACK_STARTED:
            facts.flag(
                10, None, f"the run rolled back (event {event.seq}) after the pivot completed"
            )
        if (
            event.kind == EventKind.COMPENSATION_STARTED
            and event.step_id is not None
            and facts.process.index(event.step_id) <= here
        ):
            facts.flag(
                10,
                event.step_id,
                f"compensated (event {event.seq}) after the pivot {pivot.id} completed",
            )


def _step_given_up_before(facts: RunFacts, rollback: Event) -> str | None:
    for event in reversed([e for e in facts.events if e.seq < rollback.seq]):
        if event.step_id is not None:
            return event.step_id
    return None


def settled(facts: RunFacts) -> None:
    """9: the run stopped, and its status agrees with its steps."""
    run = facts.snapshot.run
    records = facts.snapshot.steps
    if run.status.active:
        facts.flag(9, None, f"the run is still {run.status.value}: nobody finished it")
        return
    if run.status is RunStatus.NEEDS_MANUAL_REVIEW:
        if not [r for r in records if r.status in _WAITING]:
            facts.flag(9, None, "the run waits for review, but no step waits for a person")
    elif run.status is RunStatus.COMPLETED:
        for r in records:
            if r.status is not StepStatus.COMPLETED and not facts.went_on_without(r.step_id):
                facts.flag(9, r.step_id, f"the run completed, the step is {r.status.value}")
    else:
        for r in records:
            step = facts.process.step(r.step_id)
            if r.completed_seq is None or step.read_only:
                continue
            if run.status is RunStatus.FAILED:
                facts.flag(
                    9, r.step_id, "the run failed with nothing to undo, but this step had an effect"
                )
            elif undoable(step) and r.status is not StepStatus.COMPENSATED and not r.kept:
                facts.flag(9, r.step_id, f"the run is compensated, the step is {r.status.value}")
