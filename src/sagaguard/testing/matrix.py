"""The fault matrix of a process: the plan's own tests, then every partial failure around them.

:func:`build_matrix` starts from the plan's partial-failure tests, with their ids, and adds
a scenario for each of these, step by step:

- a crash at every fault point: before the call, after it (before its result is committed),
  after the commit, before and after each compensation a rollback reaches, before and after
  each verify call; a fresh engine then recovers the run;
- a timeout after the call took effect;
- the same operation_id again, once the run is over and at the same moment;
- two owners racing: the first one's lease runs out while it holds a call's answer;
- each compensation failing once (a retry recovers) and for good (a person takes over);
- verify failing once and for good;
- a step after the point of no return failing for good, and refused;
- a best-effort step failing for good, refused, and losing its answer.

The end each scenario must reach comes from the planner's simulation of the rulebook, the
same that writes the plan's expectations. A scenario whose faults equal a plan test's is
left out: the plan test covers it.
"""

from __future__ import annotations

from sagaguard.model import Phase, Process, Step
from sagaguard.planner.context import Planning
from sagaguard.planner.scenarios import build_tests, unknown_outcome_target
from sagaguard.planner.simulate import Expectations
from sagaguard.planner.testplan import FaultKind, Injection, PartialFailureTest
from sagaguard.rules import Decision, Situation
from sagaguard.testing.scenario import Duplicate, Scenario, ScenarioKind
from sagaguard.vocabulary import FaultPoint

__all__ = ["MatrixBuilder", "build_matrix"]

_CALL_CRASHES = {
    FaultPoint.BEFORE_CALL: "before {step}'s call is made (started is committed)",
    FaultPoint.AFTER_CALL: "after {step}'s call took effect, before its result is committed",
    FaultPoint.AFTER_COMMIT: "right after {step}'s result is committed",
}
_UNDO_CRASHES = {
    FaultPoint.BEFORE_COMPENSATION: "before {step}'s compensation is made",
    FaultPoint.AFTER_COMPENSATION: "after {step}'s compensation ran, before it is committed",
}
_VERIFY_CRASHES = {
    FaultPoint.BEFORE_VERIFY: "before {step}'s verify call is made",
    FaultPoint.AFTER_VERIFY: "after {step}'s verify answered, before the answer is committed",
}


def _fault(
    step: Step | str, point: FaultPoint, fault: FaultKind, attempt: int | None = 1
) -> Injection:
    step_id = step if isinstance(step, str) else step.id
    return Injection(step=step_id, point=point, fault=fault, attempt=attempt)


