"""Part 5 of the plan: partial-failure tests, each with its faults and expected final state.

Faults name the engine's fault points (``before_call``, ``after_call``, ``after_commit``,
``before_compensation``, ``after_compensation``), so a test of the plan can be run by the
fault harness as written. Expected states follow :func:`sagaguard._legacy_rules.decide`.
"""

from __future__ import annotations

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Process, Step, StepClass
from sagaguard.planner.plan import (
    AlertKind,
    ExpectedAlert,
    ExpectedState,
    FaultKind,
    FaultPoint,
    Injection,
    PartialFailureTest,
    RunStatus,
    TestCategory,
)
from sagaguard.planner.wording import (
    alert_to,
    compensation_text,
    fmt_seconds,
    mitigation_for,
    riskiest,
    rollback_status,
    side_effecting,
    single_owner_mechanism,
    verify_text,
)

__all__ = ["build_tests", "compensation_failure_target", "unknown_outcome_target"]


def build_tests(process: Process) -> tuple[PartialFailureTest, ...]:
    """``failure_after_step`` for every step, then one test of each other category."""
    tests = [_failure_after(process, i) for i in range(len(process.steps))]
    target = unknown_outcome_target(process)
    tests.append(_unknown_outcome(process, target, Situation.CRASH_BEFORE_PERSIST))
    tests.append(_unknown_outcome(process, target, Situation.TIMEOUT))
    tests.append(_retry_after_partial_success(process, target))
    tests.append(_parallel(process))
    victim = compensation_failure_target(process)
    if victim is not None:
        tests.append(_compensation_failure(process, victim))
    return tuple(tests)


def unknown_outcome_target(process: Process) -> Step:
    """The step whose lost answer hurts most.

    The riskiest step that cannot simply be retried (a lost answer means verify or a
    person), else the riskiest side-effecting step, else the first step.
    """
    effects = [s for s in process.steps if side_effecting(s)]
    unsafe = [s for s in effects if decide(s, Situation.TIMEOUT).decision is not Decision.RETRY]
    return riskiest(unsafe) or riskiest(effects) or process.steps[0]


def compensation_failure_target(process: Process) -> Step | None:
    """The riskiest compensatable step that a later step's failure can make undo, if any."""
    candidates = [s for s in process.steps[:-1] if s.step_class is StepClass.COMPENSATABLE]
    return riskiest(candidates)


def _effects(steps: tuple[Step, ...] | list[Step]) -> tuple[str, ...]:
    return tuple(s.id for s in steps if side_effecting(s))


def _failure_after(process: Process, index: int) -> PartialFailureTest:
    step = process.steps[index]
    if index == len(process.steps) - 1:
        return PartialFailureTest(
            id=f"failure_after_{step.id}",
            category=TestCategory.FAILURE_AFTER_STEP,
            step=step.id,
            scenario=(
                f"{step.id}, the last step, completes and its result is committed; the worker "
                "crashes before it marks the run completed"
            ),
            injection=(
                Injection(
                    step=step.id, point=FaultPoint.AFTER_COMMIT, fault=FaultKind.CRASH, times=1
                ),
            ),
            expected=ExpectedState(
                run_status=RunStatus.COMPLETED,
                active=_effects(process.steps),
                compensated=(),
                manual_review=(),
                alert=None,
                checks=(
                    f"a restarted worker finds {step.id} completed in the journal and marks "
                    "the run completed",
                    f"{step.id} is not called a second time (attempts stays 1)",
                ),
            ),
        )
    nxt = process.steps[index + 1]
    done = process.steps[: index + 1]
    undone = tuple(s for s in reversed(done) if s.step_class is StepClass.COMPENSATABLE)
    kept = [s for s in done if s.step_class is StepClass.IRREVERSIBLE]
    attempts = process.max_attempts_for(nxt)
    checks = [f"{nxt.id} is called {attempts} times and leaves nothing to undo"]
    if undone:
        checks.append(
            "compensations run in this order, each once: " + ", ".join(s.id for s in undone)
        )
    else:
        checks.append("no compensation runs: nothing before the failure can be undone")
    checks += [f"{s.id} stays done; its mitigation: {mitigation_for(s)}" for s in kept]
    if index + 2 < len(process.steps):
        checks.append(f"steps after {nxt.id} never start")
    return PartialFailureTest(
        id=f"failure_after_{step.id}",
        category=TestCategory.FAILURE_AFTER_STEP,
        step=step.id,
        scenario=(
            f"{step.id} completes, then {nxt.id} fails definitely on every attempt "
            f"({attempts}): the run rolls back what was done up to {step.id}"
        ),
        injection=(
            Injection(step=nxt.id, point=FaultPoint.BEFORE_CALL, fault=FaultKind.FAIL, times=None),
        ),
        expected=ExpectedState(
            run_status=rollback_status(process, index + 1),
            active=_effects(kept),
            compensated=tuple(s.id for s in undone),
            manual_review=(),
            alert=None,
            checks=tuple(checks),
        ),
    )


