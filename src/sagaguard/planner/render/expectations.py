"""What a partial-failure test expects, in the few lists a reader of a rendered plan looks for.

An expected state holds runs of steps that end alike; these views list the first few steps
of each kind (still active, compensated in order, waiting for a person) and how many there
are, reading the runs, never every step, so a rendered plan stays linear in the process.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagaguard.planner.plan import ExpectedState, Plan, StepStatus
from sagaguard.planner.render.labels import LIST_LIMIT, count_label
from sagaguard.planner.render.rollbacks import Rollbacks

__all__ = ["ExpectationView", "Listed", "expectation_view"]


@dataclass(frozen=True, slots=True)
class Listed:
    """The first few step ids of a list, and how many it holds in all."""

    ids: list[str]
    total: int

    @property
    def more(self) -> int:
        """How many ids were left out."""
        return self.total - len(self.ids)


@dataclass(frozen=True, slots=True)
class ExpectationView:
    """What a test expects, in the few lists a reader looks for."""

    __test__ = False  # not a pytest test class despite its name

    active: Listed
    compensated: Listed
    waiting: Listed
    unknown: Listed
    failed: Listed
    calls: list[str]


def _span(ids: list[str], first: int, last: int) -> str:
    if first == last:
        return ids[first]
    return f"{ids[first]} … {ids[last]}" if last > first + 1 else f"{ids[first]}, {ids[last]}"


def expectation_view(
    plan: Plan, expected: ExpectedState, rollbacks: Rollbacks | None = None
) -> ExpectationView:
    """The expected state as lists: still active, compensated (in order), waiting, calls.

    The work is bounded by the number of runs in ``expected`` and :data:`LIST_LIMIT`, not by
    the number of steps.
    """
    rollbacks = rollbacks if rollbacks is not None else Rollbacks.of(plan)
    ids = rollbacks.ids
    found: dict[str, list[str]] = {name: [] for name in set(_LISTS.values())}
    totals: dict[str, int] = dict.fromkeys(found, 0)
    undone: list[tuple[int, int]] = []
    calls = []
    for e in expected.steps:
        first, last = rollbacks.at[e.first], rollbacks.at[e.last]
        name = _LISTS.get(e.status)
        if e.status is StepStatus.COMPENSATED:
            undone.append((first, last))
        elif name is not None:
            # A read-only step that completed leaves nothing active in the world.
            skip = name == "active"
            for position in range(first, last + 1):
                if len(found[name]) >= LIST_LIMIT:
                    break
                if not (skip and rollbacks.read_only(position)):
                    found[name].append(ids[position])
            totals[name] += last - first + 1
            if skip:
                totals[name] -= rollbacks.read_only_between(first, last)
        parts = [
            f"{what} {count_label(n)}"
            for what, n in (
                ("call", e.calls),
                ("verify", e.verifies),
                ("compensation", e.compensations),
            )
            if n.at_least
        ]
        if parts:
            calls.append(f"{_span(ids, first, last)}: " + ", ".join(parts))
    compensated: list[str] = []
    for first, last in reversed(undone):
        compensated += ids[max(first, last + 1 - LIST_LIMIT + len(compensated)) : last + 1][::-1]
        if len(compensated) >= LIST_LIMIT:
            break
    undone_total = sum(last - first + 1 for first, last in undone)
    return ExpectationView(
        active=Listed(found["active"], totals["active"]),
        compensated=Listed(compensated[:LIST_LIMIT], undone_total),
        waiting=Listed(found["waiting"], totals["waiting"]),
        unknown=Listed(found["unknown"], totals["unknown"]),
        failed=Listed(found["failed"], totals["failed"]),
        calls=calls,
    )


_LISTS = {
    StepStatus.COMPLETED: "active",
    StepStatus.NEEDS_MANUAL_REVIEW: "waiting",
    StepStatus.COMPENSATION_FAILED: "waiting",
    StepStatus.UNKNOWN: "unknown",
    StepStatus.FAILED: "failed",
}
