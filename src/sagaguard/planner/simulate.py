"""The expected end of a run under injected faults, derived from the rulebook alone.

:func:`expect` walks a process the way the engine does, but asks :class:`~.context.Planning`
(that is, :func:`sagaguard.rules.decide`) at every fork: a definite failure is retried within
its bound, a refusal gives up at once, a lost answer is retried, verified or handed to a
person, a failure for good rolls back, goes to a person or (best-effort) is skipped, and a
compensation that fails is retried within its window. What comes out is the
:class:`~.testplan.ExpectedState` a partial-failure test asserts, so a fault harness running
the real engine can compare the two, and any disagreement is a bug on one side.

The other side is taken to behave as the faults say and to honour idempotency keys; a lost
answer means the effect was applied (the guide's case: the PSP charged, the answer was lost),
so verify finds it. A crash before the call leaves ``started`` journaled but no effect: the
engine cannot tell the two apart, so it settles the step as for a lost answer, and verify
finds nothing. A step's result is committed together with the next step's ``started``, so a
crash right after that commit is, for the next step, a crash before its call. Faults at the
verify points make verify itself fail (it could not tell) or crash. Counts are of calls
made: a crash before a call or a compensation is not one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from sagaguard.model import Step
from sagaguard.planner.context import Planning
from sagaguard.planner.testplan import (
    Count,
    ExpectedAlert,
    ExpectedState,
    FaultKind,
    Injection,
    StepExpectation,
)
from sagaguard.rules import Bound, Decision, Ruling, Situation
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus

__all__ = ["Expectations", "count", "expect"]

_CALL_POINTS = (FaultPoint.BEFORE_CALL, FaultPoint.AFTER_CALL, FaultPoint.AFTER_COMMIT)
_COMPENSATION_POINTS = (FaultPoint.BEFORE_COMPENSATION, FaultPoint.AFTER_COMPENSATION)
_VERIFY_POINTS = (FaultPoint.BEFORE_VERIFY, FaultPoint.AFTER_VERIFY)
_BEFORE_POINTS = (FaultPoint.BEFORE_CALL, FaultPoint.BEFORE_COMPENSATION, FaultPoint.BEFORE_VERIFY)
_LOST_ANSWER = (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST)
_NOTHING_HAPPENED = (
    Situation.DEFINITE_FAILURE,
    Situation.REFUSED,
    Situation.VERIFY_NOT_APPLIED,
)
"""Situations where the other side said nothing happened: a step given up there failed."""
_COMPENSATION_SITUATIONS = {
    FaultKind.FAIL: Situation.COMPENSATION_FAILED,
    FaultKind.REFUSE: Situation.COMPENSATION_REFUSED,
}
# Faults that change nothing about how the run ends: the journal makes them invisible.
_TRANSPARENT = (FaultKind.CONCURRENT_START, FaultKind.RESUBMIT)


_Key = tuple[StepStatus, Count, Count, Count]
"""How a step ends: status, then how often its call, verify and compensation ran."""
_Span = tuple[int, int, _Key]
"""Steps ``first`` to ``last`` (positions) that all end as ``key`` says."""


@cache
def count(at_least: int, *, exact: bool = True) -> Count:
    """``exact``: exactly ``at_least``; else at least that many (the count has no bound)."""
    return Count(at_least=at_least, at_most=at_least if exact else None)


@dataclass
class _Tally:
    status: StepStatus = StepStatus.PENDING
    calls: int = 0
    calls_open: bool = False
    verifies: int = 0
    compensations: int = 0
    compensations_open: bool = False


@dataclass
class _Run:
    ctx: Planning
    calls: dict[str, dict[int | None, Injection]] = field(default_factory=dict)
    undo: dict[str, dict[int | None, Injection]] = field(default_factory=dict)
    verifies: dict[str, dict[int | None, Injection]] = field(default_factory=dict)
    tallies: dict[str, _Tally] = field(default_factory=dict)
    alerts: list[ExpectedAlert] = field(default_factory=list)
    status: RunStatus = RunStatus.RUNNING
    first: int = 0
    """Steps before this one complete without a fault (each called once)."""
    last: int = -1
    """Steps after this one complete without a fault, unless the run stopped first."""
    crashed_after_commit: bool = False
    """Set when the worker died right after a step's result was committed: that commit also
    held the next step's ``started``, so the next step is found started, its call unmade."""
    stopped: int | None = None
    """Where the run stopped (a person, or a rollback): later steps never start."""
    clean_rollback_before: int | None = None
    """Set when the run rolled back from this step with no fault in any compensation: the
    steps before it end as the rollback chain says (undone, or kept), without tallies."""

    def tally(self, step: Step, *, completed: bool = False) -> _Tally:
        """The counts of ``step``; ``completed``: one the walk skipped (called once, done)."""
        found = self.tallies.get(step.id)
        if found is None:
            found = self.tallies[step.id] = (
                _Tally(StepStatus.COMPLETED, calls=1) if completed else _Tally()
            )
        return found

    def alert(self, kind: AlertKind | None, step: Step) -> None:
        if kind is not None:
            self.alerts.append(ExpectedAlert(kind=kind, step=step.id, route=self.ctx.route(step)))


