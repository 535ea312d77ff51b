"""One process as the planner reads it: the rulings of every step, each decided once.

Every part of a plan asks :class:`Planning` what the rules say (``ruling``), where a step
stands (``phase``, ``give_up``) and what a rollback from a step would undo
(``undo_before``); nothing in the planner calls :func:`sagaguard.rules.decide` itself. The
answers are computed once per step (the rollback chain as prefix counts), so planning stays
linear in the number of steps however many parts ask.

``verify_bound`` says which steps have verify code bound: ``None`` takes the spec's word
(``verify: module:function`` is code, a description is not); a coded saga passes the ids of
its steps with ``@step.verify``. It is the one way the planner learns how a process is bound.
"""

from __future__ import annotations

from sagaguard.model import Phase, Process, Step, StepClass
from sagaguard.rules import Decision, Ruling, Situation, StepKind, decide, give_up, step_kind

__all__ = ["Planning"]

NO_ROUTE = "whoever works the review queue (`sagaguard review list`): no alert route is declared"
"""Who works a case when no alert route is declared: a queue a person works, never a hint."""


class Planning:
    """The process, how it is bound, and every ruling the plan renders (computed on demand)."""

    def __init__(self, process: Process, *, verify_bound: frozenset[str] | None = None) -> None:
        self.process = process
        self.verify_bound = verify_bound
        self.steps = process.steps
        self.pivot = process.pivot
        self._rulings: dict[tuple[str, Situation], Ruling] = {}
        self._kinds: dict[str, StepKind] = {}
        self._routes: dict[str, str | None] = {}
        self._give_up: dict[str, Decision] = {}
        self.decide_calls = 0
        """How many times the rulebook was consulted (a plan asks each ruling once)."""
        self._chain: list[Step] = []
        self._undo: list[Step] = []
        self._keep: list[Step] = []
        self._chain_before: list[int] = []
        self._undo_before: list[int] = []
        self._keep_before: list[int] = []
        self._effects_before: list[int] = []
        effects = 0
        for step in self.steps:
            self._chain_before.append(len(self._chain))
            self._undo_before.append(len(self._undo))
            self._keep_before.append(len(self._keep))
            self._effects_before.append(effects)
            visit = self.ruling(step, Situation.LATER_STEP_FAILED).decision
            if visit is Decision.COMPENSATE:
                self._undo.append(step)
                self._chain.append(step)
            elif visit is Decision.KEEP:
                self._keep.append(step)
                self._chain.append(step)
            if not step.read_only:
                effects += 1

    # --- the rulebook ------------------------------------------------------------------------

    def bound_for(self, step: Step) -> bool | None:
        """The ``verify_bound`` argument of :func:`decide` for ``step``."""
        return None if self.verify_bound is None else step.id in self.verify_bound

    def ruling(self, step: Step, situation: Situation) -> Ruling:
        """What the rules decide for ``step`` in ``situation`` (asked once, then remembered)."""
        key = (step.id, situation)
        found = self._rulings.get(key)
        if found is None:
            self.decide_calls += 1
            found = decide(step, situation, process=self.process, verify_bound=self.bound_for(step))
            self._rulings[key] = found
        return found

    def kind(self, step: Step) -> StepKind:
        """The step's row of the decision matrix (what settles its lost answer)."""
        found = self._kinds.get(step.id)
        if found is None:
            found = step_kind(step, verify_bound=self.bound_for(step))
            self._kinds[step.id] = found
        return found

    def verify_is_bound(self, step: Step) -> bool:
        """True when the engine can ask the other side about ``step``."""
        if self.verify_bound is not None:
            return step.id in self.verify_bound
        return step.verify_is_code

    def give_up(self, step: Step) -> Decision:
        """What follows once ``step`` failed for good: rollback, a person, or go on."""
        found = self._give_up.get(step.id)
        if found is None:
            found = self._give_up[step.id] = give_up(step, self.process)
        return found

    def phase(self, step: Step) -> Phase:
        """Where ``step`` stands relative to the pivot."""
        return self.process.phase(step)

    # --- positions and the rollback chain ---------------------------------------------------

    def index(self, step: Step) -> int:
        """0-based position of ``step``."""
        return self.process.index(step.id)

    def is_last(self, step: Step) -> bool:
        """True for the last step of the process."""
        return self.steps[-1].id == step.id

    def undo_before(self, index: int) -> tuple[Step, ...]:
        """The steps a rollback from step ``index`` compensates, latest first."""
        return tuple(reversed(self._undo[: self._undo_before[index]]))

    def keep_before(self, index: int) -> tuple[Step, ...]:
        """The irreversible steps a rollback from step ``index`` passes and keeps, latest first."""
        return tuple(reversed(self._keep[: self._keep_before[index]]))

    def chain_before(self, index: int) -> tuple[Step, ...]:
        """Every step a rollback from step ``index`` visits (undone or kept), latest first."""
        return tuple(reversed(self._chain[: self._chain_before[index]]))

    def latest_in_chain(self, index: int) -> Step | None:
        """The first step a rollback from step ``index`` visits, or None when it visits none."""
        end = self._chain_before[index]
        return self._chain[end - 1] if end else None

    def undo_count(self, index: int) -> int:
        """How many steps a rollback from step ``index`` compensates (without building them)."""
        return self._undo_before[index]

    def latest_undo(self, index: int, few: int) -> tuple[Step, ...]:
        """The ``few`` latest steps a rollback from step ``index`` compensates, latest first."""
        end = self._undo_before[index]
        return tuple(reversed(self._undo[max(0, end - few) : end]))

    def latest_keep(self, index: int, few: int) -> tuple[Step, ...]:
        """The ``few`` latest steps a rollback from step ``index`` keeps, latest first."""
        end = self._keep_before[index]
        return tuple(reversed(self._keep[max(0, end - few) : end]))

    def first_undo(self) -> Step | None:
        """The earliest compensatable step a rollback can reach (where every rollback ends)."""
        return self._undo[0] if self._undo else None

    def keep_count(self, index: int) -> int:
        """How many irreversible steps a rollback from step ``index`` keeps."""
        return self._keep_before[index]

    def changed_before(self, index: int) -> bool:
        """True when a step before ``index`` changes something (a rollback then compensates)."""
        return self._effects_before[index] > 0

    def rollback_chain(self) -> tuple[Step, ...]:
        """Every step a rollback can visit, latest first: the compensation path."""
        return tuple(reversed(self._chain))

    def compensatable_before_pivot(self) -> tuple[Step, ...]:
        """The steps the engine can ever compensate, in process order."""
        return tuple(self._undo)

    # --- people --------------------------------------------------------------------------------

    def route(self, step: Step | None) -> str | None:
        """The alert route for ``step``, or None."""
        if step is None:
            return self.process.alert_route(None)
        if step.id not in self._routes:
            self._routes[step.id] = self.process.alert_route(step)
        return self._routes[step.id]

    def who(self, step: Step | None) -> str:
        """Who works a case of ``step``: its alert route, else the review queue."""
        return self.route(step) or NO_ROUTE

    def irreversible(self, step: Step) -> bool:
        """True when nothing undoes ``step`` (``compensation: none`` or none declared)."""
        return step.step_class is StepClass.IRREVERSIBLE