def _unknown_outcome(process: Process, target: Step, situation: Situation) -> PartialFailureTest:
    index = process.index(target.id)
    ruling = decide(target, situation)
    if situation is Situation.TIMEOUT:
        category, fault = TestCategory.TIMEOUT, FaultKind.TIMEOUT
        scenario = (
            f"{target.id}'s call takes effect but no answer arrives within "
            f"{fmt_seconds(process.timeout_for(target))}: the outcome is unknown"
        )
    else:
        category, fault = TestCategory.CRASH_BEFORE_PERSIST, FaultKind.CRASH
        scenario = (
            f"{target.id}'s call takes effect, then the worker crashes before the result is "
            f"saved; a restarted worker finds {target.id} started with no result"
        )
    injection = (Injection(step=target.id, point=FaultPoint.AFTER_CALL, fault=fault, times=1),)
    ident = target.external_id or "its result"
    if ruling.decision is Decision.MANUAL_REVIEW:
        later = [s.id for s in process.steps[index + 1 :]]
        checks = [
            f"{target.id} is not called a second time",
            f"nothing is compensated while {target.id}'s outcome is unknown",
            f"the alert needs_manual_review for {target.id} goes to {alert_to(process, target)}",
        ]
        if later:
            checks.append(f"{', '.join(later)} never start{'s' if len(later) == 1 else ''}")
        expected = ExpectedState(
            run_status=RunStatus.NEEDS_MANUAL_REVIEW,
            active=_effects(process.steps[:index]),
            compensated=(),
            manual_review=(target.id,),
            alert=ExpectedAlert(
                kind=AlertKind.NEEDS_MANUAL_REVIEW,
                route=process.alert_route(target),
                step=target.id,
            ),
            checks=tuple(checks),
        )
    else:
        if ruling.decision is Decision.VERIFY:
            checks = [
                f"verify runs before any retry ({verify_text(target)})",
                f"verify finds the effect: {target.id} is marked completed without a second "
                f"call, with {ident} taken from the verify answer",
            ]
        elif target.read_only:
            checks = [f"{target.id} is called again; it changes nothing"]
        else:
            checks = [
                f"the retry of {target.id} carries the same idempotency key "
                f"{{operation_id}}:{target.id}, so its effect exists exactly once",
            ]
        checks.append("every later step runs once and the run completes")
        expected = ExpectedState(
            run_status=RunStatus.COMPLETED,
            active=_effects(process.steps),
            compensated=(),
            manual_review=(),
            alert=None,
            checks=tuple(checks),
        )
    return PartialFailureTest(
        id=f"{category.value}_{target.id}",
        category=category,
        step=target.id,
        scenario=scenario,
        injection=injection,
        expected=expected,
    )


def _retry_after_partial_success(process: Process, target: Step) -> PartialFailureTest:
    index = process.index(target.id)
    done = [s.id for s in process.steps[: index + 1]]
    rest = [s.id for s in process.steps[index + 1 :]]
    checks = [
        "the resubmission returns the existing run: one run for the operation_id",
        f"{', '.join(done)} keep attempts 1: none is called again",
    ]
    if rest:
        checks.append(f"{', '.join(rest)} run once each")
    return PartialFailureTest(
        id=f"retry_after_partial_success_{target.id}",
        category=TestCategory.RETRY_AFTER_PARTIAL_SUCCESS,
        step=target.id,
        scenario=(
            f"the worker crashes right after {target.id}'s result is committed; the client "
            "gets no answer and sends the same operation_id again"
        ),
        injection=(
            Injection(
                step=target.id, point=FaultPoint.AFTER_COMMIT, fault=FaultKind.CRASH, times=1
            ),
            Injection(
                step=target.id, point=FaultPoint.AFTER_COMMIT, fault=FaultKind.RESUBMIT, times=1
            ),
        ),
        expected=ExpectedState(
            run_status=RunStatus.COMPLETED,
            active=_effects(process.steps),
            compensated=(),
            manual_review=(),
            alert=None,
            checks=tuple(checks),
        ),
    )


