"""THE conformance test: for every cell of the table the engine does what ``rules.decide`` says.

Each cell (step kind x situation x before/at/after the pivot x required or best-effort) runs
the real engine on the memory store with a scripted fake provider; what the engine did is read
from the journal (:mod:`tests.conformance.observe`) and compared with the ruling, derived at
test time from :func:`sagaguard.rules.decide`. Nothing about a cell is written down here:
change the rulebook alone, or the engine alone, and this test fails (the last two tests
prove it by changing each side on its own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from sagaguard import rules
from sagaguard.model import Phase, Process, Step
from sagaguard.rules import Bound, Decision, Ruling, Situation
from sagaguard.vocabulary import AlertKind
from tests.conformance.cells import TARGET, Cell, Outcome, cells, provoke
from tests.conformance.observe import Seen, observe

RULEBOOK = rules.decide
"""The rulebook as it stands; the engine looks ``rules.decide`` up anew on every ruling."""
Decide = Callable[..., Ruling]
_VERIFY_SITUATIONS = (
    Situation.VERIFY_NOT_APPLIED,
    Situation.VERIFY_TOO_SOON,
    Situation.VERIFY_FAILED,
)
_COMPENSATION_SITUATIONS = (
    Situation.COMPENSATION_FAILED,
    Situation.COMPENSATION_REFUSED,
    Situation.COMPENSATION_UNKNOWN,
)
ALL_CELLS = list(cells())


def mismatches(cell: Cell, decide: Decide = RULEBOOK) -> list[str]:
    """How what the engine did in ``cell`` differs from what ``decide`` says (empty: agrees)."""
    try:
        outcome = provoke(cell)
        late = (
            provoke(cell, late_answer=True) if cell.situation is Situation.CALL_IN_FLIGHT else None
        )
    except Exception as exc:
        return [f"the engine failed: {type(exc).__name__}: {exc}"]
    return compare(cell, outcome, observe(cell, outcome, late=late), decide)


def compare(cell: Cell, outcome: Outcome, seen: Seen, decide: Decide) -> list[str]:
    """The ruling for the cell against what was seen."""
    process = outcome.saga.process
    step = process.step(TARGET)
    ruling = decide(step, cell.situation, process=process, verify_bound=cell.verify_bound)
    expected_to_arise = _arises(cell, step, process, decide)
    if seen.arose is not expected_to_arise:
        said = "arises" if expected_to_arise else "never arises"
        return [f"the rulebook says {cell.situation.value} {said} here; the engine disagrees"]
    if not seen.arose:
        return []
    problems = []
    if seen.first is not _first(ruling, seen):
        problems.append(
            f"first move {seen.first.value}, the ruling says {_first(ruling, seen).value}"
        )
    if seen.ends is not ruling.ends:
        problems.append(f"ends in {seen.ends.value}, the ruling says {ruling.ends.value}")
    if seen.alert is not _alert(ruling):
        problems.append(f"alert {_name(seen.alert)}, the ruling says {_name(_alert(ruling))}")
    problems += _bound_problems(ruling, seen)
    return problems


def _arises(cell: Cell, step: Step, process: Process, decide: Decide) -> bool:
    """Whether, by the rulebook, the engine ever meets the cell's situation at all."""
    if cell.situation in _VERIFY_SITUATIONS:
        unknown = decide(step, Situation.TIMEOUT, process=process, verify_bound=cell.verify_bound)
        return unknown.decision is Decision.VERIFY
    if cell.situation in _COMPENSATION_SITUATIONS:
        later = decide(
            step, Situation.LATER_STEP_FAILED, process=process, verify_bound=cell.verify_bound
        )
        return later.decision is Decision.COMPENSATE
    return True


def _first(ruling: Ruling, seen: Seen) -> Decision:
    """The ruling's first move: its decision, unless its bound is spent at the first point."""
    if ruling.bound is not None and seen.points:
        point = seen.points[0]
        if ruling.bound.spent(attempts=point.tries, elapsed_s=point.elapsed_s):
            return ruling.ends
    return ruling.decision