def _fault(faults: dict[int | None, Injection], attempt: int) -> Injection | None:
    return faults.get(attempt) or faults.get(None)


def _situation(injection: Injection) -> Situation | None:
    """The situation the engine meets when ``injection`` fires on a call (None: no effect)."""
    if injection.fault in _TRANSPARENT:
        return None
    if injection.fault is FaultKind.FAIL:
        return Situation.DEFINITE_FAILURE
    if injection.fault is FaultKind.REFUSE:
        return Situation.REFUSED
    if injection.fault is FaultKind.TIMEOUT:
        return Situation.TIMEOUT
    if injection.point in (FaultPoint.AFTER_CALL, FaultPoint.BEFORE_CALL):
        # Either way a restarted worker finds the step started with no result.
        return Situation.CRASH_BEFORE_PERSIST
    # A crash once the result is committed: the journal already says what happened, so the
    # run just goes on.
    return None


def _made(injection: Injection | None) -> bool:
    """False when ``injection`` kills the worker before the call it stands at is made."""
    return not (
        injection is not None
        and injection.fault is FaultKind.CRASH
        and injection.point in _BEFORE_POINTS
    )


class Expectations:
    """Expected final states of runs of one process.

    The steps before a failure that rolls back cleanly end as the rollback chain says; their
    runs are built once per prefix and shared, so the work of all of a plan's tests grows
    with what they say, not with the steps times the tests.
    """

    def __init__(self, ctx: Planning) -> None:
        self.ctx = ctx
        self._prefixes: list[tuple[_Span, ...]] = [()]

    def expect(self, injections: Iterable[Injection]) -> ExpectedState:
        """The final state the rules promise for a run under ``injections``."""
        run = _simulate(self.ctx, injections)
        clean = run.clean_rollback_before
        return _state(run, self._rolled_back(clean) if clean is not None else ())

    def _rolled_back(self, end: int) -> tuple[_Span, ...]:
        """Runs of steps ``0 .. end - 1`` after a clean rollback from step ``end``."""
        ctx = self.ctx
        while len(self._prefixes) <= end:
            index = len(self._prefixes) - 1
            step = ctx.steps[index]
            undone = ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is Decision.COMPENSATE
            key = _UNDONE if undone else _DONE_ONCE
            runs = self._prefixes[-1]
            if runs and runs[-1][2] == key:
                runs = (*runs[:-1], (runs[-1][0], index, key))
            else:
                runs = (*runs, (index, index, key))
            self._prefixes.append(runs)
        return self._prefixes[end]


def expect(ctx: Planning, injections: Iterable[Injection]) -> ExpectedState:
    """The final state the rules promise for a run of ``ctx.process`` under ``injections``."""
    return Expectations(ctx).expect(injections)