class MatrixBuilder:
    """Builds one process's scenarios, each with the end the rulebook promises."""

    def __init__(self, process: Process, *, verify_bound: frozenset[str] | None = None) -> None:
        self.ctx = Planning(process, verify_bound=verify_bound)
        self.expectations = Expectations(self.ctx)
        self.scenarios: list[Scenario] = []
        self._covered: set[tuple[Injection, ...]] = set()

    def add(
        self,
        scenario_id: str,
        kind: ScenarioKind,
        title: str,
        faults: tuple[Injection, ...],
        *,
        step: Step | None = None,
        expect_as: tuple[Injection, ...] | None = None,
        takeover_at: tuple[str, FaultPoint] | None = None,
        duplicate: Duplicate | None = None,
    ) -> None:
        """Add a scenario unless one with the same faults (and no other twist) exists."""
        key = tuple(sorted(faults, key=lambda f: (f.step, f.point, f.fault, f.attempt or 0)))
        plain = takeover_at is None and duplicate is None
        if plain and key in self._covered:
            return
        if plain:
            self._covered.add(key)
        self.scenarios.append(
            Scenario(
                id=scenario_id,
                kind=kind,
                title=title,
                faults=faults,
                expected=self.expectations.expect(expect_as if expect_as is not None else faults),
                step=step.id if step is not None else None,
                takeover_at=takeover_at,
                duplicate=duplicate,
            )
        )

    def add_plan_test(self, test: PartialFailureTest) -> None:
        """The plan's own test, as written: its id, its faults, its expected end."""
        key = tuple(
            sorted(test.injection, key=lambda f: (f.step, f.point, f.fault, f.attempt or 0))
        )
        self._covered.add(key)
        self.scenarios.append(
            Scenario(
                id=test.id,
                kind=ScenarioKind.PLAN,
                title=test.scenario,
                faults=test.injection,
                expected=test.expected,
                step=test.step,
            )
        )

    # -- the families --------------------------------------------------------------------

    def crashes(self) -> None:
        """The worker dies at every fault point of every step; a fresh engine recovers."""
        for step in self.ctx.steps:
            for point, where in _CALL_CRASHES.items():
                self.add(
                    f"crash_{point.value}_{step.id}",
                    ScenarioKind.CRASH,
                    f"the worker dies {where.format(step=step.id)}; a fresh engine recovers",
                    (_fault(step, point, FaultKind.CRASH),),
                    step=step,
                )
        for step in self.ctx.steps:
            trigger = self.rollback_trigger(step)
            if trigger is None:
                continue
            for point, where in _UNDO_CRASHES.items():
                self.add(
                    f"crash_{point.value}_{step.id}",
                    ScenarioKind.CRASH,
                    f"{trigger.id} is refused, the rollback reaches {step.id}; the worker "
                    f"dies {where.format(step=step.id)}; a fresh engine recovers",
                    (
                        _fault(trigger, FaultPoint.BEFORE_CALL, FaultKind.REFUSE),
                        _fault(step, point, FaultKind.CRASH),
                    ),
                    step=step,
                )
        for step in self.verified():
            for point, where in _VERIFY_CRASHES.items():
                self.add(
                    f"crash_{point.value}_{step.id}",
                    ScenarioKind.CRASH,
                    f"{step.id}'s answer is lost; the worker dies {where.format(step=step.id)}; "
                    "a fresh engine recovers",
                    (self.lost_answer(step), _fault(step, point, FaultKind.CRASH)),
                    step=step,
                )

    def timeouts(self) -> None:
        """Every side-effecting step's call takes effect and its answer is lost."""
        for step in self.ctx.steps:
            if step.read_only:
                continue
            self.add(
                f"timeout_{step.id}",
                ScenarioKind.TIMEOUT,
                f"{step.id}'s call takes effect, then its answer is lost (a timeout)",
                (self.lost_answer(step),),
                step=step,
            )

    def duplicates(self) -> None:
        """The same operation_id once the run is over, and two starts at the same moment."""
        self.add(
            "duplicate_sequential",
            ScenarioKind.DUPLICATE,
            "the run completes, then the client sends the same operation_id again (the same "
            "input: the run comes back, nothing runs again; another input: a conflict)",
            (),
            duplicate=Duplicate.SEQUENTIAL,
        )
        self.add(
            "duplicate_concurrent",
            ScenarioKind.DUPLICATE,
            "two workers start the same operation_id at the same moment: one run, each "
            "step called once",
            (),
            duplicate=Duplicate.CONCURRENT,
        )

    def race(self) -> None:
        """The first owner's lease runs out while it holds a call's answer; a second takes over."""
        target = unknown_outcome_target(self.ctx)
        self.add(
            f"owners_racing_{target.id}",
            ScenarioKind.RACE,
            f"worker 1 called {target.id} and stalls before committing the answer; its lease "
            "runs out, worker 2 takes the run over and finishes it; worker 1's writes are then "
            "refused (fencing token)",
            (),
            step=target,
            expect_as=(_fault(target, FaultPoint.AFTER_CALL, FaultKind.CRASH),),
            takeover_at=(target.id, FaultPoint.AFTER_CALL),
        )

    def compensations(self) -> None:
        """Each compensation a rollback reaches fails once (retried), then for good."""
        for step in self.ctx.steps:
            trigger = self.rollback_trigger(step)
            if trigger is None:
                continue
            refused = _fault(trigger, FaultPoint.BEFORE_CALL, FaultKind.REFUSE)
            for attempt, name, how in (
                (1, "once", "once; the retry undoes it and the rollback goes on"),
                (None, "always", "on every attempt; the rollback stops there for a person"),
            ):
                self.add(
                    f"compensation_fails_{name}_{step.id}",
                    ScenarioKind.COMPENSATION,
                    f"{trigger.id} is refused, the rollback reaches {step.id} and its "
                    f"compensation fails {how}",
                    (
                        refused,
                        _fault(step, FaultPoint.BEFORE_COMPENSATION, FaultKind.FAIL, attempt),
                    ),
                    step=step,
                )

    def verifies(self) -> None:
        """Verify cannot tell, once (asked again) and for good (a person decides)."""
        for step in self.verified():
            for attempt, name, how in (
                (1, "once", "once, then finds the effect"),
                (None, "always", "every time, within its bound; then a person decides"),
            ):
                self.add(
                    f"verify_fails_{name}_{step.id}",
                    ScenarioKind.VERIFY,
                    f"{step.id}'s answer is lost and verify cannot tell {how}",
                    (
                        self.lost_answer(step),
                        _fault(step, FaultPoint.BEFORE_VERIFY, FaultKind.FAIL, attempt),
                    ),
                    step=step,
                )

    def after_pivot(self) -> None:
        """Required steps after the point of no return fail for good, or are refused."""
        for step in self.ctx.steps:
            if not step.required or self.ctx.phase(step) is not Phase.AFTER_PIVOT:
                continue
            for fault, attempt, name in (
                (FaultKind.FAIL, None, "fails on every attempt"),
                (FaultKind.REFUSE, 1, "is refused"),
            ):
                self.add(
                    f"{'failure' if fault is FaultKind.FAIL else 'refused'}_after_pivot_{step.id}",
                    ScenarioKind.PIVOT,
                    f"{step.id}, after the point of no return, {name}: pushed forward, "
                    "never rolled back",
                    (_fault(step, FaultPoint.BEFORE_CALL, fault, attempt),),
                    step=step,
                )

    def best_effort(self) -> None:
        """Best-effort steps fail for good, are refused, or lose their answer."""
        for step in self.ctx.steps:
            if step.required:
                continue
            for fault, point, attempt, name in (
                (FaultKind.FAIL, FaultPoint.BEFORE_CALL, None, "fails on every attempt"),
                (FaultKind.REFUSE, FaultPoint.BEFORE_CALL, 1, "is refused"),
                (FaultKind.TIMEOUT, FaultPoint.AFTER_CALL, 1, "loses its answer"),
            ):
                self.add(
                    f"best_effort_{fault.value}_{step.id}",
                    ScenarioKind.BEST_EFFORT,
                    f"{step.id} (best-effort) {name}: the run goes on without it, never "
                    "rolled back",
                    (_fault(step, point, fault, attempt),),
                    step=step,
                )

    # -- helpers --------------------------------------------------------------------------

    def lost_answer(self, step: Step) -> Injection:
        """``step``'s first call takes effect and its answer is lost."""
        return _fault(step, FaultPoint.AFTER_CALL, FaultKind.TIMEOUT)

    def verified(self) -> list[Step]:
        """The steps whose lost answer the engine settles by asking verify."""
        return [
            s
            for s in self.ctx.steps
            if self.ctx.ruling(s, Situation.TIMEOUT).decision is Decision.VERIFY
        ]

    def rollback_trigger(self, step: Step) -> Step | None:
        """The nearest later step whose failure for good rolls back as far as ``step``."""
        if self.ctx.ruling(step, Situation.LATER_STEP_FAILED).decision is not Decision.COMPENSATE:
            return None
        for later in self.ctx.steps[self.ctx.index(step) + 1 :]:
            if self.ctx.give_up(later) is Decision.ROLLBACK:
                return later
        return None


def build_matrix(process: Process, *, verify_bound: frozenset[str] | None = None) -> list[Scenario]:
    """Every scenario of ``process``'s fault matrix: the plan's tests first, then the rest."""
    builder = MatrixBuilder(process, verify_bound=verify_bound)
    for test in build_tests(builder.ctx):
        builder.add_plan_test(test)
    builder.crashes()
    builder.timeouts()
    builder.duplicates()
    builder.race()
    builder.compensations()
    builder.verifies()
    builder.after_pivot()
    builder.best_effort()
    return builder.scenarios