def _alert(ruling: Ruling) -> AlertKind | None:
    return ruling.alert if ruling.ends in (Decision.MANUAL_REVIEW, Decision.CONTINUE) else None


def _name(alert: AlertKind | None) -> str:
    return "none" if alert is None else alert.value


def _bound_problems(ruling: Ruling, seen: Seen) -> list[str]:
    """A repeated decision: never given up while its bound lasts, given up once it is spent."""
    bound = ruling.bound
    if bound is None or ruling.decision is Decision.WAIT or not seen.points:
        return []
    *going_on, last = seen.points
    problems = []
    for point in going_on:
        if bound.spent(attempts=point.tries, elapsed_s=point.elapsed_s):
            problems.append(
                f"tried again after {point.tries} tries ({point.elapsed_s:g}s): {bound}"
            )
    if not bound.spent(attempts=last.tries, elapsed_s=last.elapsed_s):
        problems.append(f"gave up after {last.tries} tries ({last.elapsed_s:g}s): {bound}")
    return problems


@pytest.mark.parametrize("cell", ALL_CELLS, ids=[c.id for c in ALL_CELLS])
def test_the_engine_does_what_the_rulebook_says(cell: Cell) -> None:
    assert mismatches(cell) == []


def test_the_table_is_covered_cell_by_cell() -> None:
    """Every step kind, situation and place around the pivot has its cells."""
    assert {c.kind for c in ALL_CELLS} == set(rules.StepKind)
    assert {c.situation for c in ALL_CELLS} == set(Situation)
    assert {(c.phase, c.required) for c in ALL_CELLS} == {
        (phase, required)
        for phase in Phase
        for required in (True, False)
        if required or phase is not Phase.PIVOT
    }
    assert len(ALL_CELLS) == 9 * 5 * len(Situation)


# -- the test fails when either side changes alone ----------------------------------------------


def _mutated(situation: Situation, change: Callable[[Ruling], Ruling]) -> Decide:
    def decide(step: Step, asked: Situation, **kwargs: Any) -> Ruling:
        ruling = RULEBOOK(step, asked, **kwargs)
        return change(ruling) if asked is situation else ruling

    return decide


_MUTATIONS = {
    "a definite failure is given one more attempt": (
        Situation.DEFINITE_FAILURE,
        lambda r: dataclasses.replace(r, bound=Bound(attempts=(r.bound.attempts or 0) + 1)),
    ),
    "a refusal after the pivot rolls back": (
        Situation.REFUSED,
        lambda r: dataclasses.replace(r, decision=Decision.ROLLBACK, alert=None),
    ),
    "a failed compensation goes to a person at once": (
        Situation.COMPENSATION_FAILED,
        lambda r: dataclasses.replace(r, decision=Decision.MANUAL_REVIEW, then=None, bound=None),
    ),
}
_PROBES = {
    Situation.DEFINITE_FAILURE: "idempotent-undo-before_pivot-required-definite_failure",
    Situation.REFUSED: "idempotent-undo-after_pivot-required-refused",
    Situation.COMPENSATION_FAILED: "idempotent-undo-before_pivot-required-compensation_failed",
}


def _probe(situation: Situation) -> Cell:
    return next(c for c in ALL_CELLS if c.id == _PROBES[situation])


@pytest.mark.parametrize("mutation", sorted(_MUTATIONS))
def test_it_fails_when_the_rulebook_changes_and_the_engine_does_not(mutation: str) -> None:
    """The expectation is derived from a changed rulebook; the engine runs on the real one."""
    situation, change = _MUTATIONS[mutation]
    cell = _probe(situation)
    assert mismatches(cell) == []
    assert mismatches(cell, decide=_mutated(situation, change)) != []


@pytest.mark.parametrize("mutation", sorted(_MUTATIONS))
def test_it_fails_when_the_engine_changes_and_the_rulebook_does_not(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine obeys a changed rulebook; the expectation stays the real one."""
    situation, change = _MUTATIONS[mutation]
    cell = _probe(situation)
    monkeypatch.setattr(rules, "decide", _mutated(situation, change))
    assert mismatches(cell, decide=RULEBOOK) != []
