"""The one dispatch: what the rulebook says to do now, and the move that does it.

:func:`sagaguard.rules.decide` says what to do with a step in a situation, and for how long
(its bound). The run driver asks :func:`order_for` once per situation and hands the answer to
:func:`act`, the only place a decision becomes a move; it makes no recovery decision of its
own. An :class:`Order` is the ruling applied to the step's counters: its decision while the
bound lasts, its ``then`` once the bound is spent, and the alert raised when that ends in a
person (``manual_review``) or in going on (``continue``).

Which counter a bound is measured by depends on what the decision repeats: step calls for a
retry (from the first attempt), verify calls for a verify, compensation calls for a
compensation retry (from its first attempt), and time alone for a wait.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING

from sagaguard import rules
from sagaguard.engine.calls import Outcome, Request
from sagaguard.model import Process, Step
from sagaguard.rules import Decision, Ruling, Situation
from sagaguard.storage.base import StepRecord
from sagaguard.vocabulary import AlertKind

if TYPE_CHECKING:
    from sagaguard.engine.staging import StagedRun

__all__ = [
    "COMPENSATION_SITUATIONS",
    "End",
    "Moves",
    "Next",
    "Order",
    "UnsupportedRulingError",
    "act",
    "order",
    "order_for",
]

COMPENSATION_SITUATIONS = (
    Situation.COMPENSATION_FAILED,
    Situation.COMPENSATION_REFUSED,
    Situation.COMPENSATION_UNKNOWN,
)
_ENDS_WITH_ALERT = (Decision.MANUAL_REVIEW, Decision.CONTINUE)
_CALLS = (Decision.RETRY, Decision.VERIFY, Decision.WAIT, Decision.COMPENSATE)
"""Decisions whose move calls user code or waits; the others only journal."""


class End(Enum):
    """Where a move leaves the step."""

    DONE = auto()
    """The step is settled: go on with the next one."""
    AGAIN = auto()
    """Call again (the step, or its compensation)."""
    ROLLBACK = auto()
    """The step failed for good: the run rolls back."""
    STOP = auto()
    """The run waits for a person."""


Next = Situation | End
"""What follows a move: a new situation to rule on, or where the step is left."""
MoveGenerator = Generator[Request, Outcome | None, Next]


@dataclass(frozen=True, slots=True)
class Order:
    """The one thing to do now for a step, and why."""

    ruling: Ruling
    decision: Decision
    """The ruling's decision while its bound lasts, else what follows it (``then``)."""
    spent: bool = False
    """The ruling's bound is used up: ``decision`` is the ruling's ``then``."""
    wait_s: float = 0.0
    """For ``wait``: how many seconds are left of the bound's window."""

    @property
    def alert(self) -> AlertKind | None:
        """The alert raised now: only when the order ends in a person or in going on."""
        return self.ruling.alert if self.decision in _ENDS_WITH_ALERT else None


def order(ruling: Ruling, *, attempts: int = 0, elapsed_s: float = 0.0) -> Order:
    """Apply ``ruling`` to what was counted: ``attempts`` made, ``elapsed_s`` since the first."""
    bound = ruling.bound
    if bound is None:
        return Order(ruling, ruling.decision)
    if bound.spent(attempts=attempts, elapsed_s=elapsed_s):
        return Order(ruling, ruling.ends, spent=True)
    wait_s = 0.0
    if ruling.decision is Decision.WAIT and bound.window_s is not None:
        wait_s = max(0.0, bound.window_s - elapsed_s)
    return Order(ruling, ruling.decision, wait_s=wait_s)


