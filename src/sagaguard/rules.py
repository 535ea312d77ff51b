"""The one rulebook: what to do with a step in each situation the engine can meet.

DESIGN.md section 2, written once. :func:`decide` returns a structured :class:`Ruling` (the
decision, what follows once its bound is spent, the bound, the alert) for every situation;
the planner renders rulings in its own words and the engine obeys them through one
dispatch, so what a plan promises is what the engine does. A conformance test runs the
engine for every cell of the table and checks that both agree.

The rules hold no sentences (wording is the planner's) and do no I/O. A ruling depends on
the step, the situation, the step's place in its process (before, at or after the point of
no return; required or best-effort), and whether verify code is bound to the step: a verify
that is only described cannot be asked, so the engine cannot rely on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sagaguard.model import Idempotency, Phase, Process, Step, StepClass
from sagaguard.vocabulary import AlertKind

__all__ = [
    "FAILURE_SITUATIONS",
    "Bound",
    "Decision",
    "Ruling",
    "Situation",
    "StepKind",
    "decide",
    "give_up",
    "step_kind",
]


class Situation(StrEnum):
    """What happened to a step (or to a request for its run)."""

    DEFINITE_FAILURE = "definite_failure"
    """The other side answered, nothing changed, and a repeat may succeed (a rate limit)."""
    REFUSED = "refused"
    """The other side answered, nothing changed, and a repeat gets the same answer (a decline)."""
    TIMEOUT = "timeout"
    """No answer: the effect may or may not have happened."""
    CRASH_BEFORE_PERSIST = "crash_before_persist"
    """The call was made (``started`` is journaled) but its result was never saved."""
    CALL_IN_FLIGHT = "call_in_flight"
    """A call outlived its timeout and is still running: its effect may still be on its way."""
    VERIFY_NOT_APPLIED = "verify_not_applied"
    """Verify found no effect, and the settle delay (``verify_after``) has passed."""
    VERIFY_TOO_SOON = "verify_too_soon"
    """Verify found no effect before the settle delay passed: the provider may lag its writes."""
    VERIFY_FAILED = "verify_failed"
    """Verify could not tell: it raised, timed out, crashed, or answered something else."""
    LATER_STEP_FAILED = "later_step_failed"
    """This step completed, then a later step failed for good and the run rolls back."""
    COMPENSATION_FAILED = "compensation_failed"
    """Undoing this step failed definitely (answered, nothing changed); a repeat may succeed."""
    COMPENSATION_REFUSED = "compensation_refused"
    """Undoing this step was refused: a repeat gets the same answer."""
    COMPENSATION_UNKNOWN = "compensation_unknown"
    """Undoing this step timed out, raised, or crashed: nobody knows whether it was undone."""
    DUPLICATE_REQUEST = "duplicate_request"
    """The same operation_id arrived again."""


FAILURE_SITUATIONS = (
    Situation.DEFINITE_FAILURE,
    Situation.REFUSED,
    Situation.TIMEOUT,
    Situation.CRASH_BEFORE_PERSIST,
    Situation.CALL_IN_FLIGHT,
)
"""The situations a step's own call can end in (the rest follow verify or a rollback)."""


class Decision(StrEnum):
    """What the engine does next (and what follows once a bounded decision is spent)."""

    RETRY = "retry"
    """Call the step again with the same idempotency key."""
    VERIFY = "verify"
    """Ask the other side what really happened."""
    WAIT = "wait"
    """Neither retry nor review yet: wait for the bound (a settle delay, a call in flight)."""
    ROLLBACK = "rollback"
    """The step failed for good: undo the confirmed effects before it, latest first."""
    MANUAL_REVIEW = "manual_review"
    """Stop and wait for a person, who is alerted."""
    CONTINUE = "continue"
    """A best-effort step failed or stays unknown: the run goes on without it."""
    COMPENSATE = "compensate"
    """Run this step's compensation (the rollback reached it)."""
    KEEP = "keep"
    """This step cannot be undone: keep its effect, apply its mitigation, roll on."""
    RETURN_EXISTING = "return_existing"
    """A repeated request gets the existing run back; a different input is a conflict."""
    NONE = "none"
    """Nothing to do for this step."""


class StepKind(StrEnum):
    """What decides a step's unknown outcome: the rows of the decision matrix."""

    READ_ONLY = "read_only"
    IDEMPOTENT = "idempotent"
    VERIFIABLE = "verifiable"
    """Not idempotent (or not known to be), with verify code bound."""
    VERIFY_UNBOUND = "verify_unbound"
    """Not idempotent, verify described in words but no code bound: nothing can ask."""
    UNVERIFIABLE = "unverifiable"
    """Not idempotent and no verify at all."""