def _simulate(ctx: Planning, injections: Iterable[Injection]) -> _Run:
    run = _Run(ctx)
    for injection in injections:
        target = run.calls if injection.point in _CALL_POINTS else run.undo
        if injection.point in _VERIFY_POINTS:
            target = run.verifies
        faults = target.setdefault(injection.step, {})
        held = faults.get(injection.attempt)
        # Two faults at one attempt (a crash, then the client resubmitting): the one that
        # changes how the run goes wins over one the journal makes invisible.
        if held is None or held.fault in _TRANSPARENT:
            faults[injection.attempt] = injection
    # Steps before the first one a fault touches simply complete, once each; so do the steps
    # after the last one, when the run gets there. Only the stretch between is walked.
    touched = sorted(ctx.index(ctx.process.step(step_id)) for step_id in run.calls)
    if not touched:
        run.status = RunStatus.COMPLETED
        return run
    run.first, run.last = touched[0], touched[-1]
    index = run.first - 1
    while index < run.last:
        index += 1
        step = ctx.steps[index]
        ending = _call(run, step)
        if ending is None:
            if run.crashed_after_commit and index + 1 < len(ctx.steps):
                following = ctx.steps[index + 1]
                run.calls.setdefault(following.id, {})[1] = Injection(
                    step=following.id,
                    point=FaultPoint.BEFORE_CALL,
                    fault=FaultKind.CRASH,
                    attempt=1,
                )
                run.last = max(run.last, index + 1)
            run.crashed_after_commit = False
            continue
        decision, ruling = ending
        if decision is Decision.CONTINUE:
            tally = run.tally(step)
            # A failure for good ends failed; an outcome nobody could settle stays unknown.
            if ruling.situation in _NOTHING_HAPPENED:
                tally.status = StepStatus.FAILED
            run.alert(ruling.alert, step)
            continue
        run.stopped = index
        if decision is Decision.MANUAL_REVIEW:
            run.tally(step).status = StepStatus.NEEDS_MANUAL_REVIEW
            run.alert(ruling.alert, step)
            run.status = RunStatus.NEEDS_MANUAL_REVIEW
            return run
        run.tally(step).status = StepStatus.FAILED
        if index == run.first and not run.undo:
            # Everything before completed without a fault, and no undo fails: every
            # compensation runs once, every kept step stays done.
            run.clean_rollback_before = index
            run.status = RunStatus.COMPENSATED if ctx.changed_before(index) else RunStatus.FAILED
            return run
        _rollback(run, index)
        return run
    run.status = RunStatus.COMPLETED
    return run


def _spent(bound: Bound | None, attempt: int, *, every: bool) -> tuple[bool, bool]:
    """Whether a retried decision is spent after ``attempt``, and whether its count is open.

    A fault on every attempt spends the bound: all its attempts when it counts attempts only,
    and, when it has a time window, an unknown number of at least that many (the clock
    decides). A fault on one attempt leaves the next one free, if the bound allows it.
    """
    if bound is None:
        return True, False
    if bound.window_s is not None:
        return every, every
    return attempt >= (bound.attempts or 1), False


def _call(run: _Run, step: Step) -> tuple[Decision, Ruling] | None:
    """Run ``step``'s call until it completes (None) or recovery takes over."""
    faults = run.calls.get(step.id, {})
    tally = run.tally(step)
    attempt = 0
    while True:
        attempt += 1
        injection = _fault(faults, attempt)
        made = _made(injection)
        tally.calls += made
        situation = _situation(injection) if injection is not None else None
        if injection is None or situation is None:
            tally.status = StepStatus.COMPLETED
            run.crashed_after_commit = injection is not None and (
                injection.fault is FaultKind.CRASH and injection.point is FaultPoint.AFTER_COMMIT
            )
            return None
        ruling = run.ctx.ruling(step, situation)
        decision = ruling.decision
        if decision is Decision.VERIFY:
            # A lost answer means the effect was applied, unless the call was never made.
            found = _verify(run, step, tally, applied=made and situation in _LOST_ANSWER)
            if found is None:
                tally.status = StepStatus.COMPLETED
                return None
            decision, ruling = found
        if decision is not Decision.RETRY:
            tally.status = StepStatus.UNKNOWN
            return decision, ruling
        spent, open_count = _spent(ruling.bound, attempt, every=injection.attempt is None)
        if spent:
            if open_count and ruling.bound is not None:
                tally.calls = max(tally.calls, ruling.bound.attempts or 1)
                tally.calls_open = True
            tally.status = StepStatus.UNKNOWN
            return ruling.ends, ruling


def _verify(
    run: _Run, step: Step, tally: _Tally, *, applied: bool
) -> tuple[Decision, Ruling] | None:
    """Ask verify until it answers; None when it finds the effect, else what follows.

    "Not applied" rules a retry (within the step's bound); a verify that cannot tell, or
    whose worker dies, is asked again within its own bound of calls, then a person decides.
    """
    faults = run.verifies.get(step.id, {})
    number = 0
    while True:
        number += 1
        injection = _fault(faults, number)
        tally.verifies += _made(injection)
        if injection is None or injection.fault in _TRANSPARENT:
            if applied:
                return None
            if run.ctx.process.verify_after_for(step) > 0:
                # "Not found" right after the outcome became unknown may be the provider's
                # lag: verify is asked once more when the settle delay has passed.
                tally.verifies += 1
            ruling = run.ctx.ruling(step, Situation.VERIFY_NOT_APPLIED)
            return ruling.decision, ruling
        # A crash leaves the step unknown (asked again on restart); any other fault means
        # verify could not tell.
        situation = Situation.TIMEOUT if injection.fault is FaultKind.CRASH else None
        ruling = run.ctx.ruling(step, situation or Situation.VERIFY_FAILED)
        bound = ruling.bound.attempts if ruling.bound and ruling.bound.attempts else 1
        if ruling.decision is not Decision.VERIFY or number >= bound:
            return ruling.ends, ruling


