"""Random fault schedules: several faults per run at random points, and shrinking a failure.

``sagaguard verify TARGET --explore N --seed S`` runs N schedules beyond the matrix. Each
draws one to four faults from what the matrix knows (a definite failure or a refusal of a
call, a lost answer, a crash at any fault point, a compensation or a verify that fails),
on random steps and attempts, from a random source seeded by ``S`` and the schedule's
number, so ``--only explore_0007`` draws schedule 7 again. A schedule that fails is shrunk
before it is reported: faults are dropped, and "every attempt" narrowed to the first, for
as long as the run still fails, so what is shown is a minimal schedule that breaks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from sagaguard.model import StepClass
from sagaguard.planner.testplan import FaultKind, Injection
from sagaguard.testing.matrix import MatrixBuilder
from sagaguard.testing.scenario import Scenario, ScenarioKind, ScenarioResult
from sagaguard.vocabulary import FaultPoint

__all__ = ["Shrunk", "explore_id", "random_scenario", "shrink"]

MAX_FAULTS = 4


@dataclass(frozen=True, slots=True)
class Shrunk:
    """A failing schedule and the smallest one found that still fails."""

    original: Scenario
    result: ScenarioResult
    """The run of the shrunk schedule."""
    tries: int


def explore_id(number: int) -> str:
    """The id of random schedule ``number`` (from 1)."""
    return f"explore_{number:04d}"


def _choices(builder: MatrixBuilder) -> list[tuple[str, FaultPoint, FaultKind, int | None]]:
    ctx = builder.ctx
    verified = {s.id for s in builder.verified()}
    out: list[tuple[str, FaultPoint, FaultKind, int | None]] = []
    for step in ctx.steps:
        attempts = ctx.process.max_attempts_for(step)
        out += [
            (step.id, FaultPoint.BEFORE_CALL, FaultKind.FAIL, None),
            (step.id, FaultPoint.BEFORE_CALL, FaultKind.REFUSE, 1),
            (step.id, FaultPoint.AFTER_CALL, FaultKind.TIMEOUT, 1),
        ]
        out += [(step.id, FaultPoint.BEFORE_CALL, FaultKind.FAIL, n) for n in range(1, attempts)]
        out += [(step.id, point, FaultKind.CRASH, 1) for point in _CALL_CRASH_POINTS]
        if step.step_class is StepClass.COMPENSATABLE:
            out += [
                (step.id, FaultPoint.BEFORE_COMPENSATION, FaultKind.FAIL, 1),
                (step.id, FaultPoint.BEFORE_COMPENSATION, FaultKind.FAIL, None),
                (step.id, FaultPoint.BEFORE_COMPENSATION, FaultKind.CRASH, 1),
                (step.id, FaultPoint.AFTER_COMPENSATION, FaultKind.CRASH, 1),
            ]
        if step.id in verified:
            out += [
                (step.id, FaultPoint.BEFORE_VERIFY, FaultKind.FAIL, 1),
                (step.id, FaultPoint.BEFORE_VERIFY, FaultKind.FAIL, None),
                (step.id, FaultPoint.AFTER_VERIFY, FaultKind.CRASH, 1),
            ]
    return out


_CALL_CRASH_POINTS = (FaultPoint.BEFORE_CALL, FaultPoint.AFTER_CALL, FaultPoint.AFTER_COMMIT)
_GROUPS = {
    FaultPoint.BEFORE_CALL: "call",
    FaultPoint.AFTER_CALL: "call",
    FaultPoint.AFTER_COMMIT: "call",
    FaultPoint.BEFORE_COMPENSATION: "undo",
    FaultPoint.AFTER_COMPENSATION: "undo",
    FaultPoint.BEFORE_VERIFY: "verify",
    FaultPoint.AFTER_VERIFY: "verify",
}


def random_scenario(builder: MatrixBuilder, *, seed: int, number: int) -> Scenario:
    """Random schedule ``number`` of the process: 1 to 4 faults, one per step and group."""
    rng = Random(f"{seed}:explore:{number}")
    choices = _choices(builder)
    # One fault per step and group (its call, its compensation, its verify): two faults on
    # one call would contradict each other (it took effect, and it changed nothing).
    picked: dict[tuple[str, str], Injection] = {}
    for _ in range(rng.randint(1, MAX_FAULTS)):
        step_id, point, fault, attempt = rng.choice(choices)
        key = (step_id, _GROUPS[point])
        picked.setdefault(key, Injection(step=step_id, point=point, fault=fault, attempt=attempt))
    return scenario_of(builder, explore_id(number), tuple(picked.values()))


def scenario_of(
    builder: MatrixBuilder, scenario_id: str, faults: tuple[Injection, ...]
) -> Scenario:
    """A random schedule as a scenario, with the end the rulebook promises for it."""
    described = "; ".join(
        f"{f.fault.value} at {f.point.value} of {f.step}"
        + (" (every attempt)" if f.attempt is None else f" (attempt {f.attempt})")
        for f in faults
    )
    return Scenario(
        id=scenario_id,
        kind=ScenarioKind.EXPLORE,
        title=described,
        faults=faults,
        expected=builder.expectations.expect(faults),
    )


def shrink(
    builder: MatrixBuilder,
    failing: ScenarioResult,
    run: Callable[[Scenario], ScenarioResult],
) -> Shrunk:
    """The smallest schedule found, by dropping and narrowing faults, whose run still fails."""
    best = failing
    tries = 0
    changed = True
    while changed:
        changed = False
        faults = best.scenario.faults
        for candidate in _smaller(faults):
            tries += 1
            result = run(scenario_of(builder, failing.scenario.id, candidate))
            if not result.passed:
                best, changed = result, True
                break
    return Shrunk(original=failing.scenario, result=best, tries=tries)


def _smaller(faults: tuple[Injection, ...]) -> list[tuple[Injection, ...]]:
    """Every schedule one step smaller: a fault dropped, or "every attempt" made the first."""
    out = [faults[:i] + faults[i + 1 :] for i in range(len(faults)) if len(faults) > 1]
    for i, fault in enumerate(faults):
        if fault.attempt is None:
            narrowed = fault.model_copy(update={"attempt": 1})
            out.append((*faults[:i], narrowed, *faults[i + 1 :]))
    return out