@dataclass(frozen=True, slots=True)
class Bound:
    """How long a decision may be repeated: at least ``attempts``, and within ``window_s``.

    A bounded decision is spent once the step has made ``attempts`` attempts (of the kind the
    decision counts: calls, verify calls or compensation calls) and, when a window is set,
    ``window_s`` seconds have passed since the first of them. A ``WAIT`` counts no attempts:
    it is spent once ``window_s`` has passed since the moment it waits from.
    """

    attempts: int | None = None
    window_s: float | None = None

    def spent(self, *, attempts: int, elapsed_s: float) -> bool:
        """True once the decision may not be repeated any more."""
        if self.attempts is not None and attempts < self.attempts:
            return False
        return self.window_s is None or elapsed_s >= self.window_s


@dataclass(frozen=True, slots=True)
class Ruling:
    """The rulebook's answer for one step in one situation: data, never prose."""

    situation: Situation
    decision: Decision
    then: Decision | None = None
    """What follows once ``bound`` is spent (None: nothing further, or no bound)."""
    bound: Bound | None = None
    alert: AlertKind | None = None
    """The alert raised when this ruling ends in ``manual_review`` or ``continue``."""
    phase: Phase = Phase.BEFORE_PIVOT
    required: bool = True
    kind: StepKind = StepKind.UNVERIFIABLE

    @property
    def ends(self) -> Decision:
        """Where the ruling leads once nothing more is tried: ``then``, else the decision."""
        return self.then if self.then is not None else self.decision


def step_kind(step: Step, *, verify_bound: bool | None = None) -> StepKind:
    """Which row of the matrix ``step`` is in; ``verify_bound`` defaults to the spec's own say.

    A spec binds verify code by naming it (``module:function``); a coded saga passes
    ``verify_bound=True`` for a step with ``@step.verify``.
    """
    if step.read_only:
        return StepKind.READ_ONLY
    if step.idempotent is Idempotency.YES:
        return StepKind.IDEMPOTENT
    bound = step.verify_is_code if verify_bound is None else verify_bound
    if bound:
        return StepKind.VERIFIABLE
    return StepKind.VERIFY_UNBOUND if step.has_verify else StepKind.UNVERIFIABLE


def give_up(step: Step, process: Process) -> Decision:
    """What follows once ``step`` failed for good (DESIGN.md section 2, the failure rule).

    Best-effort: the run continues without it. After the pivot: forward recovery ends with a
    person. Before or at the pivot: the run rolls back what came before (and simply fails
    when nothing before it changed anything).
    """
    if not step.required:
        return Decision.CONTINUE
    if process.phase(step) is Phase.AFTER_PIVOT:
        return Decision.MANUAL_REVIEW
    return Decision.ROLLBACK


def decide(
    step: Step, situation: Situation, *, process: Process, verify_bound: bool | None = None
) -> Ruling:
    """The ruling for ``step`` of ``process`` in ``situation`` (DESIGN.md section 2).

    ``verify_bound`` says whether verify code is bound to the step; by default a spec's
    ``verify: module:function`` counts as bound and a description does not.
    """
    facts = _Facts(step, process, step_kind(step, verify_bound=verify_bound))
    rule = _RULES[situation]
    return rule(facts, situation)


@dataclass(frozen=True, slots=True)
class _Facts:
    step: Step
    process: Process
    kind: StepKind

    @property
    def phase(self) -> Phase:
        return self.process.phase(self.step)

    def ruling(
        self,
        situation: Situation,
        decision: Decision,
        *,
        then: Decision | None = None,
        bound: Bound | None = None,
    ) -> Ruling:
        ends = then if then is not None else decision
        return Ruling(
            situation=situation,
            decision=decision,
            then=then,
            bound=bound,
            alert=_alert_for(ends, self.step, situation),
            phase=self.phase,
            required=self.step.required,
            kind=self.kind,
        )

    def forward_bound(self) -> Bound:
        """Attempts of the step's own call; after the pivot, also its retry window."""
        attempts = self.process.max_attempts_for(self.step)
        if self.step.required and self.phase is Phase.AFTER_PIVOT:
            return Bound(attempts=attempts, window_s=self.process.retry_for(self.step))
        return Bound(attempts=attempts)

    def unknown_end(self) -> Decision:
        """Where an outcome that stays unknown ends: a person, or (best-effort) the run goes on."""
        return Decision.MANUAL_REVIEW if self.step.required else Decision.CONTINUE


def _alert_for(ends: Decision, step: Step, situation: Situation) -> AlertKind | None:
    if ends is Decision.CONTINUE:
        return AlertKind.BEST_EFFORT_FAILED
    if ends is not Decision.MANUAL_REVIEW:
        return None
    if situation in (
        Situation.COMPENSATION_FAILED,
        Situation.COMPENSATION_REFUSED,
        Situation.COMPENSATION_UNKNOWN,
    ):
        return AlertKind.COMPENSATION_FAILED
    return AlertKind.NEEDS_MANUAL_REVIEW


