"""Checks the harness makes beyond the journal's own record of itself.

:func:`~sagaguard.testing.invariants.check_invariants` judges the journal by its own fields
(``completed_seq`` says in which order steps completed). These checks judge it by what
happened in time: the order of the audit trail and of the calls the outside world saw, and
who wrote after whom. An engine that numbered its completions wrongly would pass the first
and fail these.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from sagaguard.storage.base import Event
from sagaguard.testing.ledger import LedgerEntry, LedgerKind
from sagaguard.testing.scenario import Failure
from sagaguard.vocabulary import EventKind, StepStatus

__all__ = ["rollback_order", "stale_writes"]


def rollback_order(events: Sequence[Event], entries: Iterable[LedgerEntry]) -> list[Failure]:
    """2: compensations reach the world latest-completed first, as the audit trail orders it."""
    completed: dict[str, int] = {}
    for event in events:
        if event.step_id is not None and event.to_status == StepStatus.COMPLETED:
            completed.setdefault(event.step_id, event.seq)
    undone: list[str] = []
    for entry in entries:
        if entry.kind is LedgerKind.COMPENSATE and entry.step_id not in undone:
            undone.append(entry.step_id)
    out: list[Failure] = []
    for earlier, later in itertools.pairwise(undone):
        first, second = completed.get(earlier), completed.get(later)
        if first is not None and second is not None and second > first:
            out.append(
                Failure(
                    "invariant 2",
                    later,
                    f"compensated after {earlier}, though it completed later (event {second} "
                    f"after {first}): not reverse order of completion",
                )
            )
    return out


def stale_writes(events: Sequence[Event], stale: str) -> list[Failure]:
    """4: once another owner claimed the run, ``stale`` writes nothing more to it."""
    taken = [e.seq for e in events if e.kind == EventKind.CLAIMED and e.actor != stale]
    if not taken:
        return []
    return [
        Failure(
            "invariant 4",
            event.step_id,
            f"{stale} wrote {event.kind} (event {event.seq}) after another owner took the run "
            "over: a stale owner's write was not fenced off",
        )
        for event in events
        if event.seq > taken[0] and event.actor == stale
    ]
