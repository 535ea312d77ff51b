"""Part 5 of the plan: partial-failure tests, each with its faults and expected final state.

Faults name the engine's fault points and a :class:`~.testplan.FaultKind`; the expected
state of every step and of the run, the call counts and the alerts come from
:mod:`.simulate`, that is from the rulebook. A fault harness can run each test as written.
"""

from __future__ import annotations

from sagaguard.model import Phase, Step
from sagaguard.planner.context import Planning
from sagaguard.planner.impact import riskiest
from sagaguard.planner.plan import (
    FaultKind,
    FaultPoint,
    Injection,
    PartialFailureTest,
    TestCategory,
)
from sagaguard.planner.simulate import Expectations
from sagaguard.planner.wording import compensation_text, fmt_seconds, plural, single_owner_mechanism
from sagaguard.rules import Decision, Situation

__all__ = [
    "build_tests",
    "compensation_failure_injection",
    "compensation_failure_target",
    "rollback_trigger",
    "unknown_outcome_target",
]


def build_tests(ctx: Planning) -> tuple[PartialFailureTest, ...]:
    """``failure_after_step`` for every step, then one test of each other category."""
    expectations = Expectations(ctx)
    tests = [_failure_after(ctx, expectations, i) for i in range(len(ctx.steps))]
    target = unknown_outcome_target(ctx)
    tests.append(_lost_answer(ctx, expectations, target, TestCategory.CRASH_BEFORE_PERSIST))
    tests.append(_lost_answer(ctx, expectations, target, TestCategory.TIMEOUT))
    tests.append(_retry_after_partial_success(ctx, expectations, target))
    tests.append(_parallel(ctx, expectations))
    victim = compensation_failure_target(ctx)
    if victim is not None:
        tests.append(_compensation_failure(ctx, expectations, victim))
    return tuple(tests)


def unknown_outcome_target(ctx: Planning) -> Step:
    """The step whose lost answer hurts most.

    The riskiest step that cannot simply be retried (a lost answer means verify or a
    person), a required one before a best-effort one (whose lost answer the run can go on
    without), else the riskiest side-effecting step, else the first step.
    """
    effects = [s for s in ctx.steps if not s.read_only]
    unsafe = [s for s in effects if ctx.ruling(s, Situation.TIMEOUT).decision is not Decision.RETRY]
    required = [s for s in unsafe if s.required]
    return (
        riskiest(ctx, required) or riskiest(ctx, unsafe) or riskiest(ctx, effects) or ctx.steps[0]
    )


def rollback_trigger(ctx: Planning) -> Step | None:
    """The latest step whose failure for good rolls back (the pivot, when there is one)."""
    for step in reversed(ctx.steps):
        if ctx.give_up(step) is Decision.ROLLBACK:
            return step
    return None


def compensation_failure_target(ctx: Planning) -> Step | None:
    """The riskiest step the engine compensates when :func:`rollback_trigger` fails, if any."""
    trigger = rollback_trigger(ctx)
    if trigger is None:
        return None
    return riskiest(ctx, list(ctx.undo_before(ctx.index(trigger))))


def compensation_failure_injection(trigger: Step, victim: Step) -> tuple[Injection, ...]:
    """``trigger`` fails on every attempt, and undoing ``victim`` fails on every attempt."""
    return (
        _fail_every_attempt(trigger),
        Injection(
            step=victim.id,
            point=FaultPoint.BEFORE_COMPENSATION,
            fault=FaultKind.FAIL,
            attempt=None,
        ),
    )


def _fail_every_attempt(step: Step) -> Injection:
    return Injection(step=step.id, point=FaultPoint.BEFORE_CALL, fault=FaultKind.FAIL, attempt=None)


def _failure_after(ctx: Planning, expectations: Expectations, index: int) -> PartialFailureTest:
    step = ctx.steps[index]
    if index == len(ctx.steps) - 1:
        injection = (
            Injection(
                step=step.id, point=FaultPoint.AFTER_COMMIT, fault=FaultKind.CRASH, attempt=1
            ),
        )
        scenario = (
            f"{step.id}, the last step, completes and its result is committed; the worker "
            "crashes before it marks the run completed; a restarted worker finds it completed "
            "and calls nothing again"
        )
    else:
        nxt = ctx.steps[index + 1]
        injection = (_fail_every_attempt(nxt),)
        scenario = f"{step.id} completes, then {nxt.id} fails definitely on every attempt: " + (
            _after_failure(ctx, nxt)
        )
    return PartialFailureTest(
        id=f"failure_after_{step.id}",
        category=TestCategory.FAILURE_AFTER_STEP,
        step=step.id,
        scenario=scenario,
        injection=injection,
        expected=expectations.expect(injection),
    )