def _definite_failure(f: _Facts, situation: Situation) -> Ruling:
    return f.ruling(
        situation, Decision.RETRY, then=give_up(f.step, f.process), bound=f.forward_bound()
    )


def _refused(f: _Facts, situation: Situation) -> Ruling:
    # A repeat gets the same answer, so no bound applies: the failure rule at once.
    return f.ruling(situation, give_up(f.step, f.process))


def _unknown(f: _Facts, situation: Situation) -> Ruling:
    if f.kind is StepKind.READ_ONLY:
        return f.ruling(
            situation, Decision.RETRY, then=give_up(f.step, f.process), bound=f.forward_bound()
        )
    if f.kind is StepKind.IDEMPOTENT:
        # Retries that never get an answer leave the effect possible: never rolled back blind.
        return f.ruling(situation, Decision.RETRY, then=f.unknown_end(), bound=f.forward_bound())
    if f.kind is StepKind.VERIFIABLE:
        verify_calls = Bound(attempts=f.process.max_attempts_for(f.step))
        return f.ruling(situation, Decision.VERIFY, then=f.unknown_end(), bound=verify_calls)
    return f.ruling(situation, f.unknown_end())


def _in_flight(f: _Facts, situation: Situation) -> Ruling:
    # Nothing may verify or repeat a call that may still act: wait for it to return, once
    # more as long as its timeout; one that never returns goes to a person.
    wait = Bound(window_s=f.process.timeout_for(f.step))
    return f.ruling(situation, Decision.WAIT, then=f.unknown_end(), bound=wait)


def _verify_not_applied(f: _Facts, situation: Situation) -> Ruling:
    # It never happened: calling it again is safe, within the step's own attempts.
    return f.ruling(
        situation, Decision.RETRY, then=give_up(f.step, f.process), bound=f.forward_bound()
    )


def _verify_too_soon(f: _Facts, situation: Situation) -> Ruling:
    settle = Bound(window_s=f.process.verify_after_for(f.step))
    return f.ruling(situation, Decision.WAIT, then=Decision.VERIFY, bound=settle)


def _verify_failed(f: _Facts, situation: Situation) -> Ruling:
    verify_calls = Bound(attempts=f.process.max_attempts_for(f.step))
    return f.ruling(situation, Decision.VERIFY, then=f.unknown_end(), bound=verify_calls)


def _rolled_back_to(f: _Facts) -> bool:
    """True when a rollback can ever reach this step: a later step fails before the pivot
    completed. Once the pivot completed nothing at or before it is undone."""
    if f.process.steps[-1].id == f.step.id:
        return False
    return f.phase is Phase.BEFORE_PIVOT


def _later_step_failed(f: _Facts, situation: Situation) -> Ruling:
    if f.kind is StepKind.READ_ONLY or not _rolled_back_to(f):
        return f.ruling(situation, Decision.NONE)
    if f.step.step_class is StepClass.COMPENSATABLE:
        return f.ruling(situation, Decision.COMPENSATE)
    return f.ruling(situation, Decision.KEEP)


def _compensation_failed(f: _Facts, situation: Situation) -> Ruling:
    if f.step.step_class is not StepClass.COMPENSATABLE or not _rolled_back_to(f):
        return f.ruling(situation, Decision.NONE)
    if situation is not Situation.COMPENSATION_FAILED:
        # Refused, or unknown: a compensation is never repeated blind; a person decides.
        return f.ruling(situation, Decision.MANUAL_REVIEW)
    defaults = f.process.defaults
    window = Bound(
        attempts=defaults.compensation_attempts, window_s=defaults.compensation_retry_for
    )
    return f.ruling(situation, Decision.RETRY, then=Decision.MANUAL_REVIEW, bound=window)


def _duplicate_request(f: _Facts, situation: Situation) -> Ruling:
    return f.ruling(situation, Decision.RETURN_EXISTING)


_RULES = {
    Situation.DEFINITE_FAILURE: _definite_failure,
    Situation.REFUSED: _refused,
    Situation.TIMEOUT: _unknown,
    Situation.CRASH_BEFORE_PERSIST: _unknown,
    Situation.CALL_IN_FLIGHT: _in_flight,
    Situation.VERIFY_NOT_APPLIED: _verify_not_applied,
    Situation.VERIFY_TOO_SOON: _verify_too_soon,
    Situation.VERIFY_FAILED: _verify_failed,
    Situation.LATER_STEP_FAILED: _later_step_failed,
    Situation.COMPENSATION_FAILED: _compensation_failed,
    Situation.COMPENSATION_REFUSED: _compensation_failed,
    Situation.COMPENSATION_UNKNOWN: _compensation_failed,
    Situation.DUPLICATE_REQUEST: _duplicate_request,
}