def order_for(
    step: Step,
    situation: Situation,
    *,
    process: Process,
    verify_bound: bool,
    record: StepRecord,
    now: float,
    waited: bool = False,
) -> Order:
    """The order for ``step`` in ``situation``, its bound measured by the step's journal row.

    ``waited`` says the engine already waited out the whole window of a ``wait`` (a wait for a
    call's thread is measured by the wait itself, not by the run's clock).
    """
    ruling = rules.decide(step, situation, process=process, verify_bound=verify_bound)
    if ruling.decision is Decision.WAIT:
        if waited:
            return order(ruling, elapsed_s=float("inf"))
        if situation is Situation.CALL_IN_FLIGHT:
            return order(ruling)
        return order(ruling, elapsed_s=_since(record.unknown_since, now))
    if ruling.decision is Decision.VERIFY:
        return order(ruling, attempts=record.verify_attempts)
    if situation in COMPENSATION_SITUATIONS:
        return order(
            ruling,
            attempts=record.compensation_attempts,
            elapsed_s=_since(record.compensation_first_at, now),
        )
    return order(ruling, attempts=record.attempts, elapsed_s=_since(record.first_attempt_at, now))


class UnsupportedRulingError(Exception):
    """The rulebook asked for a move the engine cannot make here (a bug, not bad input)."""

    def __init__(self, step: Step, situation: Situation, decision: Decision) -> None:
        super().__init__(
            f"the rulebook says {decision.value} for step {step.id} in {situation.value}, "
            "a move the engine cannot make there"
        )


class Moves:
    """The moves a part of the run driver can make; each part overrides the ones it makes.

    A move the part does not make raises :class:`UnsupportedRulingError`.
    """

    run: StagedRun
    """The run the moves are made on."""

    def retry(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Call again with the same idempotency key, after a backoff."""
        raise UnsupportedRulingError(step, situation, order.decision)
        yield  # pragma: no cover - makes this a generator

    def verify(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Ask the other side what really happened."""
        raise UnsupportedRulingError(step, situation, order.decision)
        yield  # pragma: no cover

    def wait(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Wait out what is left of the bound's window."""
        raise UnsupportedRulingError(step, situation, order.decision)
        yield  # pragma: no cover

    def rollback(self, step: Step, situation: Situation, order: Order) -> Next:
        """The step failed for good: the run rolls back what came before it."""
        raise UnsupportedRulingError(step, situation, order.decision)

    def review(self, step: Step, situation: Situation, order: Order) -> Next:
        """Stop, alert, and wait for a person."""
        raise UnsupportedRulingError(step, situation, order.decision)

    def go_on(self, step: Step, situation: Situation, order: Order) -> Next:
        """A best-effort step failed for good or stays unknown: alert, and go on without it."""
        raise UnsupportedRulingError(step, situation, order.decision)

    def compensate(self, step: Step, situation: Situation, order: Order) -> MoveGenerator:
        """Undo the step (the rollback reached it)."""
        raise UnsupportedRulingError(step, situation, order.decision)
        yield  # pragma: no cover

    def keep(self, step: Step, situation: Situation, order: Order) -> Next:
        """The step cannot be undone: keep its effect, with its mitigation."""
        raise UnsupportedRulingError(step, situation, order.decision)


def act(moves: Moves, step: Step, situation: Situation, order: Order) -> MoveGenerator:
    """Make the move ``order`` calls for: the one place a decision turns into an action."""
    decision = order.decision
    if decision in _CALLS:
        moves.run.calling()
    if decision is Decision.RETRY:
        return (yield from moves.retry(step, situation, order))
    if decision is Decision.VERIFY:
        return (yield from moves.verify(step, situation, order))
    if decision is Decision.WAIT:
        return (yield from moves.wait(step, situation, order))
    if decision is Decision.COMPENSATE:
        return (yield from moves.compensate(step, situation, order))
    if decision is Decision.ROLLBACK:
        return moves.rollback(step, situation, order)
    if decision is Decision.MANUAL_REVIEW:
        return moves.review(step, situation, order)
    if decision is Decision.CONTINUE:
        return moves.go_on(step, situation, order)
    if decision is Decision.KEEP:
        return moves.keep(step, situation, order)
    if decision is Decision.NONE:
        return End.DONE
    raise UnsupportedRulingError(step, situation, decision)


def _since(start: float | None, now: float) -> float:
    return 0.0 if start is None else max(0.0, now - start)
