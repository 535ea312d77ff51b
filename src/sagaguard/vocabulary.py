"""The one vocabulary of sagaguard: statuses, event kinds, alert kinds and fault points.

Plan, engine, journal stores, operator views and the fault harness all speak these words,
and each is defined here once. They are ``StrEnum``s, so a value compares equal to the
string the journal stores, and the JSON of a plan or an alert carries the plain word.
Pure: no imports beyond the standard library.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AlertKind", "Encounter", "EventKind", "FaultPoint", "RunStatus", "StepStatus"]


class RunStatus(StrEnum):
    """Where a run stands (DESIGN.md section 3)."""

    RUNNING = "running"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    FAILED = "failed"
    NEEDS_MANUAL_REVIEW = "needs_manual_review"

    @property
    def terminal(self) -> bool:
        """True when nothing more will happen to the run."""
        return self in (RunStatus.COMPLETED, RunStatus.COMPENSATED, RunStatus.FAILED)

    @property
    def active(self) -> bool:
        """True when an owner is expected to be driving the run."""
        return self in (RunStatus.RUNNING, RunStatus.COMPENSATING)


class StepStatus(StrEnum):
    """Where a step stands (DESIGN.md section 3)."""

    PENDING = "pending"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    NEEDS_MANUAL_REVIEW = "needs_manual_review"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"


class EventKind(StrEnum):
    """What one line of a run's audit trail records."""

    RUN_CREATED = "run_created"
    CLAIMED = "claimed"
    RELEASED = "released"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_GAVE_UP = "step_gave_up"
    """The step failed for good: refused, or its bound is spent."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    CALL_IN_FLIGHT = "call_in_flight"
    """A call outlived its timeout and still runs: nobody verifies or retries it meanwhile."""
    VERIFY_CALLED = "verify_called"
    VERIFIED_APPLIED = "verified_applied"
    VERIFIED_NOT_APPLIED = "verified_not_applied"
    VERIFY_FAILED = "verify_failed"
    """Verify could not tell (it raised, timed out or answered something else)."""
    VERIFY_DEFERRED = "verify_deferred"
    """Verify found nothing before the step's settle delay (``verify_after``) passed."""
    BEST_EFFORT_FAILED = "best_effort_failed"
    """A best-effort step failed for good or stays unknown; the run goes on without it."""
    FORWARD_RECOVERY = "forward_recovery"
    """A step after the point of no return failed; it is pushed forward, never rolled back."""
    NEEDS_MANUAL_REVIEW = "needs_manual_review"
    AWAITING_REVIEW = "awaiting_review"
    ROLLBACK_STARTED = "rollback_started"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_ATTEMPT_FAILED = "compensation_attempt_failed"
    STEP_COMPENSATED = "step_compensated"
    COMPENSATION_FAILED = "compensation_failed"
    IRREVERSIBLE_KEPT = "irreversible_kept"
    RUN_COMPLETED = "run_completed"
    RUN_COMPENSATED = "run_compensated"
    RUN_FAILED = "run_failed"
    RESOLVED = "resolved"
    ALERT_DELIVERED = "alert_delivered"
    ALERT_FAILED = "alert_failed"


class AlertKind(StrEnum):
    """Why a person is told."""

    NEEDS_MANUAL_REVIEW = "needs_manual_review"
    """A run waits for a person: an unknown outcome, or a step after the pivot that failed."""
    COMPENSATION_FAILED = "compensation_failed"
    """Undoing a step failed: the riskiest state a run can be in."""
    BEST_EFFORT_FAILED = "best_effort_failed"
    """A best-effort step failed (or stays unknown); the run completed without it."""


class FaultPoint(StrEnum):
    """Where in a step's life a fault can be injected."""

    BEFORE_CALL = "before_call"
    """``started`` is committed; the external call has not been made."""
    AFTER_CALL = "after_call"
    """The external call returned; its result is not committed yet."""
    AFTER_COMMIT = "after_commit"
    """The step's result is committed; the next move has not started."""
    BEFORE_COMPENSATION = "before_compensation"
    """``compensating`` is committed; the compensation call has not been made."""
    AFTER_COMPENSATION = "after_compensation"
    """The compensation call returned; its result is not committed yet."""
    BEFORE_VERIFY = "before_verify"
    """``verify_called`` is committed; the verify call has not been made."""
    AFTER_VERIFY = "after_verify"
    """The verify call returned; its answer is not committed yet."""


class Encounter(StrEnum):
    """How one call of ``Engine.run`` or ``Engine.submit`` met its run."""

    CREATED = "created"
    """This call journaled the run (``run`` then drove it; ``submit`` left it for a worker)."""
    RESUMED = "resumed"
    """The run existed unfinished and nobody live held it: this call claimed and drove it."""
    JOINED = "joined"
    """The run is unfinished and held elsewhere (a live owner, another call): left as it is."""
    RECORDED = "recorded"
    """The run was over or waits for a person: the journaled run, and no step was called."""