def _after_failure(ctx: Planning, failed: Step) -> str:
    decision = ctx.give_up(failed)
    ruling = ctx.ruling(failed, Situation.DEFINITE_FAILURE)
    attempts = ruling.bound.attempts if ruling.bound and ruling.bound.attempts else 1
    if decision is Decision.CONTINUE:
        return (
            f"it is best-effort, so after {plural(attempts, 'attempt')} it ends failed, a "
            f"best_effort_failed alert goes to {ctx.who(failed)} and the run completes without it"
        )
    if decision is Decision.MANUAL_REVIEW:
        pivot = ctx.pivot.id if ctx.pivot is not None else "the pivot"
        return (
            f"it comes after {pivot}, the point of no return, so it is retried for "
            f"{fmt_seconds(ctx.process.retry_for(failed))} (at least "
            f"{plural(attempts, 'attempt')}), then waits for {ctx.who(failed)}; nothing before "
            "it is undone"
        )
    index = ctx.index(failed)
    if not ctx.changed_before(index):
        return f"after {plural(attempts, 'attempt')} the run fails with nothing to undo"
    return (
        f"after {plural(attempts, 'attempt')} the run rolls back what was done before "
        f"{failed.id}, latest first"
    )


def _lost_answer(
    ctx: Planning, expectations: Expectations, target: Step, category: TestCategory
) -> PartialFailureTest:
    timeout = fmt_seconds(ctx.process.timeout_for(target))
    if category is TestCategory.TIMEOUT:
        fault = FaultKind.TIMEOUT
        situation = Situation.TIMEOUT
        scenario = (
            f"{target.id}'s call takes effect but no answer arrives within {timeout}: the "
            "outcome is unknown"
        )
    else:
        fault = FaultKind.CRASH
        situation = Situation.CRASH_BEFORE_PERSIST
        scenario = (
            f"{target.id}'s call takes effect, then the worker crashes before the result is "
            f"saved; a restarted worker finds {target.id} started with no result"
        )
    decision = ctx.ruling(target, situation).decision
    scenario += {
        Decision.RETRY: f"; it is retried with the same key ({{operation_id}}:{target.id})",
        Decision.VERIFY: "; verify finds the effect, so it is not called again",
        Decision.MANUAL_REVIEW: f"; nothing can settle it, so it waits for {ctx.who(target)}",
        Decision.CONTINUE: "; nothing can settle it and it is best-effort: the run goes on",
    }.get(decision, "")
    injection = (Injection(step=target.id, point=FaultPoint.AFTER_CALL, fault=fault, attempt=1),)
    return PartialFailureTest(
        id=f"{category.value}_{target.id}",
        category=category,
        step=target.id,
        scenario=scenario,
        injection=injection,
        expected=expectations.expect(injection),
    )


def _retry_after_partial_success(
    ctx: Planning, expectations: Expectations, target: Step
) -> PartialFailureTest:
    injection = (
        Injection(step=target.id, point=FaultPoint.AFTER_COMMIT, fault=FaultKind.CRASH, attempt=1),
        Injection(
            step=target.id, point=FaultPoint.AFTER_COMMIT, fault=FaultKind.RESUBMIT, attempt=1
        ),
    )
    return PartialFailureTest(
        id=f"retry_after_partial_success_{target.id}",
        category=TestCategory.RETRY_AFTER_PARTIAL_SUCCESS,
        step=target.id,
        scenario=(
            f"the worker crashes right after {target.id}'s result is committed; the client gets "
            "no answer and sends the same operation_id again: the resubmission returns the "
            "existing run, which resumes after it"
        ),
        injection=injection,
        expected=expectations.expect(injection),
    )


def _parallel(ctx: Planning, expectations: Expectations) -> PartialFailureTest:
    target = next((s for s in ctx.steps if not s.read_only), ctx.steps[0])
    injection = (
        Injection(
            step=target.id,
            point=FaultPoint.BEFORE_CALL,
            fault=FaultKind.CONCURRENT_START,
            attempt=1,
        ),
    )
    process = ctx.process
    return PartialFailureTest(
        id=f"parallel_same_operation_id_{target.id}",
        category=TestCategory.PARALLEL_SAME_OPERATION_ID,
        step=target.id,
        scenario=(
            f"two workers start the same operation_id at once; the first is paused just before "
            f"calling {target.id} while the second tries to run it: one run exists, the second "
            "start returns it or is refused while the first holds the lease (RunBusyError), and "
            f"a stale owner's write is rejected (StaleOwnerError). In the "
            f"{process.state_store.value} store: "
            + single_owner_mechanism(process.state_store, process.name)
        ),
        injection=injection,
        expected=expectations.expect(injection),
    )


def _compensation_failure(
    ctx: Planning, expectations: Expectations, victim: Step
) -> PartialFailureTest:
    trigger = rollback_trigger(ctx)
    assert trigger is not None  # a victim exists only below a trigger
    injection = compensation_failure_injection(trigger, victim)
    ruling = ctx.ruling(victim, Situation.COMPENSATION_FAILED)
    window = fmt_seconds(ruling.bound.window_s) if ruling.bound and ruling.bound.window_s else ""
    during = f" for {window}" if window else ""
    where = (
        "the pivot"
        if ctx.phase(trigger) is Phase.PIVOT
        else "the latest step whose failure rolls back"
    )
    return PartialFailureTest(
        id=f"compensation_failure_{victim.id}",
        category=TestCategory.COMPENSATION_FAILURE,
        step=victim.id,
        scenario=(
            f"{trigger.id} ({where}) fails definitely, the rollback "
            f"reaches {victim.id} and its compensation ({compensation_text(victim)}) fails on "
            f"every attempt{during}: the rollback stops there and a person takes over"
        ),
        injection=injection,
        expected=expectations.expect(injection),
    )