def _parallel(process: Process) -> PartialFailureTest:
    target = next((s for s in process.steps if side_effecting(s)), process.steps[0])
    return PartialFailureTest(
        id=f"parallel_same_operation_id_{target.id}",
        category=TestCategory.PARALLEL_SAME_OPERATION_ID,
        step=target.id,
        scenario=(
            f"two workers start the same operation_id at once; the first is paused just before "
            f"calling {target.id} while the second tries to run it"
        ),
        injection=(
            Injection(
                step=target.id,
                point=FaultPoint.BEFORE_CALL,
                fault=FaultKind.CONCURRENT_START,
                times=1,
            ),
        ),
        expected=ExpectedState(
            run_status=RunStatus.COMPLETED,
            active=_effects(process.steps),
            compensated=(),
            manual_review=(),
            alert=None,
            checks=(
                "exactly one run exists for the operation_id; the second start returns it or "
                "is refused while the first holds the lease (RunBusyError)",
                f"each step is called once: {', '.join(s.id for s in process.steps)}",
                f"single owner in the {process.state_store.value} store: "
                + single_owner_mechanism(process),
                "a write with a stale fencing token is rejected (StaleOwnerError)",
            ),
        ),
    )


def _compensation_failure(process: Process, victim: Step) -> PartialFailureTest:
    index = process.index(victim.id)
    last = process.steps[-1]
    between = process.steps[index + 1 : -1]
    undone = tuple(s.id for s in reversed(between) if s.step_class is StepClass.COMPENSATABLE)
    halted = [
        s.id for s in reversed(process.steps[:index]) if s.step_class is StepClass.COMPENSATABLE
    ]
    kept = {s.id for s in process.steps[:index] if side_effecting(s)}
    kept |= {s.id for s in between if s.step_class is StepClass.IRREVERSIBLE}
    attempts = process.defaults.compensation_attempts
    backoff = (
        f"{fmt_seconds(process.defaults.backoff_base)} doubling to at most "
        f"{fmt_seconds(process.defaults.backoff_max)}"
    )
    checks = [
        f"{last.id} fails definitely on each of its {process.max_attempts_for(last)} attempts",
    ]
    if undone:
        checks.append("compensated first, latest first: " + ", ".join(undone))
    checks += [
        f"the compensation of {victim.id} is attempted {attempts} times, {backoff}, with jitter",
        f"a compensation_failed event for {victim.id} is journaled apart from {last.id}'s failure",
        f"the alert goes to {alert_to(process, victim)}",
    ]
    if halted:
        checks.append(f"the rollback halts: {', '.join(halted)} stay completed, not compensated")
    return PartialFailureTest(
        id=f"compensation_failure_{victim.id}",
        category=TestCategory.COMPENSATION_FAILURE,
        step=victim.id,
        scenario=(
            f"{last.id} fails definitely, the rollback reaches {victim.id} and its "
            f"compensation ({compensation_text(victim)}) fails on every attempt"
        ),
        injection=(
            Injection(step=last.id, point=FaultPoint.BEFORE_CALL, fault=FaultKind.FAIL, times=None),
            Injection(
                step=victim.id,
                point=FaultPoint.BEFORE_COMPENSATION,
                fault=FaultKind.FAIL,
                times=None,
            ),
        ),
        expected=ExpectedState(
            run_status=RunStatus.NEEDS_MANUAL_REVIEW,
            active=tuple(s.id for s in process.steps if s.id in kept),
            compensated=undone,
            manual_review=(victim.id,),
            alert=ExpectedAlert(
                kind=AlertKind.COMPENSATION_FAILED,
                route=process.alert_route(victim),
                step=victim.id,
            ),
            checks=tuple(checks),
        ),
    )