def _rollback(run: _Run, index: int) -> None:
    """Undo what came before step ``index``, latest first, as the rulings say."""
    ctx = run.ctx
    for step in ctx.chain_before(index):
        tally = run.tally(step, completed=True)
        if tally.status is not StepStatus.COMPLETED:
            continue  # a best-effort step that failed (or stays unknown) is never undone
        if ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is not Decision.COMPENSATE:
            continue  # kept: it cannot be undone
        if not _compensate(run, step, tally):
            run.status = RunStatus.NEEDS_MANUAL_REVIEW
            return
    run.status = RunStatus.COMPENSATED if ctx.changed_before(index) else RunStatus.FAILED


def _compensate(run: _Run, step: Step, tally: _Tally) -> bool:
    """Run ``step``'s compensation; False when the rollback has to stop there."""
    faults = run.undo.get(step.id, {})
    attempt = 0
    while True:
        attempt += 1
        injection = _fault(faults, attempt)
        tally.compensations += _made(injection)
        if injection is None or injection.fault in _TRANSPARENT:
            tally.status = StepStatus.COMPENSATED
            return True
        situation = _COMPENSATION_SITUATIONS.get(injection.fault, Situation.COMPENSATION_UNKNOWN)
        ruling = run.ctx.ruling(step, situation)
        spent, open_count = True, False
        if ruling.decision is Decision.RETRY:
            spent, open_count = _spent(ruling.bound, attempt, every=injection.attempt is None)
        if spent:
            if open_count and ruling.bound is not None:
                tally.compensations = max(tally.compensations, ruling.bound.attempts or 1)
                tally.compensations_open = True
            tally.status = StepStatus.COMPENSATION_FAILED
            run.alert(ruling.alert, step)
            return False


def _state(run: _Run, rolled_back: tuple[_Span, ...]) -> ExpectedState:
    """Every step's expectation, as runs of consecutive steps that end alike.

    ``rolled_back``: the runs of the steps before ``run.clean_rollback_before``.
    """
    ctx = run.ctx
    total = len(ctx.steps)
    done_once = _DONE_ONCE
    after = _PENDING if run.stopped is not None else done_once
    end = run.stopped if run.stopped is not None else run.last
    touched = sorted((ctx.index(ctx.process.step(i)), t) for i, t in run.tallies.items())
    runs: list[_Span] = list(rolled_back)

    def add(first: int, last: int, key: _Key) -> None:
        if first > last:
            return
        if runs and runs[-1][2] == key and runs[-1][1] == first - 1:
            runs[-1] = (runs[-1][0], last, key)
        else:
            runs.append((first, last, key))

    def fill(first: int, last: int) -> None:
        # Untouched steps: done once before the walked stretch, then pending (or done once).
        add(first, min(last, end), done_once)
        add(max(first, end + 1), last, after)

    cursor = run.clean_rollback_before or 0
    for index, tally in touched:
        fill(cursor, index - 1)
        add(index, index, _key(tally))
        cursor = index + 1
    fill(cursor, total - 1)
    return ExpectedState(
        run_status=run.status,
        steps=tuple(_expectation(ctx, first, last, key) for first, last, key in runs),
        alerts=tuple(run.alerts),
    )


def _key(tally: _Tally) -> _Key:
    return (
        tally.status,
        count(tally.calls, exact=not tally.calls_open),
        count(tally.verifies),
        count(tally.compensations, exact=not tally.compensations_open),
    )


_DONE_ONCE = _key(_Tally(StepStatus.COMPLETED, calls=1))
_UNDONE = _key(_Tally(StepStatus.COMPENSATED, calls=1, compensations=1))
_PENDING = _key(_Tally())


def _expectation(ctx: Planning, first: int, last: int, key: _Key) -> StepExpectation:
    status, calls, verifies, compensations = key
    return StepExpectation(
        first=ctx.steps[first].id,
        last=ctx.steps[last].id,
        status=status,
        calls=calls,
        verifies=verifies,
        compensations=compensations,
    )
